"""The parsed, frozen form of a rule pack: what the engine evaluates and what ``rules test`` runs.

Objects here are built only by ``detectors.rules.loader`` and never change afterwards; evaluation
state (counters) lives on the engine, not on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.masking import printable
from detectors.rules.conditions import Node
from detectors.rules.fields import FieldSpec, FindingView
from detectors.rules.issues import Issue, Pos
from detectors.rules.params import Param
from schemas.event import Event

MODES = ("learn", "monitor", "alert")
MODE_RANK = {m: i for i, m in enumerate(MODES)}
LEVELS = ("info", "low", "medium", "high", "critical")
LEVEL_SCORE = {"info": 0.2, "low": 0.4, "medium": 0.6, "high": 0.8, "critical": 0.95}
STATUSES = ("experimental", "test", "stable", "deprecated")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True)
class ModeSetting:
    """A default mode and per-app overrides (``None`` default: the caller's fallback applies)."""

    default: str | None
    apps: Mapping[str, str]

    def for_app(self, app: str, fallback: str) -> str:
        return self.apps.get(app) or self.default or fallback


@dataclass(frozen=True, slots=True)
class Template:
    """A rule message with ``{field}`` placeholders over non-sensitive event fields."""

    parts: tuple[str | FieldSpec, ...]

    def render(self, event: Event) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.get(event)
            if value is None or value == ():
                out.append("(none)")
            elif isinstance(value, tuple):
                out.append(", ".join(printable(str(v), 60) for v in value[:5]))
            else:
                out.append(printable(str(value), 120))
        return "".join(out)


@dataclass(frozen=True, slots=True, eq=False)
class RuleException:
    """A time-bound, owned, justified exception; it suppresses a finding only while ``now < expires_at``."""

    id: str
    owner: str
    reason: str | None
    ticket: str | None
    expires_at: datetime
    created_at: datetime | None
    condition: Node
    rule_ids: tuple[str, ...]
    pos: Pos

    def active(self, now: datetime) -> bool:
        return now < self.expires_at

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "owner": self.owner, "expires_at": self.expires_at.isoformat()}
        if self.reason:
            out["reason"] = printable(self.reason, 300)
        if self.ticket:
            out["ticket"] = printable(self.ticket, 100)
        return out


@dataclass(frozen=True, slots=True, eq=False)
class TestCase:
    """An event embedded in a rule: ``positive`` cases must match, negative ones must not."""

    __test__ = False  # not a pytest class

    rule_id: str
    name: str
    positive: bool
    event: Event
    findings: tuple[FindingView, ...]
    now: datetime | None
    expect: Mapping[str, Any]  # optional: suppressed_by (exception id or None), mode
    pos: Pos


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    id: str
    title: str
    description: str
    status: str
    level: str
    category: str
    tags: tuple[str, ...]
    condition: Node
    action: str  # what an enforcing control would have done: "blocked the tool call"
    message: Template | None
    mode: ModeSetting
    score: float | None  # None: the highest score of the findings the rule used, else the level's score
    runbook: str
    references: tuple[str, ...]
    author: str | None
    exceptions: tuple[RuleException, ...]
    tests: tuple[TestCase, ...]
    pos: Pos
    digest: str  # sha256 of the rule's own YAML content (change control per rule)

    @property
    def source(self) -> str:
        """``file.yml:line`` with the file's base name (evidence stays the same on every host)."""
        name = self.pos.file.replace("\\", "/").rsplit("/", 1)[-1]
        return f"{name}:{self.pos.line}"


@dataclass(frozen=True, slots=True)
class PackFile:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, eq=False)
class RulePack:
    """Every rule, param, mode and exception of the loaded files, and the pack's content hash."""

    name: str | None
    version: str | None
    digest: str  # sha256 over the files' contents (order and file names do not matter)
    rules: tuple[Rule, ...]
    params: Mapping[str, Param]
    modes: ModeSetting
    files: tuple[PackFile, ...]
    warnings: tuple[Issue, ...]

    @property
    def policy_version(self) -> str:
        """What findings carry: ``name@version+sha256:<12 hex>`` (name and version when declared)."""
        short = f"sha256:{self.digest[:12]}"
        if self.version:
            label = f"{self.name}@{self.version}" if self.name else self.version
            return f"{label}+{short}"
        return short

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def manifest(self) -> dict[str, Any]:
        """A JSON-able summary for change control: what is in force, with per-rule and per-file hashes."""
        return {
            "name": self.name, "version": self.version, "digest": self.digest, "policy_version": self.policy_version,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
            "rules": [{"id": r.id, "digest": r.digest, "status": r.status, "level": r.level,
                       "category": r.category, "source": r.source} for r in self.rules],
            "exceptions": [{"rule_ids": list(e.rule_ids), **e.describe()}
                           for e in {id(e): e for r in self.rules for e in r.exceptions}.values()],
            "modes": {"default": self.modes.default, "apps": dict(self.modes.apps)},
        }
