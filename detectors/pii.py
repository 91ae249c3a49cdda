"""Personal data in AI traffic (category ``pii_exposure``), validated rather than pattern-shaped.

Each detector confirms its match: Luhn and issuer ranges for cards, mod-97 for IBANs, SSA rules for
SSNs, octet/range checks for IP addresses, numbering plans (libphonenumber) and NANP rules for phone numbers. Weak shapes
(bare digit runs) need a context word ("phone", "ssn") to reach the reporting threshold.
"""

from __future__ import annotations

import re

from detectors import checks, masking
from detectors.filters import PLACEHOLDER
from detectors.spec import Detector, Pattern
from schemas.finding import Category, Severity

TAGS = ("atlas:AML.T0057", "owasp-llm:LLM02")
PLACEMENT_TAGS = {
    "tool_args": ("atlas:AML.T0086", "owasp-asi:ASI02"),
    "indirect": ("atlas:AML.T0085",),
}


def _pii(id: str, title: str, description: str, patterns: tuple[Pattern, ...], **kw) -> Detector:
    kw.setdefault("severity", Severity.medium)
    kw.setdefault("overlap_group", "sensitive")
    return Detector(
        id=id, category=Category.pii_exposure, title=title, description=description, patterns=patterns,
        tags=TAGS, placement_tags=PLACEMENT_TAGS, **kw,
    )


_LOCAL_PART = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_IPV6_TAIL = re.compile(r"[0-9A-Fa-f:]{0,40}(?:(?<=:)\d{1,3}(?:\.\d{1,3}){3})?")
PHONE_CONTEXT = r"\b(?:phone|tel|telephone|mobile|cell|fax|whats\s?app|sms|contact|reach\s+me|call\s+me|dial)"
_DATE = re.compile(r"(?:\d{4}[-./ ]\d{1,2}[-./ ]\d{1,2}|\d{1,2}[-./ ]\d{1,2}[-./ ]\d{2,4})")
_TIME = re.compile(r"\d{1,2}[.:]\d{2}(?:[.:]\d{2})?")
# dates, times, the SSN layout, dotted quads (IPv4 addresses, versions)
_NOT_PHONE = re.compile(_DATE.pattern + "|" + _TIME.pattern + r"|\d{3}-\d{2}-\d{4}|\d{1,3}(?:\.\d{1,3}){3}")
_PHONE_EXTENSION = re.compile(r" ?(?:x|ext\.?|extension) ?\d{1,6}\b", re.IGNORECASE)
_IMAGE_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "js", "css", "map", "ts", "py"})


def _email(text: str, start: int, end: int, _config) -> float | None:
    local, _, domain = text[start:end].rpartition("@")
    tld = domain.rsplit(".", 1)[-1].lower()
    if not local or len(local) > 64 or tld in _IMAGE_TLDS or not 2 <= len(tld) <= 24:
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local or ".." in domain:
        return None
    if any(not label or label.startswith("-") or label.endswith("-") for label in domain.split(".")):
        return None
    return 1.0


def _card(text: str, start: int, end: int, _config) -> float | None:
    raw = text[start:end]
    digits = checks.digits_of(raw)
    seps = {c for c in raw if not c.isdigit()}
    if len(seps) > 1 or not 13 <= len(digits) <= 19 or len(set(digits)) <= 1 or digits in checks.TEST_CARD_NUMBERS:
        return None
    if not checks.luhn_ok(digits) or checks.card_brand(digits) is None:
        return None
    return 1.0


def _iban(text: str, start: int, end: int, _config) -> float | None:
    return 1.0 if checks.iban_ok(text[start:end]) else None


def _ssn(text: str, start: int, end: int, _config) -> float | None:
    start, end = _number_part(text, start, end)
    raw = text[start:end]
    seps = {c for c in raw if not c.isdigit()}
    if len(seps) > 1 or not checks.ssn_ok(raw):
        return None
    return 1.0


def _number_part(text: str, start: int, end: int) -> tuple[int, int]:
    """The number of a match that may begin with its context word ("Phone: +44 ...")."""
    s = start
    while s < end and not (text[s].isdigit() or text[s] == "+" or text[s] == "(" and text[s + 1: s + 2].isdigit()):
        s += 1
    return s, end


