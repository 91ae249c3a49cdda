"""`aiwatch baseline suggest --app X` from the live store: the worker's baseline snapshots in ClickHouse."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import yaml

from collectors.synthetic import APPS, session_events
from tests.harness import WorkerProcess, produce

APP = "example-support-bot"


def _sessions(n: int) -> list[dict]:
    rng = random.Random(11)
    start = datetime.now(timezone.utc) - timedelta(hours=2)
    out: list[dict] = []
    while len({e["session_id"] for e in out}) < n:
        events = session_events(rng, start + timedelta(seconds=len(out)))
        if events[0]["app"] == APP:
            out.extend(events)
    return out


def _suggest(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", "baseline", "suggest", *args],
                          env=worker.env(), capture_output=True, text=True, timeout=120)


def test_suggest_reads_the_latest_snapshot_of_the_running_worker(kafka_bootstrap: str, tmp_path: Path,
                                                                  topic_prefix: str, clickhouse_dsn: str) -> None:
    worker = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                           extra_env={"AIWATCH_BASELINE_SNAPSHOT_SECONDS": "1", "AIWATCH_CLASSIFIER": "off"}).start()
    try:
        before = _suggest(worker, "--app", APP)
        assert before.returncode == 1 and "no snapshot of app" in before.stderr, before.stderr

        events = _sessions(40)
        produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in events])
        worker.wait_for("SELECT count() FROM events", len(events))
        # a later event closes the sessions (idle timeout is judged on event time)
        late = _sessions(1)
        for e in late:
            e["ts"] = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
        produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in late])
        worker.wait_for(f"SELECT count() > 0 FROM baselines WHERE app = '{APP}' AND detector = 'rare_tool_by_app'", 1,
                        timeout=60)

        run = _suggest(worker, "--app", APP)
        assert run.returncode == 0, run.stderr
        assert "from the baselines snapshot of" in run.stderr
        proposal = yaml.safe_load(run.stdout)
        used = {e["tool"]["name"] for e in events if e.get("tool")}
        assert used <= set(APPS[APP]["tools"])
        assert set(proposal["allow_lists"]["tools"]) == used, "the allow-list is what the app was seen using"

        current = tmp_path / "current.yml"
        current.write_text(yaml.safe_dump({"allow_lists": {"tools": sorted(used)[:1]}}), encoding="utf-8")
        diff = _suggest(worker, "--app", APP, "--current", str(current), "--diff")
        assert diff.returncode == 0, diff.stderr
        assert diff.stdout.startswith("---") and any(line.startswith("+") for line in diff.stdout.splitlines())

        other = _suggest(worker, "--app", "no-such-app")
        assert other.returncode == 1 and "no snapshot of app 'no-such-app'" in other.stderr
    finally:
        worker.stop()
