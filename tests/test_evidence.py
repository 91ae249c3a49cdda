"""Tamper-evident evidence: the chain and its checks (pure), then the worker's store and bundles for real."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from streams import evidence
from streams.evidence import EvidenceChain, Report, check_chains, check_rows, digest_of, row_hash
from tests.harness import WorkerProcess, produce

T0 = datetime(2026, 5, 1, 8, 30, 15, 123456, tzinfo=timezone.utc)


def _row(i: int, block: str = "", **extra) -> dict:
    row = {"event_id": f"e{i}", "ts": T0 + timedelta(seconds=i), "kind": "prompt", "app": "bot", "session_id": "s",
           "content_text": f"text {i}", "labels": {"b": "2", "a": "1"}, "input_tokens": 5, **extra}
    row["row_sha256"] = row_hash(row)
    row["evidence_block"] = block
    return row


def _sealed(n_blocks: int = 3, per_block: int = 4) -> tuple[list[dict], list[dict]]:
    chain = EvidenceChain(chain_id="c1")
    rows, blocks = [], []
    for b in range(n_blocks):
        batch = [_row(b * per_block + i) for i in range(per_block)]
        block = chain.block([r["row_sha256"] for r in batch], now=T0 + timedelta(minutes=b))
        for r in batch:
            r["evidence_block"] = block["block_id"]
        rows += batch
        blocks.append(block)
    return rows, blocks


def _verify(rows: list[dict], blocks: list[dict]) -> Report:
    report = Report()
    check_rows(rows, check_chains(blocks, report), report)
    return report


def test_canonical_form_is_the_same_written_and_read_back() -> None:
    written = _row(1)
    read_direct = {**written, "ts": written["ts"].isoformat(), "labels": {"a": "1", "b": "2"}}
    read_tostring = {**written, "ts": "2026-05-01 08:30:16.123456"}  # toString(DateTime64(6, 'UTC'))
    assert row_hash(written) == row_hash(read_direct) == row_hash(read_tostring)
    assert row_hash({**written, "content_text": "text 1 "}) != row_hash(written)


def test_digest_is_order_free_and_counts() -> None:
    hashes = [row_hash(_row(i)) for i in range(5)]
    assert digest_of(hashes) == digest_of(list(reversed(hashes)))
    assert digest_of(hashes)[1] == 5 and digest_of(hashes[:4]) != digest_of(hashes)


def test_an_intact_record_verifies() -> None:
    rows, blocks = _sealed()
    report = _verify(rows, blocks)
    assert report.ok, report.summary()
    assert (report.rows, report.blocks, report.chains) == (12, 3, 1)
    assert blocks[1]["prev_hash"] == blocks[0]["hash"] and blocks[0]["prev_hash"] == evidence.GENESIS


@pytest.mark.parametrize("tamper,expected", [
    (lambda rows, blocks: rows[5].update(content_text="edited"), "content does not match its hash"),
    (lambda rows, blocks: rows[5].update(content_text="edited", row_sha256=row_hash({**rows[5], "content_text": "edited"})),
     "rows deleted, added or edited"),
    (lambda rows, blocks: rows.pop(7), "holds 3 of 4 events"),
    (lambda rows, blocks: rows.append(_row(99, block=rows[0]["evidence_block"])), "holds 5 of 4 events"),
    (lambda rows, blocks: blocks[1].update(events=3), "block edited"),
    (lambda rows, blocks: blocks.pop(1), "block 2 missing"),
    (lambda rows, blocks: blocks[2].update(prev_hash="0" * 64), "does not link to the block before it"),
    (lambda rows, blocks: rows.append(_row(98, block="c1:77")), "which is not in the chain"),
])
def test_every_kind_of_tampering_is_reported(tamper, expected: str) -> None:
    rows, blocks = _sealed()
    tamper(rows, blocks)
    report = _verify(rows, blocks)
    assert not report.ok
    assert any(expected in p for p in report.problems), report.summary()


def test_a_block_whose_insert_never_happened_is_a_note_not_tampering() -> None:
    rows, blocks = _sealed()
    chain = EvidenceChain(chain_id="c1", prev_hash=blocks[-1]["hash"], seq=3)
    blocks.append(chain.block([row_hash(_row(50))], now=T0 + timedelta(hours=1)))  # crash before the insert
    report = _verify(rows, blocks)
    assert report.ok and any("none of its 1 events are stored" in n for n in report.notes)


def _tamper_store(dsn: str, *statements: str) -> None:
    code = textwrap.dedent(f"""
        import clickhouse_connect
        client = clickhouse_connect.get_client(dsn={dsn!r})
        for sql in {list(statements)!r}:
            client.command(sql)
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _cli(worker: WorkerProcess, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", "evidence", *args], env=worker.env(),
                          capture_output=True, text=True, timeout=300)


