"""Alert dedup/throttle: the first alert at once, a rollup with a count after the window, escalation
breaks through, nothing hidden (pure logic, then the worker against the real broker and store)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from schemas import Finding
from streams.ocsf import rollup_to_ocsf
from streams.throttle import Throttle
from tests.harness import WorkerProcess, consume_all, produce

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def finding(n: int, *, session: str | None = "s1", rule: str = "models.unapproved", severity: str = "high",
            app: str = "bot", user: str | None = None) -> Finding:
    return Finding(finding_id=f"f{n}", ts=T0 + timedelta(seconds=n), detector="rules", rule_id=rule,
                   category="unapproved_model", severity=severity, score=0.9, event_id=f"e{n}", session_id=session,
                   app=app, user_id=user, title="Model not approved for the app", mode="alert")


def test_first_alert_goes_out_then_one_rollup_with_the_count() -> None:
    t = Throttle(window_s=60)
    sent = [t.admit(finding(i), now=100.0 + i) for i in range(10)]
    assert sent == [True] + [False] * 9
    assert t.due(now=150.0) == [], "the window has not ended"
    (rollup,) = t.due(now=160.0)
    assert rollup.count == 9 and rollup.first_alert_id == "f0" and rollup.finding.finding_id == "f9"
    assert rollup.event_ids == [f"e{i}" for i in range(1, 10)]
    assert t.due(now=1000.0) == [], "a rollup is sent once"
    assert t.admit(finding(20), now=170.0), "a new window starts with an alert at once"
    assert t.stats["sent"] == 2 and t.stats["throttled"] == 9 and t.stats["rollups"] == 1


def test_groups_are_rule_app_and_session_or_user() -> None:
    t = Throttle(window_s=60)
    assert t.admit(finding(1, session="a"), now=0)
    assert t.admit(finding(2, session="b"), now=0), "another session is another group"
    assert t.admit(finding(3, session="a", rule="tools.not_allowed"), now=0), "another rule is another group"
    assert t.admit(finding(4, session="a", app="other"), now=0), "another app is another group"
    assert t.admit(finding(5, session=None, user="alice"), now=0)
    assert not t.admit(finding(6, session=None, user="alice"), now=1), "without a session, the user groups"
    assert t.admit(finding(7, session=None, user="bob"), now=1)


def test_escalation_breaks_the_throttle_and_the_rollup_stays_pending() -> None:
    t = Throttle(window_s=60)
    assert t.admit(finding(1, severity="medium"), now=0)
    assert not t.admit(finding(2, severity="medium"), now=1)
    assert t.admit(finding(3, severity="critical"), now=2), "higher severity goes out at once"
    assert not t.admit(finding(4, severity="high"), now=3), "lower than what was sent: throttled"
    (rollup,) = t.due(now=61)
    assert rollup.count == 2 and t.stats["escalated"] == 1


def test_expired_window_reopened_before_due_still_rolls_up() -> None:
    t = Throttle(window_s=10)
    t.admit(finding(1), now=0)
    t.admit(finding(2), now=1)
    assert t.admit(finding(3), now=11), "window over: alert at once"
    (rollup,) = t.due(now=12)
    assert rollup.count == 1 and rollup.first_alert_id == "f1"


def test_stop_flushes_every_open_window_and_zero_disables() -> None:
    t = Throttle(window_s=3600)
    t.admit(finding(1), now=0)
    t.admit(finding(2), now=1)
    assert [r.count for r in t.due(now=2, everything=True)] == [1]
    off = Throttle(window_s=0)
    assert all(off.admit(finding(i), now=0) for i in range(5))


def test_group_cap_evicts_the_oldest_group_and_keeps_its_rollup() -> None:
    t = Throttle(window_s=60, max_groups=2)
    t.admit(finding(1, session="a"), now=0)
    t.admit(finding(2, session="a"), now=0)
    t.admit(finding(3, session="b"), now=0)
    t.admit(finding(4, session="c"), now=0)
    rollups = t.due(now=1)
    assert [(r.key[2], r.count) for r in rollups] == [("a", 1)]
    assert t.stats["groups_evicted"] == 1


def test_rollup_is_an_ocsf_detection_finding_with_count_and_span() -> None:
    t = Throttle(window_s=60)
    for i in range(4):
        t.admit(finding(i), now=float(i))
    (rollup,) = t.due(now=100)
    alert = rollup_to_ocsf(rollup)
    assert alert["class_uid"] == 2004 and alert["count"] == 3
    assert alert["start_time"] < alert["end_time"]
    assert alert["metadata"]["uid"] == alert["finding_info"]["uid"] != "f3"
    assert alert["unmapped"]["aiwatch"]["rollup_of"] == "f0"
    assert [e["uid"] for e in alert["finding_info"]["related_events"]] == ["e1", "e2", "e3"]


@pytest.fixture
def throttled_worker(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str, clickhouse_dsn: str):
    proc = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                         extra_env={"AIWATCH_ALERT_THROTTLE_SECONDS": "4", "AIWATCH_BEHAVIOR": "false",
                                    "AIWATCH_CLASSIFIER": "off"}).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_worker_sends_one_alert_then_a_rollup_and_stores_every_finding(throttled_worker: WorkerProcess) -> None:
    worker = throttled_worker
    session = f"sess-{uuid.uuid4().hex[:8]}"
    now = datetime.now(timezone.utc)
    events = [{"schema": "aiwatch.event/1", "event_id": f"{session}-{i}", "ts": (now + timedelta(seconds=i)).isoformat(),
               "kind": "prompt", "app": "example-support-bot", "session_id": session,
               "model": {"provider": "deepseek", "name": "deepseek-chat", "endpoint": "api.deepseek.com"},
               "content": {"role": "user", "text": f"question {i}"}} for i in range(12)]
    produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in events])
    worker.wait_for("SELECT count() FROM events", len(events))
    # findings are written just after their batch's events: wait for them rather than race the writer
    worker.wait_for(f"SELECT count() >= {len(events)} FROM findings WHERE session_id = '{session}' "
                    "AND detector = 'rules' AND mode = 'alert'", 1, timeout=30)
    rule_findings = worker.scalar(f"SELECT count() FROM findings WHERE session_id = '{session}' "
                                  "AND detector = 'rules' AND mode = 'alert'")
    assert rule_findings >= len(events), "every event raised the alert-mode rule; all are stored"
    throttled = worker.scalar(f"SELECT countIf(has(tags, 'throttled')) FROM findings "
                              f"WHERE session_id = '{session}' AND detector = 'rules'")
    first_alerts = worker.scalar(f"SELECT count() FROM alerts WHERE session_id = '{session}'")
    assert throttled == rule_findings - first_alerts > 0
    # after the window, one rollup per group carries the count of what was held back
    worker.wait_for(f"SELECT count() FROM alerts WHERE session_id = '{session}' AND position(alert_id, 'rollup') > 0",
                    first_alerts, timeout=30)
    alerts = [orjson.loads(r.value) for r in consume_all(worker.bootstrap, worker.topics["alerts"], 2 * first_alerts)]
    rollups = [a for a in alerts if "count" in a]
    assert sum(a["count"] for a in rollups) == throttled, "every throttled alert is counted in a rollup"
    counters = worker.counters()
    assert counters["aiwatch_alerts_throttled_total"] == throttled
    assert counters["aiwatch_alert_rollups_total"] == len(rollups)
    alert_mode = {k: v for k, v in counters.items() if k.startswith("aiwatch_findings_total{") and "mode=alert" in k}
    assert sum(alert_mode.values()) >= rule_findings and all(",severity=" in k for k in alert_mode)
