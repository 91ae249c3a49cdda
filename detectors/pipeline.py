"""The detection pipeline for one event: content detectors, rules over event + content findings, and
(optionally) the behavioural layer (sessions, baselines, drift).

The same object runs in the worker (``streams``) and in ``aiwatch replay``, so a backtest shows
exactly what production would have raised. Pure: no I/O after construction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from collections.abc import Sequence

from detectors.behavior.pipeline import BehaviorPipeline
from detectors.model_stage import ClassifierStage
from detectors.rules import RuleEngine
from detectors.rules.engine import DEFAULT_APP_MODE
from detectors.scan import ContentScanner
from schemas import Event, Finding


@dataclass
class Detection:
    """Runs ``scanner``, ``classifier``, ``rules`` and ``behavior`` over events; ``stats`` counts what was
    raised and held back."""

    scanner: ContentScanner
    rules: RuleEngine | None = None
    behavior: BehaviorPipeline | None = None
    classifier: ClassifierStage | None = None
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def policy_version(self) -> str | None:
        return self.rules.policy_version if self.rules else None

    def app_mode(self, app: str) -> str:
        """The rollout phase of an app (learn / monitor / alert) from the rule pack; monitor without one."""
        return self.rules.pack.modes.for_app(app, DEFAULT_APP_MODE) if self.rules else "monitor"

    def process_batch(self, events: Sequence[Event], now: datetime | None = None,
                      behavior: Sequence[bool] | None = None) -> list[list[Finding]]:
        """``process`` for each of ``events`` in order, with the classifier run once over the whole batch.

        ``now`` None judges each event at its own time (replay); ``behavior`` per event as in ``process``.
        """
        extra = self.classify(events)
        return [self.process(event, now=now or event.ts, behavior=behavior[i] if behavior is not None else True,
                             extra=extra[i])
                for i, event in enumerate(events)]

    def classify(self, events: Sequence[Event]) -> list[list[Finding]]:
        """Classifier findings per event (empty lists without a classifier stage)."""
        if self.classifier is None:
            return [[] for _ in events]
        return self.classifier.findings(events)

    def process(self, event: Event, now: datetime | None = None, behavior: bool = True,
                extra: list[Finding] | None = None) -> list[Finding]:
        """Findings to store for ``event``: content findings (unless the app is in learn mode) and rule findings.

        ``now`` is when exceptions are judged: wall clock in the worker, ``event.ts`` in a replay.
        ``behavior`` False skips the stateful layer (an event replayed after a restart is already in it).
        ``extra`` are content findings computed outside (the classifier over a batch: ``process_batch``);
        a lone ``process`` call runs the classifier on this one event.
        """
        content, rule_findings = self._detect(event, now, extra)
        behavioral: list[Finding] = []
        if self.behavior is not None and behavior:
            behavioral = self.behavior.process(event, signals={"injection_score": injection_score(content)})
        self.stats["events"] += 1
        return self.surface(event.app, content + behavioral) + rule_findings

    def process_content(self, event: Event, now: datetime | None = None,
                        extra: list[Finding] | None = None) -> tuple[list[Finding], float]:
        """``process`` without the behavioural layer, and the injection score that layer is to be given:
        for a worker whose behavioural layer runs elsewhere (``streams.behavior_process``)."""
        content, rule_findings = self._detect(event, now, extra)
        self.stats["events"] += 1
        return self.surface(event.app, content) + rule_findings, injection_score(content)

    def _detect(self, event: Event, now: datetime | None,
                extra: list[Finding] | None) -> tuple[list[Finding], list[Finding]]:
        """(content findings, rule findings) of one event."""
        content = self.scanner.scan(event)
        if extra is None and self.classifier is not None:
            extra = self.classifier.findings([event])[0]
        if extra:
            content = content + extra
        rule_findings = self.rules.evaluate(event, content, now=now or event.ts) if self.rules else []
        return content, rule_findings

    def finish(self) -> list[Finding]:
        """End of a replay: close every open session and baseline bucket, and return what that raised."""
        if self.behavior is None:
            return []
        return [f for f in self.behavior.flush(close_all=True) if self.app_mode(f.app or "") != "learn"]

    def surface(self, app: str, findings: list[Finding]) -> list[Finding]:
        """Detector findings of an app in learn mode are counted, not stored; others carry the policy version."""
        if self.app_mode(app) == "learn":
            self.stats["held_back_learn"] += len(findings)
            return []
        self.stats["detector_findings"] += len(findings)
        version = self.policy_version
        if version and findings:
            findings = [f.model_copy(update={"policy_version": version}) for f in findings]
        return findings


INJECTION = frozenset({"prompt_injection", "jailbreak"})


def injection_score(content: list[Finding]) -> float:
    """The strongest injection / jailbreak score among an event's content findings (0 without one)."""
    return max((f.score for f in content if f.category in INJECTION), default=0.0)


def is_alert(finding: Finding) -> bool:
    """Alert-mode rule findings go to the SOC feed; suppressed ones are stored but never paged."""
    return finding.mode == "alert" and "suppressed" not in finding.tags
