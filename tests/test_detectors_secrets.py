"""Secret detectors: (text, placement, expected detectors) tables with positives and hard negatives.

Secret-shaped strings are assembled from pieces ("sk_" "live_...") so repository secret scanners do
not flag this file; all values are fake.
"""

from __future__ import annotations

import base64
import random
import string

import pytest

from detectors import checks
from tests.test_detectors_support import detected, scanner  # noqa: F401

GH_BODY = "Zp3kQ8mW2xR7tY1uV4bN6cL9dF0gH5jK2aS8"  # 36 chars, checksum invalid

T = {"secret.template"}  # a placeholder in a provider's format: reported at info, never as a leak

CASES = [
    # --- AWS
    ("export AWS_ACCESS_KEY_ID=AKIA" "QWERTYUIOPASDFG7", "output", {"secret.aws_access_key"}),
    ("temporary creds ASIA" "Y3K9PLMNBV2XCZ4Q in the log", "indirect", {"secret.aws_access_key"}),
    ("the docs use AKIA" "IOSFODNN7EXAMPLE as the access key", "output", T),  # AWS's documented example
    ("akia" "qwertyuiopasdfg7 lower-case is not a key", "output", set()),
    ("AKIA" "ZZZ is too short", "output", set()),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" "z8Q2hL3mNq", "output", {"secret.aws_secret_key"}),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" "EXAMPLEKEY", "output", T),  # docs example
    # 41 chars: not an AWS key, but still a random value assigned to a secret-named setting
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" "z8Q2hL3mNqX", "output", {"secret.high_entropy_assignment"}),
    # --- GitHub / GitLab
    ("push with gh" "p_" + GH_BODY + " please", "tool_args", {"secret.github_token"}),
    ("fo" "o_" + GH_BODY, "tool_args", set()),
    ("gl" "pat-hellOworld380_testin", "direct", {"secret.gitlab_token"}),
    ("gl" "pat-hellOWorld380 testin", "direct", set()),  # space breaks the token (too short)
    ("gl" "ptt-Need5_T00-be-exactly-40-chars--ELse_fail", "direct", {"secret.gitlab_token"}),
    ("gl" "ptt-hellOworld380_testin", "direct", set()),  # trigger tokens are exactly 40 long
    # --- Slack / Stripe
    ("xox" "b-2837465019-9182736450-aB3dE5fG7hJ9kL1mN3pQ5rS7", "indirect", {"secret.slack_token"}),
    ("https://hooks.slack.com/" "services/T0123ABCD/B0456EFGH/aB3dE5fG7hJ9kL1mN3pQ5rS7", "tool_args", {"secret.slack_token"}),
    ("sk_" "live_ReTllpYQYfIZu2Jnf2lAPFjD", "output", {"secret.stripe_key"}),
    ("pk_" "live_j5krY8XTgIcDaHDb3YrsAfCl is a publishable key", "output", set()),
    ("sk_" "live_", "output", set()),
    # --- AI providers
    ("sk-proj-Xi8tdMjHV6pmbBbwilTe" "T3BlbkFJ3UDnpdEwNNm6wVBpYM0o", "direct", {"secret.openai_key"}),
    ("sk-ant-api03-" + "q7Wm2Zx9" * 12 + "AA", "output", {"secret.anthropic_key"}),
    ("the sk-ant- prefix identifies Anthropic keys", "output", set()),
    ("hf" "_" + "QwErTyUiOpAsDfGhJkLzXcVbNmQwErTyUi", "tool_args", {"secret.ai_provider_key"}),
    ("key=AI" "za" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "output", {"secret.google_api_key"}),
    # --- key material, tokens, connection strings
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n",
     "indirect", {"secret.private_key"}),
    ("Your key file starts with -----BEGIN RSA PRIVATE KEY----- and ends with the END line.", "output", set()),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
     "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "indirect", {"secret.jwt"}),
    ("bm90X3ZhbGlkX2pzb25fYXRfYWxs.bm90X3ZhbGlkX2pzb25fYXRfYWxs.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c", "indirect", set()),
    ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9 alone is only a header", "indirect", set()),
    ("mongodb+srv://svc:Vq7pL2nX9@cluster0.mongodb.net/app", "tool_args", {"secret.connection_string"}),
    ("https://username:password@yelp.com", "output", T),  # the literal word 'password'
    ("postgres://user:<password>@localhost/db", "output", set()),
    ("postgres://user:${DB_PASSWORD}@localhost/db", "output", T),
    ("https://url:8000 @something else", "output", set()),
    ("SG." "ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr", "output", {"secret.saas_token"}),
    ("//registry.npmjs.org/:_authToken=743b294a-cd03-11ec-9d64-0242ac120002", "tool_args", {"secret.saas_token"}),
    ("//registry.npmjs.org/:_authToken=${NPM_TOKEN}", "tool_args", set()),
    # --- generic assignments: literal, random-looking values only
    ("DB_PASSWORD=Vt7#kq2LmZ9x", "tool_args", {"secret.generic_assignment"}),
    ('{"api_key": "9fK2mQ7xL4pZ8wR1"}', "indirect", {"secret.generic_assignment"}),
    ("password = os.environ['DB_PASSWORD']", "output", set()),
    ("password: ********", "output", set()),
    ("api_key = YOUR_API_KEY_HERE", "output", set()),
    ("password = None", "output", set()),
    ("Your password: must be at least twelve characters long", "output", set()),
    ("secret: understanding the customer is the key", "output", set()),
    ("password = settings.database.password", "output", set()),
    ("How do I reset my password? I forgot it.", "direct", set()),
]




