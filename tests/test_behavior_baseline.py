"""Entity baselines: warm-up, rare (by / over), high_mean, counts, time of day, HST, caps, snapshots."""

from __future__ import annotations

import pickle
import random

import pytest

from detectors.behavior.baseline import (
    SNAPSHOT_COLUMNS,
    BaselineConfig,
    BaselineModel,
    BaselineState,
    BaselineStore,
    Spec,
)
from detectors.behavior.testing import ev
from tests.test_behavior_session import TAG
from schemas.finding import Mode


def only(*ids: str, **kw) -> BaselineConfig:
    from detectors.behavior.baseline import DEFAULT_SPECS

    return BaselineConfig(specs=tuple(s for s in DEFAULT_SPECS if s.id in ids), **kw)


def call(tool: str, t: float, agent: str = "agent", user: str = "u1", **kw):
    return ev("tool_call", tool=tool, args={}, ts=t, agent=agent, user=user, session=f"s{int(t)}", **kw)


def test_no_scoring_before_warmup_then_rare_tool() -> None:
    model = BaselineModel(only("rare_tool_by_agent", warmup=30))
    state = BaselineState("app")
    for i in range(29):
        assert model.process(state, call("search", i)) == []
    assert model.score_one(state, call("wire_funds", 29)) == []  # 29 observations: still warming up
    for i in range(29, 40):
        model.process(state, call("search", i))
    found = model.score_one(state, call("wire_funds", 41))
    assert [(f.rule_id, f.detector, f.category) for f in found] == [("rare_tool_by_agent", "baseline", "behavior_anomaly")]
    assert found[0].evidence[0]["value"] == "wire_funds" and all(TAG.match(t) for t in found[0].tags)
    assert "enforce mode would have" in found[0].rationale


def test_score_one_does_not_change_state_and_process_learns_new_values_once() -> None:
    model = BaselineModel(only("rare_tool_by_agent", warmup=5))
    state = BaselineState("app")
    for i in range(40):
        model.process(state, call("search", i))
    before = pickle.dumps(state)
    model.score_one(state, call("wire_funds", 50))
    assert pickle.dumps(state) == before
    assert len(model.process(state, call("wire_funds", 51))) == 1
    assert model.process(state, call("wire_funds", 52)) == []  # one alert per new value, not a flood


def test_first_seen_is_uninformative_for_entities_that_keep_using_new_values() -> None:
    model = BaselineModel(only("rare_tool_by_agent", warmup=5))
    state = BaselineState("app")
    for i in range(40):
        model.process(state, call(f"tool_{i}", i))  # every call a new tool
    before = state.counters["rare_uninformative:rare_tool_by_agent"]
    assert model.process(state, call("wire_funds", 41)) == []
    assert state.counters["rare_uninformative:rare_tool_by_agent"] == before + 1


def test_rare_across_population() -> None:
    model = BaselineModel(only("rare_tool_over_identity", warmup=3, min_population=20))
    state = BaselineState("app")
    for u in range(25):
        for i in range(4):
            model.process(state, call("search", u * 10 + i, user=f"u{u}"))
    model.process(state, call("export_all", 300, user="u0"))
    found = model.process(state, call("export_all", 301, user="u1"))
    assert [f.rule_id for f in found] == ["rare_tool_over_identity"]
    assert found[0].evidence[0]["entities_using"] == 1 and found[0].evidence[0]["population"] == 25


def test_high_mean_and_anomaly_filter() -> None:
    model = BaselineModel(only("high_mean_tokens_by_agent", warmup=30))
    state = BaselineState("app")
    rng = random.Random(3)
    for i in range(60):
        model.process(state, ev("completion", text="ok", ts=i, usage={"input_tokens": rng.randint(800, 1200),
                                                                     "output_tokens": 200}))
    found = model.process(state, ev("completion", text="ok", ts=70, usage={"input_tokens": 250_000}))
    assert [(f.rule_id, f.category) for f in found] == [("high_mean_tokens_by_agent", "cost_anomaly")]
    m = state.entities["agent"]["agent"].models["high_mean_tokens_by_agent"]
    assert m.n == 60 and m.skipped == 1  # the anomaly did not teach the baseline
    assert len(model.process(state, ev("completion", text="ok", ts=71, usage={"input_tokens": 250_000}))) == 1


