"""Entity baselines for apps, agents, identities, tools and models — Elastic ML detector functions on
river statistics.

Each ``Spec`` is one detector function, as in Elastic anomaly detection:

- ``rare`` — a value (tool, model, endpoint, destination, data class) this entity has never used
  (``by``), or one few entities of its kind use (``over``: rare across the population);
- ``high_count`` — events per bucket far above this entity's usual rate;
- ``high_mean`` — a value (tokens, latency, result size, cost) far above this entity's usual ones
  (z-score of log1p(value) against river ``Mean``/``Var``; river ``Quantile`` keeps p50/p99 for snapshots);
- ``high_distinct_count`` — more distinct values (tools) per bucket than usual;
- ``time_of_day`` — activity at an hour this entity is never active;
- ``hst`` — a multivariate river ``HalfSpaceTrees`` score over per-bucket features of the entity.

``partition``: every app is modelled independently (one ``BaselineState`` per app), and
``BaselineConfig.partition_by`` splits each app further by event fields (``env``, ``tenant``): staging
does not teach production what is normal, nor one tenant another. Every entity, population and limit
then lives in its partition. ``by`` names the entity kind modelled on its own history; ``over`` compares
an entity with the population of its kind within the partition.

Rules of the game (river's shape, AnomalyFilter-style):

- ``score_one`` never changes state; ``learn_one`` never returns findings; ``process`` = score, then
  learn — except that numeric models do not learn from an observation they just judged anomalous
  (an attacker cannot teach the baseline that huge sessions are normal). Rare-value stores always learn
  (one alert per new value, not a flood).
- Nothing is scored before an entity is warm (``warmup`` observations, ``warmup_buckets`` buckets).
- The rollout mode (learn / monitor / alert) changes what is emitted, never how state evolves.
- Memory is bounded and every bound is loud: at most ``max_entities`` per kind per app (least recently
  seen evicted), ``max_values`` per rare model (least used evicted), ``max_population_values`` per
  population; each eviction is counted in ``BaselineState.counters`` and the first one per bound and
  day raises a ``baseline.capacity`` finding. Learning never stops silently.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from river import anomaly, stats

from detectors.behavior import findings
from detectors.behavior.findings import Emit
from detectors.behavior.indicators import _h
from schemas.event import Event
from schemas.finding import Finding, Mode

DETECTOR = "baseline"
BASELINE_STATE_VERSION = 1
SNAPSHOT_SCHEMA = "aiwatch.baseline/1"
ENTITY_KINDS = ("app", "agent", "identity", "tool", "model")
FUNCTIONS = ("rare", "high_count", "high_mean", "high_distinct_count", "time_of_day", "hst")


# ---------------------------------------------------------------------------------------------------
# What an event says about entities and fields


def _identity(e: Event) -> str | None:
    a = e.actor
    if a is None:
        return None
    return a.user_id or a.service_account or a.on_behalf_of


def _model(e: Event) -> str | None:
    m = e.model
    return (m.served or m.name) if m is not None else None


def _tool(e: Event) -> str | None:
    return e.tool.name if e.tool is not None and e.kind in ("tool_call", "tool_result") else None


ENTITY: dict[str, Callable[[Event], str | None]] = {
    "app": lambda e: e.app,
    "agent": lambda e: e.agent,
    "identity": _identity,
    "tool": _tool,
    "model": _model,
}


def _tokens(e: Event) -> float | None:
    u = e.usage
    if u is None or (u.input_tokens is None and u.output_tokens is None):
        return None
    return float((u.input_tokens or 0) + (u.output_tokens or 0))


def _data_class(e: Event) -> str | None:
    label = e.labels.get("data_class") if e.labels else None
    if label:
        return label.lower()
    if e.retrieval is not None:
        for d in e.retrieval.documents:
            if d.classification:
                return d.classification.lower()
    return None


def _destination(e: Event) -> str | None:
    t = e.tool
    if t is None or e.kind != "tool_call":
        return None
    if t.destination:
        return t.destination.lower()[:256]
    return None


FIELD: dict[str, Callable[[Event], Any]] = {
    "tool": lambda e: e.tool.name if e.tool is not None and e.kind == "tool_call" else None,
    "model": _model,
    "endpoint": lambda e: e.model.endpoint.lower() if e.model is not None and e.model.endpoint else None,
    "destination": _destination,
    "data_class": _data_class,
    "tokens": _tokens,
    "latency_ms": lambda e: e.usage.latency_ms if e.usage is not None else None,
    "cost_usd": lambda e: e.usage.cost_usd if e.usage is not None else None,
    "result_bytes": lambda e: float(e.tool.result_bytes) if e.tool is not None and e.kind == "tool_result"
    and e.tool.result_bytes is not None else None,
    "event": lambda e: 1.0,
}


PARTITION: dict[str, Callable[[Event], str | None]] = {"env": lambda e: e.env, "tenant": lambda e: e.tenant}

# Event kinds that can carry a field / name an entity (the others skip the spec without looking).
_FIELD_KINDS = {"tool": ("tool_call",), "destination": ("tool_call",), "result_bytes": ("tool_result",)}
_ENTITY_KINDS = {"tool": ("tool_call", "tool_result")}


# ---------------------------------------------------------------------------------------------------
# Specs and configuration


@dataclass(frozen=True)
class Spec:
    """One detector function (see the module docstring). ``threshold``: z-score for counts and means,
    the largest population share still "rare" for ``over``, the hour-window probability for
    ``time_of_day``, the HalfSpaceTrees score for ``hst``."""

    id: str
    function: str
    field: str
    by: str
    over: bool = False
    threshold: float = 4.0
    category: str = "behavior_anomaly"
    tags: tuple[str, ...] = ()
    floor: str = "info"  # lowest severity
    action: str = "held the action for review"  # what an enforcing control would have done

    def __post_init__(self) -> None:
        problems = []
        if self.function not in FUNCTIONS:
            problems.append(f"function {self.function!r} is not one of {', '.join(FUNCTIONS)}")
        if self.by not in ENTITY:
            problems.append(f"by {self.by!r} is not one of {', '.join(ENTITY)}")
        if self.field not in FIELD and self.function != "hst":
            problems.append(f"field {self.field!r} is not one of {', '.join(FIELD)}")
        if problems:
            raise ValueError(f"invalid baseline spec {self.id}: " + "; ".join(problems))


_T_TOOL = ("owasp-asi:ASI02", "atlas:AML.T0053")
_T_COST = ("owasp-llm:LLM10", "atlas:AML.T0034.002")
DEFAULT_SPECS: tuple[Spec, ...] = (
    Spec("rare_tool_by_agent", "rare", "tool", "agent", category="behavior_anomaly", tags=_T_TOOL + ("owasp-asi:ASI10",),
         floor="low", action="held the first call of a tool this agent never used for review"),
    Spec("rare_tool_by_app", "rare", "tool", "app", category="behavior_anomaly", tags=_T_TOOL, floor="low",
         action="held the first call of a tool this app never used for review"),
    Spec("rare_tool_over_identity", "rare", "tool", "identity", over=True, threshold=0.05, tags=_T_TOOL,
         action="required step-up approval for a tool almost no identity uses"),
    Spec("rare_model_by_app", "rare", "model", "app", category="unapproved_model", tags=("owasp-llm:LLM03",),
         floor="low", action="refused the call to a model this app never used"),
    Spec("rare_endpoint_by_app", "rare", "endpoint", "app", category="unapproved_model", tags=("owasp-llm:LLM03",),
         floor="low", action="refused the call to an endpoint this app never used"),
    Spec("rare_destination_by_agent", "rare", "destination", "agent", category="exfiltration",
         tags=("atlas:AML.T0086", "owasp-asi:ASI02"), floor="low", action="blocked the call to a new destination"),
    Spec("rare_data_class_by_identity", "rare", "data_class", "identity", category="privilege_anomaly",
         tags=("owasp-asi:ASI03", "atlas:AML.T0085"), action="required step-up authorisation for that data"),
    Spec("high_count_by_identity", "high_count", "event", "identity", threshold=4.0, tags=("owasp-llm:LLM10",),
         action="rate-limited the identity"),
    Spec("high_mean_tokens_by_agent", "high_mean", "tokens", "agent", threshold=4.0, category="cost_anomaly",
         tags=_T_COST, action="capped the tokens of the call"),
    Spec("high_mean_cost_by_identity", "high_mean", "cost_usd", "identity", threshold=4.0, category="cost_anomaly",
         tags=_T_COST, action="capped the spend of the identity"),
    Spec("high_mean_latency_by_model", "high_mean", "latency_ms", "model", threshold=4.0, tags=("atlas:AML.T0029",),
         action="failed over to another model endpoint"),
    Spec("high_mean_result_bytes_by_tool", "high_mean", "result_bytes", "tool", threshold=4.0,
         category="behavior_anomaly", tags=("atlas:AML.T0085.001", "owasp-llm:LLM02"),
         action="truncated the tool result before it entered the model context"),
    Spec("high_distinct_tools_by_identity", "high_distinct_count", "tool", "identity", threshold=4.0, tags=_T_TOOL,
         action="held the session for review"),
    Spec("time_of_day_by_identity", "time_of_day", "event", "identity", threshold=0.005, category="privilege_anomaly",
         tags=("owasp-asi:ASI03",), action="required step-up authentication"),
    Spec("hst_by_agent", "hst", "bucket", "agent", threshold=0.75, tags=("owasp-asi:ASI10",),
         action="held the agent's actions for review"),
)


@dataclass(frozen=True)
class BaselineConfig:
    """Baselines: specs, warm-up, buckets and bounds. Frozen and picklable."""

    specs: tuple[Spec, ...] = DEFAULT_SPECS
    mode: Mode = Mode.monitor
    policy_version: str | None = None
    warmup: int = 30  # observations of an entity (per spec) before it is scored
    warmup_buckets: int = 12  # closed buckets before count / distinct / hst are scored
    bucket_s: float = 600.0
    min_population: int = 20  # entities of a kind in an app before "rare across the population" is judged
    rare_max_rate: float = 0.03  # "first seen" is reported only for entities whose own rate of new values is below
    protect_score: float = 0.5  # numeric models do not learn from observations scored at or above this
    max_entities: int = 10_000  # per entity kind per app
    max_values: int = 512  # per rare model of one entity
    max_population_values: int = 10_000  # per population (spec, app)
    max_bucket_values: int = 256  # distinct values counted per bucket
    max_gap_buckets: int = 48  # empty buckets learned (as zeros) after a pause, at most
    hst_trees: int = 4  # ~57 KiB per modelled entity; normal buckets score ≤ ~0.7, hence the 0.75 threshold
    hst_height: int = 5
    hst_window: int = 50
    max_hst_models: int = 1_000  # per app: HalfSpaceTrees models are the big ones (least recently active dropped)
    hst_seed: int = 7
    partition_by: tuple[str, ...] = ()  # event fields that split each app's baselines (see ``PARTITION``)

    def __post_init__(self) -> None:
        ids = [s.id for s in self.specs]
        problems = []
        for name in self.partition_by:
            if name not in PARTITION:
                problems.append(f"partition_by {name!r} is not one of {', '.join(PARTITION)}")
        if len(set(self.partition_by)) < len(self.partition_by):
            problems.append(f"partition_by repeats a field: {list(self.partition_by)}")
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            problems.append(f"duplicate spec ids {dupes}")
        for name in ("warmup", "warmup_buckets", "min_population", "max_entities", "max_values",
                     "max_population_values", "max_bucket_values", "hst_trees", "hst_height", "hst_window",
                     "max_hst_models"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bucket_s <= 0:
            problems.append(f"bucket_s must be positive, got {self.bucket_s}")
        if problems:
            raise ValueError("invalid BaselineConfig: " + "; ".join(problems))

    @property
    def emit(self) -> Emit:
        return Emit(self.mode, self.policy_version)


# ---------------------------------------------------------------------------------------------------
# State (plain picklable objects; one BaselineState per app)


@dataclass(slots=True)
class RareModel:
    values: dict[str, int] = field(default_factory=dict)
    total: int = 0
    singletons: int = 0  # values seen exactly once (Good-Turing N1)
    evicted: int = 0

    def novelty_rate(self) -> float:
        """Chance the next observation is a value never seen (Good-Turing N1/N, add-one smoothed): an
        entity that keeps using new values makes "first seen" uninformative."""
        return (self.singletons + 1) / (self.total + 2)


@dataclass(slots=True)
class MeanModel:
    mean: Any = field(default_factory=stats.Mean)  # of log1p(value)
    var: Any = field(default_factory=stats.Var)
    p50: Any = field(default_factory=lambda: stats.Quantile(0.5))
    p99: Any = field(default_factory=lambda: stats.Quantile(0.99))
    n: int = 0
    max: float = 0.0
    skipped: int = 0  # observations not learned (judged anomalous)


@dataclass(slots=True)
class BucketModel:
    """Per-bucket totals (counts or distinct counts) and their distribution over past buckets."""

    bucket: int = -1
    count: int = 0
    seen: set[int] = field(default_factory=set)
    fired: bool = False
    var: Any = field(default_factory=stats.Var)
    mean: Any = field(default_factory=stats.Mean)
    p99: Any = field(default_factory=lambda: stats.Quantile(0.99))
    buckets: int = 0


@dataclass(slots=True)
class HourModel:
    hours: list[int] = field(default_factory=lambda: [0] * 24)
    total: int = 0
    fired_day: int = -1


@dataclass(slots=True)
class HstModel:
    model: Any = None
    bucket: int = -1
    last_event: str | None = None
    events: int = 0
    errors: int = 0
    tokens: float = 0.0
    cost: float = 0.0
    tools: set[str] = field(default_factory=set)
    buckets: int = 0
    last_score: float | None = None


@dataclass(slots=True)
class EntityState:
    kind: str
    name: str
    first_ts: float
    last_ts: float
    events: int = 0
    models: dict[str, Any] = field(default_factory=dict)  # spec id -> model


@dataclass(slots=True)
class BaselineState:
    """Everything learned about one app (the partition). Picklable and bounded."""

    app: str
    version: int = BASELINE_STATE_VERSION
    entities: dict[str, "OrderedDict[str, EntityState]"] = field(default_factory=dict)  # kind -> name -> state
    population: dict[str, dict[str, int]] = field(default_factory=dict)  # spec id -> value -> entities using it
    counters: Counter = field(default_factory=Counter)
    reported: dict[str, int] = field(default_factory=dict)  # capacity key -> day last reported
    first_ts: float = 0.0
    last_ts: float = 0.0
    events: int = 0
    partition: str = ""  # "env=prod,tenant=acme" under ``BaselineConfig.partition_by``; "" for the whole app

    @property
    def scope(self) -> str:
        """The app, and the partition when there is one (for rationales)."""
        partition = _partition(self)
        return f"{self.app} ({partition})" if partition else self.app


def _partition(state: BaselineState) -> str:
    return getattr(state, "partition", "")  # a state saved before partitions existed has none (slots)


def _key(app: str, partition: str) -> str:
    """Where ``BaselineStore`` keeps the state of one app (and partition)."""
    return f"{app}\x1f{partition}" if partition else app


def partition_of(config: BaselineConfig, event: Event) -> str:
    """The partition label of ``event`` under ``config`` ("" when baselines are per app only)."""
    if not config.partition_by:
        return ""
    return ",".join(f"{name}={PARTITION[name](event) or '-'}" for name in config.partition_by)


# ---------------------------------------------------------------------------------------------------
# Logic


_UNSEEN: Any = object()


def _z(x: float, mean: float, var: float) -> float:
    std = math.sqrt(var) if var > 0 else 0.0
    return (x - mean) / max(std, 0.05)


def _zscore_to_score(z: float, threshold: float) -> float:
    return min(0.95, 0.5 + 0.45 * (z - threshold) / (2 * threshold))


class BaselineModel:
    """Pure baseline logic over ``BaselineState`` values: ``score_one``, ``learn_one``, ``process``.

    >>> from detectors.behavior.testing import ev
    >>> model = BaselineModel(BaselineConfig(warmup=3))
    >>> state = BaselineState("app")
    >>> for i in range(40):
    ...     model.learn_one(state, ev("tool_call", tool="search", args={}, ts=i))
    >>> [f.rule_id for f in model.score_one(state, ev("tool_call", tool="delete_all", args={}, ts=9))]
    ['rare_tool_by_agent', 'rare_tool_by_app']
    """

    def __init__(self, config: BaselineConfig | None = None) -> None:
        self.config = config if config is not None else BaselineConfig()
        self._emit = self.config.emit
        self._specs = self.config.specs
        kinds = ("prompt", "completion", "tool_call", "tool_result", "retrieval", "agent_message")
        self._by_kind = {k: tuple(s for s in self._specs if k in _FIELD_KINDS.get(s.field, kinds)
                                  and k in _ENTITY_KINDS.get(s.by, kinds)) for k in kinds}
        # per event kind, what ``_run`` does for each spec, resolved once: (spec, entity kind, entity
        # function, field function or None, handler, whether an empty value counts); ``_run`` reads the
        # field and calls the handler only when there is a value (the handlers share one signature)
        self._plans = {k: tuple(self._step(s) for s in specs) for k, specs in self._by_kind.items()}
        self._plan_all = tuple(self._step(s) for s in self._specs)
        self._hour_warmup = max(self.config.warmup, 100)

    def __reduce__(self):
        return (type(self), (self.config,))

    def _step(self, spec: Spec) -> tuple[Any, ...]:
        fn = spec.function
        if fn == "rare":
            return spec, spec.by, ENTITY[spec.by], FIELD[spec.field], self._rare, False
        if fn == "high_mean":
            return spec, spec.by, ENTITY[spec.by], FIELD[spec.field], self._mean, True
        if fn in ("high_count", "high_distinct_count"):
            return spec, spec.by, ENTITY[spec.by], FIELD[spec.field], self._bucket, True
        return spec, spec.by, ENTITY[spec.by], None, self._hour if fn == "time_of_day" else self._hst, True

    # -- public API -----------------------------------------------------------------------------

    def process(self, state: BaselineState, event: Event, counters: Counter | None = None) -> list[Finding]:
        """Score, then learn (numeric models skip what was just judged anomalous)."""
        out = self._run(state, event, learn=True, score=True)
        if counters is not None:
            counters["events"] += 1
            for f in out:
                counters[f"findings:{f.rule_id}"] += 1
        if self._emit.mode == Mode.learn and out:
            state.counters["withheld_learn_mode"] += len(out)
            return []
        return out

    def score_one(self, state: BaselineState, event: Event) -> list[Finding]:
        """Findings for ``event`` against what ``state`` learned; ``state`` is not changed."""
        if self._emit.mode == Mode.learn:
            return []
        return self._run(state, event, learn=False, score=True)

    def learn_one(self, state: BaselineState, event: Event) -> None:
        self._run(state, event, learn=True, score=False)

    def flush(self, state: BaselineState, now: float | datetime) -> list[Finding]:
        """Close the buckets that ended before ``now`` (a timer calls this; events close them too)."""
        ts = now.timestamp() if isinstance(now, datetime) else float(now)
        bucket = int(ts // self.config.bucket_s)
        out: list[Finding] = []
        for spec in self._specs:
            if spec.function != "hst":
                continue
            for ent in state.entities.get(spec.by, {}).values():
                m = ent.models.get(spec.id)
                if m is not None and 0 <= m.bucket < bucket:
                    out.extend(self._hst_close(state, spec, ent, m, bucket, learn=True, score=True))
        return out if self._emit.mode != Mode.learn else []

    # -- internals ------------------------------------------------------------------------------

    def _run(self, state: BaselineState, event: Event, *, learn: bool, score: bool) -> list[Finding]:
        ts = findings.event_ts(event)
        if learn:
            if not state.events:
                state.first_ts = ts
            state.events += 1
            state.last_ts = max(state.last_ts, ts)
        out: list[Finding] = []
        touched: dict[str, EntityState | None] = {}  # entity kind -> its entity for this event (None: none)
        for spec, by, entity_of, field_of, handler, empty_counts in self._plans.get(event.kind, self._plan_all):
            ent = touched.get(by, _UNSEEN)
            if ent is _UNSEEN:
                name = entity_of(event)
                ent = self._entity(state, by, name, ts, event, out, create=learn) if name else None
                touched[by] = ent
            if ent is None:
                continue
            if field_of is None:
                handler(state, spec, ent, event, ts, learn, score, out, None)
                continue
            value = field_of(event)
            if value is None or (not value and not empty_counts):  # rare values must be non-empty
                continue
            handler(state, spec, ent, event, ts, learn, score, out, value)
        if learn:
            for ent in touched.values():
                if ent is not None:
                    ent.events += 1
                    if ts > ent.last_ts:
                        ent.last_ts = ts
        return out

    def _entity(self, state: BaselineState, kind: str, name: str, ts: float, event: Event, out: list[Finding],
                create: bool) -> EntityState | None:
        table = state.entities.get(kind)
        if table is None:
            if not create:
                return None
            table = state.entities[kind] = OrderedDict()
        ent = table.get(name)
        if ent is not None:
            if create:
                table.move_to_end(name)
            return ent
        if not create:
            return None
        if len(table) >= self.config.max_entities:
            old, _ = table.popitem(last=False)
            state.counters[f"entities_evicted:{kind}"] += 1
            self._capacity(state, f"entities:{kind}", event, ts, out,
                           f"more than {self.config.max_entities} {kind} entities in app {state.scope}",
                           f"the least recently seen {kind} ({old}) was evicted to model the new one ({name}); an "
                           "evicted entity that returns starts a new warm-up", "max_entities")
        ent = table[name] = EntityState(kind, name, ts, ts)
        state.counters[f"entities:{kind}"] = len(table)
        return ent

    def _capacity(self, state: BaselineState, key: str, event: Event, ts: float, out: list[Finding],
                  what: str, consequence: str, limit: str) -> None:
        day = int(ts // 86400)
        if state.reported.get(key) == day:
            return
        state.reported[key] = day
        out.append(findings.build(
            detector=DETECTOR, rule="baseline.capacity", category="behavior_anomaly", score=0.3, severity="info",
            title=f"Baseline limit reached: {what}",
            rationale=(f"Baseline limit {limit} reached: {what}. Learning continues: {consequence}. Evictions are "
                       f"counted (state counters); raise BaselineConfig.{limit} if this app needs more."),
            event_id=event.event_id, ts=event.ts, emit=self._emit, app=state.app, session_id=event.session_id,
            agent=event.agent, user_id=_identity(event), discriminator=f"{key}:{day}",
            evidence=[{"kind": "limit", "limit": limit, "key": key,
                       "evicted_total": sum(v for k, v in state.counters.items() if "evicted" in k)}],
            tags=("owasp-llm:LLM10",)))

    def _finding(self, state: BaselineState, spec: Spec, ent: EntityState, event: Event | None, score: float,
                 title: str, why: str, evidence: dict[str, Any], discriminator: str,
                 event_id: str | None = None, ts: float | None = None) -> Finding:
        eid = event_id or (event.event_id if event is not None else "?")
        return findings.build(
            detector=DETECTOR, rule=spec.id, category=spec.category, score=score, floor=spec.floor, title=title,
            rationale=f"{why} A policy in enforce mode would have {spec.action}.",
            event_id=eid, ts=event.ts if event is not None else (ts or 0.0), emit=self._emit, app=state.app,
            session_id=event.session_id if event is not None else None,
            agent=event.agent if event is not None else None,
            user_id=_identity(event) if event is not None else None, discriminator=discriminator,
            evidence=[{"kind": "baseline", "function": spec.function, "field": spec.field, "by": spec.by,
                       "over": spec.over, "entity": ent.name, "entity_events": ent.events,
                       **({"partition": _partition(state)} if _partition(state) else {}), **evidence}],
            tags=spec.tags)

    # rare ------------------------------------------------------------------------------------------

    def _rare(self, state: BaselineState, spec: Spec, ent: EntityState, event: Event, ts: float, learn: bool,
              score: bool, out: list[Finding], value: Any) -> None:
        m: RareModel | None = ent.models.get(spec.id)
        if m is None:
            if not learn:
                m = RareModel()
            else:
                m = ent.models[spec.id] = RareModel()
        cfg = self.config
        seen = m.values.get(value, 0)
        if score and not seen and m.total >= cfg.warmup:
            rate = m.novelty_rate()
            if not spec.over and rate > cfg.rare_max_rate:
                state.counters[f"rare_uninformative:{spec.id}"] += 1
            elif not spec.over:
                out.append(self._finding(
                    state, spec, ent, event, 0.6,
                    f"First {spec.field} {value!r} for {spec.by} {ent.name}",
                    f"{spec.by.capitalize()} {ent.name} used {spec.field} {value!r} for the first time after "
                    f"{m.total} observations of {len(m.values)} known values (app {state.scope}); new values are "
                    f"rare for it (estimated {rate:.1%} of observations).",
                    {"value": value, "known_values": len(m.values), "observations": m.total,
                     "novelty_rate": round(rate, 4), "top_values": _top(m.values, 5)}, f"{ent.name}\x1f{value}"))
            else:
                pop = state.population.get(spec.id, {})
                size = len(state.entities.get(spec.by, ()))
                users = pop.get(value, 0)
                if size >= cfg.min_population and users / size <= spec.threshold:
                    out.append(self._finding(
                        state, spec, ent, event, 0.55 if users else 0.65,
                        f"{spec.field} {value!r} is rare across {spec.by} entities of {state.scope}",
                        f"{spec.by.capitalize()} {ent.name} used {spec.field} {value!r}, which only {users} of "
                        f"{size} {spec.by} entities of app {state.scope} have used (at most {spec.threshold:.0%} "
                        "is rare).",
                        {"value": value, "population": size, "entities_using": users}, f"{ent.name}\x1f{value}"))
        if not learn:
            return
        if not seen:
            if len(m.values) >= cfg.max_values:
                victim = min(m.values, key=m.values.__getitem__)  # least used (first of the least used)
                if m.values.pop(victim) == 1:
                    m.singletons -= 1
                m.evicted += 1
                state.counters["values_evicted"] += 1
                self._capacity(state, f"values:{spec.id}", event, ts, out,
                               f"more than {cfg.max_values} values of {spec.field} for {spec.by} {ent.name}",
                               "the least used value was forgotten (it will look new if it returns)", "max_values")
            if spec.over:
                pop = state.population.setdefault(spec.id, {})
                if value not in pop and len(pop) >= cfg.max_population_values:
                    victim = min(pop, key=pop.__getitem__)
                    del pop[victim]
                    state.counters["population_values_evicted"] += 1
                    self._capacity(state, f"population:{spec.id}", event, ts, out,
                                   f"more than {cfg.max_population_values} values in population {spec.id}",
                                   "the least shared value was forgotten", "max_population_values")
                pop[value] = pop.get(value, 0) + 1
        m.values[value] = seen + 1
        m.total += 1
        if seen == 0:
            m.singletons += 1
        elif seen == 1:
            m.singletons -= 1

    # high_mean -------------------------------------------------------------------------------------

    def _mean(self, state: BaselineState, spec: Spec, ent: EntityState, event: Event, ts: float, learn: bool,
              score: bool, out: list[Finding], raw: Any) -> None:
        x = math.log1p(max(float(raw), 0.0))
        m: MeanModel | None = ent.models.get(spec.id)
        if m is None:
            if not learn:
                return
            m = ent.models[spec.id] = MeanModel()
        anomalous = False
        if score and m.n >= self.config.warmup:
            z = _z(x, m.mean.get(), m.var.get())
            if z >= spec.threshold:
                s = _zscore_to_score(z, spec.threshold)
                anomalous = s >= self.config.protect_score
                typical = math.expm1(m.mean.get())
                out.append(self._finding(
                    state, spec, ent, event, s,
                    f"High {spec.field} for {spec.by} {ent.name}: {float(raw):.6g}",
                    f"{spec.field} {float(raw):.6g} is {z:.1f} standard deviations (log scale) above the usual "
                    f"for {spec.by} {ent.name} (typical {typical:.4g}, p99 {_q(m.p99):.4g}, over {m.n} observations).",
                    {"value": float(raw), "z": round(z, 2), "typical": round(typical, 4), "p99": _q(m.p99),
                     "observations": m.n}, ent.name))
        if learn:
            if anomalous:
                m.skipped += 1
                state.counters["not_learned_anomalous"] += 1
                return
            m.mean.update(x)
            m.var.update(x)
            m.p50.update(float(raw))
            m.p99.update(float(raw))
            m.n += 1
            if raw > m.max:
                m.max = float(raw)

    # buckets: high_count / high_distinct_count -----------------------------------------------------

    def _bucket(self, state: BaselineState, spec: Spec, ent: EntityState, event: Event, ts: float, learn: bool,
                score: bool, out: list[Finding], value: Any) -> None:
        distinct = spec.function == "high_distinct_count"
        cfg = self.config
        b = int(ts // cfg.bucket_s)
        m: BucketModel | None = ent.models.get(spec.id)
        if m is None:
            if not learn:
                return
            m = ent.models[spec.id] = BucketModel(bucket=b)
        if learn and b > m.bucket:
            self._close_buckets(m, b, cfg)
        if b < m.bucket:
            return  # late event for a closed bucket: counted in no bucket
        if distinct:
            h = hash(value) if not isinstance(value, str) else _stable(value)
            new = h not in m.seen
            current = len(m.seen) + (1 if new else 0)
        else:
            new = True
            current = m.count + 1
        if score and not m.fired and m.buckets >= cfg.warmup_buckets and new:
            mean, var = m.mean.get(), m.var.get()
            z = _z(current, mean, var)
            if z >= spec.threshold and current >= mean + 3:
                s = _zscore_to_score(z, spec.threshold)
                what = f"distinct {spec.field} values" if distinct else "events"
                if learn:
                    m.fired = True
                out.append(self._finding(
                    state, spec, ent, event, s,
                    f"High {what} per {int(cfg.bucket_s)}s for {spec.by} {ent.name}: {current}",
                    f"{spec.by.capitalize()} {ent.name} reached {current} {what} in the current "
                    f"{int(cfg.bucket_s)}-second bucket; its usual is {mean:.3g} (p99 {_q(m.p99):.3g}) over "
                    f"{m.buckets} buckets ({z:.1f} standard deviations above).",
                    {"value": current, "mean": round(mean, 3), "p99": _q(m.p99), "buckets": m.buckets,
                     "bucket_start": b * cfg.bucket_s}, f"{ent.name}\x1f{b}"))
        if learn:
            if distinct:
                if new and len(m.seen) < cfg.max_bucket_values:
                    m.seen.add(h)
            else:
                m.count += 1

    @staticmethod
    def _close_buckets(m: BucketModel, b: int, cfg: BaselineConfig) -> None:
        if m.bucket >= 0:
            total = len(m.seen) if m.seen else m.count
            if not m.fired:  # AnomalyFilter: an anomalous bucket does not teach the baseline
                m.mean.update(total)
                m.var.update(total)
                m.p99.update(total)
                m.buckets += 1
            for _ in range(min(b - m.bucket - 1, cfg.max_gap_buckets)):
                m.mean.update(0)
                m.var.update(0)
                m.p99.update(0)
                m.buckets += 1
        m.bucket = b
        m.count = 0
        m.seen = set()
        m.fired = False

    # time_of_day -----------------------------------------------------------------------------------

    def _hour(self, state: BaselineState, spec: Spec, ent: EntityState, event: Event, ts: float, learn: bool,
              score: bool, out: list[Finding], value: Any = None) -> None:
        m: HourModel | None = ent.models.get(spec.id)
        if m is None:
            if not learn:
                return
            m = ent.models[spec.id] = HourModel()
        h = int(ts // 3600) % 24
        day = int(ts // 86400)
        if score and m.total >= self._hour_warmup and m.fired_day != day:
            near = m.hours[h] + m.hours[(h - 1) % 24] + m.hours[(h + 1) % 24]
            p = (near + 0.5) / (m.total + 12.0)
            if p <= spec.threshold:
                if learn:
                    m.fired_day = day
                out.append(self._finding(
                    state, spec, ent, event, 0.55,
                    f"{spec.by.capitalize()} {ent.name} active at an unusual hour ({h:02d}:00 UTC)",
                    f"{spec.by.capitalize()} {ent.name} is active at {h:02d}:00 UTC; of its {m.total} earlier events "
                    f"{near} fell within an hour of that time (probability {p:.4f} ≤ {spec.threshold}).",
                    {"hour_utc": h, "nearby_events": near, "observations": m.total,
                     "active_hours": [i for i, c in enumerate(m.hours) if c]}, f"{ent.name}\x1f{day}"))
        if learn:
            m.hours[h] += 1
            m.total += 1

    # hst -------------------------------------------------------------------------------------------

    def _hst(self, state: BaselineState, spec: Spec, ent: EntityState, event: Event, ts: float, learn: bool,
             score: bool, out: list[Finding], value: Any = None) -> None:
        if not learn:
            return  # bucket features only exist once the bucket closes; scored on close
        cfg = self.config
        b = int(ts // cfg.bucket_s)
        m: HstModel | None = ent.models.get(spec.id)
        if m is None:
            m = ent.models[spec.id] = HstModel(bucket=b)
        if b > m.bucket:
            out.extend(self._hst_close(state, spec, ent, m, b, learn=True, score=score))
        m.events += 1
        m.last_event = event.event_id
        if event.tool is not None and event.tool.status == "error":
            m.errors += 1
        if event.usage is not None:
            m.tokens += (event.usage.input_tokens or 0) + (event.usage.output_tokens or 0)
            m.cost += event.usage.cost_usd or 0.0
        if event.kind == "tool_call" and event.tool is not None and event.tool.name and len(m.tools) < 256:
            m.tools.add(event.tool.name)

    def _hst_room(self, state: BaselineState, spec: Spec, ent: EntityState, out: list[Finding]) -> None:
        """Drop the HalfSpaceTrees model of the least recently active entity when the app holds too many."""
        cfg = self.config
        key = f"hst_models:{spec.id}"
        if state.counters[key] < cfg.max_hst_models:
            return
        for other in state.entities.get(spec.by, {}).values():
            om = other.models.get(spec.id)
            if om is not None and om.model is not None and other is not ent:
                om.model, om.buckets = None, 0
                state.counters[key] -= 1
                state.counters[f"hst_models_evicted:{spec.id}"] += 1
                self._capacity(state, key, _no_event(state, ent), ent.last_ts, out,
                               f"more than {cfg.max_hst_models} HalfSpaceTrees models ({spec.by}) in app {state.scope}",
                               f"the model of the least recently active {spec.by} ({other.name}) was dropped; it "
                               "warms up again if that entity returns", "max_hst_models")
                return

    def _hst_close(self, state: BaselineState, spec: Spec, ent: EntityState, m: HstModel, b: int, *, learn: bool,
                   score: bool) -> list[Finding]:
        cfg = self.config
        out: list[Finding] = []
        if m.events:
            x = {
                "events": min(1.0, math.log1p(m.events) / math.log1p(10_000)),
                "tools": min(1.0, math.log1p(len(m.tools)) / math.log1p(100)),
                "tokens": min(1.0, math.log1p(m.tokens / m.events) / math.log1p(200_000)),
                "errors": m.errors / m.events,
                "cost": min(1.0, math.log1p(m.cost * 100) / math.log1p(100_000)),
            }
            if m.model is None:
                self._hst_room(state, spec, ent, out)
                m.model = anomaly.HalfSpaceTrees(n_trees=cfg.hst_trees, height=cfg.hst_height,
                                                 window_size=cfg.hst_window, seed=cfg.hst_seed)
                state.counters[f"hst_models:{spec.id}"] += 1
            anomalous = False
            if score and m.buckets >= max(cfg.warmup_buckets, cfg.hst_window):
                s = m.model.score_one(x)
                m.last_score = s
                if s >= spec.threshold:
                    anomalous = True
                    out.append(self._finding(
                        state, spec, ent, None, min(0.9, 0.5 + (s - spec.threshold) * 4),
                        f"Unusual activity profile for {spec.by} {ent.name} (HalfSpaceTrees {s:.2f})",
                        f"The combination of events, distinct tools, tokens per event, error rate and cost of "
                        f"{spec.by} {ent.name} in the {int(cfg.bucket_s)}-second bucket is unlike its last "
                        f"{m.buckets} buckets (HalfSpaceTrees score {s:.2f} ≥ {spec.threshold}).",
                        {"features": {k: round(v, 4) for k, v in x.items()}, "hst_score": round(s, 4),
                         "buckets": m.buckets, "bucket_start": m.bucket * cfg.bucket_s},
                        f"{ent.name}\x1f{m.bucket}", event_id=m.last_event, ts=(m.bucket + 1) * cfg.bucket_s))
            if learn and not anomalous:
                m.model.learn_one(x)
                m.buckets += 1
        m.bucket = b
        m.events = m.errors = 0
        m.tokens = m.cost = 0.0
        m.tools = set()
        return out


def _no_event(state: BaselineState, ent: EntityState) -> Event:
    """A stand-in event for findings raised while closing a bucket (no triggering event at hand)."""
    partition = _partition(state)
    where = f"{state.app}/{partition}" if partition else state.app
    return Event.model_validate({"schema": "aiwatch.event/1", "event_id": f"bucket:{where}:{ent.kind}:{ent.name}"[:128],
                                 "ts": max(ent.last_ts, 0.0), "kind": "prompt", "app": state.app})


def _stable(value: str) -> int:
    return _h(value)


def _q(sketch: Any) -> float | None:
    v = sketch.get()
    return None if v is None else round(float(v), 4)


def _top(values: Mapping[str, int], n: int) -> list[list[Any]]:
    return [[k, v] for k, v in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# ---------------------------------------------------------------------------------------------------
# Store (replay, tests, benchmarks) and snapshot rows


class BaselineStore:
    """The ``BaselineState`` of every app (at most ``max_partitions``, least recently seen evicted,
    counted and reported) behind one ``BaselineModel``."""

    def __init__(self, config: BaselineConfig | None = None, max_partitions: int = 10_000) -> None:
        self.model = BaselineModel(config)
        self.max_partitions = max_partitions
        self.states: OrderedDict[str, BaselineState] = OrderedDict()
        self.counters: Counter[str] = Counter()
        self.frozen = False  # evaluation: score only, learn nothing

    def state(self, app: str, partition: str = "") -> BaselineState:
        key = _key(app, partition)
        st = self.states.get(key)
        if st is None:
            if len(self.states) >= self.max_partitions:
                self.states.popitem(last=False)
                self.counters["partitions_evicted"] += 1
            st = self.states[key] = BaselineState(app, partition=partition)
        else:
            self.states.move_to_end(key)
        return st

    def state_of(self, event: Event) -> BaselineState:
        return self.state(event.app, partition_of(self.model.config, event))

    def process(self, event: Event) -> list[Finding]:
        st = self.state_of(event)
        if self.frozen:
            return self.model.score_one(st, event)
        return self.model.process(st, event, self.counters)

    def learn_one(self, event: Event) -> None:
        self.model.learn_one(self.state_of(event), event)

    def score_one(self, event: Event) -> list[Finding]:
        st = self.states.get(_key(event.app, partition_of(self.model.config, event)))
        return self.model.score_one(st, event) if st is not None else []

    def snapshot(self, ts: float | datetime | None = None) -> list[dict[str, Any]]:
        return [row for st in self.states.values() for row in snapshot(st, self.model.config, ts)]


SNAPSHOT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("schema_version", "LowCardinality(String)"),
    ("snapshot_ts", "DateTime64(3, 'UTC')"),
    ("app", "LowCardinality(String)"),
    ("partition", "LowCardinality(String)"),
    ("entity_kind", "LowCardinality(String)"),
    ("entity", "String"),
    ("detector", "LowCardinality(String)"),
    ("function", "LowCardinality(String)"),
    ("field", "LowCardinality(String)"),
    ("over", "UInt8"),
    ("warm", "UInt8"),
    ("observations", "UInt64"),
    ("first_seen", "DateTime64(3, 'UTC')"),
    ("last_seen", "DateTime64(3, 'UTC')"),
    ("mean", "Nullable(Float64)"),
    ("std", "Nullable(Float64)"),
    ("p50", "Nullable(Float64)"),
    ("p99", "Nullable(Float64)"),
    ("max", "Nullable(Float64)"),
    ("distinct_values", "UInt32"),
    ("top_values", "Array(Tuple(String, UInt64))"),
    ("evicted", "UInt64"),
    ("extra", "String"),
)
"""Columns of one snapshot row (ClickHouse types): write them to a ``baselines`` table, e.g.
``ENGINE = ReplacingMergeTree ORDER BY (app, entity_kind, entity, detector, field, snapshot_ts, partition)``,
``PARTITION BY toYYYYMM(snapshot_ts)``. ``extra`` is JSON (bucket span, active hours, HST score…)."""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def _row(**kw: Any) -> dict[str, Any]:
    row = {name: None for name, _ in SNAPSHOT_COLUMNS}
    row.update({"partition": "", "over": 0, "warm": 0, "observations": 0, "distinct_values": 0, "top_values": [],
                "evicted": 0, "extra": "{}"})
    row.update(kw)
    return row


def snapshot(state: BaselineState, config: BaselineConfig, ts: float | datetime | None = None) -> list[dict[str, Any]]:
    """One row per (entity, spec) of ``state``: plain values, JSON-ready (see ``SNAPSHOT_COLUMNS``)."""
    import orjson  # noqa: PLC0415

    when = ts if isinstance(ts, datetime) else _dt(ts if ts is not None else state.last_ts)
    rows: list[dict[str, Any]] = []
    specs = {s.id: s for s in config.specs}
    base = {"schema_version": SNAPSHOT_SCHEMA, "snapshot_ts": when, "app": state.app,
            "partition": _partition(state)}
    for kind, table in state.entities.items():
        for ent in table.values():
            common = dict(base, entity_kind=kind, entity=ent.name, first_seen=_dt(ent.first_ts),
                          last_seen=_dt(ent.last_ts))
            for sid, m in ent.models.items():
                spec = specs.get(sid)
                if spec is None:
                    continue
                r = dict(common, detector=sid, function=spec.function, field=spec.field, over=int(spec.over))
                if isinstance(m, RareModel):
                    rows.append(_row(**r, warm=int(m.total >= config.warmup), observations=m.total,
                                     distinct_values=len(m.values), top_values=[tuple(x) for x in _top(m.values, 100)],
                                     evicted=m.evicted))
                elif isinstance(m, MeanModel):
                    var = m.var.get()
                    rows.append(_row(**r, warm=int(m.n >= config.warmup), observations=m.n,
                                     mean=round(math.expm1(m.mean.get()), 6) if m.n else None,
                                     std=round(math.sqrt(var), 6) if m.n > 1 else None, p50=_q(m.p50),
                                     p99=_q(m.p99), max=m.max, evicted=m.skipped,
                                     extra=orjson.dumps({"scale": "mean of log1p, reported as expm1; std on log1p",
                                                         "not_learned_anomalous": m.skipped}).decode()))
                elif isinstance(m, BucketModel):
                    var = m.var.get()
                    rows.append(_row(**r, warm=int(m.buckets >= config.warmup_buckets), observations=m.buckets,
                                     mean=round(m.mean.get(), 6), std=round(math.sqrt(var), 6) if m.buckets > 1 else None,
                                     p99=_q(m.p99), extra=orjson.dumps({"bucket_s": config.bucket_s}).decode()))
                elif isinstance(m, HourModel):
                    rows.append(_row(**r, warm=int(m.total >= max(config.warmup, 100)), observations=m.total,
                                     distinct_values=sum(1 for c in m.hours if c),
                                     extra=orjson.dumps({"hours_utc": m.hours}).decode()))
                elif isinstance(m, HstModel):
                    rows.append(_row(**r, warm=int(m.buckets >= max(config.warmup_buckets, config.hst_window)),
                                     observations=m.buckets,
                                     extra=orjson.dumps({"last_score": m.last_score, "bucket_s": config.bucket_s,
                                                         "trees": config.hst_trees, "height": config.hst_height}).decode()))
    if state.counters:
        rows.append(_row(**base, entity_kind="app", entity=state.app, detector="baseline.counters", function="counters",
                         field="", first_seen=_dt(state.first_ts), last_seen=_dt(state.last_ts),
                         observations=state.events,
                         evicted=sum(v for k, v in state.counters.items() if "evicted" in k),
                         extra=orjson.dumps(dict(state.counters)).decode()))
    return rows


def iter_specs(config: BaselineConfig, function: str | None = None) -> Iterable[Spec]:
    return (s for s in config.specs if function is None or s.function == function)
