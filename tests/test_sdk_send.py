"""``aiwatch send FILE.jsonl`` (collectors.send): lines are published as they are, against a real broker."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest

from collectors.send import SendError, send_file
from schemas.parse import InvalidEvent, parse_event
from tests.brokers import free_port
from tests.harness import create_topic
from tests.test_sdk import PARTITIONS, consume, settings_for

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def _event(i: int, session: str | None) -> bytes:
    event = {"schema": "aiwatch.event/1", "event_id": f"e-{i}", "ts": "2026-01-02T03:04:05Z", "kind": "prompt",
             "app": "batch", "content": {"role": "user", "text": f"line {i}"}}
    if session:
        event["session_id"] = session
    return orjson.dumps(event)


def test_send_file_publishes_every_line_as_is(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = create_topic(kafka_bootstrap, f"{topic_prefix}.events", PARTITIONS)
    lines = [_event(1, "s-a"), _event(2, "s-a"), _event(3, None), b"{not json at all", b"[1, 2, 3]"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines[:3]) + b"\n\n" + b"\r\n".join(lines[3:]) + b"\n")

    report = send_file(path, settings_for(tmp_path / "home", kafka_bootstrap, topic), progress=False)

    assert (report.lines, report.sent, report.failed, report.unparsed, report.skipped) == (5, 5, 0, 2, 1)
    assert report.bytes == path.stat().st_size
    records = consume(kafka_bootstrap, topic, expected=5)
    assert Counter(r.value for r in records) == Counter(lines)  # byte for byte, the malformed one included
    keys = {r.value: r.key for r in records}
    assert keys[lines[0]] == keys[lines[1]] == b"s-a"
    assert keys[lines[2]] == b"e-3"
    assert keys[lines[3]] is None
    valid = 0
    for record in records:
        try:
            parse_event(record.value)
            valid += 1
        except InvalidEvent as exc:
            assert exc.reason in ("not_json", "not_object")  # what the worker will dead-letter
    assert valid == 3


def test_send_file_reports_an_unreachable_broker(tmp_path: Path, topic_prefix: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(_event(1, "s") + b"\n")
    settings = settings_for(tmp_path / "home", f"127.0.0.1:{free_port()}", f"{topic_prefix}.events")
    with pytest.raises(SendError, match="cannot publish to topic"):
        send_file(path, settings, progress=False)


def test_send_file_reports_a_missing_file(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = create_topic(kafka_bootstrap, f"{topic_prefix}.events", PARTITIONS)
    with pytest.raises(SendError, match="cannot read"):
        send_file(tmp_path / "nope.jsonl", settings_for(tmp_path / "home", kafka_bootstrap, topic), progress=False)
