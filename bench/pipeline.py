"""End-to-end benchmark: producer → Kafka → aiwatch worker → rows in ClickHouse (one worker).

Not a test. Measures, with ~1 KB synthetic events:
  1. drain: the topic is pre-loaded with N events, then the worker starts; events/s until all are stored
     (the worker's own throughput, the producer not competing for the 2 cores);
  2. live: a producer sends N events as fast as it can while the worker runs; sustained events/s;
  3. latency: a producer paced at RATE events/s (half the target); p50/p99 of stored-at minus event time,
     and of alert-stored-at minus event time for the alerts its planted incidents raise (SOC feed).

Usage: python bench/pipeline.py [--events 200000] [--rate 5000]
Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts the local broker (infra/kafka/start.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collectors.synthetic import synthetic_events  # noqa: E402
from streams.topics import delete_topics_with_prefix  # noqa: E402
from tests.harness import WorkerProcess  # noqa: E402


def payloads(count: int, seed: int, incident_rate: float = 0.0) -> list[tuple[bytes, dict]]:
    events = list(synthetic_events(count, seed=seed, incident_rate=incident_rate))
    return [(e["session_id"].encode(), e) for e in events]


async def produce(bootstrap: str, topic: str, items: list[tuple[bytes, dict]], rate: float | None = None,
                  stamp: bool = False) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=262_144)
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for n, (key, event) in enumerate(items):
            if rate:
                due = started + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            if stamp:
                event["ts"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                event["labels"] = {"bench": "latency"}
            pending.append(await producer.send(topic, orjson.dumps(event), key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def wait_count(worker: WorkerProcess, expected: int, timeout: float = 1800) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.scalar("SELECT count() FROM events") >= expected:
            return time.perf_counter()
        time.sleep(0.02)
    raise TimeoutError(f"not all {expected} events stored\n{worker.log_tail()}")


def start_broker(home: Path) -> tuple[str, dict[str, str]]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return os.environ["KAFKA_BOOTSTRAP_SERVERS"], {}
    from tests.brokers import LocalBroker

    broker = LocalBroker(home / "kafka")
    os.environ["KAFKA_FAST_START"] = "0"  # full JIT for throughput
    broker.start()
    return broker.bootstrap, {"stop": "1", "dir": str(broker.directory)}


def stop_broker(broker_info: dict[str, str], bootstrap: str = "", prefixes: Iterable[str] = ()) -> None:
    """Stop (and wipe) the broker ``start_broker`` started; on one given by the environment, delete the
    run's topics (those starting with ``prefixes``) instead."""
    if broker_info.get("stop"):
        env = dict(os.environ, AIWATCH_KAFKA_DIR=broker_info["dir"])
        subprocess.run(["bash", str(REPO / "infra/kafka/stop.sh"), "--wipe"], env=env, check=False)
    elif bootstrap and prefixes:
        asyncio.run(delete_topics_with_prefix(bootstrap, prefixes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=5_000, help="paced rate of the latency run (events/s)")
    parser.add_argument("--latency-seconds", type=float, default=30)
    parser.add_argument("--incident-rate", type=float, default=0.02,
                        help="share of sessions with a planted incident in the latency run (they raise alerts)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aiwatch-bench-"))
    bootstrap, broker_info = start_broker(home)
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    worker = WorkerProcess(bootstrap, home / "worker", prefix, f"chdb://{home / 'clickhouse'}",
                           extra_env={"AIWATCH_WORKER_LOG_LEVEL": "ERROR"})
    results: list[tuple[str, str]] = []
    try:
        worker.start()  # creates topics and tables
        worker.stop()
        items = payloads(args.events, seed=1)
        avg = sum(len(orjson.dumps(e)) for _, e in items[:5000]) / 5000
        print(f"{args.events} events, {avg:.0f} bytes average; broker {bootstrap}", flush=True)

        produce_s = asyncio.run(produce(bootstrap, worker.topics["events"], items))
        print(f"pre-loaded in {produce_s:.1f}s ({args.events / produce_s:,.0f}/s producer alone)", flush=True)
        t0 = time.perf_counter()
        worker.start()
        first = wait_count(worker, 1)
        counted = worker.scalar("SELECT count() FROM events")
        done = wait_count(worker, args.events)
        drain = (args.events - counted) / (done - first)
        results.append(("worker start-up (process start to first stored row)", f"{first - t0:.1f} s"))
        results.append(("drain (pre-loaded topic, worker alone)", f"{drain:,.0f} events/s"))
        print(results[-1], flush=True)

        items = payloads(args.events, seed=2)
        t0 = time.perf_counter()
        asyncio.run(produce(bootstrap, worker.topics["events"], items))
        done = wait_count(worker, 2 * args.events)
        live = args.events / (done - t0)
        results.append(("live (producer + worker together)", f"{live:,.0f} events/s"))
        print(results[-1], flush=True)

        n = int(args.rate * args.latency_seconds)
        items = payloads(n, seed=3, incident_rate=args.incident_rate)
        asyncio.run(produce(bootstrap, worker.topics["events"], items, rate=args.rate, stamp=True))
        wait_count(worker, 2 * args.events + n)
        p50, p99, mx = worker.sql(
            "SELECT quantile(0.5)(d), quantile(0.99)(d), max(d) FROM (SELECT "
            "dateDiff('millisecond', ts, ingested_at) AS d FROM events WHERE labels['bench'] = 'latency')"
        )[0]
        results.append((f"produce-to-stored latency at {args.rate:,.0f}/s",
                        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {mx:.0f} ms"))
        print(results[-1], flush=True)
        # Event-to-alert (DESIGN §5): an alert row's ts is its event's; ingested_at is when the SOC feed's
        # copy was stored, after the alert was published. Only the first alert of a throttle group is
        # immediate (the rest are rolled up by design), so these are the immediate ones.
        time.sleep(2)
        count, a50, a99, amx = worker.sql(
            "SELECT count(), quantile(0.5)(d), quantile(0.99)(d), max(d) FROM (SELECT "
            "dateDiff('millisecond', ts, ingested_at) AS d FROM alerts "
            f"WHERE ts >= now64(3) - INTERVAL {int(args.latency_seconds) + 120} SECOND)"
        )[0]
        if count:
            results.append((f"event-to-alert latency at {args.rate:,.0f}/s ({count} alerts)",
                            f"p50 {a50:.0f} ms, p99 {a99:.0f} ms, max {amx:.0f} ms"))
            print(results[-1], flush=True)
        print("\n| measure | result |\n|---|---|")
        for name, value in results:
            print(f"| {name} | {value} |")
        print("\ncounters:", {k: v for k, v in worker.counters().items()})
    finally:
        worker.stop()
        stop_broker(broker_info, bootstrap, [prefix])


if __name__ == "__main__":
    main()