def fake(alphabet: str, n: int, seed: str) -> str:
    """A deterministic fake value of the provider's shape (no secret-shaped literal in this file)."""
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def fake_reference_token(seed: str) -> str:
    """64 base64 characters decoding to ``reftkn:01:...`` (the JFrog reference-token layout), alphanumeric."""
    rng = random.Random(seed)
    while True:
        tail = "".join(rng.choice(string.digits) for _ in range(10)) + ":" + fake(ALNUM, 27, str(rng.random()))
        token = base64.b64encode(f"reftkn:01:{tail}".encode()).decode()
        if token.isalnum() and len(token) == 64:
            return token


ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
IAM = fake(ALNUM + "_-", 44, "iam")
HEX48, HEX64, HEX32 = fake(HEX, 48, "cos"), fake(HEX, 64, "softlayer"), fake(HEX, 32, "twilio")
B64_88 = fake(ALNUM + "+/", 86, "azure") + "=="
BASIC = base64.b64encode(b"deploy:" + fake(ALNUM, 16, "basic").encode()).decode()
BEARER = fake(ALNUM, 40, "bearer")

# New formats (written from the providers' published layouts): positives, then hard negatives.
NEW_CASES = [
    # --- Artifactory: AKCp + 69 (73 chars), reference tokens, encrypted passwords after a JFrog key name
    ("X-JFrog-Art-Api: AK" "Cp" + fake(ALNUM, 69, "akcp"), "tool_args", {"secret.artifactory"}),
    ("access token " + fake_reference_token("ref"), "output", {"secret.artifactory"}),
    ("artifactory_password=AP" "B" + fake(ALNUM, 20, "ap"), "indirect", {"secret.artifactory"}),
    ("the AKCp prefix marks Artifactory API keys", "output", set()),
    ("AK" "Cp" + fake(ALNUM, 30, "short"), "output", set()),  # too short for an API key
    ("APACHEKAFKA2024 is not a password without a JFrog key name", "output", set()),
    ("artifactory password: AP" "6xxxxxxxxxx", "output", T),  # placeholder
    ("cmVmdGtu" + fake(ALNUM, 56, "notref"), "output", set()),  # does not decode to reftkn:01:
    # --- IBM Cloud IAM: 44 characters after an IBM/IAM/cloud key name, 'apikey' or --apikey
    ("ibmcloud login --apikey " + IAM + " -r eu-de", "tool_args", {"secret.ibm_cloud_iam"}),
    ('{"apikey": "' + IAM + '", "iam_apikey_name": "svc"}', "indirect", {"secret.ibm_cloud_iam"}),
    ("IBM_CLOUD_API_KEY=" + IAM, "output", {"secret.ibm_cloud_iam"}),
    ("IBM_CLOUD_API_KEY=$IBM_CLOUD_API_KEY", "output", set()),
    ("iam_api_key: " + "a" * 44, "output", T),  # one character repeated
    ("the ibmcloud --apikey flag takes a 44-character key", "output", set()),
    # --- IBM COS HMAC: 48 hex
    ('"cos_hmac_keys": {"access_key_id": "' + HEX32 + '", "secret_access_key": "' + HEX48 + '"}', "indirect",
     {"secret.ibm_cos_hmac"}),
    ("COS_HMAC_SECRET_ACCESS_KEY=" + HEX48, "output", {"secret.ibm_cos_hmac"}),
    ("sha384 digest of the build: " + HEX48, "output", set()),  # a hex digest with no key name
    # --- SoftLayer: 64 hex after SL_API_KEY / softlayer_api_key
    ("export SL_API_KEY=" + HEX64, "tool_args", {"secret.softlayer"}),
    ("softlayer_api_key: " + HEX64, "output", {"secret.softlayer"}),
    ("sha256: " + HEX64, "output", set()),  # digests are 64 hex too
    ("image digest sha256:" + HEX64, "indirect", set()),
    # --- Cloudant: 64-hex passwords, 24-letter legacy API keys
    ("cloudant_password: " + fake(HEX, 64, "cloudant"), "indirect", {"secret.cloudant"}),
    ("CLOUDANT_APIKEY=" + fake(string.ascii_lowercase, 24, "cl"), "output", {"secret.cloudant"}),
    ("cloudant_db = orders_2024", "output", set()),
    # --- Square
    ("SQUARE_ACCESS_TOKEN=EA" "AA" + fake(ALNUM + "_-", 60, "sq"), "output", {"secret.saas_token"}),
    ("sq0" "csp-" + fake(ALNUM + "_-", 43, "sqcsp"), "output", {"secret.saas_token"}),
    ("sq0" "idp-" + fake(ALNUM, 22, "sqidp") + " is an application id", "output", set()),
    # --- Authorization headers
    ('curl -H "Authorization: Basic ' + BASIC + '" https://api.acme.test/v1', "tool_args", {"secret.http_authorization"}),
    ("Authorization: Bearer " + BEARER, "indirect", {"secret.http_authorization"}),
    ("Authorization: Bearer $TOKEN", "tool_args", set()),
    ("Authorization: Bearer <token>", "tool_args", set()),
    ("Authorization: Bearer YOUR_ACCESS_TOKEN_HERE", "tool_args", set()),
    ("Authorization: Basic " + base64.b64encode(b"username:password").decode(), "output", set()),
    ("Authorization: Basic " + base64.b64encode(bytes(range(200, 218))).decode(), "output", set()),  # not user:pass
    # --- generic: key/token/secret-named setting with a random-looking value
    ("ENCRYPTION_KEY=" + fake(ALNUM, 32, "enc"), "output", {"secret.high_entropy_assignment"}),
    ('{"signingKey": "' + fake(ALNUM, 40, "sign") + '"}', "indirect", {"secret.high_entropy_assignment"}),
    ("SENTRY_DSN_TOKEN=" + HEX32, "tool_args", {"secret.high_entropy_assignment"}),
    ("TWILIO_AUTH_TOKEN=" + HEX32, "tool_args", {"secret.generic_assignment"}),  # the older detector wins the overlap
    ("AZURE_STORAGE_KEY=" + B64_88, "output", {"secret.high_entropy_assignment"}),
    ("public_key = " + fake(ALNUM, 40, "pub"), "output", set()),
    ("key_id = " + fake(ALNUM, 20, "kid"), "output", set()),
    ("idempotency_key = 550e8400-e29b-41d4-a716-446655440000", "tool_args", set()),
    ("token_url = https://auth.acme.test/oauth/token", "output", set()),
    ("sort_key = created_at_timestamp_desc", "output", set()),
    ("cache_key = user_profile_settings_v2", "output", set()),
    ("tokenizer = AutoTokenizer.from_pretrained(name)", "output", set()),
    ("secret_sauce_version = 2024.11.05-rc1", "output", set()),
    ("api_key_length = 32", "output", set()),
    ("CLOUD_APIKEY: insert_key_here", "output", set()),
    ("the commit is 3f786850e387550fdab836ed7e6dc881de23001b", "output", set()),
    # --- SoftLayer key in the SOAP endpoint path
    ("wsdl: https://api.softlayer.com/soap/v3.1/" + HEX64, "output", {"secret.softlayer"}),
    ("https://api.softlayer.com/soap/v3/SoftLayer_Account?wsdl", "output", set()),
    # --- placeholders in a provider's format: secret.template (info), never the provider's leak finding
    ("TWILIO_API_KEY=SK" + "x" * 32, "output", T),
    ("export OPENAI_API_KEY=sk-" + "x" * 20, "tool_args", T),
    ("X-JFrog-Art-Api: AKC" + "X" * 12, "output", T),
    ("softlayer_api_key: " + "abcd1234" * 8, "output", T),  # a repeated unit is no key
    ("artifactory_password=APB" + "ab12" * 5, "output", T),  # ... also after a key prefix
    ("token ghp_" + "aB3d" * 9, "output", T),
    ("AKIA" + "AB12" * 4, "output", T),
    ("wsdl: https://api.softlayer.com/soap/v3/" + "abcd1234" * 8, "output", T),
    ("postgres://app:changeme@db.internal:5432/orders", "output", T),
    ("SK" "xxxx is too short a filler", "output", set()),
    ("the ACXXXXXX code", "output", set()),
    # the generic detectors name no provider: their placeholders stay dropped
    ("password = your_password_here", "output", set()),
    ("DB_PASSWORD=abcd1234abcd1234abcd1234", "output", set()),
    # lower-case words joined by separators name something; they are not a password
    ("secret: db-credentials", "output", set()),
    ("ibm-cloud-pwd = shorter-version", "output", set()),
    ("password: hunter2-Ba7q!xz", "output", {"secret.generic_assignment"}),
]


