"""The OTLP receiver over HTTP with real clients: the OpenTelemetry SDK and its OTLP/HTTP exporters,
the OpenAI instrumentation driving the ``openai`` client against a local OpenAI-compatible stub,
and one end-to-end run into a real Kafka broker.

The receiver runs on 127.0.0.1 in a background thread (the SDK exporters are synchronous); every
server is stopped by its context manager. Events are checked with ``schemas.parse.parse_event``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from google.protobuf.json_format import MessageToDict
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from collectors.otlp.receiver import Receiver
from collectors.otlp.server import PUBLISHER, RECEIVER, create_app, start
from collectors.otlp.settings import OtlpSettings
from collectors.publisher import Tuning
from schemas.event import Event
from schemas.settings import Settings
from tests.harness import ListSink, consume_records, create_topic, events_of, validated

pytestmark = pytest.mark.timeout(60)


# -- servers in a background loop -------------------------------------------------------------

class Running:
    """Serve an aiohttp app on 127.0.0.1:<free port> from a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def __enter__(self) -> "Running":
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="otlp-test-server", daemon=True)
        self.thread.start()
        self.runner, self.port = asyncio.run_coroutine_threadsafe(start(self.app, "127.0.0.1", 0), self.loop).result(30)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(60)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()

    @property
    def receiver(self) -> Receiver:
        return self.app[RECEIVER]


@contextmanager
def receiver_server(sink: ListSink, **otlp: Any) -> Iterator[Running]:
    settings = OtlpSettings(**otlp)
    with Running(create_app(Settings(), otlp=settings, sink=sink)) as running:
        yield running


def post(url: str, body: bytes, *, content_type: str = "application/x-protobuf",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def status_of(body: bytes) -> status_pb2.Status:
    status = status_pb2.Status()
    status.ParseFromString(body)
    return status


# -- an OpenAI-compatible stub ------------------------------------------------------------------

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}


def stub_openai_app() -> web.Application:
    """/v1/chat/completions: a tool call while tools are offered and no tool answered yet, else text."""

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        messages = body.get("messages") or []
        if body.get("tools") and (not messages or messages[-1].get("role") != "tool"):
            message = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                       "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": "It is sunny in Paris."}
            finish = "stop"
        return web.json_response({"id": f"chatcmpl-{len(messages)}", "object": "chat.completion", "created": 1767225600,
                                  "model": f"{body.get('model')}-2024-07-18",
                                  "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                  "usage": {"prompt_tokens": 10 * len(messages), "completion_tokens": 7,
                                            "total_tokens": 10 * len(messages) + 7}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


def weather_conversation(client: Any) -> None:
    """Two turns: the model asks for a tool, the app answers it, the model replies."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are helpful."},
                                      {"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call.id, "type": "function",
                      "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24C"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=[WEATHER_TOOL])


# -- OTel SDK pipelines -------------------------------------------------------------------------

def providers(url: str, *, service: str = "demo", token: str | None = None) -> tuple[TracerProvider, LoggerProvider]:
    resource = Resource.create({"service.name": service, "deployment.environment.name": "test"})
    headers = {"Authorization": f"Bearer {token}"} if token else None
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, compression=Compression.Gzip)))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=headers)))
    return tracer_provider, logger_provider


def flush(tracer_provider: TracerProvider, logger_provider: LoggerProvider) -> None:
    """Logs before spans, as the SDK defaults (1 s vs 5 s export delay) deliver them."""
    assert logger_provider.force_flush(10_000)
    assert tracer_provider.force_flush(10_000)


def shutdown(tracer_provider: TracerProvider, logger_provider: LoggerProvider) -> None:
    logger_provider.shutdown()
    tracer_provider.shutdown()


def chat_span_attributes(inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 11, "gen_ai.usage.output_tokens": 4,
            "gen_ai.input.messages": json.dumps(inputs), "gen_ai.output.messages": json.dumps(outputs)}


def recorded_spans() -> list[Any]:
    """Real SDK spans of an agent with two chat turns and an HTTP span (not GenAI)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "demo"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    sys_msg = {"role": "system", "parts": [{"type": "text", "content": "Be safe."}]}
    user = {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
    answer = {"role": "assistant", "parts": [{"type": "text", "content": "hi there"}], "finish_reason": "stop"}
    follow = {"role": "user", "parts": [{"type": "text", "content": "tell me a secret"}]}
    refuse = {"role": "assistant", "parts": [{"type": "text", "content": "no"}], "finish_reason": "stop"}
    with tracer.start_as_current_span("invoke_agent helper", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.provider.name": "openai", "gen_ai.agent.name": "helper"}):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT,
                                          attributes=chat_span_attributes([sys_msg, user], [answer])):
            pass
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT,
                                          attributes=chat_span_attributes([sys_msg, user, answer, follow], [refuse])):
            pass
        with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER, attributes={"http.request.method": "GET"}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def conversation_of(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.kind, e.content.text if e.content else None) for e in events]


