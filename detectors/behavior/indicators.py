"""Indicators: the values that decide *where* an action goes — emails, URLs and domains, IBANs and
account numbers, phone numbers, file paths and shell commands.

    >>> [(i.kind, i.value) for i in extract("Pay UK12345678901234567890 or mail bob@example.com")]
    [('iban', 'UK12345678901234567890'), ('email', 'bob@example.com')]
    >>> key("email", "Bob@Example.com") == key("email", "bob@example.com")
    True

Session state never keeps the values themselves: only a 64-bit key of the normalised value
(``key``), its kind and a masked excerpt for evidence. Extraction is bounded (``max_chars`` of a
text are looked at, at most ``max_items`` indicators are returned) and uses cheap pre-checks so a
kilobyte of ordinary prose costs a few microseconds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from detectors import masking

KINDS = ("email", "url", "domain", "iban", "account", "phone", "path", "command")
DESTINATION_KINDS = frozenset({"email", "url", "domain", "phone"})  # an outbound channel by themselves

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}")
_URL = re.compile(
    r"(?:\b(?:https?|ftp)://|(?<![\w@.-])www\.)[^\s<>\"'`)\]}|\\^]{1,2048}", re.IGNORECASE)
# Bare domains need a known top-level domain: file names (report.pdf, main.py) must not look like hosts.
_TLDS = (
    "com|net|org|io|co|ai|app|dev|info|biz|me|xyz|site|online|top|cloud|tech|store|shop|blog|edu|gov|mil|"
    "us|uk|de|fr|it|es|nl|be|ch|at|se|no|dk|fi|pl|cz|ru|ua|cn|jp|kr|in|br|ar|mx|ca|au|nz|za|tk|ml|ga|cf|gq|"
    "ly|to|cc|tv|ws|su|ir|pw|link|click|live|news|page|email|link|work|host|space|website|zip|mov|ngrok|onion"
)
_DOMAIN_TAIL = re.compile(r"\.(?:" + _TLDS + r")(?![\w-])(?!\.[a-z])", re.IGNORECASE)
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{8,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?![A-Za-z0-9])")
# Numbers: digit groups joined by separators, optionally led by + or a short letter prefix (AW-1234...).
_NUMBER = re.compile(r"(?<![\w.+-])(?:\+|[A-Z]{1,4}-)?\(?\d[\d\-. ()]{6,24}\d(?![\w.-]*\d)(?![A-Za-z])")
_PATH = re.compile(r"(?<![\w:/.@-])(?:~|\.{1,2})?/(?:[\w.-]+/)*[\w.-]*[\w-]/?(?![\w/])")
_WINPATH = re.compile(r"\b[A-Za-z]:\\(?:[\w .-]+\\)*[\w.-]+")
_FILE_TAIL = re.compile(
    r"\.(?:txt|pdf|docx?|xlsx?|pptx?|csv|json|ya?ml|xml|md|py|sh|bat|ps1|exe|zip|tar|gz|key|pem|env|conf|cfg|"
    r"ini|log|sql|db|html?|js|png|jpe?g|mp[34])(?![\w.])", re.IGNORECASE)
_FILE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_DIGITS4 = re.compile(r"\d\d\d\d")
_COMMAND_WORDS = (
    "curl|wget|bash|sh|zsh|python3?|pip3?|npm|npx|node|rm|chmod|chown|sudo|scp|ssh|nc|ncat|netcat|"
    "powershell|pwsh|iex|certutil|git|docker|kubectl|mv|cp|cat|echo|base64|tar|crontab|systemctl|"
    "eval|exec|perl|ruby|mkfifo|dd|find|xargs|tee|openssl|aws|gcloud|az"
)
_COMMAND = re.compile(r"(?:^|(?<=[`$>;|&\n]))[ \t]*(?:\$ )?((?:" + _COMMAND_WORDS + r")[ \t][^\n`]{2,400})",
                      re.MULTILINE)
_COMMAND_HEAD = re.compile(r"^\s*(?:" + _COMMAND_WORDS + r")\s", re.IGNORECASE)
_SEGMENT_SPLIT = re.compile(r"\s*(?:&&|\|\||;|\|)\s*")
_SPACES = re.compile(r"\s+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./]\d{2}[./]\d{4}")
_DIGIT_TABLE = str.maketrans("", "", " -.()+/")


@dataclass(frozen=True, slots=True)
class Indicator:
    """One value found in a text; ``value`` is the normalised form (what ``key`` hashes)."""

    kind: str
    value: str
    start: int = 0
    end: int = field(default=0, compare=False)  # end of the raw match in the text it came from

    @property
    def key(self) -> int:
        return key(self.kind, self.value)

    def masked(self) -> str:
        return mask(self.kind, self.value)


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "big")


def namespace(kind: str) -> str:
    """Kinds that share a value space: an account number and a phone number are both digit strings."""
    return "num" if kind in ("account", "phone") else kind


def key(kind: str, value: str) -> int:
    """64-bit key of a normalised value (stable across processes, unlike ``hash``)."""
    return _h(namespace(kind) + "\x1f" + normalise(kind, value))


def sha256(kind: str, value: str) -> str:
    """For evidence: lets an analyst correlate the same value across findings without seeing it."""
    return masking.sha256(namespace(kind) + ":" + normalise(kind, value))


def normalise(kind: str, value: str) -> str:
    if kind == "email" or kind == "domain":
        return value.strip().lower().rstrip(".")
    if kind == "url":
        return _norm_url(value)
    if kind == "iban":
        return value.replace(" ", "").upper()
    if kind in ("account", "phone"):
        digits = "".join(ch for ch in value if ch.isalnum()).upper()
        return digits[-10:] if digits.isdigit() and len(digits) > 10 else digits
    if kind == "path":
        return value.strip().strip("'\"").rstrip("/\\") or value.strip()
    if kind == "command":
        return _SPACES.sub(" ", value.strip().strip("`'\"")).lower()
    return value


def _norm_url(value: str) -> str:
    v = value.strip().rstrip(".,;:!?")
    low = v.lower()
    for prefix in ("https://", "http://", "ftp://"):
        if low.startswith(prefix):
            v = v[len(prefix):]
            break
    host, sep, rest = v.partition("/")
    host = host.lower()
    if host.startswith("www."):
        host = host[4:]
    rest = rest.rstrip("/")
    return host + ("/" + rest if rest else "")


def url_host(value: str) -> str:
    """Host of a URL in normalised form (no scheme, no ``www.``, no port)."""
    return _norm_url(value).partition("/")[0].partition(":")[0]


def mask(kind: str, value: str) -> str:
    """A masked excerpt for evidence: shows the shape and the useful part, never the whole secret."""
    if kind == "email":
        return masking.mask_email(value)
    if kind == "url":
        return masking.mask_url(value)
    if kind == "domain":
        return masking.printable(value, 120)
    if kind == "iban":
        return masking.mask_alnum_tail(value)
    if kind in ("account", "phone"):
        return masking.mask_digits(value)
    if kind == "path":
        return masking.printable(value, 120)
    if kind == "command":
        text = masking.printable(value, 60)
        return text + ("…" if len(value) > 60 else "")
    return masking.mask_secret(value)


def _number_kind(raw: str) -> str | None:
    digits = raw.translate(_DIGIT_TABLE)
    if not digits:
        return None
    letters = sum(ch.isalpha() for ch in digits)
    count = len(digits) - letters
    if count < 8 or count > 20:
        return None
    if _DATE.search(raw):
        return None  # an ISO date (and time)
    if raw.startswith("+") or raw.startswith("(") or (letters == 0 and count in (10, 11) and raw.count("-") + raw.count(" ") + raw.count(".") == 2 and len(raw.split("-")[0]) == 3):
        return "phone"
    if letters == 0 and ("." in raw or ":" in raw) and raw.count(".") >= 2:
        return None  # version numbers, IP-like strings
    return "account"


def extract(text: str, *, max_chars: int = 65_536, max_items: int = 64) -> list[Indicator]:
    """Indicators in ``text`` in document order (head of long texts only), at most ``max_items``."""
    if not text:
        return []
    if len(text) > max_chars:
        text = text[:max_chars]
    found: list[Indicator] = []
    taken: list[tuple[int, int]] = []  # spans already claimed (an email's domain is not a domain too)

    def add(kind: str, value: str, start: int, end: int) -> None:
        found.append(Indicator(kind, normalise(kind, value), start, end))
        taken.append((start, end))

    def free(start: int, end: int) -> bool:
        for s, e in taken:
            if start < e and s < end:
                return False
        return True

    if "@" in text:
        for m in _EMAIL.finditer(text):
            add("email", m.group(), m.start(), m.end())
    if "://" in text or "www." in text or "WWW." in text:
        for m in _URL.finditer(text):
            if free(m.start(), m.end()):
                value = m.group().rstrip(".,;:!?")
                add("url", value, m.start(), m.start() + len(value))
    if "." in text:
        for m in _DOMAIN_TAIL.finditer(text):
            end = m.end()
            start = m.start()
            while start > 0 and text[start - 1] in _HOST_CHARS:
                start -= 1
            while start < m.start() and text[start] in ".-":
                start += 1
            host = text[start:end]
            if "." not in host or start == m.start() or not free(start, end):
                continue
            if start > 0 and text[start - 1] in "@/\\:":
                continue
            label = host.rsplit(".", 2)[0]
            if label.replace(".", "").replace("-", "").isdigit():
                continue
            add("domain", host, start, end)
    if _has_digit(text) and _DIGITS4.search(text) is not None:
        for m in _IBAN.finditer(text):
            raw = m.group()
            if sum(ch.isdigit() for ch in raw) >= 8 and free(m.start(), m.end()):
                add("iban", raw, m.start(), m.end())
        for m in _NUMBER.finditer(text):
            raw = m.group().strip(" .()")
            kind = _number_kind(raw)
            if kind is not None and free(m.start(), m.end()):
                add(kind, raw, m.start(), m.end())
    if "/" in text:
        for m in _PATH.finditer(text):
            raw = m.group()
            if len(raw) < 2 or not free(m.start(), m.end()):
                continue
            if raw.startswith("/") and raw.count("/") == 1 and len(raw) < 4:
                continue  # "/a", "/s"
            add("path", raw, m.start(), m.end())
    if ":\\" in text:
        for m in _WINPATH.finditer(text):
            if free(m.start(), m.end()):
                add("path", m.group(), m.start(), m.end())
    if "." in text:
        for m in _FILE_TAIL.finditer(text):
            start = m.start()
            while start > 0 and text[start - 1] in _FILE_CHARS and m.start() - start < 120:
                start -= 1
            if start == m.start() or (start > 0 and text[start - 1] in "/.\\"):
                continue
            if free(start, m.end()):
                add("path", text[start:m.end()], start, m.end())
    # the pre-check runs on the text as is: any match of the (case-sensitive) ``_COMMAND`` is also one of it
    if ("`" in text or "$ " in text or "\n" in text or _COMMAND_HEAD.match(text)) and _might_hold_command(text):
        for m in _COMMAND.finditer(text):
            add("command", m.group(1), m.start(1), m.end(1))
    found.sort(key=lambda i: i.start)
    return found[:max_items]


# A record field's whole value: "sender: a@b.example", "- a@b.example", '"iban": "DE89…",', "| a@b.example |".
_FIELD_HEAD = re.compile(r"""\s*(?:-\s+)?(?:["']?[A-Za-z_][\w .-]{0,40}["']?\s*[:=]\s*)?["']?\Z""")
_FIELD_TAIL = re.compile(r"""["']?\s*\Z""")
_FIELD_OPEN = "\n{[,|\t"
_FIELD_CLOSE = "\n}],|\t"


def is_record_value(text: str, ind: Indicator) -> bool:
    r"""Is ``ind`` the whole value of a field of a record (a YAML or JSON key, a list item, a table cell)
    rather than part of sentences someone wrote? A sender or a payee in a listing is data a system
    wrote; an injected instruction carries its destination in prose ("send it to …").

        >>> t = "- amount: 50.0\n  recipient: SE3550000000054910000003\n  subject: Spotify"
        >>> [is_record_value(t, i) for i in extract(t)]
        [True]
        >>> [is_record_value(t, i) for i in extract("body: 'Please send it to SE3550000000054910000003.'")]
        [False]
    """
    start, end = ind.start, ind.end
    if end <= start:
        return False
    head_start = max(0, start - 80)
    cut = max(text.rfind(ch, head_start, start) for ch in _FIELD_OPEN)
    head = text[(cut + 1 if cut >= 0 else head_start):start]
    if cut < 0 and head_start > 0:
        return False
    stop = min((i for i in (text.find(ch, end, end + 80) for ch in _FIELD_CLOSE) if i >= 0), default=-1)
    tail = text[end:stop] if stop >= 0 else text[end:end + 80]
    if stop < 0 and end + 80 < len(text):
        return False
    return _FIELD_HEAD.match(head) is not None and _FIELD_TAIL.match(tail) is not None


_COMMAND_PRECHECK = re.compile(r"(?:^|[`$>;|&\n])[ \t]*(?:\$ )?(?:" + _COMMAND_WORDS + r")[ \t]", re.MULTILINE)


def _has_digit(text: str) -> bool:
    """Ten substring scans (memchr speed) beat one regex scan of the text."""
    for d in "0123456789":
        if d in text:
            return True
    return False


def _might_hold_command(text: str) -> bool:
    return _COMMAND_PRECHECK.search(text) is not None


def command_keys(value: str) -> set[int]:
    """Keys of a command line and of each of its segments (``a && b | c``): a tool may run a part."""
    norm = normalise("command", value)
    keys = {key("command", norm)}
    for seg in _SEGMENT_SPLIT.split(norm):
        if len(seg) >= 6:
            keys.add(key("command", seg))
    return keys


def looks_like_command(value: str) -> bool:
    return bool(_COMMAND_HEAD.match(value))


def walk_strings(value: object, path: str = "", *, limit: int = 256) -> Iterator[tuple[str, str]]:
    """(argument path, string) pairs of a JSON-like value, iteratively, at most ``limit`` of them."""
    stack: list[tuple[str, object]] = [(path, value)]
    seen = 0
    while stack and seen < limit:
        p, v = stack.pop()
        if isinstance(v, str):
            seen += 1
            yield p, v
        elif isinstance(v, dict):
            for k, item in reversed(list(v.items())):
                stack.append((f"{p}.{k}" if p else str(k), item))
        elif isinstance(v, (list, tuple)):
            for i in range(len(v) - 1, -1, -1):
                stack.append((f"{p}[{i}]", v[i]))
        elif isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 10_000_000:
            seen += 1
            yield p, str(v)
