"""Credentials in prompts, outputs, tool arguments and tool results (category ``secret_leak``).

One detector per credential family, each a declaration. Vendor formats with a fixed prefix score
high on shape alone; formats that need more (JWT structure, GitHub CRC32, a real key body after a
PEM header, a password that is not a variable reference) are confirmed by a hook on the matched span.
Credentials without a prefix of their own, recognised by the key they are assigned to (IBM, SoftLayer,
Cloudant, Authorization headers, random values of key/token-named settings), live in ``secret_keyed``.
"""

from __future__ import annotations

import re

from detectors import checks, masking
from detectors.filters import LOW_DIVERSITY, PLACEHOLDER, REPEATED_UNIT
from detectors.secret_template import TEMPLATE
from detectors.spec import Detector, Filter, Pattern
from schemas.finding import Category, Severity

TAGS = ("atlas:AML.T0057", "atlas:AML.T0055", "owasp-llm:LLM02")
PLACEMENT_TAGS = {
    "tool_args": ("atlas:AML.T0086", "owasp-asi:ASI02"),
    "indirect": ("atlas:AML.T0098",),
    "output": ("owasp-llm:LLM05",),
}
FP = (PLACEHOLDER, LOW_DIVERSITY, REPEATED_UNIT)


def secret_detector(id: str, title: str, description: str, patterns: tuple[Pattern, ...], **kw) -> Detector:
    kw.setdefault("severity", Severity.high)
    kw.setdefault("filters", FP)
    kw.setdefault("mask", masking.mask_secret)
    kw.setdefault("overlap_group", "sensitive")
    kw.setdefault("priority", 20)
    kw.setdefault("placeholder_as", TEMPLATE)
    return Detector(
        id=id, category=Category.secret_leak, title=title, description=description, patterns=patterns,
        tags=TAGS, placement_tags=PLACEMENT_TAGS, **kw,
    )


# -- hooks -------------------------------------------------------------------------------------


def _length_between(low: int, high: int, prefix_end: str = "-"):
    """Validator: the token body after the prefix has an allowed length (hyperscan cannot bound it)."""

    def check(text: str, start: int, end: int, _config) -> float | None:
        body = text[start:end].split(prefix_end, 1)[-1] if prefix_end else text[start:end]
        return 1.0 if low <= len(body) <= high else None

    return check


def _gitlab(text: str, start: int, end: int, _config) -> float | None:
    token = text[start:end]
    if token.startswith("GR1348941"):
        body = token[9:]
        return 1.0 if 20 <= len(body) <= 50 else None
    prefix, _, body = token.partition("-")
    if prefix == "glcbt" and re.match(r"[0-9a-fA-F]{2}_", body):
        body = body[3:]
    bounds = {"glimt": (25, 25), "glptt": (40, 40), "gloas": (64, 64), "glagent": (50, 1024)}
    low, high = bounds.get(prefix, (20, 50))
    return 1.0 if low <= len(body) <= high else None


def _github(text: str, start: int, end: int, _config) -> float | None:
    """CRC32 checksum confirms a real token; a well-shaped token without it is still reported."""
    return 1.0 if checks.github_checksum_ok(text[start:end]) else 0.9


def _jwt(text: str, start: int, end: int, _config) -> float | None:
    parts = text[start:end].rstrip(".").split(".")
    header = checks.b64url_json(parts[0])
    if not isinstance(header, dict) or not ({"alg", "typ", "kid", "enc"} & header.keys()):
        return None
    payload = checks.b64url_json(parts[1]) if len(parts) > 1 else None
    return 1.0 if isinstance(payload, dict) else None


def _private_key(text: str, start: int, end: int, _config) -> float | None:
    """A PEM header followed by key material is a key; a header alone (docs, prose) barely counts."""
    body = text[end: end + 200]
    run = 0
    for ch in body:
        if ch.isalnum() or ch in "+/=":
            run += 1
            if run >= 40:
                return 1.0
        elif ch not in "\r\n \t":
            run = 0
    return 0.4