EXPECTED_AGENT_CONVERSATION = [("prompt", "Be safe."), ("prompt", "hello"), ("completion", "hi there"),
                               ("prompt", "tell me a secret"), ("completion", "no")]


# -- the SDK exporter ---------------------------------------------------------------------------

def test_sdk_exporter_protobuf_gzip_with_token() -> None:
    sink = ListSink()
    spans = recorded_spans()
    with receiver_server(sink, tokens={"tok-travel": "travel", "tok-other": "other"}) as server:
        exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=Compression.Gzip,
                                    headers={"Authorization": "Bearer tok-travel"})
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        assert exporter.export(spans) == SpanExportResult.SUCCESS  # a retry adds nothing
        stats = server.receiver.stats()
    events = sink.parsed()
    assert conversation_of(events) == EXPECTED_AGENT_CONVERSATION
    assert {(e.app, e.agent, e.source.convention) for e in events} == {("travel", "helper", "otel-genai-1.37")}
    assert events[0].labels["service_name"] == "demo"
    assert stats["spans_ignored"] == 2 and stats["spans_received"] == 8
    assert len({e.event_id for e in events}) == len(events)


def test_sdk_json_exporter_gives_the_same_events_as_protobuf() -> None:
    """The OTel project's OTLP/HTTP JSON exporter (a real client, not a hand-made payload)."""
    from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as OTLPJsonSpanExporter

    spans = recorded_spans()
    results = {}
    for name, exporter_class, gzip in (("protobuf", OTLPSpanExporter, Compression.Gzip),
                                       ("json", OTLPJsonSpanExporter, JsonCompression.GZIP)):
        sink = ListSink()
        with receiver_server(sink, tokens={"tok-travel": "travel"}) as server:
            exporter = exporter_class(endpoint=f"{server.url}/v1/traces", compression=gzip,
                                      headers={"Authorization": "Bearer tok-travel"})
            assert exporter.export(spans) == SpanExportResult.SUCCESS, name
        results[name] = sink.parsed()
    assert conversation_of(results["json"]) == EXPECTED_AGENT_CONVERSATION
    assert [e.event_id for e in results["json"]] == [e.event_id for e in results["protobuf"]]
    assert {(e.app, e.agent, e.source.convention) for e in results["json"]} == {("travel", "helper", "otel-genai-1.37")}


