"""Small pure checks used to confirm a match: checksums, number rules, entropy.

A pattern only says "shaped like"; these say "plausibly real". Each is a few lines, has no state and
works on the matched characters only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
import zlib
from collections import Counter

import orjson
import phonenumbers

DIGITS = frozenset("0123456789")


def digits_of(value: str) -> str:
    return "".join(ch for ch in value if ch in DIGITS)


def luhn_ok(number: str) -> bool:
    """Luhn mod-10 checksum of a digit string (payment cards)."""
    if not number or not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Published test numbers of card networks and PSPs: shaped like cards, never a person's card.
TEST_CARD_NUMBERS = frozenset({
    "4111111111111111", "4242424242424242", "4012888888881881", "4000056655665556", "5555555555554444",
    "5105105105105100", "5200828282828210", "378282246310005", "371449635398431", "6011111111111117",
    "6011000990139424", "3056930009020004", "36227206271667", "3566002020360505", "6200000000000005",
    "4000000000000002", "4000000000009995", "4000000000000077", "2223003122003222",
})


def card_brand(number: str) -> str | None:
    """Issuer of a card number by IIN range and length, or None when no scheme issues it."""
    n = len(number)
    two, four = int(number[:2]), int(number[:4])
    if number[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (number.startswith("6011") or two == 65 or 644 <= int(number[:3]) <= 649) and 16 <= n <= 19:
        return "discover"
    if 3528 <= four <= 3589 and 16 <= n <= 19 or four in (1800, 2131) and n == 15:
        return "jcb"
    if (two in (36, 38, 39) or 300 <= int(number[:3]) <= 305) and 14 <= n <= 19:
        return "diners"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    if number[:4] in ("5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763") and 12 <= n <= 19:
        return "maestro"
    return None


# ISO 13616 lengths per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_ok(value: str) -> bool:
    """Country length and ISO 7064 mod-97 == 1 of an IBAN (spaces ignored)."""
    iban = value.replace(" ", "").upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


# Numbers published as examples or famously misused (SSA): never anyone's SSN.
_SSN_INVALID = frozenset({"078051120", "219099999", "123456789", "111111111", "333333333", "987654320"})


def ssn_ok(value: str) -> bool:
    """US SSN structure: area not 000/666/9xx, group not 00, serial not 0000, not a known sample."""
    d = digits_of(value)
    if len(d) != 9 or d in _SSN_INVALID or len(set(d)) == 1:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# Regions tried for a national number written with its trunk prefix 0 ("020 7946 0958"): without a
# country code the number is valid if one of these numbering plans accepts it. Populous and commonly
# seen plans with a 0 trunk prefix (or, for Italy, a leading 0 that is part of the number).
TRUNK_ZERO_REGIONS = (
    "GB", "DE", "FR", "IT", "NL", "BE", "AT", "CH", "IE", "SE", "FI", "AU", "NZ", "IN", "PK", "ZA", "NG",
    "KE", "EG", "TR", "IL", "JP", "KR", "CN", "TW", "PH", "ID", "TH", "MY", "BR", "AR", "PE",
)
_EXTENSION = re.compile(r"\s*(?:x|ext\.?|extension|#)\s*\d{1,6}\s*$", re.IGNORECASE)


def strip_extension(value: str) -> str:
    """``800-555-0199 x123`` → ``800-555-0199``."""
    return _EXTENSION.sub("", value)


def phone_factor(value: str, after_context_word: bool = False) -> float | None:
    """How plausible a phone number is: 1.0, a lower factor, or None (not a phone number).

    - ``+CC …`` / ``00CC …``: libphonenumber (``phonenumbers``) parses the country code and checks the
      country's numbering plan: valid 1.0, right length for the country only 0.85.
    - ``0…`` (national number with trunk prefix): valid in one of ``TRUNK_ZERO_REGIONS`` — 1.0 when grouped
      as one of those countries writes it, 0.85 otherwise.
    - 10 digits, or 11 with a leading 1: NANP area/exchange rules (first digits 2–9, area not N11).
    - 7–9 digits written in groups: local numbers (only reportable next to a context word).
    - ``after_context_word`` ("Phone: 21 284 698 2548"): any other 7–15 digits (the E.164 bounds) in groups.
    """
    raw = strip_extension(value).strip()
    d = digits_of(raw)
    if not 7 <= len(d) <= 15 or len(set(d)) <= 2:
        return None
    if raw.startswith("+") or (raw.startswith("00") and d[2:3] not in ("", "0")):
        if raw.startswith("00"):
            d = d[2:]
        try:
            number = phonenumbers.parse("+" + d, None)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return 1.0
        return 0.85 if phonenumbers.is_possible_number(number) else None
    if d[0] == "0":
        if not 9 <= len(d) <= 12:
            return None
        factor = None
        groups = _groups(raw)
        for region in TRUNK_ZERO_REGIONS:
            number = _national(d, region)  # built directly: parse() would cost ~3x more per region
            if phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number_for_region(number, region):
                official = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
                if _groups(official) == groups:
                    return 1.0  # grouped the way that country writes it
                factor = 0.85  # valid, unusual grouping ("0123 4567 89"): needs a context word to report
        return factor
    if len(d) == 10:
        return 1.0 if _nanp_ok(d) else None
    if len(d) == 11 and d[0] == "1":
        return 1.0 if _nanp_ok(d[1:]) else None
    grouped = any(sep in raw for sep in " .-)")
    if after_context_word and grouped:
        return 1.0
    return 1.0 if len(d) <= 9 and grouped else None


def _national(digits: str, region: str) -> phonenumbers.PhoneNumber:
    """The number ``0…`` as dialled inside ``region``: the trunk 0 dropped, or kept where it belongs to
    the number (Italy)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if meta.national_prefix == "0":
        return phonenumbers.PhoneNumber(country_code=meta.country_code, national_number=int(digits[1:]))
    return phonenumbers.PhoneNumber(country_code=meta.country_code, national_number=int(digits), italian_leading_zero=True)


