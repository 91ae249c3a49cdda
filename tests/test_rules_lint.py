"""Rule files are refused with every problem at once, each with its file, line and column."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from detectors.rules import RuleEngine, RuleLoadError, lint, load_pack
from detectors.rules.source import MAX_NODES

FIXTURES = Path(__file__).parent / "fixtures" / "rules"
BAD = FIXTURES / "bad"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

# (file, line, col, code, message) — every issue of tests/fixtures/rules/bad, in order.
EXPECTED_BAD = [
    ("dupes.yml", 2, 12, "bad-mode", "unknown mode 'monitr' (did you mean 'monitor'?) for the pack; one of learn, monitor, alert"),
    ("dupes.yml", 9, 5, "duplicate-key", "duplicate key 'id' (first at line 8)"),
    ("dupes.yml", 18, 14, "sensitive-field", "message placeholder {content.text} would copy a sensitive value into the rationale"),
    ("dupes.yml", 23, 45, "bad-test-event", "test event is not a valid Event v1: ts: Input should be a valid datetime or date, input is too short"),
    ("exceptions.yml", 2, 5, "missing-key", "exception 'no-expiry' needs 'expires_at'"),
    ("exceptions.yml", 7, 5, "missing-key", "exception 'naive-time' needs a 'reason' or a 'ticket' (why it exists)"),
    ("exceptions.yml", 8, 13, "unknown-rule", "exception 'naive-time' names unknown rule 'exfil.secret_to_pastes' (did you mean 'exfil.secret_to_paste'?)"),
    ("exceptions.yml", 10, 17, "bad-time", "exception 'naive-time' 'expires_at' needs a timezone (for example 2026-01-31T00:00:00Z)"),
    ("exceptions.yml", 12, 5, "missing-key", "exception 'no-reason' needs a 'reason' or a 'ticket' (why it exists)"),
    ("exceptions.yml", 15, 17, "long-exception", "exception 'no-reason' runs for more than 366 days; exceptions should be short-lived"),
    ("exfil.yml", 3, 9, "duplicate-id", "rule id 'exfil.secret_to_paste' is used twice (first in {bad}/dupes.yml:8:9)"),
    ("exfil.yml", 14, 11, "unknown-operator", "unknown operator 'contain' (did you mean 'contains'?)"),
    ("exfil.yml", 23, 13, "bad-value", "unknown status 'stabel' (did you mean 'stable'?) in rule 'exfil.bad_everything'; one of experimental, test, stable, deprecated"),
    ("exfil.yml", 24, 12, "bad-value", "unknown level 'severe' in rule 'exfil.bad_everything'; one of info, low, medium, high, critical"),
    ("exfil.yml", 25, 15, "bad-value", None),
    ("exfil.yml", 26, 12, "bad-tag", "tag 'atlas:T0051' is not a valid atlas id (like atlas:AML.T0051.001)"),
    ("exfil.yml", 26, 25, "bad-tag", "tag 'owasp-llm:LLM11' is not a valid owasp-llm id (like owasp-llm:LLM01)"),
    ("exfil.yml", 26, 42, "bad-tag", "tag 'nonamespace' must look like namespace:value (atlas:AML.T0051.001, owasp-llm:LLM01)"),
    ("exfil.yml", 28, 14, "bad-value", "rule 'exfil.bad_everything' 'runbook' must be a non-empty string"),
    ("exfil.yml", 29, 5, "unknown-key", "unknown key 'colour' in rule 'exfil.bad_everything'"),
    ("exfil.yml", 32, 19, "unknown-field", "unknown field 'modle.name' (did you mean 'model.name'?)"),
    ("exfil.yml", 33, 33, "bad-value", "kind is never 'completon' (did you mean 'completion'?); it is one of prompt, completion, tool_call, tool_result, retrieval, agent_message"),
    ("exfil.yml", 34, 42, "operand-type", "'gt' takes a number or {param: name}"),
    ("exfil.yml", 35, 37, "bad-regex", "regex repeats a group that itself repeats (like '(a+)+'): catastrophic backtracking risk"),
    ("exfil.yml", 36, 36, "unknown-param", "unknown param 'approved_modles' (did you mean 'approved_models'?)"),
    ("exfil.yml", 37, 12, "unknown-key", "unknown condition key 'feild' (did you mean 'field'?); expected 'field' or one of all, any, not, any_finding, param_defined"),
    ("exfil.yml", 38, 45, "many-operators", "one operator per condition, found startswith, endswith; combine conditions with 'all'"),
    ("exfil.yml", 39, 35, "unknown-key", "unknown key 'ignorecase' (did you mean 'ignore_case'?)"),
    ("exfil.yml", 41, 7, "missing-key", "'tests' needs 'negative'"),
    ("exfil.yml", 41, 17, "missing-test", "'tests.positive' must list at least one case (every rule carries positive and negative tests)"),
    ("syntax.yml", 4, 11, "yaml", "YAML syntax error: expected ',' or ']', but got ':' (while parsing a flow sequence at line 3)"),
]


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def codes(issues) -> list[tuple[str, int, int]]:
    return [(i.code, i.pos.line, i.pos.col) for i in issues if i.pos is not None]


def test_lint_reports_every_problem_of_every_file_with_its_place() -> None:
    issues = lint([BAD], now=NOW)
    got = [(Path(i.pos.file).name, i.pos.line, i.pos.col, i.code, i.message) for i in issues]
    assert [g[:4] for g in got] == [e[:4] for e in EXPECTED_BAD]
    for g, e in zip(got, EXPECTED_BAD):
        if e[4] is not None:
            assert g[4] == e[4].replace("{bad}", str(BAD))
    assert all(i.pos.file.startswith(str(BAD)) for i in issues)


def test_issue_reads_like_the_style_guide() -> None:
    issue = next(i for i in lint([BAD], now=NOW) if i.code == "unknown-operator")
    assert str(issue) == f"unknown operator 'contain' (did you mean 'contains'?) in {BAD}/exfil.yml:14:11"
    assert issue.format() == f"{BAD}/exfil.yml:14:11: error: unknown operator 'contain' (did you mean 'contains'?) [exfil.secret_to_paste]"
    assert issue.rule_id == "exfil.secret_to_paste"


def test_bad_files_are_refused_at_start_with_every_error() -> None:
    with pytest.raises(RuleLoadError) as info:
        RuleEngine.from_paths([BAD], now=NOW)
    errors = [i for i in info.value.issues if i.severity == "error"]
    assert len(errors) == sum(1 for e in EXPECTED_BAD if e[3] != "long-exception")
    text = str(info.value)
    assert text.startswith(f"rule pack refused: {len(errors)} error(s)")
    assert f"unknown field 'modle.name' (did you mean 'model.name'?) in {BAD}/exfil.yml:32:19" in text


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        # (code, the text of the snippet the issue points at) for each issue
        ("{field: app, equal: x}", [("unknown-operator", "equal:")]),
        ("{field: app}", [("no-operator", "{field")]),
        ("{field: lables.data_class, equals: x}", [("unknown-field", "lables")]),
        ("{field: findings.categry, equals: secret_leak}", [("unknown-field", "findings.")]),
        ("{any_finding: {field: app, equals: x}}", [("unknown-field", "app")]),
        ("{any_finding: {any_finding: {field: score, gt: 0.5}}}", [("nested-any-finding", "any_finding: {field")]),
        ("{field: tool.name, gt: 3}", [("operator-type", "gt:")]),
        ("{field: tool.result_bytes, contains: x}", [("operator-type", "contains")]),
        ("{field: tool.result_bytes, in: [1, big]}", [("operand-type", "big")]),
        ("{field: app, in: []}", [("operand-type", "[]")]),
        ("{field: app, in: x}", [("operand-type", "x}")]),
        ("{field: app, exists: maybe}", [("operand-type", "maybe")]),
        ("{field: app, regex: '['}", [("bad-regex", "'['")]),
        ("{field: app, regex: '" + "a" * 600 + "'}", [("bad-regex", "'aaa")]),
        ("{field: app, in: [a], match: globb}", [("bad-modifier", "globb")]),
        ("{field: app, contains: a, match: glob}", [("bad-modifier", "match")]),
        ("{field: app, in: {param: nope}}", [("unknown-param", "nope")]),
        ("{field: app, in: {parm: nope}}", [("operand-type", "parm")]),
        ("{field: tool.result_bytes, gt: {param: models}}", [("param-type", "models")]),
        ("{all: []}", [("empty-condition", "[]")]),
        ("{all: [{field: app, equals: x}], any: []}", [("unknown-key", "any")]),
        ("{not: {field: placement, equals: output}}", [("unknown-field", "placement")]),
        ("{findings.category: secret_leak}", [("unknown-key", "findings")]),
        ("[]", [("empty-condition", "[]")]),
        ("just-a-string", [("condition-type", "just")]),
        ("{param_defined: modles}", [("unknown-param", "modles")]),
        ("{field: findings.placement, equals: outptu}", [("bad-value", "outptu")]),
        ("{field: app, equals: [a, b]}", [("operand-type", "[a")]),
        ("{field: content.truncated, equals: 1}", [("operand-type", "1}")]),
        ("{field: app, ignore_case: yes, gt: 1}", [("operator-type", "gt")]),
    ],
)
def test_condition_errors(tmp_path: Path, snippet: str, expected: list[tuple[str, str]]) -> None:
    path = write(tmp_path, f"""
        params:
          models: [a]
        rules:
          - id: r.one
            title: t
            status: test
            level: low
            match: {snippet}
            category: policy_violation
            tags: [owasp-llm:LLM01]
            action: blocked it
            runbook: look
            tests:
              positive: [{{event: {{kind: prompt, app: x}}}}]
              negative: [{{event: {{kind: prompt, app: y}}}}]
        """)
    assert path.read_text().splitlines()[7] == f"    match: {snippet}"
    issues = [i for i in lint([path], now=NOW) if i.severity == "error"]
    # the snippet starts on line 8, column 12
    want = [(code, 8, 12 + snippet.index(token)) for code, token in expected]
    assert codes(issues) == want, [str(i) for i in issues]


def test_warning_for_findings_shorthand_that_may_bind_two_findings(tmp_path: Path) -> None:
    path = write(tmp_path, """
        rules:
          - id: r.one
            title: t
            status: test
            level: low
            category: secret_leak
            tags: [owasp-llm:LLM02]
            action: blocked it
            runbook: look
            match:
              - {field: findings.category, equals: secret_leak}
              - {field: findings.placement, equals: output}
            tests:
              positive: [{event: {kind: completion, app: x}, findings: [{category: secret_leak, placement: output}]}]
              negative: [{event: {kind: completion, app: x}}]
        """)
    issues = lint([path], now=NOW)
    assert [(i.severity, i.code, i.pos.line, i.pos.col) for i in issues] == [("warning", "unbound-findings", 12, 9)]
    load_pack([path], now=NOW)  # warnings do not refuse the pack


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: {}\n", [("bad-value", 1, 8)]),
        ("- a\n- b\n", [("file-type", 1, 1)]),
        ("rulez: []\n", [("unknown-key", 1, 1)]),
        ("rules: []\nrules: []\n", [("duplicate-key", 2, 1)]),
        ("params:\n  Bad-Name: [a]\n", [("bad-name", 2, 3)]),
        ("params:\n  p: {by: {content.text: {a: [x]}}}\n", [("unknown-field", 2, 12)]),
        ("params:\n  p: {by: {app: {a: [x]}}, default: 3}\n", [("param-type", 2, 3)]),
        ("params:\n  p: {value: [a], match: hostname}\n", [("bad-value", 2, 26)]),
        ("params:\n  p: {description: only words}\n", [("missing-key", 2, 3)]),
        ("modes:\n  apps: {a: alert}\n---\n", [("yaml", 3, 1)]),
        ("pack: {name: a, version: 1.0, owner: me}\n", [("unknown-key", 1, 31)]),
        ("modes: {default: learn, apps: {a: loud}}\n", [("bad-mode", 1, 35)]),
        ("a: &a [1, 2]\nb: [*a, *a]\n", [("unknown-key", 1, 1), ("unknown-key", 2, 1)]),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, expected: list[tuple[str, int, int]]) -> None:
    path = tmp_path / "f.yml"
    path.write_text(text)
    assert codes(i for i in lint([path], now=NOW) if i.severity == "error") == expected


def test_alias_bomb_is_bounded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        prev = f"*a{n - 1}"
        lines.append(f"a{n}: &a{n} [{', '.join([prev] * 10)}]")
    path = tmp_path / "bomb.yml"
    path.write_text("\n".join(lines) + "\n")
    issues = lint([path], now=NOW)
    assert "too-large" in [i.code for i in issues]
    assert f"more than {MAX_NODES} YAML values" in str(next(i for i in issues if i.code == "too-large"))


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    issues = lint([tmp_path / "nope.yml", tmp_path / "empty"], now=NOW)
    assert [i.code for i in issues] == ["no-files", "no-files"]
    assert all(i.pos is None for i in issues)
    assert str(issues[0]) == f"no such rule file or directory: {tmp_path / 'nope.yml'}"


def test_plain_yaml_scalars_are_read_as_written_where_names_are_expected(tmp_path: Path) -> None:
    """YAML 1.1 reads `no`, `on`, `1.0` as bool/number; names and versions stay what the author wrote."""
    path = write(tmp_path, """
        pack: {name: p, version: 1.0}
        params:
          countries: [no, se, dk]
        rules:
          - id: r.country
            title: t
            status: test
            level: low
            category: policy_violation
            tags: [owasp-llm:LLM02]
            action: blocked it
            runbook: look
            match: {field: labels.country, in: [no, fi]}
            tests:
              positive: [{event: {kind: prompt, app: x, labels: {country: "no"}}}]
              negative: [{event: {kind: prompt, app: x, labels: {country: "se"}}}]
        """)
    pack = load_pack([path], now=NOW)
    assert pack.version == "1.0"
    assert pack.params["countries"].default == ["no", "se", "dk"]


RULE = """
  - id: {id}
    title: t
    status: {status}
    level: low
    category: policy_violation
    tags: [{tags}]
    action: blocked it
    runbook: look
    match: {{field: app, equals: x}}
    tests:
      positive: [{{event: {{kind: prompt, app: x}}}}]
      negative: [{{event: {{kind: prompt, app: y}}}}]