@pytest.mark.parametrize(("text", "placement", "expected"), CASES + NEW_CASES,
                         ids=[f"s{i}" for i in range(len(CASES))] + [f"n{i}" for i in range(len(NEW_CASES))])
def test_secret_table(scanner, text: str, placement: str, expected: set[str]) -> None:  # noqa: F811
    got = {d for d in detected(scanner, text, placement) if d.startswith("secret.")}
    assert got == expected


def test_placeholder_finding_names_the_provider_and_is_info(scanner) -> None:  # noqa: F811
    from detectors.config import ScannerConfig
    from detectors.scan import ContentScanner
    from schemas.finding import Severity
    from tests.test_detectors_support import event

    ev = event("completion", text="Set AWS_ACCESS_KEY_ID=AKIA" "IOSFODNN7EXAMPLE first")
    [f] = scanner.scan(ev)
    assert (f.detector, f.rule_id, f.severity) == ("secret.template", "secret.template/aws_access_key.key_id", Severity.info)
    assert "secret.aws_access_key" in f.rationale and "would have let it pass" in f.rationale
    assert "IOSFODNN7EXAMPLE" not in f.model_dump_json()
    # without the template detector a placeholder is dropped (and counted), as before it existed
    without = ContentScanner(ScannerConfig(exclude=("secret.template",)))
    assert without.scan(ev) == [] and without.stats["filtered:placeholder"] == 1


