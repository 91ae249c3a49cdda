"""Credentials recognised by the setting they are assigned to (category ``secret_leak``).

Many providers issue keys with no prefix of their own — IBM Cloud IAM (44 characters), IBM Cloud Object
Storage HMAC secrets (48 hex), SoftLayer (64 hex), Cloudant (64 hex passwords, 24-letter API keys). A
value of that exact shape written after a key name of that provider (``ibm_api_key=``, ``SL_API_KEY:``,
``--softlayer-api-key``) is the credential; the same characters elsewhere are just a hash. The key name,
the separator and the value are one hyperscan pattern; hooks check the exact length (hyperscan cannot
bound a run) and drop variable references and placeholders.

Two generic detectors complete the set: ``Authorization: Basic/Bearer`` headers (curl commands and HTTP
traces in tool calls) and ``secret.high_entropy_assignment`` — any key/token/secret-named setting whose
value is random-looking by an entropy threshold relative to random strings of the same length
(``checks.looks_random``), for the providers no list names.
"""

from __future__ import annotations

import base64
import binascii
import re

from detectors import checks
from detectors.filters import LOW_DIVERSITY, PLACEHOLDER, REPEATED_UNIT
from detectors.secret_leak import NOT_SECRETS, secret_detector
from detectors.spec import Pattern
from schemas.finding import Severity

# key name → separator → optional quote; ``\s+`` admits command-line flags (``--apikey VALUE``)
SEP = r"[\"']?(?:\s*(?::=|=>|[:=])\s*|\s+)[\"']?"
END = r"(?:[^A-Za-z0-9_-]|$)"  # the value run stops here (an exact length, not a prefix of a longer run)
_VALUE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _value(text: str, start: int, end: int) -> tuple[int, int]:
    """The value at the end of a ``key SEP value END`` match (END may have taken one character)."""
    e = end
    if e > start and text[e - 1] not in _VALUE_CHARS:
        e -= 1
    s = e
    while s > start and text[s - 1] in _VALUE_CHARS:
        s -= 1
    return s, e


def _exact(*lengths: int):
    """Validator: the value has one of the published lengths."""

    def check(text: str, start: int, end: int, _config) -> float | None:
        s, e = _value(text, start, end)
        return 1.0 if e - s in lengths else None

    return check


def _vendor(id: str, title: str, description: str, patterns: tuple[Pattern, ...], lengths: tuple[int, ...], **kw):
    return secret_detector(
        id, title, description, patterns, validate=_exact(*lengths),
        validation="value has the provider's published length", locate=_value, **kw,
    )


IBM_CLOUD_IAM = _vendor(
    "secret.ibm_cloud_iam", "IBM Cloud IAM API key",
    "44-character IBM Cloud API keys assigned to an IBM/IAM/cloud-named key, IBM's 'apikey' credential "
    "field, or the --apikey flag of the ibmcloud CLI.",
    (Pattern(
        "assigned",
        r"(?:(?:ibm|iam|cloud)[\w-]*(?:api[_-]?key|key|pwd|password|pass|token)|\bapikey)" + SEP + r"[A-Za-z0-9_-]{44}" + END,
        0.85, caseless=True, som=False,  # a leading \b costs ~4 us/event with start-of-match tracking
    ),),
    (44,),
)

IBM_COS_HMAC = _vendor(
    "secret.ibm_cos_hmac", "IBM Cloud Object Storage HMAC secret",
    "48-hex-character HMAC secret access keys of IBM COS service credentials (cos_hmac_keys.secret_access_key).",
    (Pattern(
        "assigned",
        r"(?:secret[_-]?access[_-]?key|(?:cos|hmac)[\w-]*secret[_-]?key)" + SEP + r"[a-f0-9]{48}" + END,
        0.85, caseless=True,
    ),),
    (48,),
)

SOFTLAYER = _vendor(
    "secret.softlayer", "SoftLayer (IBM Classic Infrastructure) API key",
    "64-hex-character SoftLayer API keys after a SoftLayer-named key (SL_API_KEY, softlayer_api_key, "
    "--softlayer-api-key) or in the path of the SOAP API URL (api.softlayer.com/soap/v3/<key>).",
    (
        Pattern(
            "assigned",
            r"(?:softlayer|\bsl)[_-]?(?:api[_-]?)?(?:key|pass(?:word)?|pwd)" + SEP + r"[a-f0-9]{64}" + END,
            0.85, caseless=True, som=False,
        ),
        # the key in the path of the SOAP endpoint URL (WSDL links in SoftLayer client configurations)
        Pattern("soap_url", r"https?://api\.softlayer\.com/soap/v3(?:\.1)?/[a-f0-9]{64}" + END, 0.85, caseless=True),
    ),
    (64,),
)

CLOUDANT = _vendor(
    "secret.cloudant", "IBM Cloudant credential",
    "Cloudant account passwords (64 hex) and legacy API keys (24 letters) after a Cloudant-named key; "
    "Cloudant URLs with user:password@ are reported by secret.connection_string.",
    (Pattern(
        "assigned",
        r"cloudant[\w-]*(?:password|pass|pwd|pw|key|secret|token)" + SEP + r"(?:[a-f0-9]{64}|[a-z]{24})" + END,
        0.85, caseless=True,
    ),),
    (64, 24),
)


# -- Authorization headers -----------------------------------------------------------------------

_HEADER_VALUE = re.compile(r"(?i)(basic|bearer)\s+")


def _header_value(text: str, start: int, end: int) -> tuple[int, int]:
    m = _HEADER_VALUE.search(text, start, end)
    return (m.end(), end) if m else (start, end)


