"""End to end against the real broker and the real ClickHouse engine: Kafka → worker → rows."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from collectors.synthetic import synthetic_events
from tests.harness import WorkerProcess, consume_all, produce

pytestmark = pytest.mark.kafka


@pytest.fixture
def worker(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str, clickhouse_dsn: str) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_CLASSIFIER": "untrusted"}).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_valid_events_are_stored_with_their_fields(worker: WorkerProcess) -> None:
    events = list(synthetic_events(500, seed=1))
    events[0]["labels"] = {"workflow": "refunds"}
    events[0]["future_field"] = {"kept": True}
    produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in events])

    worker.wait_for("SELECT count() FROM events", 500)
    assert worker.scalar("SELECT uniqExact(event_id) FROM events") == 500
    kinds = dict(worker.sql("SELECT kind, count() FROM events GROUP BY kind"))
    assert kinds == {"prompt": 100, "retrieval": 100, "tool_call": 100, "tool_result": 100, "completion": 100}

    first = events[0]
    row = worker.sql(
        "SELECT app, session_id, user_id, content_text, labels, extra FROM events "
        f"WHERE event_id = '{first['event_id']}'"
    )[0]
    assert row[:4] == [first["app"], first["session_id"], first["actor"]["user_id"],
                       first["content"]["text"]]
    assert row[4] == {"workflow": "refunds"}
    assert orjson.loads(row[5]) == {"future_field": {"kept": True}}

    call = next(e for e in events if e["kind"] == "tool_call")
    args = worker.scalar(f"SELECT tool_arguments FROM events WHERE event_id = '{call['event_id']}'")
    assert orjson.loads(args) == call["tool"]["arguments"]
    counters = worker.counters()
    assert counters["aiwatch_events_received_total"] == 500
    assert counters["aiwatch_events_written_total"] == 500


MALFORMED = {
    "not_json": b"this is not json {",
    "wrong_types": orjson.dumps({"schema": "aiwatch.event/1", "event_id": 42, "ts": "yesterday",
                                 "kind": "prompt", "app": ["x"]}),
    "missing_fields": orjson.dumps({"schema": "aiwatch.event/1", "kind": "prompt"}),
    "invalid_utf8": b'{"schema": "aiwatch.event/1", "text": "\xff\xfe\xfa"}',
    "ten_mb": b'{"schema":"aiwatch.event/1","pad":"' + b"A" * (10 * 1024 * 1024) + b'"}',
    "not_an_object": b"[1, 2, 3]",
    "unknown_kind": orjson.dumps({"schema": "aiwatch.event/1", "event_id": "e", "ts": "2026-01-01T00:00:00Z",
                                  "kind": "telepathy", "app": "a"}),
}
EXPECTED_REASON = {
    "not_json": "not_json", "wrong_types": "invalid", "missing_fields": "invalid", "invalid_utf8": "bad_encoding",
    "ten_mb": "too_large", "not_an_object": "not_object", "unknown_kind": "invalid",
}


def test_malformed_input_goes_to_the_dlq_with_bytes_and_reason(worker: WorkerProcess) -> None:
    names = list(MALFORMED)
    good = list(synthetic_events(10, seed=2))
    values = [MALFORMED[n] for n in names] + [orjson.dumps(e) for e in good]
    keys = [n.encode() for n in names] + [None] * len(good)
    produce(worker.bootstrap, worker.topics["events"], values, keys=keys)

    worker.wait_for("SELECT count() FROM events", 10)
    worker.wait_for("SELECT count() FROM dlq", len(names))
    records = consume_all(worker.bootstrap, worker.topics["dlq"], len(names))
    by_key = {r.key.decode(): r for r in records}
    assert set(by_key) == set(names)
    for name in names:
        record = by_key[name]
        headers = dict(record.headers)
        assert record.value == MALFORMED[name], f"{name}: DLQ must keep the original bytes"
        assert headers["aiwatch.reason"].decode() == EXPECTED_REASON[name], name
        assert headers["aiwatch.detail"], name
        assert headers["aiwatch.source"].startswith(worker.topics["events"].encode())

    stored = {r[0]: r[1:] for r in worker.sql("SELECT reason, detail, size_bytes, payload_truncated FROM dlq")}
    assert set(stored) == set(EXPECTED_REASON.values())
    assert "missing" in stored["invalid"][0] or "Input should be" in stored["invalid"][0]
    ten_mb = worker.sql("SELECT size_bytes, payload_truncated, length(payload) FROM dlq WHERE reason = 'too_large'")
    assert ten_mb == [[len(MALFORMED["ten_mb"]), True, 1_048_576]]

    # The worker kept running: a later valid event is still stored, and the counters add up.
    later = list(synthetic_events(1, seed=3))
    produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(later[0])])
    worker.wait_for("SELECT count() FROM events", 11)
    counters = worker.counters()
    invalid = sum(v for k, v in counters.items() if k.startswith("aiwatch_events_invalid_total"))
    assert invalid == len(names)
    assert counters["aiwatch_events_received_total"] == len(names) + 11
    assert counters["aiwatch_events_valid_total"] + invalid == counters["aiwatch_events_received_total"]


@pytest.mark.slow
def test_sigkill_mid_stream_then_restart_stores_every_event_exactly_once(worker: WorkerProcess) -> None:
    total = 30_000
    payloads = [orjson.dumps(e) for e in synthetic_events(total, seed=4)]
    producer = threading.Thread(target=produce, args=(worker.bootstrap, worker.topics["events"], payloads))
    producer.start()

    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline:
        stored = worker.scalar("SELECT count() FROM events")
        if stored >= 2_000:
            break
        time.sleep(0.05)
    assert 0 < stored < total, f"the kill must land mid-stream, {stored} of {total} were stored"
    worker.kill()
    producer.join(timeout=180)

    worker.start()
    worker.wait_for("SELECT count() FROM events", total, timeout=300)
    assert worker.scalar("SELECT uniqExact(event_id) FROM events") == total
    # And nothing more arrives later (no duplicate rows from a late redelivery).
    time.sleep(3)
    assert worker.scalar("SELECT count() FROM events") == total


def test_sdk_to_broker_to_worker_to_clickhouse(worker: WorkerProcess) -> None:
    """The whole path a user sees: an app records with the SDK, the worker stores, SQL answers."""
    from collectors.sdk import Monitor
    from schemas.settings import Settings

    settings = Settings(home=worker.home / "app", kafka_bootstrap_servers=worker.bootstrap,
                        topic_events=worker.topics["events"])
    monitor = Monitor(app="billing-bot", env="test", settings=settings)

    @monitor.tool
    def refund(order_id: str, amount: float) -> str:
        return f"refunded {amount} on {order_id}"

    try:
        with monitor.session(user_id="u-42", roles=["support"], agent="triage", session_id="sess-e2e"):
            monitor.prompt("please refund order 991", model="gpt-4o")
            monitor.retrieval("kb://refund-policy", [{"id": "doc-1", "score": 0.9, "text": "refunds within 30 days"}])
            refund("991", 12.5)
            monitor.completion("done, refunded 12.5", model="gpt-4o",
                               usage={"input_tokens": 120, "output_tokens": 9})
        assert monitor.flush(timeout=30), monitor.stats()
    finally:
        monitor.close(timeout=10)

    worker.wait_for("SELECT count() FROM events WHERE session_id = 'sess-e2e'", 5)
    rows = worker.sql(
        "SELECT kind, user_id, agent, tool_name, content_text FROM events "
        "WHERE session_id = 'sess-e2e' ORDER BY ts, kind"
    )
    assert [r[0] for r in rows] == ["prompt", "retrieval", "tool_call", "tool_result", "completion"]
    assert {r[1] for r in rows} == {"u-42"} and {r[2] for r in rows} == {"triage"}
    assert rows[2][3] == rows[3][3] == "refund"
    assert rows[3][4] == "refunded 12.5 on 991"
    assert worker.scalar("SELECT output_tokens FROM events WHERE session_id = 'sess-e2e' AND kind = 'completion'") == 9


def _incident_session(incident: str, seed: int) -> list[dict]:
    import random
    from datetime import datetime, timezone

    from collectors.synthetic import session_events

    events = session_events(random.Random(seed), datetime.now(timezone.utc), incident=incident)
    for event in events:
        event["app"] = "example-support-bot"  # alert mode in the default rule pack
        if event.get("model") and incident != "shadow_ai":
            event["model"] = {"provider": "openai", "name": "gpt-4o-mini", "served": "gpt-4o-mini",
                              "endpoint": "api.openai.com"}
    return events


def test_findings_and_ocsf_alerts_from_the_worker(worker: WorkerProcess) -> None:
    sessions = {name: _incident_session(name, seed) for seed, name in
                enumerate(("shadow_ai", "secret_in_output", "indirect_injection"), start=20)}
    benign = _incident_session("none", 30)
    events = [e for s in sessions.values() for e in s] + benign
    produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in events])
    worker.wait_for("SELECT count() FROM events", len(events))

    def categories(session: list[dict]) -> set[str]:
        sid = session[0]["session_id"]
        return {r[0] for r in worker.sql(f"SELECT DISTINCT category FROM findings WHERE session_id = '{sid}'")}

    def raised(session: list[dict], category: str) -> None:
        """Findings follow their batch's events into the store: wait for them, do not race the writer."""
        sid = session[0]["session_id"]
        worker.wait_for(f"SELECT count() > 0 FROM findings WHERE session_id = '{sid}' AND category = '{category}'",
                        1, timeout=60)

    raised(sessions["shadow_ai"], "unapproved_model")
    raised(sessions["secret_in_output"], "secret_leak")
    raised(sessions["indirect_injection"], "prompt_injection")
    injected = sessions["indirect_injection"][0]["session_id"]
    worker.wait_for(f"SELECT count() > 0 FROM findings WHERE detector = 'classifier' AND session_id = '{injected}'", 1)
    # the trained classifier runs in the worker on untrusted content (AIWATCH_CLASSIFIER=untrusted)
    assert worker.scalar(f"SELECT any(JSONExtractString(evidence, 1, 'placement')) FROM findings "
                         f"WHERE detector = 'classifier' AND session_id = '{injected}'") == "indirect"
    assert categories(benign) == set(), "an ordinary session on approved models raises nothing"

    # No raw secret reaches the findings table (the monitor must not become the leak).
    secret_text = next(e for e in sessions["secret_in_output"] if e["kind"] == "completion")["content"]["text"]
    key = secret_text.split("aws_access_key_id = ")[1].split()[0]
    assert worker.scalar(f"SELECT count() FROM findings WHERE position(evidence, '{key}') > 0 "
                         f"OR position(rationale, '{key}') > 0") == 0
    # ... nor the events table: the stored copy is redacted (AIWATCH_REDACT=secrets, the default)
    assert worker.scalar(f"SELECT count() FROM events WHERE position(content_text, '{key}') > 0") == 0
    stored = worker.scalar(f"SELECT content_text FROM events WHERE event_id = "
                           f"'{next(e for e in sessions['secret_in_output'] if e['kind'] == 'completion')['event_id']}'")
    assert "[REDACTED secret.aws_access_key sha256:" in stored
    assert worker.counters()["aiwatch_redacted_values_total"] >= 1

    # Alert-mode rule findings reach the SOC feed as OCSF Detection Findings, and the alerts table.
    alerts_stored = worker.scalar("SELECT count() FROM alerts")
    assert alerts_stored >= 3
    records = consume_all(worker.bootstrap, worker.topics["alerts"], alerts_stored)
    alerts = [orjson.loads(r.value) for r in records]
    assert all(a["class_uid"] == 2004 and a["type_uid"] == 200401 for a in alerts)
    assert {a["finding_info"]["types"][0] for a in alerts} >= {"unapproved_model", "secret_leak", "prompt_injection"}
    injection = next(a for a in alerts if a["finding_info"]["types"][0] == "prompt_injection")
    assert any(att["technique"]["uid"].startswith("AML.T0051") for att in injection["finding_info"]["attacks"])
    assert injection["finding_info"]["related_events"][0]["uid"] in {e["event_id"] for e in events}
    assert injection["finding_info"]["analytic"]["type"] == "Rule"
    findings = consume_all(worker.bootstrap, worker.topics["findings"], 1)
    assert orjson.loads(findings[0].value)["schema"] == "aiwatch.finding/1"
    # The pack in force is recorded for change control, and every rule finding carries its version.
    version = worker.scalar("SELECT policy_version FROM policy_changes ORDER BY changed_at DESC LIMIT 1")
    assert worker.scalar(f"SELECT countIf(policy_version != '{version}') FROM findings WHERE detector = 'rules'") == 0


