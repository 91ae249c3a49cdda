"""Alert dedup and throttling for the SOC feed: the first alert at once, then one rollup with a count.

A rule that fires on every call of a misconfigured app would page the SOC a thousand times an hour.
Alerts are grouped by (rule, app, session — or the user when there is no session). Within a group:

- the first alert goes out at once and opens a window of ``window_s`` seconds;
- later alerts of the group inside the window are *throttled*: their findings are still stored (tagged
  ``throttled``), counted, and remembered for the rollup, but not sent to the feed;
- an alert of a *higher severity* than the one sent breaks the throttle: it goes out at once
  (escalation) and raises the severity the rest of the window is compared with;
- when the window ends with throttled alerts, one rollup alert goes out: the latest finding with
  ``count``, ``start_time``/``end_time`` and the related events — so nothing is hidden silently.

Pure bookkeeping with an explicit clock (``now``); the worker calls ``admit`` per alert and ``due`` after
each batch and at stop. The windows live in memory: after a crash, open windows are lost, which can cost
one extra alert per group, never a hidden one (the throttled findings are in the ``findings`` table).

    >>> from datetime import datetime, timezone
    >>> from schemas import Finding
    >>> def f(i, sev="high"):
    ...     return Finding(finding_id=f"f{i}", ts=datetime(2026, 1, 1, tzinfo=timezone.utc), detector="rules",
    ...                    rule_id="r1", category="secret_leak", severity=sev, score=0.9, event_id=f"e{i}",
    ...                    session_id="s1", app="a", title="t")
    >>> t = Throttle(window_s=60)
    >>> [t.admit(f(i), now=float(i)) for i in range(4)]
    [True, False, False, False]
    >>> t.admit(f(9, "critical"), now=5.0)  # escalation breaks the throttle
    True
    >>> [(r.count, r.finding.finding_id) for r in t.due(now=100.0)]
    [(3, 'f3')]
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from schemas import Finding

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
MAX_RELATED = 50
THROTTLED_TAG = "throttled"


@dataclass
class Rollup:
    """Alerts throttled in one window of one group: ``count`` of them, the latest as ``finding``."""

    key: tuple[str, str, str]
    first_alert_id: str
    started: float
    finding: Finding
    count: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    event_ids: list[str] = field(default_factory=list)

    @property
    def rollup_id(self) -> str:
        return f"{self.first_alert_id}-rollup-{self.count}"


@dataclass
class _Window:
    started: float
    severity: int
    first_alert_id: str
    rollup: Rollup | None = None


@dataclass
class Throttle:
    """Decides per alert whether it goes to the feed now; see the module docstring."""

    window_s: float = 300.0
    max_groups: int = 100_000
    stats: Counter[str] = field(default_factory=Counter)
    _windows: dict[tuple[str, str, str], _Window] = field(default_factory=dict)
    _pending: list[Rollup] = field(default_factory=list)  # rollups of windows closed early

    @staticmethod
    def key(finding: Finding) -> tuple[str, str, str]:
        group = finding.session_id or (f"user:{finding.user_id}" if finding.user_id else "")
        return (finding.rule_id or finding.detector, finding.app or "", group)

    def admit(self, finding: Finding, now: float) -> bool:
        """True: send this alert now. False: it was throttled (counted for the window's rollup)."""
        if self.window_s <= 0:
            return True
        key = self.key(finding)
        rank = SEVERITY_RANK.get(str(finding.severity), 0)
        window = self._windows.get(key)
        if window is None or now - window.started >= self.window_s:
            self._open(key, now, rank, finding.finding_id)
            self.stats["sent"] += 1
            return True
        if rank > window.severity:
            self.stats["escalated"] += 1
            self.stats["sent"] += 1
            window.severity = rank  # the rollup of what was throttled so far stays pending
            return True
        rollup = window.rollup
        ts = finding.ts.timestamp()
        if rollup is None:
            rollup = window.rollup = Rollup(key, window.first_alert_id, window.started, finding, first_ts=ts)
        rollup.count += 1
        rollup.finding = finding
        rollup.last_ts = ts
        if len(rollup.event_ids) < MAX_RELATED:
            rollup.event_ids.append(finding.event_id)
        self.stats["throttled"] += 1
        return False

    def due(self, now: float, everything: bool = False) -> list[Rollup]:
        """Rollups of the windows that ended by ``now`` (all open ones with ``everything``: at stop), and
        of windows closed early (reopened after expiry, or evicted at the group cap)."""
        out, self._pending = self._pending, []
        windows = self._windows  # in the order they opened (``_open`` re-inserts): stop at the first still open
        while windows:
            key, window = next(iter(windows.items()))
            if not everything and now - window.started < self.window_s:
                break
            del windows[key]
            if window.rollup is not None:
                out.append(window.rollup)
        self.stats["rollups"] += len(out)
        return out

    def _open(self, key: tuple[str, str, str], now: float, rank: int, alert_id: str) -> None:
        old = self._windows.pop(key, None)
        if old is not None and old.rollup is not None:  # an expired window's rollup is due: keep it pending
            self._pending.append(old.rollup)
        self._windows[key] = _Window(now, rank, alert_id)
        if len(self._windows) > self.max_groups:  # oldest group first; its rollup is still sent
            oldest = next(iter(self._windows))
            evicted = self._windows.pop(oldest)
            self.stats["groups_evicted"] += 1
            if evicted.rollup is not None:
                self._pending.append(evicted.rollup)
