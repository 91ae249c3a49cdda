"""What the SDK emits always validates as Event v1, whatever the application passes (no broker needed)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from collectors.encode import bound_arguments, encode_event
from schemas import limits
from schemas.event import text_sha256
from schemas.parse import parse_event


def _event(**fields: Any) -> dict[str, Any]:
    base = {"schema": "aiwatch.event/1", "app": "app", "event_id": "e1", "ts": time.time(), "kind": "prompt",
            "source": {"collector": "sdk"}, "content": {"role": "user", "text": "hi"}}
    base.update(fields)
    return base


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["n"] = {}
        node = node["n"]
    return root


class Opaque:
    def __str__(self) -> str:
        return "opaque-object"


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no")


CASES: list[tuple[str, dict[str, Any]]] = [
    ("deep arguments", _event(kind="tool_call", tool={"name": "t", "arguments": _deep(100)})),
    ("many argument values", _event(kind="tool_call", tool={"name": "t", "arguments": {"xs": list(range(50_000))}})),
    ("odd argument types", _event(kind="tool_call", tool={"name": "t", "arguments": {
        1: {2, 3}, "t": (1, 2), "o": Opaque(), "h": Hostile(), "b": b"\xff\xfe", "big": 2**80, "nan": float("nan")}})),
    ("non-mapping arguments", _event(kind="tool_call", tool={"name": "t", "arguments": ["a", "b"]})),
    ("lone surrogate", _event(content={"role": "user", "text": "bad \ud800 text"})),
    ("unknown role", _event(content={"role": "narrator", "text": "x"})),
    ("non-str text", _event(content={"role": "user", "text": 12345})),
    ("long names and ids", _event(app="a" * 1000, agent="g" * 1000, session_id="s" * 500, event_id="e" * 500)),
    ("bad trace id", _event(trace_id="not-hex!", span_id="abc123")),
    ("labels of any type", _event(labels={"n": 1, "none": None, "long": "v" * 10_000,
                                          **{f"k{i}": "v" for i in range(100)}})),
    ("usage junk", _event(kind="completion", usage={"input_tokens": -1, "output_tokens": 2.7,
                                                    "cost_usd": "cheap", "latency_ms": float("nan")})),
    ("many documents", _event(kind="retrieval", content=None, retrieval={
        "source": "kb", "documents": ["d"] * 1000 + [{"id": 7, "score": "high", "text": b"bytes"}]})),
    ("huge documents", _event(kind="retrieval", content=None, retrieval={
        "source": "kb", "documents": [{"id": str(i), "text": "w" * 400_000} for i in range(8)]})),
    ("huge arguments", _event(kind="tool_call", tool={"name": "t", "arguments": {
        f"a{i}": "x" * 400_000 for i in range(6)}})),
    ("bad status and result size", _event(kind="tool_result", tool={"name": "t", "status": "maybe",
                                                                    "result_bytes": -5})),
    ("roles as a string", _event(actor={"user_id": 42, "roles": "admin"})),
]


@pytest.mark.parametrize(("case", "event"), CASES, ids=[c for c, _ in CASES])
def test_encoded_event_validates(case: str, event: dict[str, Any]) -> None:
    if event.get("content") is None:
        event.pop("content", None)
    key, value = encode_event(event)
    assert len(value) <= limits.MAX_EVENT_BYTES
    parsed = parse_event(value)
    assert parsed.event_id
    assert key == (parsed.session_id or parsed.event_id).encode()


def test_multibyte_text_over_the_byte_limit_is_shrunk_and_hashed() -> None:
    text = "é" * limits.MAX_TEXT_CHARS  # within the character limit, but 1 MiB of UTF-8 plus the envelope
    _, value = encode_event(_event(content={"role": "user", "text": text}))
    parsed = parse_event(value)
    assert parsed.content is not None
    assert parsed.content.truncated and parsed.content.sha256 == text_sha256(text)
    assert parsed.content.text and text.startswith(parsed.content.text)


def test_tool_result_bytes_are_filled_in() -> None:
    _, value = encode_event(_event(kind="tool_result", tool={"name": "t", "call_id": "c", "status": "ok"},
                                   content={"role": "tool", "text": "héllo"}))
    assert parse_event(value).tool.result_bytes == 6  # type: ignore[union-attr]


def test_timestamp_is_rfc3339_utc() -> None:
    _, value = encode_event(_event(ts=0.5))
    assert orjson.loads(value)["ts"] == "1970-01-01T00:00:00.500000Z"


def test_bounded_arguments_never_mutate_the_callers_objects() -> None:
    args = {"nested": {"xs": [1, 2, 3]}, 5: "five"}
    snapshot = orjson.dumps(args, option=orjson.OPT_NON_STR_KEYS)
    bounded = bound_arguments(args)
    assert bounded == {"nested": {"xs": [1, 2, 3]}, "5": "five"}
    assert orjson.dumps(args, option=orjson.OPT_NON_STR_KEYS) == snapshot


def test_self_referencing_arguments_are_bounded() -> None:
    loop: list[Any] = []
    loop.append(loop)
    _, value = encode_event(_event(kind="tool_call", tool={"name": "t", "arguments": {"loop": loop}}))
    parse_event(value)