def test_worker_refuses_a_bad_rule_pack(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str,
                                        clickhouse_dsn: str) -> None:
    import subprocess
    import sys

    bad = tmp_path / "rules"
    bad.mkdir()
    (bad / "broken.yml").write_text("rules:\n  - id: x\n    title: t\n    match:\n      model.name: {contain: gpt}\n")
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_RULES_PATHS": f'["{bad}"]'})
    result = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=proc.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "broken.yml:" in result.stderr and "refusing to start" in result.stderr


def test_worker_refuses_an_unknown_excluded_detector(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str,
                                                     clickhouse_dsn: str) -> None:
    import subprocess
    import sys

    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_DETECTORS_EXCLUDE": '["secret.templat"]'})
    result = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=proc.env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "refusing to start, AIWATCH_DETECTORS_EXCLUDE: unknown detector id 'secret.templat'" in result.stderr
    assert "did you mean 'secret.template'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("variant", [{"AIWATCH_INGEST_MODE": "faust"}, {"AIWATCH_BEHAVIOR": "false"},
                                     {"AIWATCH_DETECT": "false"}], ids=["faust-agent", "no-behavior", "no-detect"])
def test_other_worker_configurations_store_and_dead_letter(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str,
                                                           clickhouse_dsn: str, variant: dict[str, str]) -> None:
    """The Faust take_events feeder, and the batch feeder without the stateful layer or without detection,
    keep the same guarantees as the default."""
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn, extra_env=variant).start()
    try:
        events = list(synthetic_events(200, seed=8))
        bad = [MALFORMED["not_json"], MALFORMED["missing_fields"], MALFORMED["invalid_utf8"]]
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in events] + bad)
        proc.wait_for("SELECT count() FROM events", 200)
        proc.wait_for("SELECT count() FROM dlq", 3)
        assert proc.scalar("SELECT uniqExact(event_id) FROM events") == 200
        assert len(consume_all(proc.bootstrap, proc.topics["dlq"], 3)) == 3
    finally:
        proc.stop()


