"""Secret detectors: (text, placement, expected detectors) tables with positives and hard negatives.

Secret-shaped strings are assembled from pieces ("sk_" "live_...") so repository secret scanners do
not flag this file; all values are fake.
"""

from __future__ import annotations

import pytest

from detectors import checks
from tests.test_detectors_support import detected, scanner  # noqa: F401

GH_BODY = "Zp3kQ8mW2xR7tY1uV4bN6cL9dF0gH5jK2aS8"  # 36 chars, checksum invalid

CASES = [
    # --- AWS
    ("export AWS_ACCESS_KEY_ID=AKIA" "QWERTYUIOPASDFG7", "output", {"secret.aws_access_key"}),
    ("temporary creds ASIA" "Y3K9PLMNBV2XCZ4Q in the log", "indirect", {"secret.aws_access_key"}),
    ("the docs use AKIA" "IOSFODNN7EXAMPLE as the access key", "output", set()),  # AWS's documented example
    ("akia" "qwertyuiopasdfg7 lower-case is not a key", "output", set()),
    ("AKIA" "ZZZ is too short", "output", set()),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" "z8Q2hL3mNq", "output", {"secret.aws_secret_key"}),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" "EXAMPLEKEY", "output", set()),  # docs example
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" "z8Q2hL3mNqX", "output", set()),  # 41 chars
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
    ("https://username:password@yelp.com", "output", set()),  # the literal word 'password'
    ("postgres://user:<password>@localhost/db", "output", set()),
    ("postgres://user:${DB_PASSWORD}@localhost/db", "output", set()),
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


@pytest.mark.parametrize(("text", "placement", "expected"), CASES, ids=[f"s{i}" for i in range(len(CASES))])
def test_secret_table(scanner, text: str, placement: str, expected: set[str]) -> None:  # noqa: F811
    got = {d for d in detected(scanner, text, placement) if d.startswith("secret.")}
    assert got == expected


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