def _private_key_body(text: str, start: int, end: int) -> tuple[int, int]:
    stop = text.find("-----END", end, end + 16384)
    return (end, stop if stop != -1 else min(len(text), end + 4096))


def _after_scheme(text: str, start: int, end: int) -> tuple[int, int]:
    """The password of ``scheme://user:password@``."""
    slashes = text.index("//", start, end) + 2
    colon = text.index(":", slashes, end)
    return colon + 1, end - 1


_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
NOT_SECRETS = frozenset({
    "none", "null", "nil", "true", "false", "undefined", "required", "optional", "string", "str",
    "password", "secret", "token", "empty", "hidden", "masked", "redacted", "unknown", "default",
    "pass", "passwd", "notset", "n/a", "todo", "tbd", "changeme", "env", "value", "your",
})
_REFERENCE = re.compile(r"^(?:[$%&@{<\[(]|(?:os|process|env|self|this|config|settings|args|request|params)\.)")
_IDENTIFIER_PATH = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+$")
_SEPARATOR = re.compile(r"\s*(?::=|=>|[:=])\s*")
_WORDS = re.compile(r"[a-z]+(?:[-_.][a-z]+)+")  # kebab/snake-case names: db-credentials, shorter-version


def _assignment_value(text: str, start: int, end: int) -> tuple[int, int]:
    sep = _SEPARATOR.search(text, start, end)
    s = sep.end() if sep else start
    while s < end and text[s] in "\"'":
        s += 1
    e = end
    while e > s and text[e - 1] in "\"')]}>.":
        e -= 1
    return s, e


def _assignment(text: str, start: int, end: int, _config) -> float | None:
    """A literal value, not a reference or a word; stronger when it looks random (entropy, classes)."""
    s, e = _assignment_value(text, start, end)
    value = text[s:e]
    if len(value) < 6 or value.lower() in NOT_SECRETS or _REFERENCE.match(value) or _IDENTIFIER_PATH.match(value):
        return None
    if "(" in value or value.endswith(("_", "-")) or value.startswith(("http://", "https://")):
        return None
    if _WORDS.fullmatch(value):
        return 0.5  # lower-case words joined by separators name something (a k8s secret, a setting), like one word
    entropy, classes = checks.shannon_entropy(value), checks.char_classes(value)
    if len(value) >= 8 and classes >= 3 and entropy >= 3.0:
        return 1.0
    if classes >= 2 and entropy >= 2.5:
        return 0.8
    return 0.5


def _key40(text: str, start: int, end: int) -> tuple[int, int]:
    """The key at the end of an AWS secret assignment (the pattern may have taken one delimiter)."""
    e = end
    if e > start and not (text[e - 1].isalnum() or text[e - 1] in "/+"):
        e -= 1
    s = e
    while s > start and (text[s - 1].isalnum() or text[s - 1] in "/+"):
        s -= 1
    return s, e


def _key40_ok(text: str, start: int, end: int, _config) -> float | None:
    s, e = _key40(text, start, end)
    return 1.0 if e - s == 40 else None


def _after_equals(text: str, start: int, end: int) -> tuple[int, int]:
    """``...=value`` → value (npmrc ``_authToken=``, ``AccountKey=``); otherwise the whole match."""
    idx = text.find("=", start, end)
    if idx == -1 or idx > end - 8:
        return start, end
    s = idx + 1
    while s < end and text[s] == " ":
        s += 1
    return s, end


def _google_key(text: str, start: int, end: int) -> tuple[int, int]:
    return start, min(end, start + 39)


PLACEHOLDER_WORD = Filter("placeholder_word", lambda text, s, e: text[s:e].lower() in NOT_SECRETS, 0.0, template=True)
"""A value that is a word standing for one (``user:password@``, ``token: none``)."""