def test_secret_in_tool_argument_key_context(scanner) -> None:  # noqa: F811
    """The key of a tool argument is context: {'password': '...'} is an assignment."""
    from tests.test_detectors_support import event

    findings = scanner.scan(event("tool_call", arguments={"db": {"password": "Vt7#kq2LmZ9x"}}))
    assert [f.detector for f in findings] == ["secret.generic_assignment"]
    ev = findings[0].evidence
    assert ev[0]["field"] == "tool.arguments.db.password"
    assert ev[1]["span"] == [0, 12]


def test_github_checksum() -> None:
    token = "ghp_" + "A" * 30
    # build a token with a valid CRC32 suffix the way GitHub does
    import zlib

    crc = zlib.crc32(token.encode())
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digits = ""
    while crc:
        crc, r = divmod(crc, 62)
        digits = alphabet[r] + digits
    good = token + digits.rjust(6, "0")
    assert checks.github_checksum_ok(good)
    assert not checks.github_checksum_ok(good[:-1] + ("A" if good[-1] != "A" else "B"))


def test_masked_evidence_shape(scanner) -> None:  # noqa: F811
    from tests.test_detectors_support import event

    key = "AKIA" "QWERTYUIOPASDFG7"
    [finding] = scanner.scan(event("completion", text=f"creds: {key}"))
    item = finding.evidence[1]
    assert item["masked"] == "AKIA************DFG7"
    assert len(item["sha256"]) == 64 and key not in finding.rationale
    assert "would have blocked the response" in finding.rationale
    assert finding.tags[:3] == ["atlas:AML.T0057", "atlas:AML.T0055", "owasp-llm:LLM02"]


