"""The command line as users run it: replay, rules lint/test, config errors, help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from collectors.synthetic import synthetic_events
from schemas import Finding

REPO = Path(__file__).resolve().parents[1]


def aiwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "streams.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def events_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    with path.open("wb") as handle:
        for event in synthetic_events(2_000, seed=5, incident_rate=0.1):
            handle.write(orjson.dumps(event) + b"\n")
        handle.write(b"{broken\n")
    return path


def test_replay_is_deterministic_and_writes_finding_v1(events_file: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    run = aiwatch("replay", str(events_file), "--out", str(first), "-q")
    assert run.returncode == 0, run.stderr
    assert "2000 events replayed (1 invalid lines skipped)" in run.stderr
    assert "line 2001: not_json" in run.stderr
    assert aiwatch("replay", str(events_file), "--out", str(second), "-q").returncode == 0
    assert first.read_bytes() == second.read_bytes()
    findings = [Finding.model_validate(orjson.loads(line)) for line in first.read_bytes().splitlines()]
    categories = {f.category for f in findings}
    assert {"unapproved_model", "secret_leak", "prompt_injection"} <= categories
    assert len({f.finding_id for f in findings}) == len(findings)


def test_replay_with_a_custom_rule_directory(events_file: Path, tmp_path: Path) -> None:
    empty_pack = tmp_path / "rules"
    empty_pack.mkdir()
    (empty_pack / "pack.yml").write_text("pack:\n  name: empty\n  version: '1'\n")
    run = aiwatch("replay", str(events_file), "--rules", str(empty_pack), "--out", str(tmp_path / "f.jsonl"), "-q")
    assert run.returncode == 0, run.stderr
    findings = [orjson.loads(line) for line in (tmp_path / "f.jsonl").read_bytes().splitlines()]
    assert findings and all(f["detector"] != "rules" for f in findings), "no rules: content findings only"


def test_rules_lint_and_test_pass_on_the_shipped_pack() -> None:
    lint = aiwatch("rules", "lint")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "0 error(s)" in lint.stderr
    test = aiwatch("rules", "test")
    assert test.returncode == 0, test.stdout
    assert "cases passed" in test.stdout


def test_rules_lint_reports_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("rules:\n  - id: r1\n    title: t\n    match: {field: model.name, contain: gpt}\n")
    run = aiwatch("rules", "lint", str(bad))
    assert run.returncode == 1
    assert f"{bad}:4:" in run.stdout and "did you mean 'contains'" in run.stdout


def test_invalid_configuration_is_a_clear_error() -> None:
    run = aiwatch("config", env={"AIWATCH_RETENTION_DAYS": "30"})
    assert run.returncode != 0
    assert "retention_days" in run.stderr and "183" in run.stderr
    assert "Traceback" not in run.stderr


def test_help_lists_the_commands() -> None:
    run = aiwatch("--help")
    for command in ("worker", "init-db", "send", "query", "replay", "rules", "collect", "mcp-proxy", "eval", "demo",
                    "evidence", "baseline", "detectors"):
        assert command in run.stdout


def test_detectors_lists_every_detector_and_the_excluded_ones() -> None:
    from detectors.registry import REGISTRY

    table = aiwatch("detectors")
    assert table.returncode == 0, table.stderr
    assert len(table.stdout.splitlines()) == len(REGISTRY)
    assert any(line.split()[:3] == ["secret.template", "secret_leak", "info"] for line in table.stdout.splitlines())
    rows = orjson.loads(aiwatch("detectors", "--json", env={"AIWATCH_DETECTORS_EXCLUDE": '["secret.template"]'}).stdout)
    assert [r["id"] for r in rows if r["excluded"]] == ["secret.template"]
    assert {r["id"] for r in rows} == set(REGISTRY)


def test_excluded_detectors_do_not_run_in_replay_and_a_typo_is_named(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    placeholder = "AKIA" "IOSFODNN7EXAMPLE"
    events.write_bytes(orjson.dumps({
        "schema": "aiwatch.event/1", "event_id": "e1", "ts": "2026-11-22T08:00:00Z", "app": "docs-bot",
        "kind": "completion", "content": {"role": "assistant", "text": f"Use {placeholder} in the example."},
    }) + b"\n")
    default = aiwatch("replay", str(events), "--no-behavior", "-q")
    assert default.returncode == 0, default.stderr
    assert [orjson.loads(line)["detector"] for line in default.stdout.splitlines()] == ["secret.template"]
    excluded = aiwatch("replay", str(events), "--no-behavior", "-q", env={"AIWATCH_DETECTORS_EXCLUDE": '["secret.template"]'})
    assert excluded.returncode == 0 and excluded.stdout == ""
    typo = aiwatch("replay", str(events), "-q", env={"AIWATCH_DETECTORS_EXCLUDE": '["secret.templat"]'})
    assert typo.returncode != 0 and "Traceback" not in typo.stderr
    assert "unknown detector id 'secret.templat' (did you mean 'secret.template'?)" in typo.stderr


@pytest.mark.parametrize("suite", ["injection", "behavior", "content"])
def test_eval_help_names_the_command_the_user_typed(suite: str) -> None:
    run = aiwatch("eval", suite, "--help")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"usage: aiwatch eval {suite} ")
    assert "%%" not in run.stdout


def test_baseline_suggest_proposes_policy_from_observed_behaviour(tmp_path: Path) -> None:
    import yaml

    from collectors.synthetic import APPS

    events = tmp_path / "observed.jsonl"
    with events.open("wb") as handle:
        for event in synthetic_events(2_000, seed=3):
            handle.write(orjson.dumps(event) + b"\n")
    run = aiwatch("baseline", "suggest", "--app", "example-support-bot", "--events", str(events))
    assert run.returncode == 0, run.stderr
    policy = yaml.safe_load(run.stdout)
    assert policy["app"] == "example-support-bot"
    assert set(policy["allow_lists"]["tools"]) == set(APPS["example-support-bot"]["tools"])
    assert set(policy["allow_lists"]["models"]) == {m for _, m, _ in APPS["example-support-bot"]["models"]}
    assert policy["thresholds"]["session"]["max_tokens"] > 0
    missing = aiwatch("baseline", "suggest", "--app", "no-such-app", "--events", str(events))
    assert missing.returncode == 1 and "no events of app" in missing.stderr