def _artifactory(text: str, start: int, end: int, _config) -> float | None:
    """Reference tokens decode to ``reftkn:01:``; encrypted passwords (after a JFrog-named key) look random."""
    token = text[start:end]
    if token.startswith("cmVmdGtu"):
        raw = checks.decoded_bytes(token)
        return 1.0 if raw is not None and raw.startswith(b"reftkn:01:") else None
    if token.startswith("AKCp"):
        return 1.0
    s, e = _trailing_token(text, start, end)
    value = text[s:e]
    return 1.0 if value.startswith("AP") and checks.char_classes(value) >= 2 else None


_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def _trailing_token(text: str, start: int, end: int) -> tuple[int, int]:
    """The alphanumeric run at the end of the match (the credential after its key name)."""
    s = end
    while s > start and text[s - 1] in _TOKEN_CHARS:
        s -= 1
    return s, end


def _key_material(value: str) -> str:
    return f"[{len(value)} characters of key material]"


# -- declarations ------------------------------------------------------------------------------

AWS_ACCESS_KEY = secret_detector(
    "secret.aws_access_key", "AWS access key ID",
    "AWS access key IDs (AKIA long-term, ASIA temporary, ...): half a credential, enough to target an account.",
    (Pattern("key_id", r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b", 0.85),),
    context=("aws", "access_key", "access key", "key_id", "iam"),
    context_boost=0.1,
)

AWS_SECRET_KEY = secret_detector(
    "secret.aws_secret_key", "AWS secret access key",
    "A 40-character AWS secret access key assigned to an AWS-named setting.",
    (Pattern(
        "assigned",
        r"aws[\w.-]*(?:secret|access|key)[\w.-]*[\"']?\s*(?::=|=>|[:=])\s*[\"']?[A-Za-z0-9/+]{40}(?:[^A-Za-z0-9/+]|$)",
        0.9, caseless=True,
    ),),
    locate=_key40,
    validate=_key40_ok, validation="exactly 40 key characters",
    severity=Severity.critical,
    priority=30,
)

GITHUB_TOKEN = secret_detector(
    "secret.github_token", "GitHub token",
    "GitHub personal access, OAuth, app and refresh tokens (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_).",
    (
        Pattern("classic", r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b", 0.9),
        Pattern("fine_grained", r"\bgithub_pat_[A-Za-z0-9_]{82}\b", 0.95),
    ),
    validate=_github, validation="CRC32 checksum of the token",
)

GITLAB_TOKEN = secret_detector(
    "secret.gitlab_token", "GitLab token",
    "GitLab personal/deploy/runner/CI/trigger/agent/OAuth tokens with their documented prefixes and lengths.",
    (
        Pattern("prefixed", r"\b(?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[A-Za-z0-9_-]{20,}", 0.9),
        Pattern("runner_registration", r"\bGR1348941[A-Za-z0-9_-]{20,}", 0.9),
    ),
    validate=_gitlab, validation="documented body length",
)

SLACK_TOKEN = secret_detector(
    "secret.slack_token", "Slack token or webhook",
    "Slack bot/user/app tokens (xox?-) and incoming-webhook URLs.",
    (
        Pattern("token", r"\bxox[abposre]-[0-9A-Za-z-]{10,}", 0.9),
        Pattern("app_token", r"\bxapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+", 0.9),
        Pattern("webhook", r"https://hooks\.slack\.com/(?:services|workflows)/T[A-Z0-9]+/[AB][A-Z0-9]+/[A-Za-z0-9]{16,}", 0.9),
    ),
)

STRIPE_KEY = secret_detector(
    "secret.stripe_key", "Stripe secret key",
    "Stripe secret and restricted keys; live keys move money, test keys are reported lower.",
    (
        Pattern("live", r"\b(?:sk|rk)_live_[0-9A-Za-z]{20,}\b", 0.95),
        Pattern("test", r"\b(?:sk|rk)_test_[0-9A-Za-z]{20,}\b", 0.6),
    ),
    severity=Severity.critical,
)

OPENAI_KEY = secret_detector(
    "secret.openai_key", "OpenAI API key",
    "OpenAI API keys: the T3BlbkFJ marker ('OpenAI' in base64) or project/service-account/admin prefixes.",
    (
        Pattern("marker", r"\bsk-(?:[A-Za-z0-9_-]+-)?[A-Za-z0-9_-]{16,}T3BlbkFJ[A-Za-z0-9_-]{16,}", 0.97),
        Pattern("project", r"\bsk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{40,}", 0.85),
        Pattern("legacy", r"\bsk-[A-Za-z0-9]{48}\b", 0.75),
    ),
    context=("openai", "api_key", "api key", "bearer"),
    context_boost=0.1,
    priority=25,
)

ANTHROPIC_KEY = secret_detector(
    "secret.anthropic_key", "Anthropic API key",
    "Anthropic API and admin keys (sk-ant-api03-..., sk-ant-admin01-...).",
    (Pattern("api", r"\bsk-ant-(?:api|admin|sid|oat|ort)\d\d-[A-Za-z0-9_-]{32,}", 0.97),),
    priority=26,
)

AI_PROVIDER_KEY = secret_detector(
    "secret.ai_provider_key", "AI provider API key",
    "Keys of other model providers and hubs: Hugging Face, Groq, xAI, Replicate, Perplexity.",
    (
        Pattern("huggingface", r"\bhf_[A-Za-z]{34,}\b", 0.85),
        Pattern("groq", r"\bgsk_[A-Za-z0-9]{48,}\b", 0.9),
        Pattern("xai", r"\bxai-[A-Za-z0-9]{70,}\b", 0.9),
        Pattern("replicate", r"\br8_[A-Za-z0-9]{37}\b", 0.85),
        Pattern("perplexity", r"\bpplx-[A-Za-z0-9]{48}\b", 0.9),
    ),
)

GOOGLE_API_KEY = secret_detector(
    "secret.google_api_key", "Google API key",
    "Google Cloud / Gemini API keys (AIza + 35 characters).",
    (Pattern("aiza", r"\bAIza[0-9A-Za-z_-]{35}(?:[^0-9A-Za-z_-]|$)", 0.9),),
    locate=_google_key,
)

PRIVATE_KEY = secret_detector(
    "secret.private_key", "Private key block",
    "PEM/OpenSSH/PGP private key blocks; a header followed by key material.",
    (Pattern("pem", r"-----BEGIN[ A-Z0-9]*PRIVATE KEY(?: BLOCK)?-----", 0.95),),
    validate=_private_key, validation="key material follows the header",
    locate=_private_key_body,
    mask=_key_material,
    filters=(),
    severity=Severity.critical,
)

JWT = secret_detector(
    "secret.jwt", "JSON Web Token",
    "Bearer tokens in JWT form: header and payload must decode to JSON objects.",
    (Pattern("jws", r"\beyJ[A-Za-z0-9_=-]{10,}\.[A-Za-z0-9_=-]{4,}\.?[A-Za-z0-9_.+/=-]*", 0.8),),
    validate=_jwt, validation="header and payload decode to JSON",
    filters=(),
    severity=Severity.medium,
)

CONNECTION_STRING = secret_detector(
    "secret.connection_string", "Credentials in a URL or connection string",
    "user:password@ in database/broker/HTTP URLs (postgres://, mongodb+srv://, https://...).",
    (
        Pattern("database", r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|clickhouse|cockroachdb|jdbc:[a-z]+)://[^\s:@/\"'<>]+:[^\s@/\"'<>]+@", 0.9),
        Pattern("url", r"\b(?:https?|ftps?|sftp|smtps?|ldaps?|ssh)://[^\s:@/\"'<>]+:[^\s@/\"'<>]+@", 0.8),
    ),
    locate=_after_scheme,
    filters=(*FP, PLACEHOLDER_WORD),
    priority=15,
)

ARTIFACTORY = secret_detector(
    "secret.artifactory", "JFrog Artifactory credential",
    "Artifactory API keys (AKCp, 73 characters), reference/identity tokens (base64 of 'reftkn:01:', 64 "
    "characters) and encrypted passwords (AP + version character) written after an Artifactory/JFrog key name.",
    (
        Pattern("api_key", r"\bAKCp[A-Za-z0-9]{69}\b", 0.9),
        Pattern("reference_token", r"\bcmVmdGtuOjAx[A-Za-z0-9]{52}\b", 0.9),
        Pattern("encrypted_password",
                r"(?i:artifactory|jfrog)[^\s\"'<>]*[\"']?(?:\s*(?::=|=>|[:=])\s*|\s+)[\"']?AP[0-9A-F][A-Za-z0-9]{8,}\b", 0.8),
    ),
    validate=_artifactory, validation="reference token decodes to reftkn:01:, password mixes character classes",
    locate=_trailing_token,
)

AZURE_STORAGE_KEY = secret_detector(
    "secret.azure_storage_key", "Azure storage account key",
    "AccountKey=<88 base64 characters> in Azure storage connection strings.",
    (Pattern("account_key", r"AccountKey=[A-Za-z0-9+/]{86}==", 0.95),),
    locate=_after_equals,
)

SAAS_TOKEN = secret_detector(
    "secret.saas_token", "SaaS API token",
    "Tokens of common SaaS and package registries: SendGrid, Twilio, Mailchimp, npm, PyPI, Telegram, Discord, Square.",
    (
        Pattern("sendgrid", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\b", 0.95),
        Pattern("twilio", r"\b(?:AC|SK)[a-f0-9]{32}\b", 0.7),
        Pattern("mailchimp", r"\b[0-9a-f]{32}-us[0-9]{1,2}\b", 0.85),
        Pattern("npm", r"\bnpm_[A-Za-z0-9]{36}\b", 0.9),
        Pattern("npmrc", r"//[\w.-]+/:_authToken=\s*[A-Za-z0-9_-]{8,}", 0.85),
        Pattern("pypi", r"\bpypi-AgE[A-Za-z0-9]{10,}[A-Za-z0-9_-]{50,}", 0.95),
        Pattern("telegram", r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b", 0.85),
        Pattern("discord", r"\b[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}\b", 0.8),
        Pattern("square_access_token", r"\b(?:sq0atp-[A-Za-z0-9_-]{22}|EAAA[A-Za-z0-9_-]{60})\b", 0.85),
        Pattern("square_oauth_secret", r"\bsq0csp-[A-Za-z0-9_-]{43}\b", 0.9),
    ),
    locate=_after_equals,
)

GENERIC_ASSIGNMENT = secret_detector(
    "secret.generic_assignment", "Password or secret assigned in text",
    "password=/secret:/api_key= followed by a literal value that is not a variable, placeholder or word.",
    (Pattern(
        "assignment",
        r"(?:password|passwd|passphrase|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|private[_-]?key|client[_-]?secret)[\"']?\s*(?::=|=>|[:=])\s*[\"']?[^\s\"'`,;]{6,}",
        0.75, caseless=True, som=False, extend_left=_KEY_CHARS,
    ),),
    validate=_assignment, validation="literal value with entropy and character-class checks",
    locate=_assignment_value,
    placeholder_as=None,  # "password = your_password_here" in every tutorial: no provider to name
    severity=Severity.medium,
    min_score=0.55,
    priority=5,
)

DETECTORS = (
    AWS_ACCESS_KEY, AWS_SECRET_KEY, GITHUB_TOKEN, GITLAB_TOKEN, SLACK_TOKEN, STRIPE_KEY, OPENAI_KEY,
    ANTHROPIC_KEY, AI_PROVIDER_KEY, GOOGLE_API_KEY, PRIVATE_KEY, JWT, CONNECTION_STRING, ARTIFACTORY,
    AZURE_STORAGE_KEY, SAAS_TOKEN, GENERIC_ASSIGNMENT,
)