def test_high_count_per_bucket() -> None:
    cfg = only("high_count_by_identity", warmup_buckets=12, bucket_s=60)
    model = BaselineModel(cfg)
    state = BaselineState("app")
    rng = random.Random(5)
    t = 0.0
    for b in range(30):
        for _ in range(rng.randint(2, 4)):
            model.process(state, ev("prompt", text="q", ts=b * 60 + rng.random() * 50))
    found = [f for k in range(60) for f in model.process(state, ev("prompt", text="q", ts=31 * 60 + k * 0.5))]
    assert [f.rule_id for f in found] == ["high_count_by_identity"]  # once per bucket


def test_time_of_day() -> None:
    model = BaselineModel(only("time_of_day_by_identity", warmup=30))
    state = BaselineState("app")
    for d in range(20):
        for h in (9, 10, 11, 14, 15, 16):
            model.process(state, ev("prompt", text="q", ts=d * 86400 + h * 3600 + 60))
    assert model.process(state, ev("prompt", text="q", ts=21 * 86400 + 10 * 3600)) == []
    found = model.process(state, ev("prompt", text="q", ts=21 * 86400 + 3 * 3600))
    assert [f.rule_id for f in found] == ["time_of_day_by_identity"]


def test_hst_scores_after_warmup_and_is_deterministic() -> None:
    def run() -> list[float]:
        cfg = only("hst_by_agent", warmup_buckets=12, bucket_s=60, hst_window=20)
        model = BaselineModel(cfg)
        state = BaselineState("app")
        rng = random.Random(9)
        scores = []
        for b in range(60):
            n = 3 if b != 55 else 400
            for k in range(n):
                e = ev("tool_call", tool="search" if b != 55 else f"t{k}", args={}, ts=b * 60 + k * 0.1,
                       usage={"input_tokens": rng.randint(100, 200)})
                scores += [f.score for f in model.process(state, e)]
        return scores

    first = run()
    assert first and first == run()


def test_entity_cap_counter_and_finding_and_learning_continues() -> None:
    model = BaselineModel(only("rare_tool_by_agent", max_entities=3, warmup=1))
    state = BaselineState("app")
    found = []
    for i in range(6):
        found += model.process(state, call("search", i, agent=f"a{i}"))
    caps = [f for f in found if f.rule_id == "baseline.capacity"]
    assert len(caps) == 1 and "max_entities" in caps[0].rationale  # one finding per bound and day
    assert state.counters["entities_evicted:agent"] == 3
    assert list(state.entities["agent"]) == ["a3", "a4", "a5"]  # newest modelled: never silently stopped


def test_value_cap_evicts_least_used() -> None:
    model = BaselineModel(only("rare_tool_by_agent", max_values=4, warmup=1))
    state = BaselineState("app")
    found = []
    for i, tool in enumerate(["a", "a", "b", "c", "d", "e"]):
        found += model.process(state, call(tool, i))
    m = state.entities["agent"]["agent"].models["rare_tool_by_agent"]
    assert len(m.values) == 4 and "a" in m.values and m.evicted == 1
    assert state.counters["values_evicted"] == 1
    assert [f.rule_id for f in found].count("baseline.capacity") == 1


def test_learn_mode_withholds_findings_same_state() -> None:
    events = [call("search", i) for i in range(40)] + [call("wire_funds", 41)]
    m1, m2 = BaselineModel(only("rare_tool_by_agent", warmup=5)), BaselineModel(only("rare_tool_by_agent", warmup=5, mode=Mode.learn))
    s1, s2 = BaselineState("app"), BaselineState("app")
    out1 = [f for e in events for f in m1.process(s1, e)]
    out2 = [f for e in events for f in m2.process(s2, e)]
    assert out1 and not out2
    s2.counters.pop("withheld_learn_mode")
    assert pickle.dumps(s1) == pickle.dumps(s2)