def test_worker_chain_verifies_exports_and_catches_edits(kafka_bootstrap: str, tmp_path: Path, topic_prefix: str,
                                                         clickhouse_dsn: str) -> None:
    worker = WorkerProcess(kafka_bootstrap, tmp_path / "home", topic_prefix, clickhouse_dsn,
                           extra_env={"AIWATCH_BEHAVIOR": "false", "AIWATCH_CLASSIFIER": "off",
                                      "AIWATCH_BATCH_SIZE": "50"}).start()
    now = datetime.now(timezone.utc)
    events = [{"schema": "aiwatch.event/1", "event_id": f"ev-{uuid.uuid4().hex[:10]}-{i}",
               "ts": (now + timedelta(milliseconds=i)).isoformat(), "kind": "prompt",
               "app": "example-support-bot" if i % 3 else "example-code-agent", "session_id": f"s{i % 7}",
               "content": {"role": "user", "text": f"question number {i}"}, "labels": {"n": str(i)}}
              for i in range(300)]
    try:
        produce(worker.bootstrap, worker.topics["events"], [orjson.dumps(e) for e in events])
        worker.wait_for("SELECT count() FROM events", len(events))
        blocks = worker.scalar("SELECT count() FROM evidence_chain")
        assert blocks >= 2, "batches of at most 50 make several blocks"
        assert worker.scalar("SELECT countIf(evidence_block = '' OR row_sha256 = '') FROM events") == 0

        intact = _cli(worker, "verify", "--json", "-q")
        assert intact.returncode == 0, intact.stdout + intact.stderr
        report = json.loads(intact.stdout)
        assert report["ok"] and report["rows"] == len(events) and report["blocks"] == blocks
        window = json.loads(_cli(worker, "verify", "--json", "-q", "--since", "2000-01-01T00:00:00Z").stdout)
        assert window["rows"] == len(events)
        later = json.loads(_cli(worker, "verify", "--json", "-q", "--since", "2099-01-01T00:00:00Z").stdout)
        assert later["ok"] and later["rows"] == 0 and later["blocks"] == blocks, "links are checked whole"

        bundle = tmp_path / "bundle"
        exported = _cli(worker, "export", "--out", str(bundle), "--app", "example-code-agent", "-q")
        assert exported.returncode == 0, exported.stderr
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["counts"]["events"] == 100 and manifest["counts"]["withheld_events"] == 200
        lines = (bundle / "events.jsonl").read_text().splitlines()
        assert {json.loads(line)["app"] for line in lines} == {"example-code-agent"}
        ok = _cli(worker, "verify", "--bundle", str(bundle))
        assert ok.returncode == 0, ok.stdout + ok.stderr

        # an edited bundle fails even when the manifest's file hash is fixed up
        edited = lines[:]
        row = json.loads(edited[0])
        row["content_text"] = "question number 4242"
        edited[0] = json.dumps(row)
        (bundle / "events.jsonl").write_text("\n".join(edited) + "\n")
        manifest["files"]["events.jsonl"] = evidence._sha256_file(bundle / "events.jsonl")
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        bad = _cli(worker, "verify", "--bundle", str(bundle))
        assert bad.returncode == 1 and "content does not match its hash" in bad.stdout
    finally:
        worker.stop()

    edited_id, deleted_id = events[10]["event_id"], events[20]["event_id"]
    _tamper_store(clickhouse_dsn,
                  f"ALTER TABLE events UPDATE content_text = 'nothing to see' WHERE event_id = '{edited_id}' "
                  "SETTINGS mutations_sync = 1",
                  f"ALTER TABLE events DELETE WHERE event_id = '{deleted_id}' SETTINGS mutations_sync = 1")
    worker.start()
    try:
        caught = _cli(worker, "verify", "-q")
        assert caught.returncode == 1, caught.stdout + caught.stderr
        assert f"event {edited_id}: content does not match its hash" in caught.stdout
        assert "holds 49 of 50 events" in caught.stdout or "events or their content differs" in caught.stdout
    finally:
        worker.stop()
