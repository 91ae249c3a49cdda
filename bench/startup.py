"""Worker start-up benchmark: process start → /health answers → first event stored.

Not a test. Each run starts a fresh worker (new topics, new embedded ClickHouse), waits for /health,
sends one event and waits for its row; then, with ``--restarts``, stops it and starts it again on the
same state (the local state file is restored). Prints the times of every run and their range.

Usage: python bench/startup.py [--runs 3]
Uses KAFKA_BOOTSTRAP_SERVERS when set, otherwise starts the local broker (infra/kafka/start.sh).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.pipeline import start_broker, stop_broker  # noqa: E402
from collectors.synthetic import synthetic_events  # noqa: E402
from tests.harness import WorkerProcess, produce  # noqa: E402


def timed_start(worker: WorkerProcess, stored: int, seed: int) -> tuple[float, float]:
    """(seconds to /health, seconds to the next event's row) from process start."""
    t0 = time.monotonic()
    worker.start()
    healthy = time.monotonic() - t0
    produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in synthetic_events(1, seed=seed)])
    worker.wait_for("SELECT count() FROM events", stored + 1, timeout=120)
    return healthy, time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aiwatch-startup-"))
    bootstrap, broker_info = start_broker(home)
    rows: dict[str, list[tuple[float, float]]] = {"first start (new state)": [], "restart (local state)": []}
    prefixes: list[str] = []
    try:
        for run in range(args.runs):
            prefix = f"startup{uuid.uuid4().hex[:6]}"
            prefixes.append(prefix)
            worker = WorkerProcess(bootstrap, home / prefix, prefix, f"chdb://{home / prefix / 'clickhouse'}",
                                   extra_env={"AIWATCH_WORKER_LOG_LEVEL": "ERROR"})
            try:
                rows["first start (new state)"].append(timed_start(worker, 0, seed=run))
                worker.stop()
                rows["restart (local state)"].append(timed_start(worker, 1, seed=100 + run))
            finally:
                worker.stop()
            for name, values in rows.items():
                print(f"run {run + 1}: {name}: /health {values[-1][0]:.2f} s, first row {values[-1][1]:.2f} s",
                      flush=True)
        print("\n| start | /health | first stored row |\n|---|---|---|")
        for name, values in rows.items():
            health, first = [v[0] for v in values], [v[1] for v in values]
            print(f"| {name} | {min(health):.1f}–{max(health):.1f} s | {min(first):.1f}–{max(first):.1f} s |")
    finally:
        stop_broker(broker_info, bootstrap, prefixes)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
