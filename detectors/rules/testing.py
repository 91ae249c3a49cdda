"""``rules test``: every rule must pass the test events it embeds.

A positive case passes when the rule's condition holds for its event (and the case's findings
stubs); when it has ``expect``, the finding the engine builds must also have that mode and be
suppressed by that exception (or by none: ``suppressed_by: null``). A negative case passes when the
condition does not hold. Cases are evaluated at their own ``now`` when they give one, else at the
``now`` passed here (default: the wall clock) — so a case expecting a suppression fails once the
exception expires, which is the reminder to renew or delete it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from detectors.rules.conditions import Ctx
from detectors.rules.engine import RuleEngine, suppressed_by
from detectors.rules.issues import Issue, Pos, RuleLoadError
from detectors.rules.loader import load_pack
from detectors.rules.model import RulePack, TestCase


@dataclass(frozen=True, slots=True)
class CaseResult:
    rule_id: str
    name: str
    positive: bool
    passed: bool
    detail: str
    pos: Pos

    def __str__(self) -> str:
        mark = "ok  " if self.passed else "FAIL"
        kind = "positive" if self.positive else "negative"
        text = f"{mark} {self.rule_id} [{kind}] {self.name}"
        return text if self.passed else f"{text}: {self.detail} in {self.pos}"


@dataclass(frozen=True, slots=True)
class TestReport:
    """Results of every case; ``issues`` holds load errors (then no case ran)."""

    __test__ = False  # not a pytest class

    results: tuple[CaseResult, ...]
    issues: tuple[Issue, ...] = ()
    policy_version: str | None = None

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues) and bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        rules = len({r.rule_id for r in self.results})
        failed = len(self.failures)
        if any(i.severity == "error" for i in self.issues):
            return f"rule pack refused: {sum(i.severity == 'error' for i in self.issues)} error(s); no test ran"
        return f"{len(self.results) - failed}/{len(self.results)} cases passed over {rules} rules" + (f", {failed} failed" if failed else "")


def run_case(engine: RuleEngine, case: TestCase, now: datetime) -> CaseResult:
    rule = engine.pack.rule(case.rule_id)
    ctx = Ctx(case.event, case.findings)
    matched = rule.condition.holds(ctx)
    when = case.now or now
    if not case.positive:
        detail = "" if not matched else "the rule matched an event it must not match"
        return CaseResult(rule.id, case.name, False, not matched, detail, case.pos)
    if not matched:
        return CaseResult(rule.id, case.name, True, False, "the rule did not match", case.pos)
    problems = []
    if case.expect:
        found = engine.evaluate(case.event, case.findings, now=when, include_learn=True, rules=[rule])
        finding = found[0]
        if "suppressed_by" in case.expect and suppressed_by(finding) != case.expect["suppressed_by"]:
            problems.append(f"expected suppressed_by {case.expect['suppressed_by']!r}, got {suppressed_by(finding)!r}")
        if "mode" in case.expect and finding.mode != case.expect["mode"]:
            problems.append(f"expected mode {case.expect['mode']!r}, got {finding.mode!r}")
    return CaseResult(rule.id, case.name, True, not problems, "; ".join(problems), case.pos)


def run_pack_tests(pack: RulePack, *, now: datetime | None = None) -> TestReport:
    when = now or datetime.now(timezone.utc)
    engine = RuleEngine(pack)
    results = tuple(run_case(engine, case, when) for rule in pack.rules for case in rule.tests)
    return TestReport(results, pack.warnings, pack.policy_version)


def run_rule_tests(paths: Iterable[str | Path], *, now: datetime | None = None) -> TestReport:
    """Load the pack of ``paths`` and run every embedded test case (load errors are reported, not raised)."""
    try:
        pack = load_pack(paths, now=now)
    except RuleLoadError as exc:
        return TestReport((), tuple(exc.issues))
    return run_pack_tests(pack, now=now)
