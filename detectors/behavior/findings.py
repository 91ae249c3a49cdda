"""Behavioural findings → ``schemas.Finding``: the one place the contract is built for this layer.

``finding_id`` hashes the detector, the rule, the triggering event and a discriminator (the
indicator, the loop fingerprint, the metric…), so replaying the same events yields the same ids
(the sinks are idempotent on it). ``mode`` and ``policy_version`` come from the configuration in force.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from schemas.finding import Finding, Mode

# (severity floor, score) → severity: the score decides, a rule may raise the floor.
_SEVERITY_STEPS = ((0.85, "high"), (0.65, "medium"), (0.45, "low"), (0.0, "info"))
_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class Emit:
    """What every finding of a component carries: the rollout mode and the policy version in force."""

    mode: Mode = Mode.monitor
    policy_version: str | None = None


def finding_id(detector: str, rule: str, event_id: str, discriminator: str = "") -> str:
    key = f"{detector}\x1f{rule}\x1f{event_id}\x1f{discriminator}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:40]


def severity_for(score: float, floor: str = "info", cap: str = "critical") -> str:
    sev = next(name for limit, name in _SEVERITY_STEPS if score >= limit)
    if _RANK[sev] < _RANK[floor]:
        sev = floor
    if _RANK[sev] > _RANK[cap]:
        sev = cap
    return sev


_LAST_TS: tuple[Any, float] = (None, 0.0)


def event_ts(event: Any) -> float:
    """``event.ts.timestamp()``, computed once per event however many stages ask: a one-slot memo keyed
    by the (immutable) datetime object itself, kept alive by the memo until the next event."""
    global _LAST_TS
    dt = event.ts
    last = _LAST_TS
    if last[0] is dt:
        return last[1]
    ts = dt.timestamp()
    _LAST_TS = (dt, ts)
    return ts


def to_datetime(ts: float | datetime) -> datetime:
    if isinstance(ts, datetime):
        return ts
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def build(*, detector: str, rule: str, category: str, score: float, title: str, rationale: str,
          event_id: str, ts: float | datetime, emit: Emit, evidence: Sequence[dict[str, Any]] = (),
          tags: Sequence[str] = (), app: str | None = None, session_id: str | None = None,
          agent: str | None = None, user_id: str | None = None, discriminator: str = "",
          severity: str | None = None, floor: str = "info") -> Finding:
    score = round(min(1.0, max(0.0, score)), 4)
    return Finding(
        finding_id=finding_id(detector, rule, event_id, discriminator),
        ts=to_datetime(ts), detector=detector, rule_id=rule, category=category,
        severity=severity or severity_for(score, floor), score=score, event_id=event_id,
        session_id=session_id, app=app, agent=agent, user_id=user_id, title=title[:1024],
        rationale=rationale[:8192], evidence=list(evidence), tags=list(dict.fromkeys(tags)),
        mode=emit.mode, policy_version=emit.policy_version,
    )
