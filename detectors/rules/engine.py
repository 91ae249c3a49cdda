"""RuleEngine: one event (+ the detector findings of that event) → rule findings (``schemas.Finding``).

    engine = RuleEngine.from_paths(["infra/rules"])
    findings = engine.evaluate(event, content_findings, now=datetime.now(timezone.utc))

For every rule whose condition holds:

- **mode** = the lower of the app's phase (pack ``modes``) and the rule's own phase (rule ``mode``,
  possibly per app), in the order learn < monitor < alert. ``learn`` matches are counted
  (``stats``) but not returned unless ``include_learn=True`` (replay / what-if).
- **exceptions**: an exception of the rule whose condition holds and which has not expired at ``now``
  suppresses the finding — the finding is still returned, with mode lowered to ``monitor`` (stored,
  not paged), tags ``suppressed`` and ``exception:<id>`` and an evidence item naming the exception,
  its owner, reason and expiry. An expired exception that would have matched is named in the
  evidence too (``exception_expired``), so an analyst sees why a finding is no longer suppressed.
- **finding**: detector ``rules``, ``rule_id``, category and severity from the rule, score (rule
  ``score``, else the highest score of the findings the rule used, else the level's score),
  ``finding_id`` = sha256(event_id, rule id) (replays yield the same id), rationale ending with what a
  policy in enforce mode would have done, evidence listing the conditions that held with masked
  values, and ``policy_version`` of the pack.

The engine is pure: no I/O after loading, deterministic for a given (event, findings, now). Its only
mutable attribute is ``stats`` (counters for metrics). Per event it walks only the rules that can match
an event of that kind (with or without findings): ``detectors.rules.prefilter``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from detectors.rules.conditions import Ctx, Explanation
from detectors.rules.fields import FindingView
from detectors.rules.loader import load_pack
from detectors.rules.model import LEVEL_SCORE, MODE_RANK, Rule, RuleException, RulePack
from detectors.rules.prefilter import RuleIndex, whole
from schemas.event import Event
from schemas.finding import Finding

DETECTOR = "rules"
DEFAULT_APP_MODE = "monitor"
DEFAULT_RULE_MODE = "alert"  # no cap: the app's phase decides
SUPPRESSED_TAG = "suppressed"
MAX_RATIONALE = 8000


def rule_finding_id(event_id: str, rule_id: str) -> str:
    key = f"{event_id}\x1f{DETECTOR}\x1f{rule_id}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:40]


def suppressed_by(finding: Finding) -> str | None:
    """The id of the exception that suppressed a rule finding, or ``None``."""
    if SUPPRESSED_TAG not in finding.tags:
        return None
    return next((t.partition(":")[2] for t in finding.tags if t.startswith("exception:")), None)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


class RuleEngine:
    """Evaluates a loaded :class:`RulePack`; see the module docstring."""

    def __init__(self, pack: RulePack) -> None:
        self.pack = pack
        self.stats: Counter[str] = Counter()

    @property
    def pack(self) -> RulePack:
        return self._pack

    @pack.setter
    def pack(self, pack: RulePack) -> None:
        """Setting a pack (re)builds what is derived from it: the rule index and the policy version."""
        self._pack = pack
        self._index = RuleIndex.build(pack.rules)
        self._policy_version = pack.policy_version

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], *, now: datetime | None = None) -> "RuleEngine":
        """Load and compile rule files; raises ``RuleLoadError`` (every error with file:line:col)."""
        return cls(load_pack(paths, now=now))

    @property
    def policy_version(self) -> str:
        """The pack's ``policy_version``, computed once per pack (findings and the pipeline read it often)."""
        return self._policy_version

    # -- evaluation -------------------------------------------------------------------------------

    def matching_rules(self, event: Event, findings: Sequence[Finding | FindingView] = ()) -> list[Rule]:
        """Rules whose condition holds (no modes, no exceptions): for tests and what-if tooling."""
        ctx = self._ctx(event, findings)
        return [rule for rule, check in self._index.candidates(event.kind, bool(ctx.findings))
                if check is None or check.holds(ctx)]

    def evaluate(self, event: Event, findings: Sequence[Finding | FindingView] = (), *, now: datetime | None = None,
                 include_learn: bool = False, rules: Sequence[Rule] | None = None) -> list[Finding]:
        """Rule findings for one event, in rule-id order.

        ``findings``: the content-detector findings of this event (rule findings, detector ``rules``,
        are ignored: rules do not chain). ``now``: the time exceptions are judged at (wall clock in the
        worker; the event time in a replay that should reproduce the past). Returns monitor and alert
        findings, suppressed ones included (marked); learn findings only with ``include_learn``.
        """
        now = _utc(now)
        ctx = self._ctx(event, findings)
        stats = self.stats
        stats["events"] += 1
        out: list[Finding] = []
        candidates = self._index.candidates(event.kind, bool(ctx.findings)) if rules is None else whole(rules)
        for rule, check in candidates:
            if check is not None and not check.holds(ctx):
                continue
            stats["matches"] += 1
            stats[f"match:{rule.id}"] += 1
            finding = self._finding(rule, ctx, now)
            stats[f"mode:{finding.mode}"] += 1
            if suppressed_by(finding):
                stats["suppressed"] += 1
            if finding.mode == "learn" and not include_learn:
                continue
            out.append(finding)
        return out

    # -- internals --------------------------------------------------------------------------------

    @staticmethod
    def _ctx(event: Event, findings: Sequence[Finding | FindingView]) -> Ctx:
        if not findings:  # most events: no generator, no tuple
            return Ctx(event)
        views = tuple(FindingView.of(f) for f in findings
                      if not (isinstance(f, Finding) and f.detector == DETECTOR))
        return Ctx(event, views)

    def modes(self, rule: Rule, app: str) -> tuple[str, str, str]:
        """(effective mode, app phase, rule phase) for ``rule`` on ``app``."""
        app_mode = self.pack.modes.for_app(app, DEFAULT_APP_MODE)
        rule_mode = rule.mode.for_app(app, DEFAULT_RULE_MODE)
        return min(app_mode, rule_mode, key=MODE_RANK.__getitem__), app_mode, rule_mode

    def _finding(self, rule: Rule, ctx: Ctx, now: datetime) -> Finding:
        event = ctx.event
        explanation = Explanation()
        rule.condition.explain(ctx, None, explanation)
        mode, app_mode, rule_mode = self.modes(rule, event.app)

        active: RuleException | None = None
        expired: list[RuleException] = []
        for exc in rule.exceptions:
            if exc.condition.holds(ctx):
                if exc.active(now):
                    active = active or exc
                else:
                    expired.append(exc)
        if expired:
            self.stats["exceptions_expired_matched"] += len(expired)

        if rule.score is not None:
            score = rule.score
        elif explanation.findings:
            score = max(f.score for f in explanation.findings)
        else:
            score = LEVEL_SCORE[rule.level]

        tags = list(rule.tags)
        summary: dict[str, Any] = {
            "kind": "rule", "rule_id": rule.id, "source": rule.source, "rule_digest": rule.digest[:16],
            "mode": mode, "app_mode": app_mode, "rule_mode": rule_mode, "policy_version": self._policy_version,
        }
        evidence: list[dict[str, Any]] = [summary, *explanation.conditions]
        final_mode = mode
        if active is not None:
            final_mode = min(mode, "monitor", key=MODE_RANK.__getitem__)
            summary["mode_without_exception"] = mode
            summary["mode"] = final_mode
            tags += [SUPPRESSED_TAG, f"exception:{active.id}"]
            evidence.append({"kind": "exception", **active.describe()})
        for exc in expired:
            evidence.append({"kind": "exception_expired", **exc.describe()})

        return Finding(
            finding_id=rule_finding_id(event.event_id, rule.id), ts=event.ts, detector=DETECTOR, rule_id=rule.id,
            category=rule.category, severity=rule.level, score=round(min(1.0, max(0.0, score)), 4),
            event_id=event.event_id, session_id=event.session_id, app=event.app, agent=event.agent,
            user_id=event.actor.user_id if event.actor is not None else None, title=rule.title,
            rationale=self._rationale(rule, ctx, explanation, mode, app_mode, rule_mode, active, expired),
            evidence=evidence, tags=list(dict.fromkeys(tags)), mode=final_mode, policy_version=self._policy_version,
        )

    def _rationale(self, rule: Rule, ctx: Ctx, explanation: Explanation, mode: str, app_mode: str, rule_mode: str,
                   active: RuleException | None, expired: list[RuleException]) -> str:
        parts = []
        if rule.message is not None:
            parts.append(rule.message.render(ctx.event).rstrip(".") + ".")
        conditions = [c["condition"] for c in explanation.conditions][:6]
        parts.append(f"Rule {rule.id} ({rule.source}) matched: " + "; ".join(conditions) + ".")
        if explanation.findings:
            top = max(explanation.findings, key=lambda f: f.score)
            parts.append(f"Based on {len(explanation.findings)} detector finding(s), strongest {top.detector} "
                         f"({top.category}, placement {top.placement or 'unknown'}, score {top.score:.2f}).")
        parts.append(f"Mode {mode} (app phase {app_mode}, rule phase {rule_mode}).")
        if active is not None:
            why = active.reason or f"ticket {active.ticket}"
            parts.append(f"Suppressed by exception {active.id} (owner {active.owner}, until "
                         f"{active.expires_at.isoformat()}): {why}.")
        for exc in expired:
            parts.append(f"Exception {exc.id} (owner {exc.owner}) would have suppressed this but expired on "
                         f"{exc.expires_at.isoformat()}.")
        parts.append(f"A policy in enforce mode would have {rule.action.rstrip('.')}.")
        return " ".join(parts)[:MAX_RATIONALE]
