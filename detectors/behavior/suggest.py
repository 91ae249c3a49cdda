"""Thresholds from observed behaviour: baseline snapshot rows → a reviewable policy proposal (YAML).

    >>> rows = [
    ...     {"app": "bot", "detector": "session_profile", "field": "tool_calls", "observations": 400,
    ...      "p50": 4.0, "p99": 18.0, "max": 25.0, "top_values": []},
    ...     {"app": "bot", "detector": "rare_tool_by_app", "field": "tool", "observations": 900,
    ...      "top_values": [("search", 800), ("send_email", 99), ("debug_dump", 1)]},
    ... ]
    >>> s = suggest(rows, "bot")
    >>> s.policy["thresholds"]["session"]["max_tool_calls"], s.policy["allow_lists"]["tools"]
    (27, ['search', 'send_email'])

``suggest`` is pure: rows in (from ``BehaviorPipeline.snapshot()`` or the ClickHouse ``baselines``
table), a ``Suggestion`` out. Bounds are the p99 of what the app did times ``headroom`` (rounded up
to two significant digits); allow-lists hold the values seen at least ``min_count`` times (rarer ones
are listed apart for review: they may be the anomalies). ``Suggestion.to_yaml()`` is the proposed
document, ``Suggestion.diff(current)`` a unified diff against the policy in force, both YAML text.
Nothing is proposed from fewer than ``min_sessions`` sessions (the proposal says why).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

SESSION_FIELDS = {"tool_calls": "max_tool_calls", "tokens": "max_tokens", "cost_usd": "max_cost_usd"}
ALLOW_LISTS = {"rare_tool_by_app": "tools", "rare_model_by_app": "models", "rare_endpoint_by_app": "endpoints"}


def _ceil2(x: float) -> float:
    """Round up to two significant digits (42.3 → 43, 0.0172 → 0.018)."""
    if x <= 0:
        return 0.0
    mag = 10 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(round(x / mag, 9)) * mag


@dataclass
class Suggestion:
    app: str
    policy: dict[str, Any]
    changes: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        head = [f"# Proposed by `aiwatch baseline suggest --app {self.app}` from observed behaviour.",
                "# Review before applying: every value says where it comes from under `basis`."]
        head += [f"# note: {n}" for n in self.notes]
        return "\n".join(head) + "\n" + yaml.safe_dump(self.policy, sort_keys=False, allow_unicode=True)

    def diff(self, current: str | Mapping[str, Any] | None = None) -> str:
        """Unified diff from the policy in force (YAML text or mapping; none = empty) to the proposal,
        on the sections this proposal covers."""
        if isinstance(current, str):
            current = yaml.safe_load(current) or {}
        cur = {k: (current or {}).get(k) for k in ("thresholds", "allow_lists") if (current or {}).get(k) is not None}
        new = {k: self.policy[k] for k in ("thresholds", "allow_lists") if k in self.policy}
        a = yaml.safe_dump(cur, sort_keys=True).splitlines(keepends=True) if cur else []
        b = yaml.safe_dump(new, sort_keys=True).splitlines(keepends=True)
        return "".join(difflib.unified_diff(a, b, fromfile=f"policy/{self.app} (in force)",
                                            tofile=f"policy/{self.app} (proposed)"))


def suggest(rows: Iterable[Mapping[str, Any]], app: str, *, current: Mapping[str, Any] | str | None = None,
            headroom: float = 1.5, min_sessions: int = 30, min_count: int = 2,
            generated_at: datetime | None = None, partition: str | None = None) -> Suggestion:
    """Propose per-app thresholds and allow-lists from snapshot rows (see the module docstring).
    ``partition``: which baseline partition of the app ("env=prod") when its baselines are split; needed
    only when the rows hold more than one."""
    if headroom < 1.0:
        raise ValueError(f"headroom must be at least 1.0, got {headroom}")
    if isinstance(current, str):
        current = yaml.safe_load(current) or {}
    current = current or {}
    mine = [r for r in rows if r.get("app") == app]
    labels = sorted({r.get("partition") or "" for r in mine} - {""})
    if partition is None:
        if len(labels) > 1:
            raise ValueError(f"app {app} has baselines in {len(labels)} partitions ({', '.join(labels)}): "
                             "choose one with --partition")
        partition = labels[0] if labels else ""
    mine = [r for r in mine if (r.get("partition") or "") in ("", partition)]  # app-wide rows, and this partition
    notes: list[str] = []
    session: dict[str, Any] = {}
    basis: dict[str, str] = {}
    result_bytes: dict[str, Any] = {}
    allow: dict[str, list[str]] = {}
    review: dict[str, list[str]] = {}
    sessions_seen = 0
    for r in mine:
        det, fld = r.get("detector"), r.get("field")
        if det == "session_profile" and fld in SESSION_FIELDS:
            n = int(r.get("observations") or 0)
            sessions_seen = max(sessions_seen, n)
            p99 = r.get("p99")
            key = SESSION_FIELDS[fld]
            if n < min_sessions or p99 is None:
                notes.append(f"{key}: only {n} sessions observed (need {min_sessions}); nothing proposed")
                continue
            bound = _ceil2(float(p99) * headroom)
            value: Any = round(bound, 4) if fld == "cost_usd" else int(math.ceil(bound))
            session[key] = value
            basis[f"session.{key}"] = (f"p99 {float(p99):.4g} × {headroom:g} over {n} sessions "
                                       f"(median {r.get('p50')}, max seen {r.get('max')})")
        elif det == "high_mean_result_bytes_by_tool" and r.get("entity_kind") == "tool":
            n = int(r.get("observations") or 0)
            if n >= min_sessions and r.get("p99") is not None:
                result_bytes[r["entity"]] = int(math.ceil(_ceil2(float(r["p99"]) * headroom)))
                basis[f"tool_result_bytes.{r['entity']}"] = f"p99 {float(r['p99']):.4g} B × {headroom:g} over {n} results"
        elif det in ALLOW_LISTS:
            name = ALLOW_LISTS[det]
            values = [(str(v), int(c)) for v, c in (r.get("top_values") or [])]
            allow[name] = sorted({v for v, c in values if c >= min_count} | set(allow.get(name, [])))
            rare = sorted(v for v, c in values if c < min_count)
            if rare:
                review[name] = sorted(set(review.get(name, [])) | set(rare))
            basis[f"allow_lists.{name}"] = (f"values seen at least {min_count} times in {r.get('observations')} "
                                            "observations; rarer ones are under review_first")
    if not mine:
        notes.append(f"no baseline rows for app {app!r}")
    policy: dict[str, Any] = {
        "apiVersion": "aiwatch.policy/1",
        "kind": "BaselineSuggestion",
        "app": app,
        "generated_at": (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "based_on": {"sessions": sessions_seen, "rows": len(mine), "headroom": headroom},
        "thresholds": {"session": session, **({"tool_result_bytes": result_bytes} if result_bytes else {})},
        "allow_lists": allow,
    }
    if review:
        policy["review_first"] = review
    policy["basis"] = basis
    changes: list[dict[str, Any]] = []
    cur_t = (current.get("thresholds") or {}) if isinstance(current, Mapping) else {}
    cur_a = (current.get("allow_lists") or {}) if isinstance(current, Mapping) else {}
    for key, value in session.items():
        old = (cur_t.get("session") or {}).get(key)
        if old != value:
            changes.append({"path": f"thresholds.session.{key}", "current": old, "proposed": value,
                            "basis": basis[f"session.{key}"]})
    for tool, value in result_bytes.items():
        old = (cur_t.get("tool_result_bytes") or {}).get(tool)
        if old != value:
            changes.append({"path": f"thresholds.tool_result_bytes.{tool}", "current": old, "proposed": value,
                            "basis": basis[f"tool_result_bytes.{tool}"]})
    for name, values in allow.items():
        old = sorted(cur_a.get(name) or [])
        if old != values:
            changes.append({"path": f"allow_lists.{name}", "current": old, "proposed": values,
                            "added": sorted(set(values) - set(old)), "removed": sorted(set(old) - set(values)),
                            "basis": basis.get(f"allow_lists.{name}", "")})
    return Suggestion(app, policy, changes, notes)