def _fixture_session(name: str, session: str) -> list[dict]:
    import json
    from datetime import datetime, timedelta, timezone

    spec = json.loads((Path(__file__).parent / "fixtures" / "behavior" / f"{name}.json").read_text())
    start = datetime.now(timezone.utc)
    return [
        {"schema": "aiwatch.event/1", "event_id": f"{session}-{n}", "app": "mail-agent", "session_id": session,
         "ts": (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
         "actor": {"user_id": "u-7"}, **step}
        for n, step in enumerate(spec["events"])
    ]


@pytest.mark.slow
@pytest.mark.parametrize("local_store", ["kept", "lost"])
def test_behavioural_state_survives_sigkill(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str,
                                            clickhouse_dsn: str, local_store: str) -> None:
    """Untrusted content read before a crash, the action on it after the restart: the session state
    (and the baselines) come back — from the local store, or from the changelog topic when the local
    store is lost — so the hijack is still seen."""
    from detectors.behavior.pipeline import BehaviorPipeline
    from schemas import Event

    session = _fixture_session("hijack_tool_result", "sess-crash")
    before, after = session[:3], session[3:]   # prompt, tool_call, tool_result | send_email, ...
    fresh = BehaviorPipeline()
    alone = [f for e in after for f in fresh.process(Event.model_validate(e))]
    assert not [f for f in alone if f.category in ("goal_hijack", "exfiltration")], \
        "the action alone must not be enough: the finding depends on the state from before the crash"

    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_STATE_SAVE_SECONDS": "0.2", "AIWATCH_STATE_CHANGELOG_SECONDS": "0.2",
                                    "AIWATCH_BASELINE_SNAPSHOT_SECONDS": "1"}).start()
    try:
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in before],
                keys=[b"sess-crash"] * len(before))
        proc.wait_for("SELECT count() FROM events WHERE session_id = 'sess-crash'", 3)
        proc.wait_for("SELECT count() > 0 FROM baselines", 1)
        time.sleep(1.5)  # past a state save after the commit of that batch
        proc.kill()
        saved = list((tmp_path / "home" / "worker").glob("behavior-*.pkl"))
        assert saved, "the state file exists"
        if local_store == "lost":
            for path in saved:
                path.unlink()

        proc.start()
        expected_source = "local" if local_store == "kept" else "changelog"
        assert f"behavioural state: {expected_source}" in proc.log_tail(200)
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in after],
                keys=[b"sess-crash"] * len(after))
        proc.wait_for("SELECT count() FROM events WHERE session_id = 'sess-crash'", len(session))
        proc.wait_for("SELECT count() > 0 FROM findings WHERE session_id = 'sess-crash' "
                      "AND category IN ('goal_hijack', 'exfiltration')", 1, timeout=60)
        evidence = proc.scalar("SELECT evidence FROM findings WHERE session_id = 'sess-crash' "
                               "AND category IN ('goal_hijack', 'exfiltration') LIMIT 1")
        assert "sess-crash-2" in evidence, "the chain reaches the tool result read before the crash"
        assert proc.counters()["aiwatch_behavior{stat=session.open}"] >= 1, "behavioural state is exported"
        # The baselines came back too: the identity's baseline counts the events from both sides of the crash.
        proc.wait_for("SELECT max(observations) FROM baselines "
                      "WHERE detector = 'time_of_day_by_identity' AND entity = 'u-7'", len(session), timeout=30)
    finally:
        proc.stop()