def test_pickle_round_trip_and_snapshot_rows() -> None:
    store = BaselineStore()
    rng = random.Random(2)
    events = []
    for i in range(300):
        kind = rng.choice(["prompt", "tool_call", "tool_result", "completion"])
        if kind == "tool_call":
            events.append(ev("tool_call", tool=rng.choice(["search", "read"]), args={"q": i}, ts=i * 5))
        elif kind == "tool_result":
            events.append(ev("tool_result", tool="search", text="r", ts=i * 5, result_bytes=rng.randint(100, 900)))
        else:
            events.append(ev(kind, text="x", ts=i * 5, model={"name": "gpt-x", "endpoint": "api.example"},
                             usage={"input_tokens": rng.randint(10, 90), "cost_usd": 0.001, "latency_ms": 300}))
    for e in events[:150]:
        store.process(e)
    clone = pickle.loads(pickle.dumps(store))
    a = [f.finding_id for e in events[150:] for f in store.process(e)]
    b = [f.finding_id for e in events[150:] for f in clone.process(e)]
    assert a == b
    rows = store.snapshot()
    names = [c for c, _ in SNAPSHOT_COLUMNS]
    assert rows and all(list(r) == names for r in rows)
    assert {r["detector"] for r in rows} >= {"rare_tool_by_agent", "high_mean_result_bytes_by_tool", "rare_model_by_app"}
    tool_row = next(r for r in rows if r["detector"] == "rare_tool_by_app")
    assert dict(tool_row["top_values"]).keys() == {"search", "read"}


@pytest.mark.parametrize("kw, message", [
    ({"specs": (Spec("x", "rare", "tool", "agent"), Spec("x", "rare", "tool", "app"))}, "duplicate spec ids"),
    ({"warmup": 0}, "warmup must be at least 1"),
])
def test_config_validation(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        BaselineConfig(**kw)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="function 'median' is not one of"):
        Spec("x", "median", "tokens", "agent")


def test_hst_model_cap_drops_least_recent_model_loudly() -> None:
    model = BaselineModel(only("hst_by_agent", bucket_s=60, max_hst_models=2))
    state = BaselineState("app")
    found = []
    for b in range(3):
        for a in ("a1", "a2", "a3"):
            found += model.process(state, ev("tool_call", tool="x", args={}, ts=b * 60 + 1, agent=a))
    caps = [f for f in found if f.rule_id == "baseline.capacity"]
    assert len(caps) == 1 and "max_hst_models" in caps[0].rationale
    assert state.counters["hst_models:hst_by_agent"] == 2 and state.counters["hst_models_evicted:hst_by_agent"] >= 1


# -- partitions (Elastic's partition_field: env / tenant within an app) ------------------------------


def _in(env: str, tool: str, t: float):
    return call(tool, t).model_copy(update={"env": env})


def _partitioned_history(store: BaselineStore) -> None:
    for i in range(40):  # production uses both tools; staging only ever searched
        store.process(_in("prod", "search" if i % 2 else "export_report", i))
        store.process(_in("staging", "search", 100 + i))


@pytest.mark.parametrize(("partition_by", "flagged"), [((), False), (("env",), True)])
def test_partitions_keep_environments_apart(partition_by: tuple[str, ...], flagged: bool) -> None:
    """A tool production uses all the time is still new for staging when baselines are split by env."""
    store = BaselineStore(only("rare_tool_by_agent", warmup=10, partition_by=partition_by))
    _partitioned_history(store)
    found = store.process(_in("staging", "export_report", 200))
    assert [f.rule_id for f in found] == (["rare_tool_by_agent"] if flagged else [])
    if flagged:
        assert found[0].app == "app" and found[0].evidence[0]["partition"] == "env=staging"
        assert "app app (env=staging)" in found[0].rationale
    labels = {r["partition"] for r in store.snapshot() if r["detector"] == "rare_tool_by_agent"}
    assert labels == ({"env=prod", "env=staging"} if flagged else {""})


def test_partition_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="partition_by 'region' is not one of env, tenant"):
        BaselineConfig(partition_by=("region",))


def test_suggest_asks_which_partition_when_there_are_several() -> None:
    from detectors.behavior.suggest import suggest

    store = BaselineStore(only("rare_tool_by_app", warmup=10, partition_by=("env",)))
    _partitioned_history(store)
    rows = store.snapshot()
    with pytest.raises(ValueError, match="2 partitions \\(env=prod, env=staging\\)"):
        suggest(rows, "app")
    assert suggest(rows, "app", partition="env=staging").policy["allow_lists"]["tools"] == ["search"]
    assert suggest(rows, "app", partition="env=prod").policy["allow_lists"]["tools"] == ["export_report", "search"]
