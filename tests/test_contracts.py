"""Contracts and configuration: schemas in sync, limits enforced with readable errors, compose file sane."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import yaml
from pydantic import ValidationError

from collectors.synthetic import synthetic_events
from schemas import Finding, InvalidEvent, dump_event, parse_event
from schemas import limits
from schemas.export import EXPORTS, JSON_DIR, render
from schemas.settings import Settings

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_exported_json_schema_is_in_sync(name: str) -> None:
    on_disk = (JSON_DIR / name).read_text(encoding="utf-8")
    assert on_disk == render(EXPORTS[name]), f"run `python -m schemas.export` to refresh {name}"


def test_event_schema_lists_the_contract_fields() -> None:
    schema = json.loads((JSON_DIR / "event-v1.schema.json").read_text())
    assert set(schema["required"]) == {"schema", "event_id", "ts", "kind", "app"}
    for field in ("actor", "model", "content", "tool", "retrieval", "usage", "labels", "source", "session_id"):
        assert field in schema["properties"]


def _event(**overrides: object) -> dict:
    base = {"schema": "aiwatch.event/1", "event_id": "e-1", "ts": "2026-03-01T12:00:00+01:00",
            "kind": "prompt", "app": "bot", "content": {"role": "user", "text": "hello"}}
    base.update(overrides)
    return base


def test_round_trip_normalises_time_to_utc_and_keeps_unknown_fields() -> None:
    event = parse_event(orjson.dumps(_event(brand_new={"x": 1})))
    assert event.ts.isoformat() == "2026-03-01T11:00:00+00:00"
    again = parse_event(dump_event(event))
    assert again.extra == {"brand_new": {"x": 1}}
    assert orjson.loads(dump_event(again))["ts"] == "2026-03-01T11:00:00.000000Z"


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        (b"", "empty", "no value"),
        (b"{nope", "not_json", "not JSON"),
        (b"\xc3\x28", "bad_encoding", "UTF-8"),
        (b'"a string"', "not_object", "JSON object"),
        (orjson.dumps(_event(ts="2026-03-01T12:00:00")), "invalid", "ts"),
        (orjson.dumps(_event(kind="dream")), "invalid", "kind"),
        (orjson.dumps({k: v for k, v in _event().items() if k != "app"}), "invalid", "app: required field is missing"),
        (orjson.dumps(_event(kind="tool_call")), "invalid", "needs 'tool'"),
        (orjson.dumps(_event(content={"text": "x" * (limits.MAX_TEXT_CHARS + 1)})), "invalid", "content.text"),
        (orjson.dumps(_event(event_id="x" * 129)), "invalid", "event_id"),
        (orjson.dumps(_event(pad="y" * limits.MAX_EVENT_BYTES)), "too_large", "limit is"),
    ],
)
def test_bad_input_is_refused_with_a_reason(raw: bytes, reason: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert info.value.reason == reason
    assert fragment in info.value.detail


def test_tool_arguments_depth_and_size_are_bounded() -> None:
    deep: dict = {}
    node = deep
    for _ in range(limits.MAX_ARGUMENT_DEPTH + 5):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(InvalidEvent, match="nested deeper"):
        parse_event(orjson.dumps(_event(kind="tool_call", tool={"name": "t", "arguments": deep})))
    wide = {"items": list(range(limits.MAX_ARGUMENT_NODES + 1))}
    with pytest.raises(InvalidEvent, match="more than"):
        parse_event(orjson.dumps(_event(kind="tool_call", tool={"name": "t", "arguments": wide})))
    ok = parse_event(orjson.dumps(_event(kind="tool_call", tool={"name": "t", "arguments": {"a": [1, {"b": 2}]}})))
    assert ok.tool is not None and ok.tool.arguments == {"a": [1, {"b": 2}]}


def test_synthetic_events_are_valid_and_about_one_kilobyte() -> None:
    payloads = [orjson.dumps(e) for e in synthetic_events(500)]
    for payload in payloads:
        parse_event(payload)
    average = sum(map(len, payloads)) / len(payloads)
    assert 800 <= average <= 1400


def test_finding_contract() -> None:
    finding = Finding(finding_id="f1", ts="2026-01-01T00:00:00Z", detector="secrets", category="secret_leak",
                      severity="high", score=0.9, event_id="e1", title="AWS key in completion")
    assert finding.model_dump(by_alias=True)["schema"] == "aiwatch.finding/1"
    with pytest.raises(ValidationError):
        Finding(finding_id="f1", ts="2026-01-01T00:00:00Z", detector="d", category="made_up", severity="high",
                score=0.5, event_id="e1", title="t")
    with pytest.raises(ValidationError):
        Finding(finding_id="f1", ts="2026-01-01T00:00:00Z", detector="d", category="drift", severity="high",
                score=1.5, event_id="e1", title="t")


def test_retention_below_six_months_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIWATCH_RETENTION_DAYS", "90")
    with pytest.raises(ValidationError, match="below the legal minimum of 183 days"):
        Settings()
    monkeypatch.setenv("AIWATCH_RETENTION_DAYS", "183")
    assert Settings().retention_days == 183


def test_settings_read_conventional_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    monkeypatch.setenv("CLICKHOUSE_DSN", "http://u:p@ch:8123/db")
    settings = Settings()
    assert settings.kafka_bootstrap_servers == "broker:9092"
    assert settings.dsn == "http://u:p@ch:8123/db" and not settings.embedded


def test_docker_compose_runs_kafka_clickhouse_and_the_worker() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"kafka", "clickhouse", "worker"}
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    worker = services["worker"]
    env = worker["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["CLICKHOUSE_DSN"].startswith("http://") and "@clickhouse:8123" in env["CLICKHOUSE_DSN"]
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert worker["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    dockerfile = REPO / worker["build"]["dockerfile"]
    assert dockerfile.exists() and "aiwatch" in dockerfile.read_text()
    for name in ("kafka", "clickhouse", "worker"):
        assert "healthcheck" in services[name], name