def _kill_children(proc: WorkerProcess) -> list[int]:
    import signal

    children = [int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat")
                if _parent_pid(stat) == proc.proc.pid]
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    return children


@pytest.mark.slow
def test_a_dead_behavioural_process_is_restarted_from_its_saved_state(kafka_bootstrap: str, tmp_path: Path,
                                                                      topic_prefix: str, clickhouse_dsn: str) -> None:
    """The layer's process is killed between the untrusted read and the action on it: the worker restarts
    it from the last save and replays what the dead one held, so the hijack is still seen."""
    session = _fixture_session("hijack_tool_result", "sess-child")
    before, after = session[:3], session[3:]
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_STATE_SAVE_SECONDS": "0.2"}).start()
    try:
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in before],
                keys=[b"sess-child"] * len(before))
        proc.wait_for("SELECT count() FROM events WHERE session_id = 'sess-child'", 3)
        time.sleep(1.5)  # past a state save
        assert _kill_children(proc), "the worker runs its behavioural layer in a child process"
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in after],
                keys=[b"sess-child"] * len(after))
        proc.wait_for("SELECT count() > 0 FROM findings WHERE session_id = 'sess-child' "
                      "AND category IN ('goal_hijack', 'exfiltration')", 1, timeout=60)
        assert proc.proc.poll() is None, "the worker kept running"
        assert proc.counters()["aiwatch_behavior_restarts_total"] == 1
        assert "restarting it from its saved state" in proc.log_tail(300)
    finally:
        proc.stop()


