"""The shipped rule pack (infra/rules): lints clean, covers what the issue asks, passes its own tests."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from detectors.rules import lint, load_pack, run_rule_tests
from detectors.rules.loader import KNOWN_TAGS

PACK = Path(__file__).parents[1] / "infra" / "rules"
FIXTURES = Path(__file__).parent / "fixtures" / "rules"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SHIPPED = load_pack([PACK])
REPORT = run_rule_tests([PACK])


def test_shipped_pack_lints_clean() -> None:
    assert [i.format() for i in lint([PACK])] == []


@pytest.mark.parametrize("rule_id", [r.id for r in SHIPPED.rules])
def test_every_shipped_rule_passes_its_own_tests(rule_id: str) -> None:
    results = [r for r in REPORT.results if r.rule_id == rule_id]
    assert any(r.positive for r in results) and any(not r.positive for r in results)
    assert [str(r) for r in results if not r.passed] == []


def test_report_summary() -> None:
    assert REPORT.ok, REPORT.summary()
    assert REPORT.summary() == f"{len(REPORT.results)}/{len(REPORT.results)} cases passed over {len(SHIPPED.rules)} rules"
    assert REPORT.policy_version == SHIPPED.policy_version


@pytest.mark.parametrize("rule_id", [r.id for r in SHIPPED.rules])
def test_every_shipped_rule_is_documented_and_tagged(rule_id: str) -> None:
    rule = SHIPPED.rule(rule_id)
    assert any(t.partition(":")[0] in KNOWN_TAGS for t in rule.tags)
    assert len(rule.runbook) > 40 and rule.action and rule.message is not None
    assert rule.status in ("stable", "test")


@pytest.mark.parametrize(
    ("rule_id", "category", "fields"),
    [
        ("model.unapproved", "unapproved_model", {"model.name"}),
        ("model.unapproved_served", "unapproved_model", {"model.served"}),
        ("model.unapproved_endpoint", "unapproved_model", {"model.endpoint"}),
        ("model.app_not_registered", "unapproved_model", {"model.name"}),
        ("tool.not_allowed", "tool_misuse", {"tool.name"}),
        ("tool.result_oversized", "policy_violation", {"tool.result_bytes"}),
        ("data.class_not_allowed", "policy_violation", {"labels.data_class"}),
        ("data.retrieved_class_not_allowed", "policy_violation", {"retrieval.documents.classification"}),
        ("leak.secret_in_output", "secret_leak", {"category", "placement"}),
        ("leak.secret_in_tool_call", "secret_leak", {"category", "placement"}),
        ("leak.pii_in_output", "pii_exposure", {"category", "placement"}),
        ("leak.pii_in_tool_call", "pii_exposure", {"category", "placement"}),
        ("injection.untrusted_content", "prompt_injection", {"category", "placement"}),
    ],
)
def test_pack_covers_the_issue(rule_id: str, category: str, fields: set[str]) -> None:
    rule = SHIPPED.rule(rule_id)
    assert rule.category == category
    assert fields <= _fields(rule.condition)


def _fields(node) -> set[str]:
    out = set()
    for attr in ("children",):
        for child in getattr(node, attr, ()):
            out |= _fields(child)
    if hasattr(node, "child"):
        out |= _fields(node.child)
    if hasattr(node, "field"):
        out.add(node.field.name)
    return out


def test_rationale_says_what_enforcement_would_have_done() -> None:
    from detectors.rules import RuleEngine
    from detectors.rules.engine import rule_finding_id

    engine = RuleEngine(SHIPPED)
    for rule in SHIPPED.rules:
        case = next(c for c in rule.tests if c.positive)
        found = [f for f in engine.evaluate(case.event, case.findings, now=NOW, include_learn=True) if f.rule_id == rule.id]
        assert len(found) == 1, rule.id
        assert found[0].rationale.endswith(f"A policy in enforce mode would have {rule.action}.")
        assert found[0].finding_id == rule_finding_id(case.event.event_id, rule.id)


def test_a_broken_rule_fails_its_own_tests_with_the_case_location(tmp_path: Path) -> None:
    pack = tmp_path / "rules"
    shutil.copytree(PACK, pack)
    leaks = pack / "leaks.yml"
    leaks.write_text(leaks.read_text().replace("- {field: placement, equals: output}", "- {field: placement, in: [output, direct]}", 1))
    report = run_rule_tests([pack])
    assert not report.ok
    [failure] = report.failures
    assert failure.rule_id == "leak.secret_in_output" and not failure.positive
    assert str(failure) == (f"FAIL leak.secret_in_output [negative] a secret the user pasted into the prompt is not leaving: "
                            f"the rule matched an event it must not match in {leaks}:25:11")


def test_expectations_on_suppression_fail_once_the_exception_expires(tmp_path: Path) -> None:
    """A case expecting a suppression, without its own `now`, is the reminder to renew or drop the exception."""
    good = FIXTURES / "good"
    assert run_rule_tests([good], now=NOW).ok
    text = (good / "pack.yml").read_text()
    pinned = "        - name: suppressed for the CI agent while the exception runs\n          now: 2026-01-01T00:00:00Z\n"
    assert pinned in text
    (tmp_path / "pack.yml").write_text(text.replace(pinned, "        - name: suppressed for the CI agent while the exception runs\n"))
    shutil.copy(good / "exceptions.yml", tmp_path / "exceptions.yml")
    assert run_rule_tests([tmp_path], now=NOW).ok
    later = run_rule_tests([tmp_path], now=datetime(2026, 7, 1, tzinfo=timezone.utc))
    assert [(f.name, f.detail) for f in later.failures] == [
        ("suppressed for the CI agent while the exception runs",
         "expected suppressed_by 'ci-cleanup', got None; expected mode 'monitor', got 'alert'"),
    ]


def test_refused_pack_reports_issues_instead_of_running() -> None:
    report = run_rule_tests([FIXTURES / "bad"], now=NOW)
    assert not report.ok and report.results == ()
    assert report.summary().startswith("rule pack refused: ")
