"""Time the SDK adds on the application thread per recorded event (DESIGN §5: ≤ 20 µs median,
zero blocking when Kafka is down).

Records ``--calls`` prompts of ~1 KB each, back to back, inside a session, timing every call with
``perf_counter_ns``; once with a real broker up and once with the bootstrap pointing at a closed
port (everything goes to the spool). The queue is sized so no call takes the cheaper drop path.
Prints median / p99 / p99.9 / max per call and what became of the events.

Reading the numbers: back to back, p99.9 and max are GIL hand-offs to the publisher thread
(``sys.getswitchinterval()`` = 5 ms) and garbage collections, and "spooled" with the broker up is
backlog beyond what one producer sends per second (it goes to disk, not dropped). The paced
scenario sleeps between calls, so each call runs on a cold CPU: on a small VM that alone costs
~10 µs even with the publisher disabled.

    python bench/sdk_record.py                       # starts a local broker (infra/kafka/start.sh)
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 python bench/sdk_record.py --calls 100000
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import string
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collectors.sdk import Monitor  # noqa: E402
from schemas.settings import Settings  # noqa: E402
from tests.brokers import free_port, kafka_broker  # noqa: E402
from tests.harness import create_topic  # noqa: E402


def texts(count: int = 256, size: int = 1024) -> list[str]:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "      .,"
    return ["".join(rng.choices(alphabet, k=size)) for _ in range(count)]


def run(label: str, settings: Settings, calls: int, flush_timeout: float, rate: float = 0.0) -> dict[str, object]:
    """Time ``calls`` record calls; ``rate`` > 0 paces them (events/s) like a real application would."""
    samples = array("q", bytes(8 * calls))
    payloads = texts()
    monitor = Monitor("bench", env="bench", settings=settings)
    time.sleep(0.5)  # let the first connection attempt settle, as in a running application
    clock = time.perf_counter_ns
    interval = int(1e9 / rate) if rate else 0
    with monitor.session(user_id="u-1", roles=["bench"], agent="bench-agent"):
        started = clock()
        for i in range(calls):
            if interval:
                pause = started + i * interval - clock()
                if pause > 0:
                    time.sleep(pause / 1e9)
            t0 = clock()
            monitor.prompt(payloads[i & 255], model="gpt-4o")
            samples[i] = clock() - t0
        elapsed = (clock() - started) / 1e9
    drained_at = time.perf_counter()
    delivered = monitor.flush(flush_timeout) if "up" in label else False
    drain_seconds = time.perf_counter() - drained_at
    monitor.close(timeout=flush_timeout)
    stats = monitor.stats()
    ordered = sorted(samples)
    us = lambda q: ordered[min(int(q * calls), calls - 1)] / 1000  # noqa: E731
    return {
        "scenario": label, "median": statistics.median(ordered) / 1000, "p99": us(0.99), "p999": us(0.999),
        "max": ordered[-1] / 1000, "calls_per_s": calls / elapsed, "sent": stats["sent"],
        "spooled": stats["spooled"], "dropped": stats["dropped"],
        "drain": f"{drain_seconds:.1f}s" if delivered else "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--flush-timeout", type=float, default=120.0)
    parser.add_argument("--paced-rate", type=float, default=2000.0, help="events/s of the paced scenario")
    parser.add_argument("--paced-calls", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aiwatch-bench-") as tmp, \
            kafka_broker(Path(tmp) / "kafka", args.bootstrap) as bootstrap:
        topic = create_topic(bootstrap, f"bench.{uuid.uuid4().hex[:8]}.events", partitions=3)
        common = {"topic_events": topic, "sdk_queue_size": args.calls + 1}
        rows = [
            run("broker up", Settings(home=Path(tmp) / "up", kafka_bootstrap_servers=bootstrap, **common),
                args.calls, args.flush_timeout),
            run("broker down", Settings(home=Path(tmp) / "down",
                                        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", **common),
                args.calls, args.flush_timeout),
        ]
        if args.paced_calls:
            rows.append(run(f"up, {args.paced_rate:.0f}/s",
                            Settings(home=Path(tmp) / "paced", kafka_bootstrap_servers=bootstrap, **common),
                            args.paced_calls, args.flush_timeout, rate=args.paced_rate))

    print(f"\nSDK record() on the application thread: {args.calls} calls back to back "
          f"({args.paced_calls} paced), 1 KB prompts, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    header = f"{'scenario':<14} {'median µs':>10} {'p99 µs':>9} {'p99.9 µs':>9} {'max µs':>9} {'calls/s':>9} " \
             f"{'sent':>7} {'spooled':>8} {'dropped':>8} {'drain':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['scenario']:<14} {r['median']:>10.1f} {r['p99']:>9.1f} {r['p999']:>9.1f} {r['max']:>9.0f} "
              f"{r['calls_per_s']:>9.0f} {r['sent']:>7} {r['spooled']:>8} {r['dropped']:>8} {r['drain']:>6}")
    print("\ntarget (DESIGN §5): median ≤ 20 µs per recorded event; no blocking when Kafka is down")


if __name__ == "__main__":
    main()