_SEPARATORS = " .-/"


def _phone_span(text: str, start: int, end: int) -> tuple[int, int, float] | None:
    """(start, end, factor) of the phone number in a match, or None.

    International numbers (``+``/``00``) may have swallowed a following digit group ("+44 20 7946
    0958 12 items"): trailing groups are dropped until the numbering plan accepts the rest. Other
    shapes must be whole: a digit group right before or after them means a longer number (IBAN,
    card, table row), and dates, times, versions and IP addresses are not phone numbers.
    """
    s, e = _number_part(text, start, end)
    if s >= e:
        return None
    if s == start and start > 0 and text[start - 1] in "+-./:":
        return None  # part of a longer number, a version, a date or an IP
    if s >= 2 and text[s - 1] in _SEPARATORS and text[s - 2].isdigit():
        return None  # continues a run of digit groups
    international = text[s] == "+"  # only a '+' number may lose a trailing group ('00' numbers must be whole)
    after_word = s > start  # the match began with a context word ("Phone: ...")
    while True:
        raw = text[s:e]
        after = text[e: e + 2]
        glued = after[:1].isdigit() or after[1:2].isdigit() and (
            after[:1] in "-/:" or not international and after[:1] in _SEPARATORS)
        if not glued and not _NOT_PHONE.fullmatch(raw):
            factor = checks.phone_factor(raw, after_context_word=after_word)
            if factor is not None:
                return s, e, factor
        if not international:
            return None
        cut = max(raw.rfind(c) for c in _SEPARATORS)  # drop the last digit group and try again
        if cut <= 0 or len(checks.digits_of(raw[:cut])) < 7:
            return None
        e = s + cut
        while e > s and text[e - 1] in _SEPARATORS:
            e -= 1


def _phone(text: str, start: int, end: int, _config) -> float | None:
    span = _phone_span(text, start, end)
    return None if span is None else span[2]


def _phone_locate(text: str, start: int, end: int) -> tuple[int, int]:
    """The validated number: only a '+' number can have been shortened (and it is cheap to re-check)."""
    s, e = _number_part(text, start, end)
    if s < e and text[s] == "+":
        span = _phone_span(text, start, end)
        if span is not None:
            return span[0], span[1]
    return s, e


def _ipv4(text: str, start: int, end: int, _config) -> float | None:
    if start > 0 and text[start - 1] in ".:" or end < len(text) and text[end] == "." and text[end + 1: end + 2].isdigit():
        return None  # longer dotted run (OIDs, 1.2.3.4.5)
    before = text[max(0, start - 12): start].lower().split()
    if start > 0 and text[start - 1] in "vV" or (before and before[-1].rstrip(":") in ("v", "ver", "version", "v.")):
        return None  # version numbers
    kind = checks.ipv4_kind(text[start:end])
    return None if kind is None else (1.0 if kind == "public" else 0.4)


def _ipv6(text: str, start: int, end: int, _config) -> float | None:
    kind = checks.ipv6_kind(text[start:end].rstrip(":"))
    return None if kind is None else (1.0 if kind == "public" else 0.4)


def _ip(text: str, start: int, end: int, config) -> float | None:
    return (_ipv6 if ":" in text[start:end] else _ipv4)(text, start, end, config)


EMAIL = _pii(
    "pii.email", "Email address",
    "RFC 5322-shaped addresses with a plausible domain (image names like icon@2x.png are ignored).",
    (Pattern("address", r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", 0.7,
             extend_left=_LOCAL_PART),),
    validate=_email, validation="local part and domain labels",
    filters=(PLACEHOLDER,), mask=masking.mask_email, severity=Severity.low,
)

