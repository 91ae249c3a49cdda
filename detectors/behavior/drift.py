"""Drift of per-app metric streams: river ``ADWIN`` and ``PageHinkley`` on each metric, and a periodic
population comparison (PSI) between a fixed reference window and the latest window.

Metrics (per app):

- ``output_length`` — characters of each completion (``usage.output_tokens`` when the text is absent), log1p;
- ``refusal`` — 1 when a completion opens like a refusal ("I can't help with…"), else 0 (or
  ``labels["refusal"]``); ADWIN and Page-Hinkley see its rate per block of ``rate_block`` completions;
- ``injection_score`` — the content detectors' score of each untrusted text, passed in ``signals``
  (or ``labels["injection_score"]``);
- ``tool_mix`` — which tool each call uses (categorical: PSI only);
- ``cost_per_session`` — from closed sessions (``update_session`` with a ``SessionSummary``), log1p.

ADWIN and Page-Hinkley see each value standardised by the warm-up window (the first ``warmup`` values),
so one threshold fits metrics of any scale. PSI uses ``psi_bins`` quantile bins of the reference
window (the first ``psi_reference`` values after warm-up) and compares every ``psi_window`` new
values with it; the reference stays fixed until ``rebase`` (after a review accepts the new normal), so a
slow drift cannot absorb itself. A metric reports at most one finding per ``cooldown_s`` of event time.

    >>> import random
    >>> mon = DriftMonitor(DriftConfig(warmup=100, psi_reference=200, psi_window=200, cooldown_s=0))
    >>> st = DriftState("app")
    >>> rng = random.Random(1)
    >>> found = []
    >>> for i in range(3000):
    ...     rate = 0.1 if i < 1500 else 0.4  # refusals jump from 10% to 40% at the 1500th completion
    ...     found += mon.observe(st, "refusal", float(rng.random() < rate), event_id=f"e{i}", ts=float(i))
    >>> sorted({f.rule_id for f in found}), min(int(f.event_id[1:]) for f in found) >= 1500
    (['drift.adwin.refusal', 'drift.page_hinkley.refusal', 'drift.psi.refusal'], True)
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from river import drift as rdrift
from river import stats

from detectors.behavior import findings
from detectors.behavior.findings import Emit
from schemas.event import Event
from schemas.finding import Finding, Mode

DETECTOR = "drift"
DRIFT_STATE_VERSION = 1
NUMERIC = ("output_length", "refusal", "injection_score", "cost_per_session")
RATES = ("refusal",)  # 0/1 values: ADWIN and Page-Hinkley see the rate of each block of ``rate_block`` values
CATEGORICAL = ("tool_mix",)
METRICS = NUMERIC + CATEGORICAL
_REFUSAL = re.compile(
    r"^\W*(?:i(?:'m| am) sorry,? but|sorry,? (?:but )?i (?:can(?:'|no)?t|won'?t)|i can(?:'|no)?t (?:help|assist|"
    r"comply|do that|provide)|i(?:'m| am) (?:not able|unable) to|i won'?t (?:be able to|help)|as an ai\b|"
    r"i must (?:decline|refuse)|unfortunately,? i (?:can(?:'|no)?t|am unable))", re.IGNORECASE)


@dataclass(frozen=True)
class DriftConfig:
    mode: Mode = Mode.monitor
    policy_version: str | None = None
    metrics: tuple[str, ...] = METRICS
    warmup: int = 200  # values of a metric before anything is reported (and the standardisation window)
    adwin_delta: float = 0.002
    ph_threshold: float = 25.0  # on standardised values: ~35 values one standard deviation off
    ph_delta: float = 0.25  # half the smallest shift worth reporting (0.5 standard deviation)
    ph_min_instances: int = 100
    psi_reference: int = 1_000
    psi_window: int = 500
    psi_bins: int = 10
    psi_threshold: float = 0.25  # 0.1–0.25 is "moderate", above is a real population shift
    cooldown_s: float = 3_600.0
    max_categories: int = 50  # tool mix: categories kept from the reference, the rest is "other"
    rate_block: int = 20

    def __post_init__(self) -> None:
        problems = [f"unknown metric {m!r}" for m in self.metrics if m not in METRICS]
        for name in ("warmup", "psi_reference", "psi_window", "psi_bins", "max_categories", "ph_min_instances"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid DriftConfig: " + "; ".join(problems))

    @property
    def emit(self) -> Emit:
        return Emit(self.mode, self.policy_version)


@dataclass(slots=True)
class MetricState:
    n: int = 0
    steps: int = 0  # values seen by ADWIN / Page-Hinkley (blocks for rates)
    block_sum: float = 0.0
    block_n: int = 0
    warm_mean: Any = field(default_factory=stats.Mean)
    warm_var: Any = field(default_factory=stats.Var)
    recent: Any = field(default_factory=lambda: stats.EWMean(0.02))
    adwin: Any = None
    ph: Any = None
    last_fired: float = -1e18
    # PSI: reference bins (edges, or categories) and counts, the current window's counts
    ref_values: list[Any] = field(default_factory=list)
    edges: list[float] | None = None
    categories: list[str] | None = None
    ref_counts: list[int] | None = None
    cur_counts: list[int] | None = None
    cur_n: int = 0
    last_psi: float | None = None
    windows: int = 0


@dataclass(slots=True)
class DriftState:
    """Drift detectors of one app (one value of a Faust table keyed by app). Picklable and bounded:
    one ``MetricState`` per metric, the reference buffer holds at most ``psi_reference`` values."""

    app: str
    version: int = DRIFT_STATE_VERSION
    metrics: dict[str, MetricState] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)


def _psi(ref: list[int], cur: list[int]) -> float:
    rn, cn = sum(ref) or 1, sum(cur) or 1
    total = 0.0
    for r, c in zip(ref, cur):
        p = max(r / rn, 1e-4)
        q = max(c / cn, 1e-4)
        total += (q - p) * math.log(q / p)
    return total


class DriftMonitor:
    """Pure drift logic over ``DriftState`` values (config only)."""

    def __init__(self, config: DriftConfig | None = None) -> None:
        self.config = config if config is not None else DriftConfig()
        self._emit = self.config.emit
        self._on = frozenset(self.config.metrics)

    def __reduce__(self):
        return (type(self), (self.config,))

    # -- entry points ---------------------------------------------------------------------------

    def update(self, state: DriftState, event: Event, signals: Mapping[str, float] | None = None) -> list[Finding]:
        """Feed the metrics ``event`` carries; ``signals`` are scores other stages computed for it
        (``{"injection_score": 0.93}``)."""
        ts = findings.event_ts(event)
        out: list[Finding] = []
        on = self._on
        kind = event.kind
        if kind == "completion":
            text = event.content.text if event.content is not None else None
            if "output_length" in on:
                length = len(text) if text else (event.usage.output_tokens if event.usage is not None else None)
                if length is not None:
                    out += self.observe(state, "output_length", math.log1p(length), event=event, ts=ts, raw=length)
            if "refusal" in on:
                label = event.labels.get("refusal") if event.labels else None
                value = None
                if label is not None:
                    value = 1.0 if label.lower() in ("1", "true", "yes") else 0.0
                elif text:
                    value = 1.0 if _REFUSAL.match(text[:300]) else 0.0
                if value is not None:
                    out += self.observe(state, "refusal", value, event=event, ts=ts)
        elif kind == "tool_call" and "tool_mix" in on and event.tool is not None and event.tool.name:
            out += self.observe(state, "tool_mix", event.tool.name, event=event, ts=ts)
        if "injection_score" in on:
            score = signals.get("injection_score") if signals else None
            if score is None and event.labels and "injection_score" in event.labels:
                try:
                    score = float(event.labels["injection_score"])
                except ValueError:
                    state.counters["bad_injection_score_label"] += 1
            if score is not None:
                out += self.observe(state, "injection_score", float(score), event=event, ts=ts)
        return out

    def update_session(self, state: DriftState, summary: Any) -> list[Finding]:
        """A closed session (``session.SessionSummary``): its cost feeds ``cost_per_session``."""
        if "cost_per_session" not in self._on or not summary.events:
            return []
        return self.observe(state, "cost_per_session", math.log1p(summary.cost_usd * 1000.0),
                            event_id=f"session:{summary.session_id}", ts=summary.last_ts, raw=summary.cost_usd)

    def observe(self, state: DriftState, metric: str, value: Any, *, event: Event | None = None,
                event_id: str | None = None, ts: float | None = None, raw: Any = None) -> list[Finding]:
        """One value of one metric (numbers for numeric metrics, a category for ``tool_mix``)."""
        cfg = self.config
        m = state.metrics.get(metric)
        if m is None:
            m = state.metrics[metric] = MetricState()
        m.n += 1
        when = ts if ts is not None else (event.ts.timestamp() if event is not None else 0.0)
        eid = event.event_id if event is not None else (event_id or "?")
        out: list[Finding] = []
        categorical = metric in CATEGORICAL
        if not categorical:
            x = float(value)
            step = True
            if metric in RATES:
                m.block_sum += x
                m.block_n += 1
                step = m.block_n >= cfg.rate_block
                if step:
                    x = m.block_sum / m.block_n
                    m.block_sum, m.block_n = 0.0, 0
            warm_steps = max(20, cfg.warmup // cfg.rate_block) if metric in RATES else cfg.warmup
            if step:
                m.steps += 1
                if m.steps <= warm_steps:
                    m.warm_mean.update(x)
                    m.warm_var.update(x)
                    m.recent.update(x)
                    if m.steps == warm_steps:
                        m.adwin = rdrift.ADWIN(delta=cfg.adwin_delta)
                        m.ph = rdrift.PageHinkley(min_instances=max(5, min(cfg.ph_min_instances, warm_steps)),
                                                  delta=cfg.ph_delta, threshold=cfg.ph_threshold)
                else:
                    mu, sd = m.warm_mean.get(), math.sqrt(m.warm_var.get())
                    z = (x - mu) / max(sd, 1e-3 * max(abs(mu), 1.0), 1e-6)
                    before = m.recent.get()
                    m.recent.update(x)
                    m.adwin.update(z)
                    m.ph.update(z)
                    for name, det in (("adwin", m.adwin), ("page_hinkley", m.ph)):
                        if det.drift_detected and when - m.last_fired >= cfg.cooldown_s:
                            out.append(self._finding(state, metric, name, eid, when, event, {
                                "warmup_mean": round(mu, 6), "warmup_std": round(sd, 6),
                                "recent_mean_before": round(before, 6), "value": round(x, 6), "raw": raw,
                                "observations": m.n}))
                    if out:
                        m.last_fired = when
        psi_finding = self._psi_step(state, metric, m, value, categorical, eid, when, event)
        if psi_finding is not None:
            out.append(psi_finding)
        return out

    def rebase(self, state: DriftState, metric: str | None = None) -> None:
        """Accept the current behaviour as the new reference (after review): PSI references and the
        standardisation restart from the next values."""
        for name in [metric] if metric else list(state.metrics):
            if name in state.metrics:
                state.metrics[name] = MetricState()
                state.counters[f"rebased:{name}"] += 1

    # -- PSI ------------------------------------------------------------------------------------

    def _psi_step(self, state: DriftState, metric: str, m: MetricState, value: Any, categorical: bool, eid: str,
                  when: float, event: Event | None) -> Finding | None:
        cfg = self.config
        if m.ref_counts is None:
            if not categorical and m.n <= cfg.warmup:
                return None  # the reference starts after the warm-up
            m.ref_values.append(value)
            if len(m.ref_values) >= cfg.psi_reference:
                self._freeze_reference(m, categorical)
            return None
        idx = self._bin(m, value, categorical)
        m.cur_counts[idx] += 1  # type: ignore[index]
        m.cur_n += 1
        if m.cur_n < cfg.psi_window:
            return None
        psi = _psi(m.ref_counts, m.cur_counts)  # type: ignore[arg-type]
        m.last_psi = psi
        m.windows += 1
        cur = m.cur_counts
        m.cur_counts = [0] * len(m.ref_counts)
        m.cur_n = 0
        if psi < cfg.psi_threshold or when - m.last_fired < cfg.cooldown_s:
            return None
        m.last_fired = when
        labels = m.categories if categorical else [f"≤{e:.4g}" for e in m.edges] + ["above"]  # type: ignore[operator]
        rn, cn = sum(m.ref_counts), sum(cur)  # type: ignore[arg-type]
        shifts = sorted((c / cn - r / rn, lab, r / rn) for lab, r, c in zip(labels, m.ref_counts, cur))  # type: ignore[arg-type]
        picked = shifts[:2] + [x for x in shifts[-2:] if x not in shifts[:2]]
        moved = [{"bin": lab, "reference_share": round(p, 4), "shift": round(d, 4)} for d, lab, p in picked]
        return self._finding(state, metric, "psi", eid, when, event, {
            "psi": round(psi, 4), "threshold": cfg.psi_threshold, "reference_size": rn, "window_size": cn,
            "largest_shifts": moved, "windows_compared": m.windows})

    def _freeze_reference(self, m: MetricState, categorical: bool) -> None:
        cfg = self.config
        if categorical:
            counts = Counter(m.ref_values)
            cats = [c for c, _ in counts.most_common(cfg.max_categories)]
            m.categories = cats + ["(other)"]
            m.ref_counts = [counts.get(c, 0) for c in cats] + [sum(counts.values()) - sum(counts.get(c, 0) for c in cats)]
        else:
            values = sorted(float(v) for v in m.ref_values)
            k = cfg.psi_bins
            edges = sorted({values[min(len(values) - 1, (i * len(values)) // k)] for i in range(1, k)})
            m.edges = edges
            m.ref_counts = [0] * (len(edges) + 1)
            for v in values:
                m.ref_counts[self._bin(m, v, False)] += 1
        m.cur_counts = [0] * len(m.ref_counts)
        m.ref_values = []

    @staticmethod
    def _bin(m: MetricState, value: Any, categorical: bool) -> int:
        if categorical:
            cats = m.categories  # type: ignore[assignment]
            try:
                return cats.index(value)  # type: ignore[union-attr]
            except ValueError:
                return len(cats) - 1  # type: ignore[arg-type]
        edges = m.edges or []
        x = float(value)
        # bins: (-inf, e0], (e0, e1], …, (e_last, inf)
        lo, hi = 0, len(edges)
        while lo < hi:
            mid = (lo + hi) // 2
            if x <= edges[mid]:
                hi = mid
            else:
                lo = mid + 1
        return lo

    # -- findings -------------------------------------------------------------------------------

    def _finding(self, state: DriftState, metric: str, method: str, eid: str, when: float, event: Event | None,
                 evidence: dict[str, Any]) -> Finding:
        state.counters[f"drift:{metric}:{method}"] += 1
        what = {
            "adwin": "ADWIN found a change in the mean of",
            "page_hinkley": "Page-Hinkley found a sustained shift in",
            "psi": "The latest window's distribution differs from the reference window's for",
        }[method]
        extra = (f" (PSI {evidence['psi']:.3f} ≥ {evidence['threshold']})" if method == "psi" else "")
        return findings.build(
            detector=DETECTOR, rule=f"drift.{method}.{metric}", category="drift",
            score=min(0.8, 0.45 + (min(evidence.get("psi", 0.5), 1.0) * 0.3 if method == "psi" else 0.1)),
            title=f"Drift in {metric.replace('_', ' ')} of {state.app} ({method})",
            rationale=(f"{what} {metric.replace('_', ' ')} of app {state.app}{extra}. A changed model, prompt, "
                       "tool set or user population — or an attack campaign (refusals or injection scores "
                       "rising, new tools) — changes these metrics before it shows anywhere else. A policy in "
                       "enforce mode would have moved the app back to monitor-only until the change is reviewed "
                       "(and its baseline rebased)."),
            event_id=eid, ts=when, emit=self._emit, app=state.app,
            session_id=event.session_id if event is not None else None,
            agent=event.agent if event is not None else None, discriminator=f"{metric}:{method}:{int(when)}",
            evidence=[{"kind": "drift", "metric": metric, "method": method, **evidence}],
            tags=("owasp-llm:LLM04",) if metric in ("refusal", "output_length") else ("owasp-llm:LLM01",)
            if metric == "injection_score" else ("owasp-llm:LLM10",) if metric == "cost_per_session" else
            ("owasp-asi:ASI02",))


class DriftTracker:
    """``DriftState`` per app for replay and tests; learn mode withholds findings (state evolves alike)."""

    def __init__(self, config: DriftConfig | None = None, max_apps: int = 10_000) -> None:
        self.monitor = DriftMonitor(config)
        self.states: dict[str, DriftState] = {}
        self.max_apps = max_apps
        self.counters: Counter[str] = Counter()

    def _state(self, app: str) -> DriftState:
        st = self.states.get(app)
        if st is None:
            if len(self.states) >= self.max_apps:
                self.states.pop(next(iter(self.states)))
                self.counters["apps_evicted"] += 1
            st = self.states[app] = DriftState(app)
        return st

    def _emit(self, out: list[Finding]) -> list[Finding]:
        self.counters["findings"] += len(out)
        if self.monitor.config.mode == Mode.learn and out:
            self.counters["withheld_learn_mode"] += len(out)
            return []
        return out

    def process(self, event: Event, signals: Mapping[str, float] | None = None) -> list[Finding]:
        return self._emit(self.monitor.update(self._state(event.app), event, signals))

    def update_session(self, summary: Any) -> list[Finding]:
        return self._emit(self.monitor.update_session(self._state(summary.app or "?"), summary))


def snapshot_rows(state: DriftState, ts: datetime) -> list[dict[str, Any]]:
    """Drift state as baseline snapshot rows (``baseline.SNAPSHOT_COLUMNS``)."""
    import orjson  # noqa: PLC0415

    from detectors.behavior.baseline import SNAPSHOT_SCHEMA, _row  # noqa: PLC0415

    rows = []
    for metric, m in state.metrics.items():
        var = m.warm_var.get()
        rows.append(_row(schema_version=SNAPSHOT_SCHEMA, snapshot_ts=ts, app=state.app, entity_kind="app",
                         entity=state.app, detector=f"drift.{metric}", function="drift", field=metric,
                         warm=int(m.ref_counts is not None), observations=m.n, first_seen=ts, last_seen=ts,
                         mean=round(m.warm_mean.get(), 6) if metric not in CATEGORICAL else None,
                         std=round(math.sqrt(var), 6) if metric not in CATEGORICAL and var else None,
                         distinct_values=len(m.categories or []),
                         extra=orjson.dumps({"last_psi": m.last_psi, "windows": m.windows,
                                             "recent_mean": m.recent.get() if metric not in CATEGORICAL else None,
                                             "edges": m.edges, "categories": m.categories,
                                             "reference_counts": m.ref_counts}).decode()))
    return rows