def test_sdk_exporter_without_a_valid_token_is_refused() -> None:
    sink = ListSink()
    spans = recorded_spans()
    with receiver_server(sink, tokens={"tok-travel": "travel"}) as server:
        wrong = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"Authorization": "Bearer nope"})
        assert wrong.export(spans) == SpanExportResult.FAILURE
        code, headers, body = post(f"{server.url}/v1/traces", b"")
        assert code == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        status = status_of(body)
        assert (status.code, status.message) == (16, "missing bearer token (Authorization: Bearer <token>)")
        code, _, body = post(f"{server.url}/v1/traces", b"{}", content_type="application/json",
                             headers={"Authorization": "Bearer nope"})
        assert code == 401 and orjson.loads(body) == {"code": 16, "message": "invalid bearer token"}
        metrics = urllib.request.urlopen(f"{server.url}/metrics", timeout=10).read().decode()
    assert sink.events == []
    assert 'aiwatch_otlp_requests_total{signal="traces",status="401"} 3' in metrics


def test_without_tokens_everything_is_accepted_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    sink = ListSink()
    body = encode_spans(recorded_spans()).SerializeToString()
    with caplog.at_level("WARNING", logger="aiwatch.otlp"):
        with receiver_server(sink) as server:
            for _ in range(3):
                code, _, _ = post(f"{server.url}/v1/traces", body)
                assert code == 200
    warnings = [r for r in caplog.records if "no tokens configured" in r.getMessage()]
    assert len(warnings) == 1
    assert {e.app for e in sink.parsed()} == {"demo"}