"""


def rule_text(rule_id: str = "r.one", status: str = "test", tags: str = "owasp-llm:LLM01") -> str:
    return "rules:" + RULE.format(id=rule_id, status=status, tags=tags)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (rule_text("r.one"), rule_text("r.one"), [("error", "duplicate-id", "b.yml", 2, 9)]),
        ("pack: {name: a, version: '1'}\n", "pack: {name: b, version: '2'}\n", [("error", "duplicate-pack", "b.yml", 1, 1)]),
        ("params:\n  p: [a]\n", "params:\n  p: [b]\n", [("error", "duplicate-param", "b.yml", 2, 3)]),
        ("modes: {apps: {bot: alert}}\n", "modes: {apps: {bot: learn}}\n", [("error", "duplicate-mode", "b.yml", 1, 16)]),
        ("modes: {default: alert}\n", "modes: {default: learn}\n", [("error", "duplicate-mode", "b.yml", 1, 9)]),
        (rule_text(status="deprecated"), "", [("warning", "deprecated", "a.yml", 4, 13)]),
        (rule_text(tags="team:payments"), "", [("warning", "no-threat-tag", "a.yml", 7, 11)]),
        (rule_text(), "exceptions:\n  - {id: e, rules: [r.one], owner: o, reason: r, expires_at: 2025-06-01, match: {field: app, equals: x}}\n",
         [("warning", "expired-exception", "b.yml", 2, 62)]),
        (rule_text(), "exceptions:\n  - {id: e, rules: [], owner: o, reason: r, expires_at: 2026-06-01, match: {field: app, equals: x}}\n",
         [("error", "bad-value", "b.yml", 2, 20)]),
    ],
)
def test_pack_wide_checks_across_files(tmp_path: Path, first: str, second: str, expected: list) -> None:
    (tmp_path / "a.yml").write_text(first)
    (tmp_path / "b.yml").write_text(second or "# nothing here\nrules: []\n")
    issues = lint([tmp_path], now=NOW)
    assert [(i.severity, i.code, Path(i.pos.file).name, i.pos.line, i.pos.col) for i in issues] == expected


def test_utf8_bom_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_bytes("\ufeff".encode() + rule_text().encode())
    (tmp_path / "b.yml").write_text("")
    issues = lint([tmp_path], now=NOW)
    assert [(i.code, Path(i.pos.file).name) for i in issues] == [("empty-file", "b.yml")]
    assert [r.id for r in load_pack([tmp_path], now=NOW).rules] == ["r.one"]


def test_non_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_bytes(b"rules: []\n# caf\xe9\n")
    assert [str(i) for i in lint([tmp_path], now=NOW)] == [f"rule file is not UTF-8 (byte 15) in {tmp_path / 'a.yml'}:1:1"]


@pytest.mark.parametrize(
    ("pattern", "refused"),
    [
        ("(a+)+$", True), (r"(\w+\s?)+", True), ("(?:x*y){2,}", True), ("a" * 513, True), ("(unclosed", True),
        (r"(?:\d{1,3}\.){3}\d{1,3}", False), (r"\brm\s+-rf\b", False), ("ignore (all )?previous", False),
        ("(ab)+", False), (r"(a\+)+", False),
    ],
)
def test_regex_guard(pattern: str, refused: bool) -> None:
    from detectors.rules.operators import regex_problem

    assert (regex_problem(pattern) is not None) is refused
