"""``aiwatch demo``: the quickstart's main job on embedded defaults.

Starts the local broker (infra/kafka/start.sh) if none answers, runs the worker, sends a stream of
demo agent sessions plus a few malformed messages, and prints what was stored and dead-lettered.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from collectors.synthetic import synthetic_events
from schemas.settings import Settings

REPO = Path(__file__).resolve().parents[1]
MALFORMED = [b"not json at all", b'{"schema": "aiwatch.event/1", "kind": "prompt"}', b"\xff\xfe broken utf-8"]


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def _start_local_broker(settings: Settings) -> bool:
    host, _, port = settings.kafka_bootstrap_servers.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"aiwatch demo: Kafka at {settings.kafka_bootstrap_servers} does not answer")
    print(f"• starting a local Kafka broker on 127.0.0.1:{port} (infra/kafka/start.sh) …", flush=True)
    env = dict(os.environ, KAFKA_PORT=port)
    subprocess.run(["bash", str(REPO / "infra" / "kafka" / "start.sh")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return True


def _health(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"http://{settings.web_host}:{settings.web_port}/health", timeout=2):
            return True
    except OSError:
        return False


def _start_worker(settings: Settings) -> subprocess.Popen:
    log_path = settings.home / "worker.log"
    settings.home.mkdir(parents=True, exist_ok=True)
    print(f"• starting the worker (log {log_path}) …", flush=True)
    # the demo shows the trained injection classifier too (off by default in production for throughput)
    env = {**os.environ, "AIWATCH_CLASSIFIER": os.environ.get("AIWATCH_CLASSIFIER", "untrusted")}
    proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"aiwatch demo: the worker exited ({proc.returncode}); see {log_path}")
        if _health(settings):
            return proc
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit(f"aiwatch demo: the worker did not become healthy; see {log_path}")


async def _publish(settings: Settings, payloads: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all",
                                enable_idempotence=True, **settings.kafka_client_options())
    await producer.start()
    try:
        futures = [await producer.send(settings.topic_events, value, key=key) for key, value in payloads]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def run_demo(settings: Settings, sessions: int = 20, keep_running: bool = False) -> int:
    from streams.cli import print_table, run_query

    started_broker = False
    if not _reachable(settings.kafka_bootstrap_servers):
        started_broker = _start_local_broker(settings)
    worker = None if _health(settings) else _start_worker(settings)
    try:
        before = run_query(settings, "SELECT count() FROM events")["rows"][0][0]
        events = list(synthetic_events(sessions * 5, seed=int(time.time()), incident_rate=0.3))
        payloads = [(e["session_id"].encode(), orjson.dumps(e)) for e in events] + [(None, m) for m in MALFORMED]
        print(f"• sending {len(events)} events from {sessions} agent sessions and {len(MALFORMED)} malformed "
              f"messages to {settings.topic_events} …", flush=True)
        asyncio.run(_publish(settings, payloads))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if run_query(settings, "SELECT count() FROM events")["rows"][0][0] >= before + len(events):
                break
            time.sleep(0.3)
        time.sleep(1.0)  # findings of the last batch are written right after its events
        print(f"\nStored in ClickHouse ({settings.dsn}):\n")
        result = run_query(settings, "SELECT app, kind, count() AS events, uniqExact(session_id) AS sessions "
                                     "FROM events GROUP BY app, kind ORDER BY app, kind")
        print_table(result["columns"], result["rows"])
        print("\nDead-lettered (original bytes kept on the DLQ topic):\n")
        result = run_query(settings, "SELECT reason, detail, size_bytes FROM dlq ORDER BY received_at DESC LIMIT 5")
        print_table(result["columns"], result["rows"], max_width=90)
        print("\nFindings (content detectors and rules; shadow AI, leaked secrets, injected instructions):\n")
        result = run_query(settings, "SELECT category, severity, if(rule_id = '', detector, rule_id) AS raised_by, "
                                     "mode, count() AS findings FROM findings GROUP BY category, severity, raised_by, mode "
                                     "ORDER BY findings DESC LIMIT 15")
        print_table(result["columns"], result["rows"])
        result = run_query(settings, "SELECT count() FROM alerts")
        print(f"\nAlerts on the SOC feed ({settings.topic_alerts}, OCSF Detection Finding): {result['rows'][0][0]}")
        session = events[0]["session_id"]
        print(f"\nTimeline of session {session}:\n")
        result = run_query(settings, "SELECT ts, kind, user_id, tool_name, left(content_text, 50) AS text "
                                     f"FROM events WHERE session_id = '{session}' ORDER BY ts")
        print_table(result["columns"], result["rows"])
        from streams.evidence import verify_store

        report = verify_store(lambda sql: run_query(settings, sql))
        print(f"\nTamper-evident record (`aiwatch evidence verify`): {report.summary().splitlines()[0]}")
        print(f"\nCounters: curl http://{settings.web_host}:{settings.web_port}/metrics")
    finally:
        if keep_running:
            print("\nThe broker and worker keep running: `aiwatch query \"SELECT ...\"`; "
                  "stop with `bash infra/kafka/stop.sh` and Ctrl-C/kill of the worker.")
        else:
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            if started_broker:
                subprocess.run(["bash", str(REPO / "infra" / "kafka" / "stop.sh")], check=False,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return 0