@pytest.mark.parametrize(("value", "expected"), [
    (fake(ALNUM, 16, "r16"), True),
    (fake(ALNUM, 64, "r64"), True),
    (fake(HEX, 32, "h32"), True),
    ("743b294a-cd03-11ec-9d64-0242ac120002", True),  # hex in groups (UUID) is judged as hex
    ("getSecretValueFromVault", False),  # no digit
    ("my_super_secret_token_1", False),  # words
    ("abcd1234" * 8, False),  # a repeated unit: 3.0 bits against ~3.8 for random hex
    ("00000000-0000-0000-0000-000000000000", False),
    ("a1b2c3", False),  # too short to judge
])
def test_looks_random(value: str, expected: bool) -> None:
    assert checks.looks_random(value) is expected


def test_looks_random_keeps_random_keys() -> None:
    """Share of random keys kept (a guard on the threshold; 16-char base62 loses the ~6% without a digit)."""
    rng = random.Random(7)
    for alphabet, n, floor in ((ALNUM, 16, 0.92), (ALNUM, 24, 0.97), (ALNUM, 40, 0.99), (HEX, 16, 0.97), (HEX, 64, 0.99)):
        kept = sum(checks.looks_random("".join(rng.choice(alphabet) for _ in range(n))) for _ in range(2_000))
        assert kept / 2_000 >= floor, (alphabet[:3], n, kept)


def test_random_entropy_table() -> None:
    assert checks.random_entropy(16, hex_only=True) == pytest.approx(3.21, abs=0.02)
    assert checks.random_entropy(40, hex_only=False) == pytest.approx(4.76, abs=0.03)
    assert checks.random_entropy(10_000, hex_only=True) == checks.random_entropy(256, hex_only=True)


@pytest.mark.parametrize(("value", "expected"), [("abcabcabc", True), ("xxxxxxxx", True), ("abcd1234" * 8, True),
                                                 ("abcabcab", False), (fake(ALNUM, 24, "p"), False)])
def test_is_periodic(value: str, expected: bool) -> None:
    assert checks.is_periodic(value) is expected
