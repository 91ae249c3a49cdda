"""Hits → ``schemas.Finding``: the one place the Finding contract is built for content detectors.

Hits of one detector in one field become one finding (evidence lists up to ``max_evidence`` of them,
the count is always kept). ``finding_id`` is a hash of event id, detector, field and the first span,
so replaying the same event yields the same ids (sinks are idempotent on it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from detectors.config import ScannerConfig
from detectors.fields import Field
from detectors.hits import Hit
from detectors.spec import Detector
from schemas.event import Event
from schemas.finding import Finding

ACTIONS: dict[tuple[str, str], str] = {
    ("sensitive", "direct"): "redacted it from the prompt before it reached the model provider",
    ("sensitive", "output"): "blocked the response (or redacted the value) before it reached the user",
    ("sensitive", "tool_args"): "blocked the tool call",
    ("sensitive", "indirect"): "redacted it from the content before it entered the model context",
    ("sensitive", "system"): "refused to deploy a system prompt carrying it",
    ("prompt_injection", "direct"): "refused the prompt",
    ("prompt_injection", "indirect"): "quarantined the untrusted content before it reached the model",
    ("prompt_injection", "tool_args"): "blocked the tool call carrying the injected instructions",
    ("jailbreak", "direct"): "refused the prompt",
    ("jailbreak", "indirect"): "quarantined the untrusted content before it reached the model",
    ("exfiltration", "output"): "stripped the link before the response was rendered",
    ("exfiltration", "tool_args"): "blocked the tool call",
    ("exfiltration", "indirect"): "stripped the link from the content before it entered the model context",
    ("unsafe_code_execution", "tool_args"): "blocked the tool call",
    ("system_prompt_leak", "output"): "blocked the response",
    ("system_prompt_leak", "tool_args"): "blocked the tool call",
}
DEFAULT_ACTION = "blocked the event"


def enforcement_action(category: str, placement: str) -> str:
    """What a policy in enforce mode would have done (the rationale says it; DESIGN §3.2)."""
    family = "sensitive" if category in ("secret_leak", "pii_exposure") else category
    return ACTIONS.get((family, placement), DEFAULT_ACTION)


def finding_id(event_id: str, detector: str, field: str, start: int, end: int) -> str:
    key = f"{event_id}\x1f{detector}\x1f{field}\x1f{start}:{end}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()[:40]


def combine(det: Detector, hits: list[Hit], scope: frozenset[str], config: ScannerConfig, threshold: float) -> tuple[float, list[Hit]]:
    """Score of the finding and the hits that support it."""
    if callable(det.combine):
        return det.combine(hits, scope, config)
    if det.combine == "noisy_or":
        best: dict[str, float] = {}
        for h in hits:  # one vote per pattern: ten copies of a phrase are not ten signals
            best[h.pattern] = max(best.get(h.pattern, 0.0), h.score)
        miss = 1.0
        for s in best.values():
            miss *= 1.0 - s
        return 1.0 - miss, hits
    strong = [h for h in hits if h.score >= threshold]
    return (max(h.score for h in strong), strong) if strong else (0.0, [])


def _rationale(det: Detector, top: Hit, shown: list[Hit], where: str, score: float, action: str, truncated: bool) -> str:
    patterns = sorted({h.pattern for h in shown})
    what = f"matched {top.excerpt!r}" if not det.sensitive else f"matched a value masked as {top.excerpt!r} (sha256 {top.sha256[:12]}…)"
    parts = [
        f"{det.title} in {where} ({top.field}, placement {top.placement}): pattern {', '.join(patterns[:5])} "
        f"{what}; {len(shown)} match(es), score {score:.2f}."
    ]
    if det.validation and det.validate is not None:
        parts.append(f"Confirmed by {det.validation}.")
    context = [n for n in top.notes if n.startswith(("context", "filter", "placement"))]
    if context:
        parts.append("Adjustments: " + "; ".join(context) + ".")
    if truncated:
        parts.append("The field was longer than the scan limit; only its head and tail were scanned.")
    parts.append(f"A policy in enforce mode would have {action}.")
    return " ".join(parts)


def build(event: Event, hits: list[Hit], fields: list[Field], detectors: Mapping[str, Detector],
          config: ScannerConfig) -> list[Finding]:
    """One Finding per (detector, field) whose combined score reaches the detector's threshold."""
    groups: dict[tuple[str, str], list[Hit]] = {}
    for hit in hits:
        groups.setdefault((hit.detector, hit.field), []).append(hit)
    by_path = {f.path: f for f in fields}
    scope = frozenset(s for s in (event.app, f"session:{event.session_id}" if event.session_id else None) if s)
    user_id = event.actor.user_id if event.actor is not None else None
    out: list[Finding] = []
    for (det_id, path), group in groups.items():
        det = detectors[det_id]
        threshold = config.thresholds.get(det_id, det.min_score)
        score, shown = combine(det, group, scope, config, threshold)
        if score < threshold or not shown:
            continue
        shown.sort(key=lambda h: (h.start, h.end))
        top = max(shown, key=lambda h: h.score)
        field = by_path[path]
        action = det.enforcement or enforcement_action(det.category.value, field.placement)
        summary = {
            "kind": "summary", "field": path, "placement": field.placement, "where": field.where,
            "matches": len(shown), "shown": min(len(shown), config.max_evidence),
            "field_truncated": bool(field.skipped),
        }
        tags = list(dict.fromkeys(det.tags + tuple(det.placement_tags.get(field.placement, ())) + (f"placement:{field.placement}",)))
        out.append(Finding(
            finding_id=finding_id(event.event_id, det_id, path, shown[0].start, shown[0].end),
            ts=event.ts, detector=det_id, rule_id=f"{det_id}/{top.pattern}"[:256], category=det.category,
            severity=det.severity, score=round(min(1.0, score), 4), event_id=event.event_id,
            session_id=event.session_id, app=event.app, agent=event.agent, user_id=user_id,
            title=f"{det.title} in {field.where}",
            rationale=_rationale(det, top, shown, field.where, score, action, bool(field.skipped)),
            evidence=[summary] + [h.evidence() for h in shown[: config.max_evidence]],
            tags=tags, mode=config.mode, policy_version=config.policy_version,
        ))
    return out
