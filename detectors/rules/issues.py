"""Problems found in rule files: collected, never raised one at a time (``rules lint`` shows them all).

An :class:`Issue` names the file, line and column (1-based) of the offending YAML node and reads like
``unknown operator 'contain' (did you mean 'contains'?) in infra/rules/exfil.yml:14:7``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """A place in a rule file; ``line`` and ``col`` are 1-based (what editors show)."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem. ``code`` is a stable short name (for tests and tooling); ``message`` is for people."""

    severity: Severity
    code: str
    message: str
    pos: Pos | None = None
    rule_id: str | None = None

    def __str__(self) -> str:
        return f"{self.message} in {self.pos}" if self.pos is not None else self.message

    def format(self) -> str:
        """Compiler style, one line: ``file:line:col: error: message [rule id]`` (for terminals and CI)."""
        where = f"{self.pos}: " if self.pos is not None else ""
        rule = f" [{self.rule_id}]" if self.rule_id else ""
        return f"{where}{self.severity}: {self.message}{rule}"


@dataclass(slots=True)
class Issues:
    """Collector passed through parsing; parsing goes on after an error so every problem is reported."""

    items: list[Issue] = field(default_factory=list)
    rule_id: str | None = None  # attached to issues raised while a rule is being parsed

    def error(self, code: str, message: str, pos: Pos | None) -> None:
        self.items.append(Issue("error", code, message, pos, self.rule_id))

    def warning(self, code: str, message: str, pos: Pos | None) -> None:
        self.items.append(Issue("warning", code, message, pos, self.rule_id))

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.items if i.severity == "error"]

    def sorted(self) -> list[Issue]:
        return sorted(self.items, key=_order)


def _order(issue: Issue) -> tuple:
    pos = issue.pos
    return (pos.file, pos.line, pos.col) if pos is not None else ("", 0, 0)


class RuleLoadError(ValueError):
    """A rule pack was refused; ``issues`` holds every problem (errors and warnings) with its place."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues = list(issues)
        errors = [i for i in self.issues if i.severity == "error"]
        head = f"rule pack refused: {len(errors)} error(s)"
        super().__init__(head + "\n" + "\n".join(f"  {i}" for i in errors))


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``word`` is close to one of ``choices``, else an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
