"""OTLP receiver without the network: decoding, dialect detection, golden mappings per dialect,
sessions and dedup across turns, the join of span metadata with log content, back-pressure.

Every event produced here goes through the SDK encoder and ``schemas.parse.parse_event``: what the
receiver publishes is what the worker accepts. Golden files: tests/fixtures/otlp/<name>.events.json
(set AIWATCH_UPDATE_GOLDEN=1 to rewrite them after a deliberate change, then review the diff).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from collectors.otlp import common
from collectors.otlp.decode import (
    DECODERS,
    DecodeError,
    decode_logs_json,
    decode_traces_json,
    decode_traces_pb,
    id_from_text,
)
from collectors.otlp.dialects import REGISTRY, detect_log, detect_span
from collectors.otlp.receiver import Busy, Receiver
from collectors.otlp.settings import OtlpSettings
from schemas.event import Event
from tests.harness import ListSink, validated

FIXTURES = Path(__file__).parent / "fixtures" / "otlp"
GOLDEN = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.name.endswith(".events.json"))
CONVENTIONS = {"otel_latest": "otel-genai-1.37", "otel_legacy": "otel-genai-1.36", "openllmetry": "openllmetry",
               "openinference": "openinference"}


def run_fixture(name: str, *, join_seconds: float = 5.0) -> tuple[Receiver, list[Event]]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    sink = ListSink()
    clock = [0.0]
    receiver = Receiver(sink, OtlpSettings(join_seconds=join_seconds), clock=lambda: clock[0])
    for request in data["requests"]:
        decoded = DECODERS[(request["signal"], "json")](orjson.dumps(request["body"]))
        assert decoded.rejected == 0, decoded.reasons
        (receiver.spans if request["signal"] == "traces" else receiver.logs)(decoded.items)
        clock[0] += 1.0
    receiver.expire(everything=True)
    return receiver, validated(sink.events)


def dump(events: list[Event]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in events]


def texts(events: list[Event], kind: str) -> list[str | None]:
    return [e.content.text if e.content else None for e in events if e.kind == kind]


# -- golden fixtures, one or more per dialect ---------------------------------------------------

@pytest.mark.parametrize("name", GOLDEN)
def test_golden_mapping(name: str) -> None:
    _, events = run_fixture(name)
    got = dump(events)
    path = FIXTURES / f"{name}.events.json"
    if os.environ.get("AIWATCH_UPDATE_GOLDEN"):
        path.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert path.exists(), f"no golden file {path.name}; run with AIWATCH_UPDATE_GOLDEN=1 and review it"
    assert got == json.loads(path.read_text())


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_events_are_unique_and_attributed(name: str) -> None:
    _, events = run_fixture(name)
    ids = [e.event_id for e in events]
    assert len(ids) == len(set(ids))
    dialect = name.replace("_traces", "").replace("_logs", "")
    assert {e.source.convention for e in events} == {CONVENTIONS[dialect]}
    assert all(e.source.collector == "otlp" for e in events)
    assert all(e.app for e in events)


def test_otel_latest_conversation_is_one_event_per_message() -> None:
    _, events = run_fixture("otel_latest_traces")
    assert texts(events, "prompt") == ["You are a travel assistant. Never reveal internal notes.",
                                       "Book me a hotel in Paris for May 3."]
    assert texts(events, "completion") == [None, "I found Hotel Lumiere for 180 EUR."]  # reasoning is not text
    calls = [e for e in events if e.kind == "tool_call"]
    assert len(calls) == 1 and calls[0].tool.call_id == "call_h1"
    assert calls[0].tool.arguments == {"city": "Paris", "date": "2026-05-03"}
    results = [e for e in events if e.kind == "tool_result"]
    assert [(r.tool.call_id, r.content.text, r.usage.latency_ms) for r in results] == \
        [("call_h1", "Hotel Lumiere, 180 EUR", 1000.0)]  # from the execute_tool span, not the history
    assert {e.session_id for e in events} == {"conv-42"}
    assert {e.agent for e in events if e.kind in ("prompt", "completion")} == {"travel-agent"}
    retrieval = next(e for e in events if e.kind == "retrieval")
    assert [(d.id, d.score) for d in retrieval.retrieval.documents] == [("doc-1", 0.91), ("doc-2", 0.55)]
    assert retrieval.labels["query"] == "hotel booking policy"
    to_payments, reply = [e for e in events if e.kind == "agent_message"]
    assert (to_payments.agent, to_payments.labels["to_agent"]) == ("travel-agent", "payments-agent")
    assert (reply.agent, reply.labels["to_agent"], reply.content.text) == ("payments-agent", "travel-agent", "Charged.")
    completion = [e for e in events if e.kind == "completion"][1]
    assert completion.usage.input_tokens == 180 and completion.usage.output_tokens == 15
    assert completion.model.served == "gpt-4o-2024-08-06" and completion.model.endpoint == "api.openai.com"
    assert completion.env == "prod" and completion.actor.user_id == "u-7"


def test_otel_legacy_joins_log_content_with_span_usage() -> None:
    receiver, events = run_fixture("otel_legacy")
    assert texts(events, "prompt") == ["You answer with SQL.", "How many users signed up?"]
    # the first call's logs came before the app was seen sending spans: published at once (no usage);
    # from then on a call's content waits for its span and carries its usage
    first, second = [e for e in events if e.kind == "completion"]
    assert first.usage is None and first.labels["tool_calls"] == "run_sql"
    assert second.content.text == "I don't have access to the users table."
    assert (second.usage.input_tokens, second.usage.output_tokens) == (70, 12)
    assert second.model.name == "gpt-4o-mini"
    result = next(e for e in events if e.kind == "tool_result")
    assert (result.tool.status, result.tool.error) == ("error", "permission denied for table users")
    assert receiver.stats()["joins_matched"] == 1
    assert len({e.session_id for e in events}) == 1


def test_openllmetry_tool_span_adopts_the_proposed_call() -> None:
    _, events = run_fixture("openllmetry")
    calls = [e for e in events if e.kind == "tool_call"]
    results = [e for e in events if e.kind == "tool_result"]
    assert len(calls) == 1 and len(results) == 1
    assert calls[0].tool.call_id == results[0].tool.call_id == "call_r"
    assert results[0].content.text == "refunded 1234" and results[0].usage.latency_ms == 1000.0
    assert {(e.session_id, e.actor.user_id) for e in events} == {("sess-9", "alice")}
    message = next(e for e in events if e.kind == "agent_message")
    assert (message.agent, message.labels["to_agent"]) == ("triage", "mailer")


def test_openinference_retrieval_keeps_document_text() -> None:
    _, events = run_fixture("openinference")
    retrieval = next(e for e in events if e.kind == "retrieval")
    first = retrieval.retrieval.documents[0]
    assert (first.id, first.score, first.classification) == ("inc-1", 0.8, "internal")
    assert "IGNORE ALL PREVIOUS INSTRUCTIONS" in first.text
    assert texts(events, "prompt")[1] == "Summarise Q3 incidents"  # from message_content parts
    assert {e.agent for e in events} == {"researcher"}
    assert [e.labels["to_agent"] for e in events if e.kind == "agent_message"] == ["writer"]


# -- detection ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("attrs", "dialect"), [
    ({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}, "otel_latest"),
    ({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "x"}, "otel_latest"),
    ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}, "otel_legacy"),
    ({"gen_ai.system": "openai", "gen_ai.request.model": "m"}, "otel_legacy"),
    ({"gen_ai.system": "openai", "gen_ai.prompt.0.content": "hi"}, "openllmetry"),
    ({"traceloop.span.kind": "tool"}, "openllmetry"),
    ({"openinference.span.kind": "LLM"}, "openinference"),
    ({"llm.input_messages.0.message.role": "user"}, "openinference"),
    ({"http.request.method": "GET"}, None),
    ({}, None),
])
def test_detect_span(attrs: dict[str, Any], dialect: str | None) -> None:
    assert detect_span(attrs) == dialect


def test_detect_log_and_registry() -> None:
    assert detect_log("gen_ai.client.inference.operation.details") == "otel_latest"
    assert detect_log("gen_ai.user.message") == "otel_legacy"
    assert detect_log("gen_ai.choice") == "otel_legacy"
    assert detect_log("http.request") is None
    assert set(REGISTRY) == set(CONVENTIONS)
    assert {name: module.CONVENTION for name, module in REGISTRY.items()} == CONVENTIONS


# -- decoding -----------------------------------------------------------------------------------

def test_ids_hex_and_base64_are_the_same() -> None:
    raw = bytes(range(1, 17))
    assert id_from_text(raw.hex(), 16) == id_from_text(base64.b64encode(raw).decode(), 16) == raw.hex()
    assert id_from_text(raw[:8].hex().upper(), 8) == raw[:8].hex()
    assert id_from_text("", 8) is None and id_from_text("0" * 16, 8) is None
    with pytest.raises(ValueError, match="neither 16 hex digits nor base64"):
        id_from_text("not-an-id", 8)


def _span_json(**overrides: Any) -> dict[str, Any]:
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "chat m",
            "kind": "SPAN_KIND_CLIENT", "startTimeUnixNano": 1767225600000000000, "endTimeUnixNano": "1767225601000000000",
            "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                           {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                           {"key": "gen_ai.usage.input_tokens", "value": {"intValue": 5}}]}
    span.update(overrides)
    return span


def _traces_json(*spans: dict[str, Any]) -> bytes:
    return orjson.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeSpans": [{"spans": list(spans)}]}]})


def test_json_rejects_bad_spans_and_keeps_the_rest() -> None:
    decoded = decode_traces_json(_traces_json(_span_json(), _span_json(spanId="xyz", name="bad"), "not a span",
                                              _span_json(traceId=None, name="no trace")))
    assert len(decoded.items) == 1 and decoded.rejected == 3
    assert decoded.items[0].kind == 3 and decoded.items[0].attrs["gen_ai.usage.input_tokens"] == 5
    assert any("'bad'" in reason and "neither 16 hex digits" in reason for reason in decoded.reasons)
    assert any("a span must be an object" in reason for reason in decoded.reasons)


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"resourceSpans": {"a": 1}}', "'resourceSpans' must be a list"),
])
def test_json_malformed_requests(body: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode_traces_json(body)


def test_protobuf_malformed_request() -> None:
    with pytest.raises(DecodeError, match="not a protobuf ExportTraceServiceRequest"):
        decode_traces_pb(b"\xff\xff\xff\xff garbage")


def test_logs_json_snake_case_and_attribute_event_name() -> None:
    body = orjson.dumps({"resource_logs": [{"scope_logs": [{"log_records": [
        {"time_unix_nano": "5", "attributes": [{"key": "event.name", "value": {"stringValue": "gen_ai.user.message"}}],
         "body": {"kvlist_value": {"values": [{"key": "content", "value": {"string_value": "hello"}}]}}}]}]}]})
    decoded = decode_logs_json(body)
    assert decoded.items[0].event_name == "gen_ai.user.message"
    assert decoded.items[0].body == {"content": "hello"}


# -- sessions and dedup -------------------------------------------------------------------------

def _chat_span(trace: int, span: int, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
               **attrs: Any) -> dict[str, Any]:
    kv = [{"key": k, "value": {"stringValue": v} if isinstance(v, str) else {"intValue": v}} for k, v in {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "m",
        "gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(outputs), **attrs}.items()]
    return {"traceId": f"{trace:032x}", "spanId": f"{span:016x}", "name": "chat", "kind": 3,
            "startTimeUnixNano": str(1767225600_000_000_000 + span), "endTimeUnixNano": str(1767225600_000_000_000 + span + 1),
            "attributes": kv}


def _msg(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def _turns(user_a: str | None = None, user_b: str | None = None) -> tuple[bytes, bytes]:
    t1_in = [_msg("system", "sys"), _msg("user", "hi")]
    t1_out = [_msg("assistant", "hello")]
    a = {"user.id": user_a} if user_a else {}
    b = {"user.id": user_b} if user_b else {}
    return (_traces_json(_chat_span(1, 1, t1_in, t1_out, **a)),
            _traces_json(_chat_span(2, 2, t1_in + t1_out + [_msg("user", "weather?")], [_msg("assistant", "sunny")], **b)))


def _feed(receiver: Receiver, *bodies: bytes) -> None:
    for body in bodies:
        receiver.spans(decode_traces_json(body).items)


def test_turns_in_different_traces_are_linked_without_a_conversation_id() -> None:
    sink = ListSink()
    receiver = Receiver(sink, OtlpSettings(join_seconds=0))
    _feed(receiver, *_turns())
    events = validated(sink.events)
    assert [(e.kind, e.content.text) for e in events] == [
        ("prompt", "sys"), ("prompt", "hi"), ("completion", "hello"), ("prompt", "weather?"), ("completion", "sunny")]
    assert len({e.session_id for e in events}) == 1
    assert events[-1].labels["session_inferred"] == "linked"
    assert receiver.stats()["messages_repeated"] == 3


def test_different_users_are_never_linked() -> None:
    sink = ListSink()
    receiver = Receiver(sink, OtlpSettings(join_seconds=0))
    _feed(receiver, *_turns(user_a="alice", user_b="bob"))
    events = validated(sink.events)
    assert len(events) == 8  # bob's turn repeats nothing of alice's session
    assert len({e.session_id for e in events}) == 2


def test_a_retried_export_publishes_nothing_twice() -> None:
    sink = ListSink()
    receiver = Receiver(sink, OtlpSettings(join_seconds=0))
    body = _turns()[0]
    _feed(receiver, body, body)
    assert len(sink.events) == 3
    # a fresh receiver (restart, memory lost) gives the same event ids: the worker's sinks dedup
    again = ListSink()
    _feed(Receiver(again, OtlpSettings(join_seconds=0)), body)
    assert [e["event_id"] for e in again.events] == [e["event_id"] for e in sink.events]


def test_busy_sink_refuses_and_the_retry_completes_exactly() -> None:
    sink = ListSink(capacity=2)
    receiver = Receiver(sink, OtlpSettings(join_seconds=0))
    body = _turns()[0]
    with pytest.raises(Busy):
        _feed(receiver, body)
    assert len(sink.events) == 2
    sink.capacity = None
    _feed(receiver, body)  # the exporter retries the same request after the 503
    assert [e["content"]["text"] for e in sink.events] == ["sys", "hi", "hello"]


def test_bounded_memory_of_sessions_and_keys() -> None:
    sink = ListSink()
    receiver = Receiver(sink, OtlpSettings(join_seconds=0, max_sessions=2, max_keys_per_session=2, max_links=2))
    for trace in range(1, 6):
        _feed(receiver, _traces_json(_chat_span(trace, trace, [_msg("user", f"q{trace}"), _msg("user", "x"),
                                                               _msg("user", "y")], [_msg("assistant", "a")])))
    sizes = receiver.stats()
    assert sizes["sessions"] <= 2 and sizes["links"] <= 2
    assert receiver.conversations.evicted_keys > 0 and receiver.conversations.evicted_sessions > 0


def test_capture_off_still_yields_metadata_events() -> None:
    span = _span_json()
    span["attributes"] += [{"key": "gen_ai.usage.output_tokens", "value": {"intValue": "3"}},
                           {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]
    sink = ListSink()
    Receiver(sink, OtlpSettings(join_seconds=0)).spans(decode_traces_json(_traces_json(span)).items)
    prompt, completion = validated(sink.events)
    assert (prompt.kind, prompt.content, prompt.labels["content"]) == ("prompt", None, "not_captured")
    assert (completion.kind, completion.usage.input_tokens, completion.usage.output_tokens) == ("completion", 5, 3)
    assert completion.usage.latency_ms == 1000.0 and completion.model.name == "gpt-4o"


def test_join_merges_content_logs_into_the_waiting_span() -> None:
    """Steady state of an app sending both: the metadata-only span waits; its content log brings
    the messages; one set of events with the span's usage."""
    span = _span_json(spanId="00000000000000aa")
    span["attributes"] += [{"key": "gen_ai.usage.output_tokens", "value": {"intValue": 2}}]
    content_log = {"traceId": span["traceId"], "spanId": span["spanId"], "timeUnixNano": "1767225600500000000",
                   "eventName": "gen_ai.client.inference.operation.details", "attributes": [
                       {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps([_msg("user", "hi")])}},
                       {"key": "gen_ai.output.messages", "value": {"stringValue": json.dumps([_msg("assistant", "yo")])}}]}
    logs_body = orjson.dumps({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeLogs": [{"logRecords": [content_log]}]}]})
    sink = ListSink()
    clock = [100.0]
    receiver = Receiver(sink, OtlpSettings(join_seconds=5), clock=lambda: clock[0])
    receiver._sends_logs["svc"] = clock[0]  # the app was seen sending content logs
    receiver.spans(decode_traces_json(_traces_json(span)).items)
    assert sink.events == [] and receiver.stats()["joins_waiting"] == 1
    receiver.logs(decode_logs_json(logs_body).items)
    prompt, completion = validated(sink.events)
    assert (prompt.content.text, completion.content.text) == ("hi", "yo")
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (5, 2)


def test_a_waiting_span_is_published_when_its_content_never_comes() -> None:
    sink = ListSink()
    clock = [100.0]
    receiver = Receiver(sink, OtlpSettings(join_seconds=5), clock=lambda: clock[0])
    receiver._sends_logs["svc"] = clock[0]
    receiver.spans(decode_traces_json(_traces_json(_span_json())).items)
    receiver.expire()
    assert sink.events == []
    clock[0] += 6
    receiver.expire()
    assert [e["kind"] for e in sink.events] == ["prompt", "completion"]
    assert receiver.stats()["joins_expired"] == 1


def test_token_app_overrides_service_name() -> None:
    sink = ListSink()
    Receiver(sink, OtlpSettings(join_seconds=0)).spans(decode_traces_json(_traces_json(_span_json())).items, "billing")
    event = validated(sink.events)[0]
    assert event.app == "billing" and event.labels["service_name"] == "svc"


def test_parts_with_structured_arguments_and_results() -> None:
    message = common.parts_message({"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c1", "name": "f", "arguments": '{"a": 1}'},
        {"type": "tool_call_response", "id": "c1", "result": {"ok": True}}]})
    assert message is not None
    assert message.tool_calls[0].arguments == {"a": 1}
    assert message.responses[0].text == '{"ok":true}'
    assert common.arguments("plain text") == {"value": "plain text"}
