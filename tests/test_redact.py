"""Redaction before storage: every text field, nested arguments, whole fields, originals untouched."""

from __future__ import annotations

import re

import pytest

from detectors.behavior.testing import ev
from detectors.redact import FAILED, Redactor, blank_texts
from streams.sinks.rows import event_row

AWS = "AKIA2E3MPLQ7TRXV4ZB6"
GITHUB = "ghp_" + "x7Kq2mP9vL4nR8sT1wY6zB3cD5fG0hJ2kM4q"
EMAIL = "jane.doe@acmecorp.com"


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor()


def test_every_text_field_is_redacted_and_the_original_is_untouched(redactor: Redactor) -> None:
    call = ev("tool_call", tool="deploy", call_id="c1", text=f"aws_access_key_id = {AWS} and token {GITHUB}",
              args={"env": {"AWS_ACCESS_KEY_ID": AWS}, "steps": [{"run": f"git push https://{GITHUB}@github.com/x"}],
                    "count": 3})
    result = ev("tool_result", tool="deploy", call_id="c1", text="done")
    result.tool.error = f"auth failed for {AWS}"
    docs = ev("retrieval", documents=[{"id": "d1", "text": "nothing here"}, {"id": "d2", "text": f"GITHUB_TOKEN={GITHUB}"}])
    (stored, n), (stored_result, m), (stored_docs, k) = (redactor.redact(e) for e in (call, result, docs))
    assert (n, m, k) == (4, 1, 1)
    for copy in (stored, stored_result, stored_docs):
        blob = copy.model_dump_json()
        assert AWS not in blob and GITHUB not in blob
    assert stored.content.text.count("[REDACTED ") == 2
    assert stored.tool.arguments["env"]["AWS_ACCESS_KEY_ID"].startswith("[REDACTED secret.aws_access_key sha256:")
    assert stored.tool.arguments["steps"][0]["run"].startswith("git push https://[REDACTED ")
    assert stored.tool.arguments["count"] == 3
    assert stored_docs.retrieval.documents[0].text == "nothing here"
    assert "[REDACTED " in stored_docs.retrieval.documents[1].text and "[REDACTED " in stored_result.tool.error
    # the detectors keep seeing the original
    assert AWS in call.content.text and call.tool.arguments["env"]["AWS_ACCESS_KEY_ID"] == AWS
    # and the row the sink writes is built from the redacted copy
    assert AWS not in repr(event_row(stored, 0, 0)) and AWS in repr(event_row(call, 0, 0))


def test_placeholders_stay_readable_and_a_long_token_is_redacted_whole(redactor: Redactor) -> None:
    import base64
    import json

    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")  # noqa: E731
    jwt = f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': 'svc', 'scp': ['read'] * 150})}.{'Q' * 86}"
    assert len(jwt) > 1000  # an ordinary OAuth access token; it used to be cut at the match cap and kept
    placeholder = "AKIA" "IOSFODNN7EXAMPLE"
    stored, n = redactor.redact(ev("completion", text=f"docs use {placeholder}; your token: {jwt} (expires 1h)"))
    assert n == 1 and placeholder in stored.content.text
    assert jwt[:20] not in stored.content.text and jwt[-20:] not in stored.content.text
    assert re.search(r"your token: \[REDACTED secret\.jwt sha256:[0-9a-f]{12}\] \(expires 1h\)$", stored.content.text)


def test_same_value_gets_the_same_marker_so_leaks_can_be_correlated(redactor: Redactor) -> None:
    a, _ = redactor.redact(ev("completion", text=f"key {AWS}"))
    b, _ = redactor.redact(ev("prompt", role="user", text=f"is {AWS} still valid?"))
    marker = a.content.text.split("key ", 1)[1]
    assert marker in b.content.text


def test_nothing_found_returns_the_same_object_and_redaction_is_idempotent(redactor: Redactor) -> None:
    plain = ev("completion", text="the weather is fine")
    assert redactor.redact(plain) == (plain, 0)
    once, n = redactor.redact(ev("completion", text=f"aws_access_key_id={AWS}"))
    twice, m = redactor.redact(once)
    assert n == 1 and m == 0 and twice is once


def test_the_whole_field_is_read_not_only_head_and_tail(redactor: Redactor) -> None:
    filler = "lorem ipsum dolor sit amet " * 8_000  # ~216 KB a side: detection reads 64 KB of head and tail
    stored, n = redactor.redact(ev("tool_result", text=filler + f" aws_access_key_id={AWS} " + filler))
    assert n == 1 and AWS not in stored.content.text


def test_pii_only_when_asked() -> None:
    text = f"write to {EMAIL} please"
    assert Redactor.from_setting("secrets").redact(ev("completion", text=text))[1] == 0
    stored, n = Redactor.from_setting("secrets+pii").redact(ev("completion", text=text))
    assert n == 1 and EMAIL not in stored.content.text and "[REDACTED pii.email" in stored.content.text
    assert Redactor.from_setting("off") is None
    with pytest.raises(ValueError, match="redact must be one of"):
        Redactor.from_setting("everything")


def test_blank_texts_keeps_nothing_readable() -> None:
    event = ev("tool_result", text=f"k {AWS}", tool="t", call_id="c", args={"a": AWS},
               documents=[{"id": "d", "text": AWS}])
    blank = blank_texts(event)
    assert AWS not in blank.model_dump_json()
    assert blank.content.text == FAILED and event.content.text != FAILED
