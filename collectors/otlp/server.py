"""``aiwatch collect otlp``: an OTLP/HTTP receiver for GenAI telemetry (aiohttp).

    POST /v1/traces   ExportTraceServiceRequest   (application/x-protobuf or application/json; gzip/deflate)
    POST /v1/logs     ExportLogsServiceRequest
    GET  /metrics     Prometheus text: what was received, published, deduplicated, rejected, refused
    GET  /healthz     200 while the publisher runs

Answers follow OTLP/HTTP: 200 with an Export*ServiceResponse (``partial_success`` with the count
and reasons of rejected spans / log records), 400 for a body that cannot be decoded, 401 without
a valid bearer token, 413 beyond the size limits, 415 for other media types or encodings, 503
with ``Retry-After`` while the publish queue is full. Errors carry a ``google.rpc.Status`` body,
in protobuf or JSON like the request. Events go to Kafka through the SDK's publisher, which
spools to disk while the broker is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import zlib
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import orjson
from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from schemas.settings import Settings

from collectors.otlp.decode import DECODERS, DecodeError
from collectors.otlp.receiver import Busy, Receiver, Sink
from collectors.otlp.settings import OtlpSettings

log = logging.getLogger("aiwatch.otlp")

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA = {"application/x-protobuf": "protobuf", "application/protobuf": "protobuf", "application/json": "json"}
_ENCODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}

# google.rpc.Code
INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, UNAUTHENTICATED = 3, 8, 14, 16

RECEIVER = web.AppKey("receiver", Receiver)
HTTP_COUNTS = web.AppKey("http_counts", dict)
PUBLISHER = web.AppKey("publisher", object)


class _Refused(Exception):
    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


# -- app ----------------------------------------------------------------------------------------

def create_app(settings: Settings | None = None, *, otlp: OtlpSettings | None = None, sink: Sink | None = None,
               tuning: Any = None) -> web.Application:
    """The receiver as an aiohttp application. Without ``sink``, events go to Kafka through a
    :class:`collectors.publisher.Publisher` started with the app and closed (drained or spooled)
    with it. Run it with :func:`start` or :func:`serve` (they turn off aiohttp's own request
    decompression, so the size limits apply to decompressed bytes too)."""
    settings = settings or Settings()
    otlp = otlp or OtlpSettings()
    app = web.Application(client_max_size=otlp.max_body_bytes)
    app[HTTP_COUNTS] = {}
    tokens = {hashlib.sha256(token.encode()).digest(): name for token, name in otlp.tokens.items()}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        publisher = None
        target = sink
        if target is None:
            from collectors.encode import encode_event
            from collectors.publisher import Publisher

            queue_settings = settings.model_copy(update={"sdk_queue_size": otlp.queue_size})
            publisher = Publisher(queue_settings, partial(encode_event, max_bytes=settings.max_event_bytes),
                                  tuning=tuning, client_id="aiwatch-otlp")
            target = publisher
        app[PUBLISHER] = publisher
        receiver = Receiver(target, otlp)
        app[RECEIVER] = receiver
        if not tokens:
            log.warning("aiwatch OTLP: no tokens configured (AIWATCH_OTLP_TOKENS); accepting unauthenticated "
                        "telemetry and attributing it to its service.name")
        ticker = asyncio.create_task(_expire_loop(receiver))
        try:
            yield
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            try:
                receiver.expire(everything=True)
            except Busy:
                log.warning("aiwatch OTLP: %d model call(s) still waiting at shutdown could not be queued",
                            receiver.stats().get("joins_waiting", 0))
            if publisher is not None:
                await asyncio.get_running_loop().run_in_executor(None, publisher.close)

    app.cleanup_ctx.append(lifecycle)

    async def export(request: web.Request, signal_name: str) -> web.Response:
        counts = app[HTTP_COUNTS]
        media = _MEDIA.get(request.content_type, "")
        counts[(signal_name, "requests")] = counts.get((signal_name, "requests"), 0) + 1
        try:
            bound = _authenticate(request, tokens)
            if not media:
                raise _Refused(415, INVALID_ARGUMENT, f"unsupported Content-Type {request.content_type!r}; "
                                                     f"use {PROTOBUF} or {JSON}")
            body = await _body(request, otlp)
            try:
                decoded = DECODERS[(signal_name, media)](body)
            except DecodeError as exc:
                raise _Refused(400, INVALID_ARGUMENT, str(exc)) from None
            receiver = request.app[RECEIVER]
            try:
                if signal_name == "traces":
                    receiver.spans(decoded.items, bound)
                else:
                    receiver.logs(decoded.items, bound)
            except Busy:
                raise _Refused(503, UNAVAILABLE, "the receiver's publish queue is full; retry later",
                               {"Retry-After": "1"}) from None
            receiver.counts[f"{signal_name}_rejected"] += decoded.rejected
        except _Refused as refused:
            key = (signal_name, str(refused.status))
            counts[key] = counts.get(key, 0) + 1
            return _status_response(refused, media or ("json" if "json" in request.content_type else "protobuf"))
        return _export_response(signal_name, media, decoded.rejected, decoded.reasons)

    async def traces(request: web.Request) -> web.Response:
        return await export(request, "traces")

    async def logs(request: web.Request) -> web.Response:
        return await export(request, "logs")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=_prometheus(request.app), content_type="text/plain")

    async def healthz(request: web.Request) -> web.Response:
        publisher = request.app.get(PUBLISHER)
        state = publisher.stats() if publisher is not None else {}
        return web.json_response({"status": "ok", "kafka_connected": bool(state.get("connected", 1)),
                                  "spool_records": state.get("spool_records", 0)})

    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/v1/logs", logs)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


async def _expire_loop(receiver: Receiver) -> None:
    while True:
        await asyncio.sleep(0.5)
        try:
            receiver.expire()
        except Busy:
            pass  # retried on the next tick
        except Exception:  # noqa: BLE001
            log.exception("aiwatch OTLP: publishing waiting model calls failed")


def _authenticate(request: web.Request, tokens: dict[bytes, str]) -> str | None:
    """The app bound to the bearer token; None when no tokens are configured."""
    if not tokens:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _Refused(401, UNAUTHENTICATED, "missing bearer token (Authorization: Bearer <token>)",
                       {"WWW-Authenticate": 'Bearer realm="aiwatch"'})
    app = tokens.get(hashlib.sha256(token.strip().encode()).digest())
    if app is None:
        raise _Refused(401, UNAUTHENTICATED, "invalid bearer token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return app


async def _body(request: web.Request, otlp: OtlpSettings) -> bytes:
    length = request.content_length
    if length is not None and length > otlp.max_body_bytes:
        raise _Refused(413, RESOURCE_EXHAUSTED, f"body of {length} bytes exceeds the limit of {otlp.max_body_bytes} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Refused(413, RESOURCE_EXHAUSTED, f"body exceeds the limit of {otlp.max_body_bytes} bytes") from None
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity", "none"):
        return raw
    wbits = _ENCODINGS.get(encoding)
    if wbits is None:
        raise _Refused(415, INVALID_ARGUMENT, f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    limit = otlp.max_decompressed_bytes
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
        if len(out) <= limit and not inflater.unconsumed_tail:
            out += inflater.flush()
    except zlib.error as exc:
        raise _Refused(400, INVALID_ARGUMENT, f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise _Refused(413, RESOURCE_EXHAUSTED, f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise _Refused(400, INVALID_ARGUMENT, f"body is truncated {encoding} data")
    return out


# -- responses ----------------------------------------------------------------------------------

def _export_response(signal_name: str, media: str, rejected: int, reasons: list[str]) -> web.Response:
    message = "; ".join(reasons)
    if media == "json":
        payload: dict[str, Any] = {}
        if rejected:
            field = "rejectedSpans" if signal_name == "traces" else "rejectedLogRecords"
            payload["partialSuccess"] = {field: str(rejected), "errorMessage": message}
        return web.Response(body=orjson.dumps(payload), content_type=JSON)
    if signal_name == "traces":
        response: Any = ExportTraceServiceResponse()
        if rejected:
            response.partial_success.rejected_spans = rejected
            response.partial_success.error_message = message
    else:
        response = ExportLogsServiceResponse()
        if rejected:
            response.partial_success.rejected_log_records = rejected
            response.partial_success.error_message = message
    return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def status_protobuf(code: int, message: str) -> bytes:
    """``google.rpc.Status{code, message}`` encoded by hand (two scalar fields; no extra dependency)."""
    text = message.encode("utf-8")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _status_response(refused: _Refused, media: str) -> web.Response:
    if media == "json":
        body = orjson.dumps({"code": refused.code, "message": refused.message})
        return web.Response(status=refused.status, body=body, content_type=JSON, headers=refused.headers)
    return web.Response(status=refused.status, body=status_protobuf(refused.code, refused.message),
                        content_type=PROTOBUF, headers=refused.headers)


def _prometheus(app: web.Application) -> str:
    lines = ["# TYPE aiwatch_otlp_requests_total counter"]
    for (signal_name, what), value in sorted(app[HTTP_COUNTS].items()):
        label = "received" if what == "requests" else what
        lines.append(f'aiwatch_otlp_requests_total{{signal="{signal_name}",status="{label}"}} {value}')
    receiver = app.get(RECEIVER)
    if receiver is not None:
        lines.append("# TYPE aiwatch_otlp_receiver gauge")
        for name, value in sorted(receiver.stats().items()):
            lines.append(f'aiwatch_otlp_receiver{{counter="{name}"}} {value}')
    publisher = app.get(PUBLISHER)
    if publisher is not None:
        lines.append("# TYPE aiwatch_otlp_publisher gauge")
        for name, value in sorted(publisher.stats().items()):
            lines.append(f'aiwatch_otlp_publisher{{counter="{name}"}} {value}')
    return "\n".join(lines) + "\n"


# -- running ------------------------------------------------------------------------------------

async def start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on host:port (0 = any free port); returns the runner and the bound port."""
    runner = web.AppRunner(app, auto_decompress=False, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    server = getattr(site, "_server", None)
    if server is not None and server.sockets:
        bound = server.sockets[0].getsockname()[1]
    return runner, bound


def serve(settings: Settings | None = None, host: str | None = None, port: int | None = None, *,
          otlp: OtlpSettings | None = None) -> None:
    """Run the receiver until SIGINT/SIGTERM; pending events are delivered or spooled on the way out."""
    otlp = otlp or OtlpSettings()
    host = host if host is not None else otlp.host
    port = port if port is not None else otlp.port

    async def main() -> None:
        app = create_app(settings, otlp=otlp)
        runner, bound = await start(app, host, port)
        log.warning("aiwatch OTLP receiver listening on http://%s:%d (/v1/traces, /v1/logs)", host, bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