def _authorization(text: str, start: int, end: int, _config) -> float | None:
    """Basic: base64 of ``user:password`` with a literal password. Bearer: a random-looking token."""
    m = _HEADER_VALUE.search(text, start, end)
    if m is None:
        return None
    value = text[m.end():end]
    if m.group(1).lower() == "bearer":
        return 1.0 if len(value) >= 16 and checks.looks_random(value) else None
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = raw.partition(":")
    if not sep or not password or not raw.isprintable() or password.lower() in NOT_SECRETS:
        return None
    return 1.0


HTTP_AUTHORIZATION = secret_detector(
    "secret.http_authorization", "Credentials in an HTTP Authorization header",
    "Authorization: Basic <base64 of user:password> and Authorization: Bearer <random-looking token>, as "
    "written in curl commands, HTTP client code and request traces.",
    (
        Pattern("basic", r"authorization[\"']?\s*[:=]\s*[\"']?basic\s+[A-Za-z0-9+/]{6,}={0,2}", 0.85, caseless=True),
        Pattern("bearer", r"authorization[\"']?\s*[:=]\s*[\"']?bearer\s+[A-Za-z0-9._~+/-]{16,}=*", 0.8, caseless=True),
    ),
    validate=_authorization, validation="Basic decodes to user:password; Bearer token passes the entropy test",
    locate=_header_value,
    priority=18,  # a JWT bearer token is reported as the JWT
)


# -- generic: key/token/secret-named settings with random-looking values --------------------------

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_NAME_END = re.compile(r"[\"']?\s*(?::=|=>|[:=])")
_NAME_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# A name part that names a credential (the last word of API_KEY, authToken, db_pass, clientSecret ...).
CREDENTIAL_WORDS = frozenset({
    "key", "apikey", "token", "secret", "credential", "credentials", "pass", "passwd", "password", "pwd",
    "pw", "auth", "authkey", "accesskey", "secretkey", "privatekey", "signingkey", "passphrase",
})
# Parts that make the value something else: a key *id*, a public key, a URL, a file, a name, a size ...
NOT_CREDENTIAL_WORDS = frozenset({
    "id", "ids", "public", "pub", "url", "uri", "endpoint", "path", "file", "dir", "name", "type", "len",
    "length", "size", "count", "format", "version", "prefix", "field", "header", "expires", "expiry", "ttl",
    "hash", "digest", "checksum", "fingerprint", "algorithm", "alg", "kind", "mode", "env", "region", "limit",
    "max", "min", "timeout", "index", "idx", "column", "label", "pattern", "regex", "placeholder", "example",
    # keys of data structures, not of locks: cache/sort/partition/primary keys, S3 object keys ...
    "cache", "sort", "partition", "primary", "foreign", "idempotency", "dedup", "dedupe", "lookup", "object",
    "bucket", "row", "map",
})
_VALUE = re.compile(r"[A-Za-z0-9+/_=.~-]+")


def _assigned_name_value(text: str, start: int, end: int) -> tuple[str, int, int]:
    sep = _NAME_END.search(text, start, end)
    name_end = sep.start() if sep else start
    s = sep.end() if sep else start
    while s < end and text[s] in " \t\"'":
        s += 1
    m = _VALUE.match(text, s, end)
    e = m.end() if m else s
    return text[start:name_end], s, e


def _keyword_value(text: str, start: int, end: int) -> tuple[int, int]:
    _, s, e = _assigned_name_value(text, start, end)
    return s, e


def _high_entropy(text: str, start: int, end: int, _config) -> float | None:
    """The name ends in a credential word (and is not a key id, URL, ...); the value is 16–256 random
    characters that are not a reference, a dotted identifier or a path."""
    name, s, e = _assigned_name_value(text, start, end)
    parts = [p.lower() for p in _NAME_PARTS.findall(name.rsplit(".", 1)[-1])]
    if not parts or not any(p in CREDENTIAL_WORDS for p in parts) or any(p in NOT_CREDENTIAL_WORDS for p in parts):
        return None
    value = text[s:e].rstrip(".")
    if not 16 <= len(value) <= 256 or value.startswith(("/", "./", "~/")) or "//" in value or ".." in value:
        return None
    if value.count(".") >= 2 and not value.startswith("eyJ"):
        return None  # dotted names, versions, host names (JWTs have their own detector)
    return 1.0 if checks.looks_random(value) else None


HIGH_ENTROPY_ASSIGNMENT = secret_detector(
    "secret.high_entropy_assignment", "Random-looking value assigned to a key, token or secret",
    "KEY/TOKEN/SECRET/PASSWORD-named settings (ENCRYPTION_KEY=, authToken:, --api-key=) whose value is 16+ "
    "characters of letters and digits with at least 0.85 of the entropy of a random string of that "
    "length and alphabet (hex or base64). Catches providers without a documented prefix.",
    (Pattern(
        "assignment",
        r"(?:key|token|secret|credentials?|pass|passwd|password|pwd|pw|auth)[\w.-]*[\"']?\s*(?::=|=>|[:=])\s*[\"']?[A-Za-z0-9+/_=.~-]{16,}",
        0.7, caseless=True, som=False, extend_left=_KEY_CHARS,
    ),),
    validate=_high_entropy, validation="credential-named key; value entropy >= 0.85 x random of its length",
    locate=_keyword_value,
    filters=(PLACEHOLDER, LOW_DIVERSITY, REPEATED_UNIT),
    placeholder_as=None,  # a generic key name names no provider
    severity=Severity.medium,
    min_score=0.6,
    priority=4,  # below secret.generic_assignment (5) and every provider format
)

DETECTORS = (IBM_CLOUD_IAM, IBM_COS_HMAC, SOFTLAYER, CLOUDANT, HTTP_AUTHORIZATION, HIGH_ENTROPY_ASSIGNMENT)