def _hex_ids(node: Any) -> Any:
    """MessageToDict output → OTLP/JSON: ids as hex, enums as integers."""
    if isinstance(node, list):
        return [_hex_ids(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
            out[key] = base64.b64decode(value).hex()
        elif key == "kind" and isinstance(value, str):
            out[key] = {"SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3}[value]
        else:
            out[key] = _hex_ids(value)
    return out


def test_json_hex_ids_and_base64_ids_give_the_same_events() -> None:
    """The installed exporter speaks protobuf only; these are the same real SDK spans in OTLP/JSON:
    per the spec (hex ids, integer enums) and as protobuf-JSON mappers write them (base64, names)."""
    request = encode_spans(recorded_spans())
    as_mapped = MessageToDict(request)                   # base64 ids, enum names, int64 as strings
    as_spec = _hex_ids(as_mapped)
    assert as_spec["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] != \
        as_mapped["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
    results = []
    for body in (as_spec, as_mapped):
        sink = ListSink()
        with receiver_server(sink) as server:
            code, headers, response = post(f"{server.url}/v1/traces", orjson.dumps(body),
                                           content_type="application/json")
        assert (code, headers["Content-Type"].split(";")[0], orjson.loads(response)) == (200, "application/json", {})
        results.append(sink.events)
    assert results[0] == results[1]
    assert conversation_of(validated(results[0])) == EXPECTED_AGENT_CONVERSATION


# -- HTTP behaviour -----------------------------------------------------------------------------

def _bad_and_good_spans_json() -> bytes:
    good = _hex_ids(MessageToDict(encode_spans(recorded_spans()[:1])))
    spans = good["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "zz", "name": "broken"})
    return orjson.dumps(good)


def test_partial_success_names_the_rejected_spans() -> None:
    body = _bad_and_good_spans_json()
    with receiver_server(ListSink()) as server:
        code, _, response = post(f"{server.url}/v1/traces", body, content_type="application/json")
        assert code == 200
        partial = orjson.loads(response)["partialSuccess"]
        assert partial["rejectedSpans"] == "1" and "'broken'" in partial["errorMessage"]
        proto = encode_spans(recorded_spans()[:1])
        proto.resource_spans[0].scope_spans[0].spans[0].trace_id = b"short"
        code, _, response = post(f"{server.url}/v1/traces", proto.SerializeToString())
        parsed = ExportTraceServiceResponse()
        parsed.ParseFromString(response)
        assert code == 200 and parsed.partial_success.rejected_spans == 1
        assert "id must be 16 bytes, got 5" in parsed.partial_success.error_message


@pytest.mark.parametrize(("body", "headers", "content_type", "status", "message"), [
    (b"\xff\xff\xff\xffgarbage", {}, "application/x-protobuf", 400, "not a protobuf ExportTraceServiceRequest"),
    (b"{oops", {}, "application/json", 400, "not valid JSON"),
    (b"not gzip at all", {"Content-Encoding": "gzip"}, "application/x-protobuf", 400, "not valid gzip"),
    (gzip.compress(b"x" * 100)[:20], {"Content-Encoding": "gzip"}, "application/x-protobuf", 400, "truncated gzip"),
    (b"", {"Content-Encoding": "br"}, "application/x-protobuf", 415, "unsupported Content-Encoding 'br'"),
    (b"", {}, "text/plain", 415, "unsupported Content-Type 'text/plain'"),
    (b"x" * 5000, {}, "application/x-protobuf", 413, "body of 5000 bytes exceeds the limit of 4096 bytes"),
    (gzip.compress(b"\0" * 300_000), {"Content-Encoding": "gzip"}, "application/x-protobuf", 413,
     "decompressed body exceeds the limit of 65536 bytes"),
])
def test_refusals_are_clear(body: bytes, headers: dict[str, str], content_type: str, status: int, message: str) -> None:
    with receiver_server(ListSink(), max_body_bytes=4096, max_decompressed_bytes=65536) as server:
        code, _, response = post(f"{server.url}/v1/traces", body, content_type=content_type, headers=headers)
    assert code == status
    text = orjson.loads(response)["message"] if content_type == "application/json" else status_of(response).message
    assert message in text


def test_deflate_and_logs_endpoint() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    body = orjson.dumps(json.loads((Path(__file__).parent / "fixtures" / "otlp" / "otel_latest_logs.json")
                                   .read_text())["requests"][0]["body"])
    sink = ListSink()
    with receiver_server(sink) as server:
        code, _, response = post(f"{server.url}/v1/logs", zlib.compress(body), content_type="application/json",
                                 headers={"Content-Encoding": "deflate"})
    assert (code, orjson.loads(response)) == (200, {})
    assert [e.kind for e in sink.parsed()] == ["prompt", "prompt", "completion"]
    assert ExportLogsServiceResponse().SerializeToString() == b""


def test_full_queue_answers_503_and_the_retry_loses_nothing() -> None:
    sink = ListSink(capacity=2)
    body = encode_spans(recorded_spans()).SerializeToString()
    with receiver_server(sink) as server:
        code, headers, response = post(f"{server.url}/v1/traces", body)
        assert (code, headers["Retry-After"]) == (503, "1")
        assert status_of(response).code == 14
        sink.capacity = None
        code, _, _ = post(f"{server.url}/v1/traces", body)
        assert code == 200
    assert conversation_of(sink.parsed()) == EXPECTED_AGENT_CONVERSATION


# -- the OpenAI instrumentation -----------------------------------------------------------------

@contextmanager
def instrumented_openai(url: str, api: str, monkeypatch: pytest.MonkeyPatch, capture: str, *,
                        legacy: bool = False) -> Iterator[tuple[Any, TracerProvider, LoggerProvider]]:
    """The real opentelemetry-instrumentation-openai-v2 around a real ``openai`` client whose
    telemetry goes to the receiver at ``url``, calling the model API at ``api``. ``legacy``: the instrumentation's <= 1.36 code path
    (per-message log events), which its current release only reaches through its own wrapper."""
    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.instrumentation.openai_v2.instruments import Instruments
    from opentelemetry.instrumentation.openai_v2.patch import chat_completions_create_v_old
    from opentelemetry.instrumentation.utils import unwrap
    from opentelemetry.metrics import get_meter
    from opentelemetry.semconv.schemas import Schemas
    from wrapt import wrap_function_wrapper

    tracer_provider, logger_provider = providers(url)
    instrumentor = OpenAIInstrumentor()
    if legacy:
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true" if capture else "false")
        name = "opentelemetry.instrumentation.openai_v2"
        wrap_function_wrapper("openai.resources.chat.completions", "Completions.create", chat_completions_create_v_old(
            tracer_provider.get_tracer(name, schema_url=Schemas.V1_30_0.value),
            logger_provider.get_logger(name, schema_url=Schemas.V1_30_0.value),
            Instruments(get_meter(name)), bool(capture)))
    else:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", capture or "NO_CONTENT")
        instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    try:
        client = openai.OpenAI(base_url=f"{api}/v1", api_key="sk-test", max_retries=0)
        yield client, tracer_provider, logger_provider
    finally:
        if legacy:
            unwrap(openai.resources.chat.completions.Completions, "create")
        else:
            instrumentor.uninstrument()
        shutdown(tracer_provider, logger_provider)


def _check_weather_events(events: list[Event], convention: str) -> None:
    assert conversation_of(events) == [("prompt", "You are helpful."), ("prompt", "Weather in Paris?"),
                                       ("completion", None), ("tool_call", None), ("tool_result", "sunny, 24C"),
                                       ("completion", "It is sunny in Paris.")]
    call = next(e for e in events if e.kind == "tool_call")
    assert (call.tool.name, call.tool.call_id, call.tool.arguments) == ("get_weather", "call_1", {"city": "Paris"})
    assert next(e for e in events if e.kind == "tool_result").tool.name == "get_weather"
    assert len({e.session_id for e in events}) == 1
    assert len({e.event_id for e in events}) == len(events)
    assert {e.source.convention for e in events} == {convention}
    completions = [e for e in events if e.kind == "completion"]
    assert completions[0].labels["tool_calls"] == "get_weather"
    assert {e.model.provider for e in events} == {"openai"}


@pytest.mark.parametrize("capture", ["SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"])
def test_openai_instrumentation_latest_with_content(monkeypatch: pytest.MonkeyPatch, capture: str) -> None:
    sink = ListSink()
    with receiver_server(sink) as server, Running(stub_openai_app()) as stub:
        with instrumented_openai(server.url, stub.url, monkeypatch, capture) as (client, tracer_provider, logger_provider):
            # warm-up call: the receiver learns this app sends spans and logs (it joins them from then on)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
            flush(tracer_provider, logger_provider)
            start_at = len(sink.events)
            weather_conversation(client)
            flush(tracer_provider, logger_provider)
        stats = server.receiver.stats()
    events = sink.parsed()[start_at:]
    _check_weather_events(events, "otel-genai-1.37")
    completions = [e for e in events if e.kind == "completion"]
    # usage and served model reach the completions whether content came on the span or as a log event
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in completions] == [(20, 7), (40, 7)]
    assert {c.model.served for c in completions} == {"gpt-4o-mini-2024-07-18"}
    if capture == "EVENT_ONLY":
        assert stats["joins_matched"] == 2


def test_openai_instrumentation_latest_without_content(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = ListSink()
    with receiver_server(sink) as server, Running(stub_openai_app()) as stub:
        with instrumented_openai(server.url, stub.url, monkeypatch, "") as (client, tracer_provider, logger_provider):
            weather_conversation(client)
            flush(tracer_provider, logger_provider)
    events = sink.parsed()
    assert [(e.kind, e.content, e.labels["content"]) for e in events] == [
        ("prompt", None, "not_captured"), ("completion", None, "not_captured")] * 2
    completions = [e for e in events if e.kind == "completion"]
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in completions] == [(20, 7), (40, 7)]
    assert [c.labels["finish_reasons"] for c in completions] == ["tool_calls", "stop"]
    assert all(c.usage.latency_ms > 0 for c in completions)


@pytest.mark.parametrize("capture", [True, False])
def test_openai_instrumentation_legacy_events(monkeypatch: pytest.MonkeyPatch, capture: bool) -> None:
    sink = ListSink()
    with receiver_server(sink) as server, Running(stub_openai_app()) as stub:
        with instrumented_openai(server.url, stub.url, monkeypatch, "on" if capture else "", legacy=True) as (
                client, tracer_provider, logger_provider):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "ping"}])
            flush(tracer_provider, logger_provider)
            start_at = len(sink.events)
            weather_conversation(client)
            flush(tracer_provider, logger_provider)
    events = sink.parsed()[start_at:]
    completions = [e for e in events if e.kind == "completion"]
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in completions] == [(20, 7), (40, 7)]
    if capture:
        _check_weather_events(events, "otel-genai-1.36")
        return
    # capture off: per-message metadata (roles, positions, tool names and call ids), no text
    assert [(e.kind, e.content.role if e.content else None) for e in events] == [
        ("prompt", "system"), ("prompt", "user"), ("completion", "assistant"), ("tool_call", None),
        ("tool_result", None), ("completion", "assistant")]
    assert all(e.content is None or e.content.text is None for e in events)
    call = next(e for e in events if e.kind == "tool_call")
    assert (call.tool.name, call.tool.call_id, call.tool.arguments) == ("get_weather", "call_1", None)


