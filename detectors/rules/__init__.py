"""Policy-as-code rules over events and detector findings (format: ``infra/rules/README.md``).

    from detectors.rules import RuleEngine, lint, run_rule_tests
    engine = RuleEngine.from_paths(["infra/rules"])          # RuleLoadError: every error, file:line:col
    findings = engine.evaluate(event, content_findings, now=now)
    issues = lint(["infra/rules"])                             # list[Issue], errors and warnings
    report = run_rule_tests(["infra/rules"])                   # report.ok, report.failures

Pure code: reading the rule files is the only I/O, done once at load.
"""

from detectors.rules.engine import DETECTOR, RuleEngine, rule_finding_id, suppressed_by
from detectors.rules.fields import EVENT_FIELDS, FINDING_FIELDS, FindingView
from detectors.rules.issues import Issue, Pos, RuleLoadError
from detectors.rules.loader import lint, load_pack
from detectors.rules.model import Rule, RuleException, RulePack
from detectors.rules.operators import OPERATORS
from detectors.rules.testing import CaseResult, TestReport, run_pack_tests, run_rule_tests

__all__ = [
    "DETECTOR", "EVENT_FIELDS", "FINDING_FIELDS", "OPERATORS", "CaseResult", "FindingView", "Issue", "Pos",
    "Rule", "RuleEngine", "RuleException", "RuleLoadError", "RulePack", "TestReport", "lint", "load_pack",
    "rule_finding_id", "run_pack_tests", "run_rule_tests", "suppressed_by",
]