def test_an_event_that_kills_the_behavioural_process_is_skipped_not_a_crash_loop(
        kafka_bootstrap: str, tmp_path: Path, topic_prefix: str, clickhouse_dsn: str) -> None:
    """An event on which the layer's process dies hard (fault injection) would otherwise kill it at every
    replay until the worker gives up: after the second death on it, the layer skips that one event; it is
    stored, and the rest of the stream (a hijack after it) is still judged."""
    poison = _fixture_session("hijack_tool_result", "sess-poison")[0]
    session = _fixture_session("hijack_tool_result", "sess-after")
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_BEHAVIOR_FAILPOINT": poison["event_id"]}).start()
    try:
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in [poison, *session]],
                keys=[b"same-partition"] * (1 + len(session)))
        proc.wait_for("SELECT count() > 0 FROM findings WHERE session_id = 'sess-after' "
                      "AND category IN ('goal_hijack', 'exfiltration')", 1, timeout=90)
        assert proc.proc.poll() is None, "the worker kept running"
        counters = proc.counters()
        assert counters["aiwatch_behavior_restarts_total"] == 2
        assert counters["aiwatch_behavior_skipped_events_total"] == 1
        assert proc.scalar("SELECT count() FROM events WHERE session_id IN ('sess-poison', 'sess-after')") \
            == 1 + len(session)
        log = proc.log_tail(400)
        assert f"died 2 times on {proc.topics['events']}/" in log and "skips that event" in log
    finally:
        proc.stop()