def _groups(value: str) -> list[int]:
    """Lengths of the digit groups of a written number: ``020 7946 0958`` → [3, 4, 4]."""
    return [len(g) for g in re.split(r"\D+", value) if g]


def _nanp_ok(d: str) -> bool:
    return d[0] in "23456789" and d[3] in "23456789" and d[1:3] != "11"


def ipv4_kind(value: str) -> str | None:
    """'public' / 'private' for a valid dotted-quad IPv4 address, None when not a valid address."""
    parts = value.split(".")
    if len(parts) != 4 or any(not p or (len(p) > 1 and p[0] == "0") or int(p) > 255 for p in parts):
        return None
    ip = ipaddress.IPv4Address(value)
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return None
    return "public" if ip.is_global else "private"


def ipv6_kind(value: str) -> str | None:
    """'public' / 'private' for a valid IPv6 address with at least three groups, else None."""
    if value.count(":") < 2:
        return None
    try:
        ip = ipaddress.IPv6Address(value)
    except ValueError:
        return None
    if ip.is_unspecified or ip.is_multicast:
        return None
    return "public" if ip.is_global else "private"


def shannon_entropy(value: str) -> float:
    """Bits per character; random base64 ~ 5–6, English words ~ 3–4, repeated characters ~ 0."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def char_classes(value: str) -> int:
    """How many of lower, upper, digit, other the value uses (1–4)."""
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def github_checksum_ok(token: str) -> bool:
    """GitHub's new-format tokens end in a 6-char base62 CRC32 of ``prefix_body``."""
    head, _, tail = token.rpartition("_")
    if not head or len(tail) < 7:
        return False
    body, check = tail[:-6], tail[-6:]
    crc = zlib.crc32(f"{head}_{body}".encode())
    digits = []
    while crc:
        crc, r = divmod(crc, 62)
        digits.append(_B62[r])
    return "".join(reversed(digits)).rjust(6, "0") == check


def b64url_json(segment: str) -> object | None:
    """Decode a base64url JWT segment into JSON, or None."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        return None


def decoded_bytes(value: str) -> bytes | None:
    """Bytes carried by a hex or base64(url) string, or None when it is neither."""
    v = value.rstrip("=")
    if len(v) >= 16 and len(v) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in v):
        return bytes.fromhex(v)
    try:
        return base64.urlsafe_b64decode(v.replace("+", "-").replace("/", "_") + "=" * (-len(v) % 4))
    except (binascii.Error, ValueError):
        return None


def _expected_entropy(n: int, k: int) -> float:
    """Expected Shannon entropy (bits/char) of ``n`` characters drawn uniformly from ``k`` symbols."""
    p = 1.0 / k
    total = 0.0
    for x in range(1, n + 1):  # E[sum_c (X_c/n) log2(n/X_c)], X_c ~ Binomial(n, 1/k)
        prob = math.comb(n, x) * p**x * (1 - p) ** (n - x)
        total += prob * (x / n) * math.log2(n / x)
    return k * total


# Expected entropy of random hex (16 symbols) and base64/base62 (64) strings, lengths 0..256: a table
# of constants computed once at import (a few ms), so threshold checks cost a lookup.
_RANDOM_ENTROPY: dict[int, tuple[float, ...]] = {
    k: tuple(_expected_entropy(n, k) if n else 0.0 for n in range(257)) for k in (16, 64)
}
HEX = frozenset("0123456789abcdefABCDEF")


def random_entropy(n: int, hex_only: bool) -> float:
    """What a uniformly random value of this length and alphabet scores (``shannon_entropy``) on average."""
    return _RANDOM_ENTROPY[16 if hex_only else 64][min(n, 256)]


def looks_random(value: str, ratio: float = 0.85) -> bool:
    """A value is plausibly machine-generated key material: letters *and* digits, and an entropy of at
    least ``ratio`` times what a random string of the same length and alphabet (hex or base64) has.

    Simulated on uniformly random values, this keeps ~93% of 16-character base62 strings (6% of them
    have no digit), ~99% from 24 characters on, and ~98% of 16-character hex strings (100% from 32),
    while words, identifiers and repeated units fall below it (``getSecretValueFromVault`` has no
    digit; ``abcd1234abcd1234...`` scores 3.0 of the 3.8 bits random hex of that length has).
    """
    core = value.rstrip("=")
    if len(core) < 8:
        return False
    if not any(c.isdigit() for c in core) or not any(c.isalpha() for c in core):
        return False
    plain = core.replace("-", "")
    if all(c in HEX for c in plain):  # hex, also in groups (UUIDs): judged without the dashes
        return shannon_entropy(plain) >= ratio * random_entropy(len(plain), True)
    return shannon_entropy(core) >= ratio * random_entropy(len(core), False)


def is_periodic(value: str) -> bool:
    """The value is a short unit repeated (``abcd1234abcd1234...``): a placeholder, not key material."""
    n = len(value)
    for unit in range(1, n // 2 + 1):
        if n % unit == 0 and value[:unit] * (n // unit) == value:
            return True
    return False
