"""OTLP receiver throughput on one core (target: >= 5,000 GenAI spans/s).

Workload: agent conversations in the OTel GenAI >= 1.37 dialect with content captured — each turn
is a chat span repeating the whole (growing) conversation plus an execute_tool span, ~1 KB of new
text per turn — sent as OTLP requests of ``--batch`` spans (the SDK's BatchSpanProcessor default is
512). Every span is a GenAI span. The process is pinned to one CPU.

Stages (each a fresh receiver, same requests):

- ``decode``           protobuf → span views only
- ``map``              decode + dialect adapters + sessions/dedup, events to a null sink
- ``map+encode``       as above, plus the publisher's per-event work (bounding + JSON, collectors.encode)
- ``http``             the aiohttp server on 127.0.0.1, gzip protobuf POSTs from a client in the
                       same process and core (conservative: the client's CPU counts too), encode sink
- ``http+kafka``       (``--kafka BOOTSTRAP``) the real Publisher into a real broker; spans/s is the
                       HTTP acceptance rate, then the time until Kafka acknowledged everything

    python bench/otlp_receiver.py
    python bench/otlp_receiver.py --spans 50000 --kafka 127.0.0.1:19092
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import string
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from collectors.encode import encode_event  # noqa: E402
from collectors.otlp.decode import decode_traces_pb  # noqa: E402
from collectors.otlp.receiver import Receiver  # noqa: E402
from collectors.otlp.settings import OtlpSettings  # noqa: E402

T0 = 1_767_225_600_000_000_000


def _text(rng: random.Random, size: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))))
    return " ".join(words)


def _kv(span: Any, key: str, value: Any) -> None:
    attr = span.attributes.add()
    attr.key = key
    if isinstance(value, int):
        attr.value.int_value = value
    else:
        attr.value.string_value = value


def build_requests(spans: int, batch: int, turns: int, seed: int = 7) -> list[bytes]:
    """Serialized ExportTraceServiceRequests holding ``spans`` GenAI spans in total."""
    rng = random.Random(seed)
    requests: list[bytes] = []
    request = ExportTraceServiceRequest()
    scope = None
    count = conversation = 0

    def scope_spans() -> Any:
        rs = request.resource_spans.add()
        attr = rs.resource.attributes.add()
        attr.key, attr.value.string_value = "service.name", "bench-app"
        ss = rs.scope_spans.add()
        ss.scope.name = "opentelemetry.util.genai.handler"
        return ss

    while count < spans:
        conversation += 1
        trace_id = conversation.to_bytes(16, "big")
        system = {"role": "system", "parts": [{"type": "text", "content": _text(rng, 300)}]}
        history: list[dict[str, Any]] = [system]
        for turn in range(turns):
            if count >= spans:
                break
            history.append({"role": "user", "parts": [{"type": "text", "content": _text(rng, 400)}]})
            call_id = f"call_{conversation}_{turn}"
            output = [{"role": "assistant", "finish_reason": "tool_calls", "parts": [
                {"type": "tool_call", "id": call_id, "name": "lookup", "arguments": {"q": _text(rng, 40)}}]}]
            for kind in ("chat", "tool"):
                if count >= spans:
                    break
                if scope is None:
                    scope = scope_spans()
                span = scope.spans.add()
                span.trace_id = trace_id
                span.span_id = (count + 1).to_bytes(8, "big")
                start = T0 + count * 1_000_000
                span.start_time_unix_nano, span.end_time_unix_nano = start, start + 900_000
                _kv(span, "gen_ai.conversation.id", f"conv-{conversation}")
                if kind == "chat":
                    span.name, span.kind = "chat gpt-4o", 3
                    for key, value in (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
                                       ("gen_ai.request.model", "gpt-4o"), ("gen_ai.response.model", "gpt-4o-2024-08-06"),
                                       ("gen_ai.usage.input_tokens", 100 * len(history)),
                                       ("gen_ai.usage.output_tokens", 20),
                                       ("gen_ai.input.messages", json.dumps(history[1:])),
                                       ("gen_ai.system_instructions", json.dumps(system["parts"])),
                                       ("gen_ai.output.messages", json.dumps(output))):
                        _kv(span, key, value)
                else:
                    result = _text(rng, 300)
                    span.name = "execute_tool lookup"
                    for key, value in (("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", "lookup"),
                                       ("gen_ai.tool.call.id", call_id),
                                       ("gen_ai.tool.call.arguments", json.dumps(output[0]["parts"][0]["arguments"])),
                                       ("gen_ai.tool.call.result", result)):
                        _kv(span, key, value)
                    history += [{"role": "assistant", "parts": output[0]["parts"]},
                                {"role": "tool", "parts": [{"type": "tool_call_response", "id": call_id,
                                                            "response": result}]}]
                count += 1
                if count % batch == 0:
                    requests.append(request.SerializeToString())
                    request = ExportTraceServiceRequest()
                    scope = None
    if scope is not None:
        requests.append(request.SerializeToString())
    return requests


class NullSink:
    def __init__(self, encode: bool) -> None:
        self.encode = encode
        self.events = 0

    def offer(self, event: dict[str, Any]) -> bool:
        self.events += 1
        if self.encode:
            encode_event(event)
        return True


def bench_decode(requests: list[bytes]) -> tuple[int, int]:
    spans = sum(len(decode_traces_pb(body).items) for body in requests)
    return spans, 0


def bench_map(requests: list[bytes], encode: bool) -> tuple[int, int]:
    sink = NullSink(encode)
    receiver = Receiver(sink, OtlpSettings(join_seconds=0))
    spans = 0
    for body in requests:
        decoded = decode_traces_pb(body)
        spans += len(decoded.items)
        receiver.spans(decoded.items)
    return spans, sink.events


async def _post_all(url: str, bodies: list[bytes]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(url, data=body, headers={"Content-Type": "application/x-protobuf",
                                                             "Content-Encoding": "gzip"}) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
                await response.read()


def bench_http(requests: list[bytes], settings: Any = None) -> tuple[int, int, float]:
    from collectors.otlp.server import PUBLISHER, RECEIVER, create_app, start

    bodies = [gzip.compress(body, 1) for body in requests]
    sink = None if settings is not None else NullSink(encode=True)

    async def run() -> tuple[int, int, float, float]:
        app = create_app(settings, otlp=OtlpSettings(join_seconds=0, max_body_bytes=64 << 20,
                                                     max_decompressed_bytes=256 << 20, queue_size=1_000_000),
                         sink=sink)
        runner, port = await start(app, "127.0.0.1", 0)
        try:
            began = time.perf_counter()
            await _post_all(f"http://127.0.0.1:{port}/v1/traces", bodies)
            accepted = time.perf_counter() - began
            drained = accepted
            publisher = app.get(PUBLISHER)
            if publisher is not None:
                ok = await asyncio.get_running_loop().run_in_executor(None, publisher.flush, 120.0)
                drained = time.perf_counter() - began
                if not ok:
                    print("warning: Kafka did not acknowledge everything within 120 s", file=sys.stderr)
            stats = app[RECEIVER].stats()
            return stats.get("spans_received", 0), stats.get("events_published", 0), accepted, drained
        finally:
            await runner.cleanup()

    spans, events, accepted, drained = asyncio.run(run())
    return spans, events, accepted if settings is None else drained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request")
    parser.add_argument("--turns", type=int, default=6, help="turns per conversation")
    parser.add_argument("--kafka", metavar="BOOTSTRAP", help="also publish into this broker (a topic is created)")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        cpu = args.cpu if args.cpu is not None else min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})

    requests = build_requests(args.spans, args.batch, args.turns)
    size = sum(len(r) for r in requests)
    print(f"{args.spans} spans in {len(requests)} requests of <= {args.batch} spans, "
          f"{size / 1e6:.1f} MB protobuf ({size / args.spans:.0f} B/span), one CPU\n")
    rows: list[tuple[str, int, int, float, float]] = []

    def timed(name: str, fn: Any) -> None:
        began, cpu = time.perf_counter(), time.process_time()
        result = fn()
        elapsed = result[2] if len(result) == 3 else time.perf_counter() - began
        rows.append((name, result[0], result[1], elapsed, time.process_time() - cpu))

    timed("decode", partial(bench_decode, requests))
    timed("map", partial(bench_map, requests, False))
    timed("map+encode", partial(bench_map, requests, True))
    timed("http", partial(bench_http, requests))
    if args.kafka:
        from schemas.settings import Settings
        from tests.harness import create_topic

        topic = f"bench.otlp.{os.getpid()}.{int(time.time())}"
        create_topic(args.kafka, topic, partitions=3)
        with tempfile.TemporaryDirectory() as home:
            settings = Settings(kafka_bootstrap_servers=args.kafka, topic_events=topic, home=Path(home),
                                sdk_queue_size=1_000_000)
            timed("http+kafka", partial(bench_http, requests, settings))

    print(f"{'stage':<12} {'spans':>8} {'events':>8} {'wall s':>7} {'spans/s':>9} {'events/s':>9} "
          f"{'cpu s':>7} {'spans/cpu-s':>12}")
    for name, spans, events, elapsed, cpu in rows:
        print(f"{name:<12} {spans:>8} {events:>8} {elapsed:>7.2f} {spans / elapsed:>9,.0f} "
              f"{(events / elapsed if events else 0):>9,.0f} {cpu:>7.2f} {spans / max(cpu, 1e-9):>12,.0f}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\ntarget: >= 5,000 spans/s through the receiver (http) on one core. Load average now {load:.1f}: "
          "on a shared machine wall-clock rates drop, spans/cpu-s is what one free core would do "
          "(http+kafka: cpu s excludes the broker).")


if __name__ == "__main__":
    main()