# -- end to end through Kafka -------------------------------------------------------------------

PARTITIONS = 3
# every record of a topic from the start: once ``expected`` arrived, 1 s more (duplicates would show up)
consume = partial(consume_records, settle=1.0)


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_end_to_end_sdk_exporter_to_kafka(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    topic = f"{topic_prefix}.events"
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topic, home=tmp_path)
    fast = Tuning(delivery_timeout=3.0, connect_timeout=3.0, reconnect_min=0.2, reconnect_max=1.0)
    app = create_app(settings, otlp=OtlpSettings(tokens={"tok-e2e": "e2e-app"}), tuning=fast)
    with Running(app) as server:
        exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=Compression.Gzip,
                                    headers={"Authorization": "Bearer tok-e2e"})
        assert exporter.export(recorded_spans()) == SpanExportResult.SUCCESS
        exporter.shutdown()
    # leaving the block stopped the server and closed the publisher (delivered or spooled)
    records = consume(kafka_bootstrap, topic, expected=len(EXPECTED_AGENT_CONVERSATION))
    events = events_of(records)
    events.sort(key=lambda e: (e.ts, int(e.labels.get("message_index", 0))))
    assert conversation_of(events) == EXPECTED_AGENT_CONVERSATION
    assert {(e.app, e.agent, e.source.collector) for e in events} == {("e2e-app", "helper", "otlp")}
    assert {r.key.decode() for r in records} == {events[0].session_id}
    published = app[PUBLISHER].stats()
    assert (published["sent"], published["dropped"], published["spool_records"]) == (len(events), 0, 0)


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_nothing_is_lost_while_kafka_is_down(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> None:
    """Broker unreachable: the receiver still answers 200 and the events wait in the spool; the next
    receiver started on the same home (broker back) delivers them."""
    from tests.brokers import free_port

    topic = f"{topic_prefix}.events"
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    fast = Tuning(delivery_timeout=2.0, connect_timeout=1.0, reconnect_min=0.2, reconnect_max=0.5)
    down = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", topic_events=topic, home=tmp_path)
    app = create_app(down, otlp=OtlpSettings(), tuning=fast)
    with Running(app) as server:
        code, _, _ = post(f"{server.url}/v1/traces", encode_spans(recorded_spans()).SerializeToString())
        assert code == 200
    spooled = app[PUBLISHER].stats()
    assert (spooled["sent"], spooled["spool_records"], spooled["dropped"]) == (0, 5, 0)

    up = Settings(kafka_bootstrap_servers=kafka_bootstrap, topic_events=topic, home=tmp_path)
    again = create_app(up, otlp=OtlpSettings(), tuning=fast)
    with Running(again) as server:
        assert again[PUBLISHER].flush(30.0)
    events = events_of(consume(kafka_bootstrap, topic, expected=5))
    assert sorted(conversation_of(events)) == sorted(EXPECTED_AGENT_CONVERSATION)
