"""The migration command against the real ClickHouse engine (embedded chDB, or CLICKHOUSE_DSN)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
import orjson
import pytest
from clickhouse_connect.driver.client import Client

from collectors.synthetic import synthetic_events
from schemas import parse_event
from streams.db import connect, migrate
from streams.sinks.clickhouse import ClickHouseSink
from streams.sinks.rows import event_row


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    import os

    dsn = os.environ.get("CLICKHOUSE_DSN") or f"chdb://{tmp_path_factory.mktemp('ch')}"
    c = connect(dsn)
    yield c
    c.close()


def test_migrate_is_idempotent_and_applies_retention(client: Client) -> None:
    first = migrate(client, 400)
    assert any("0001_events" in line for line in first)
    assert migrate(client, 400) == []  # nothing pending, retention unchanged
    assert migrate(client, 500) == [f"retention of {t} set to 500 days" for t in ("events", "findings", "dlq", "alerts", "baselines", "evidence_chain")]
    ddl = client.query("SELECT engine_full FROM system.tables WHERE name = 'events' AND database = currentDatabase()")
    engine = ddl.result_rows[0][0]
    assert "toIntervalDay(500)" in engine and "ReplacingMergeTree" in engine and "toYYYYMM(ts)" in engine
    versions = [r[0] for r in client.query("SELECT version FROM schema_migrations ORDER BY version").result_rows]
    assert versions == [1, 2, 3, 4, 5, 6, 7, 8]


def test_retention_below_minimum_is_refused(client: Client) -> None:
    with pytest.raises(ValueError, match="at least 183 days"):
        migrate(client, 30)


def test_sink_writes_each_event_id_once(client: Client) -> None:
    migrate(client, 400)
    client.command("TRUNCATE TABLE events")
    events = [parse_event(orjson.dumps(e)) for e in synthetic_events(300, seed=11)]
    rows = [event_row(e, 0, i) for i, e in enumerate(events)]
    sink = ClickHouseSink(client)
    assert sink.write("events", rows[:200]) == 200
    assert sink.write("events", rows) == 100          # a redelivered batch overlapping the first
    assert sink.write("events", rows + rows[:5]) == 0  # duplicates inside one batch too
    count, unique = client.query("SELECT count(), uniqExact(event_id) FROM events").result_rows[0]
    assert count == unique == 300
    text_type = client.query(
        "SELECT compression_codec FROM system.columns WHERE table = 'events' AND name = 'content_text' "
        "AND database = currentDatabase()"
    ).result_rows[0][0]
    assert "ZSTD" in text_type


def test_sink_seals_events_and_quotes_any_id(client: Client) -> None:
    migrate(client, 400)
    client.command("TRUNCATE TABLE events")
    odd = ["it's", "back\\slash", "new\nline", "tab\t", "ünïcode-😀", "end\\", "''", "x" * 128]
    events = [parse_event(orjson.dumps({**e, "event_id": i}))
              for e, i in zip(synthetic_events(len(odd), seed=12), odd)]
    sink = ClickHouseSink(client)
    assert sink.write_events([event_row(e, 0, n) for n, e in enumerate(events)]) == len(odd)
    assert sink.existing("events", odd + ["absent"]) == set(odd), "every id found back, literally"
    assert sink.write_events([event_row(e, 0, n) for n, e in enumerate(events)]) == 0
    blocks = client.query("SELECT uniqExact(evidence_block), countIf(row_sha256 = '') FROM events").result_rows[0]
    assert blocks == (1, 0)


def test_policy_changes_record_each_pack_put_in_force_once(client: Client) -> None:
    from detectors.rules import load_pack
    from streams.policy import current_policy, record_policy

    migrate(client, 400)
    client.command("TRUNCATE TABLE policy_changes")
    manifest = load_pack([Path(__file__).resolve().parents[1] / "infra" / "rules"]).manifest()
    first = record_policy(client, manifest, "alice", "initial rollout (TICKET-1)")
    assert first is not None and "alice" in first
    assert record_policy(client, manifest, "alice", "restart") is None  # unchanged pack: nothing recorded
    changed = dict(manifest, policy_version=manifest["policy_version"] + "-edited", digest="0" * 64)
    assert record_policy(client, changed, "bob", "allow search_kb for billing (TICKET-2)") is not None
    rows = client.query("SELECT policy_version, previous_version, changed_by, reason FROM policy_changes "
                        "ORDER BY changed_at").result_rows
    assert [r[2] for r in rows] == ["alice", "bob"]
    assert rows[1][1] == rows[0][0] == manifest["policy_version"]
    assert current_policy(client) == changed["policy_version"]


def test_baseline_rows_of_two_partitions_are_both_kept(client: Client) -> None:
    """The same entity, detector and snapshot time in two partitions (env=prod, env=staging) are two rows,
    even after ReplacingMergeTree merges (the partition is part of the sorting key, migration 0008)."""
    from detectors.behavior.baseline import BaselineConfig, BaselineStore
    from detectors.behavior.testing import ev

    migrate(client, 400)
    store = BaselineStore(BaselineConfig(partition_by=("env",), warmup=3))
    for env in ("prod", "staging"):
        for i in range(5):
            store.process(ev("tool_call", tool="search", args={}, ts=i, agent="dbagent").model_copy(update={"env": env}))
    rows = [r for r in store.snapshot(time.time()) if r["detector"] == "rare_tool_by_agent"]  # recent: within the TTL
    assert sorted(r["partition"] for r in rows) == ["env=prod", "env=staging"]
    ClickHouseSink(client).insert_dicts("baselines", rows)
    client.command("OPTIMIZE TABLE baselines FINAL")
    kept = client.query("SELECT partition FROM baselines WHERE entity = 'dbagent' AND detector = 'rare_tool_by_agent' "
                        "ORDER BY partition").result_rows
    assert [r[0] for r in kept] == ["env=prod", "env=staging"]
