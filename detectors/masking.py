"""Masked excerpts and hashes for evidence: the monitor must not become the leak (DESIGN §4).

Evidence keeps a sha256 of the matched value (to correlate the same secret across events) and an
excerpt that shows its shape but never enough characters to use it.
"""

from __future__ import annotations

import hashlib


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def printable(value: str, limit: int = 200) -> str:
    """A safe one-line excerpt: no lone surrogates or control characters, at most ``limit`` chars."""
    value = value[:limit].encode("utf-8", "replace").decode("utf-8", "replace")
    return "".join(ch if ch.isprintable() else " " for ch in value)


def mask_secret(value: str) -> str:
    """Keep a prefix and suffix only when the value is long enough that they reveal nothing useful.

    ``AKIAIOSFODNN7EXAMPLE`` → ``AKIA************MPLE``; ≤ 11 characters are masked entirely;
    long values (JWTs, key bodies) show their length instead of hundreds of asterisks.
    """
    n = len(value)
    if n >= 20:
        keep = 4
    elif n >= 12:
        keep = 2
    else:
        return "*" * n
    hidden = n - 2 * keep
    stars = "*" * hidden if hidden <= 32 else "*" * 16 + f"[{n} chars]" + "*" * 16
    return printable(value[:keep] + stars + value[-keep:], 400)


def mask_digits(value: str, keep: int = 4) -> str:
    """Mask every digit but the last ``keep`` (cards, phone numbers, IBAN), keeping separators."""
    seen = 0
    total = sum(ch.isdigit() for ch in value)
    out = []
    for ch in value:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return printable("".join(out))


def mask_alnum_tail(value: str, keep: int = 4) -> str:
    """Mask letters and digits but the first two and the last ``keep`` (IBAN: country + tail)."""
    chars = [i for i, ch in enumerate(value) if ch.isalnum()]
    shown = set(chars[:2] + chars[-keep:])
    return printable("".join(ch if (i in shown or not ch.isalnum()) else "*" for i, ch in enumerate(value)))


def mask_email(value: str) -> str:
    """``jane.doe@example.com`` → ``j*******@example.com`` (the domain stays: it is the useful part)."""
    local, _, domain = value.partition("@")
    return printable((local[:1] + "*" * max(len(local) - 1, 1)) + "@" + domain)


def mask_ip(value: str) -> str:
    """Keep the network part: ``203.0.113.45`` → ``203.0.*.*``; IPv6 keeps the first two groups."""
    if ":" in value:
        groups = value.split(":")
        return printable(":".join(groups[:2] + ["*"] * (len(groups) - 2)))
    parts = value.split(".")
    return printable(".".join(parts[:2] + ["*"] * (len(parts) - 2)))


def mask_url(value: str) -> str:
    """Keep scheme, host and path of a URL; mask the query and fragment (they carry the data)."""
    head, sep, tail = value.partition("?")
    if not sep:
        head, sep, tail = value.partition("#")
    return printable(head + (sep + mask_secret(tail) if sep else ""), 300)