def test_baselines_split_by_env_reach_the_store(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str,
                                                clickhouse_dsn: str) -> None:
    """AIWATCH_BASELINE_PARTITION_BY reaches the behavioural process: snapshot rows carry the partition."""
    events = [{**e, "env": env} for env in ("prod", "staging")
              for e in _fixture_session("hijack_tool_result", f"sess-{env}")]
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_BASELINE_PARTITION_BY": '["env"]',
                                    "AIWATCH_BASELINE_SNAPSHOT_SECONDS": "1"}).start()
    try:
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in events])
        proc.wait_for("SELECT arraySort(groupUniqArray(partition)) FROM baselines "
                      "WHERE detector = 'time_of_day_by_identity'", ["env=prod", "env=staging"], timeout=60)
    finally:
        proc.stop()


def test_worker_stops_loudly_when_its_behavioural_process_keeps_dying(kafka_bootstrap: str, tmp_path: Path,
                                                                      topic_prefix: str, clickhouse_dsn: str) -> None:
    """Past ``AIWATCH_BEHAVIOR_RESTARTS`` (here 0) the worker exits non-zero with the reason rather than
    run without its behavioural layer; its supervisor restarts it from the saved state."""
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_BEHAVIOR_RESTARTS": "0"}).start()
    try:
        assert _kill_children(proc)
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in synthetic_events(20, seed=4)])
        deadline = time.monotonic() + 60
        while proc.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.proc.poll() not in (None, 0)
        assert "behavioural process is gone" in proc.log_tail(200)
    finally:
        proc.stop()


def _parent_pid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@pytest.mark.slow
def test_rebalances_neither_crash_the_worker_nor_feed_the_layer_twice(kafka_bootstrap: str, tmp_path: Path,
                                                                      topic_prefix: str,
                                                                      clickhouse_dsn: str) -> None:
    """Another member joins the worker's consumer group and leaves again: partitions move away and come
    back from their last commit, behind what the behavioural layer has seen. The worker keeps going, the
    commits it can no longer make are skipped, and the layer does not count the redelivered events."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    session = _fixture_session("hijack_tool_result", "sess-rb")
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_KAFKA_SESSION_TIMEOUT_S": "6"}).start()
    try:
        noise = [orjson.dumps(e) for e in synthetic_events(300, seed=9)]
        produce(proc.bootstrap, proc.topics["events"], noise)
        proc.wait_for("SELECT count() FROM events", len(noise))

        async def intrude() -> None:
            other = AIOKafkaConsumer(proc.topics["events"], bootstrap_servers=proc.bootstrap,
                                     group_id=f"{topic_prefix}-ingest", enable_auto_commit=False,
                                     auto_offset_reset="latest", session_timeout_ms=6000,
                                     heartbeat_interval_ms=1000)
            await other.start()
            try:
                deadline = time.monotonic() + 30
                while not other.assignment() and time.monotonic() < deadline:
                    await other.getmany(timeout_ms=500)
                assert other.assignment(), "the intruder got partitions: a rebalance happened"
                for _ in range(6):
                    await other.getmany(timeout_ms=500)
            finally:
                await other.stop()

        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in session[:3]],
                keys=[b"sess-rb"] * 3)
        stream = [orjson.dumps(e) for e in synthetic_events(6000, seed=10)]  # traffic while partitions move

        def trickle() -> None:
            for start in range(0, len(stream), 200):
                produce(proc.bootstrap, proc.topics["events"], stream[start:start + 200])
                time.sleep(0.1)

        producer = threading.Thread(target=trickle)
        producer.start()
        asyncio.run(intrude())
        producer.join()
        noise += stream
        produce(proc.bootstrap, proc.topics["events"], [orjson.dumps(e) for e in session[3:]],
                keys=[b"sess-rb"] * (len(session) - 3))
        proc.wait_for("SELECT count() FROM events WHERE session_id = 'sess-rb'", len(session), timeout=90)
        proc.wait_for("SELECT count() FROM events", len(noise) + len(session), timeout=90)
        proc.wait_for("SELECT count() > 0 FROM findings WHERE session_id = 'sess-rb' "
                      "AND category IN ('goal_hijack', 'exfiltration')", 1, timeout=60)
        assert proc.proc.poll() is None, "the worker survived the rebalances"
        counters = proc.counters()
        fed = counters["aiwatch_behavior{stat=session.events}"]
        assert fed == len(noise) + len(session), "every event fed to the layer once, none twice"
    finally:
        proc.stop()