PHONE = _pii(
    "pii.phone", "Phone number",
    "International numbers (+CC or 00CC, checked against the country's numbering plan with libphonenumber), "
    "NANP numbers in groups ((415) 555-2671, 1-415-555-2671, optional extension), national numbers with a "
    "trunk 0 in groups (020 7946 0958, 030 12345678) valid in a common numbering plan; bare digit runs and "
    "other groupings (7-15 digits) only right after a word such as 'phone', 'mobile', 'call me'.",
    (
        Pattern("international", r"(?:\+|\b00)[1-9]\d{0,2}(?:[ .-]{0,2}(?:\(\d{1,5}\)|\d{1,6})){1,7}", 0.65,
                extend=_PHONE_EXTENSION),
        Pattern("nanp", r"(?:\b1[ .-])?(?:\(\d{3}\)[ .-]?|\b\d{3}[ .-])\d{3}[ .-]\d{4}", 0.6, extend=_PHONE_EXTENSION),
        Pattern("national", r"(?:\(0\d{1,4}\)|\b0\d{1,4})(?:[ .-]?\d{2,4}(?:[ .-]\d{2,4}){1,3}|[ .-]\d{5,8})", 0.55,
                extend=_PHONE_EXTENSION),
        Pattern("after_context_word", PHONE_CONTEXT + r"\b\D{0,24}[+(]?\d[\d ().-]{5,24}\d\b",
                0.6, caseless=True, som=False),
    ),
    validate=_phone, validation="libphonenumber numbering plans, NANP rules, digit counts", locate=_phone_locate,
    context=("phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "contact", "reach", "dial", "desk"),
    context_boost=0.3, mask=masking.mask_digits, severity=Severity.low, priority=1,
)

CREDIT_CARD = _pii(
    "pii.credit_card", "Payment card number",
    "13–19 digit card numbers passing Luhn and belonging to a known issuer range.",
    (
        Pattern("grouped", r"\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{1,7}\b", 0.85),
        Pattern("amex", r"\b3[47]\d{2}[ -]?\d{6}[ -]?\d{5}\b", 0.85),
        Pattern("diners", r"\b3[0689]\d{2}[ -]?\d{6}[ -]?\d{4}\b", 0.85),
    ),
    validate=_card, validation="Luhn checksum and issuer range",
    context=("card", "visa", "mastercard", "amex", "credit", "debit", "cc", "payment"),
    context_boost=0.1, mask=masking.mask_digits, severity=Severity.high, priority=10,
)

IBAN = _pii(
    "pii.iban", "IBAN",
    "International bank account numbers with the country's length and a valid mod-97 checksum.",
    (Pattern("iban", r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b", 0.9),),
    validate=_iban, validation="country length and ISO 7064 mod-97",
    mask=masking.mask_alnum_tail, severity=Severity.high, priority=9,
)

US_SSN = _pii(
    "pii.us_ssn", "US Social Security number",
    "SSNs obeying SSA rules (area not 000/666/9xx, group not 00, serial not 0000); bare 9 digits only after 'SSN'.",
    (
        Pattern("dashed", r"\b\d{3}-\d{2}-\d{4}\b", 0.7),
        Pattern("spaced", r"\b\d{3} \d{2} \d{4}\b", 0.5),
        Pattern("after_context_word", r"(?:ssn|social\s+security(?:\s+number)?|taxpayer\s+id)\b\D{0,16}\d{9}\b", 0.7,
                caseless=True, som=False),
    ),
    validate=_ssn, validation="SSA area/group/serial rules", locate=_number_part,
    context=("ssn", "social security", "social sec", "taxpayer", "tin"),
    context_boost=0.3, mask=masking.mask_digits, severity=Severity.high, priority=8,
)

IP_ADDRESS = _pii(
    "pii.ip_address", "IP address",
    "Valid public IPv4/IPv6 addresses; private, loopback and link-local ones score below the threshold.",
    (
        Pattern("ipv4", r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", 0.6),
        Pattern("ipv6", r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:", 0.6, extend_left=_HEX_COLON, extend=_IPV6_TAIL),
        Pattern("ipv6_compressed", r"::[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}\b", 0.5),
    ),
    validate=_ip,
    validation="octet ranges and address class",
    context=("ip", "address", "host", "server", "client"),
    context_boost=0.1, mask=masking.mask_ip, severity=Severity.info, priority=0,
)

DETECTORS = (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS)
