"""Held-out dev/test split of the behavioural evaluation (``streams.evaluation.behavior``): deterministic,
group-disjoint, both sides populated on the hand-written corpus-format fixtures, and ``--split`` only
changes what is shown, never an outcome."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from streams.evaluation import behavior
from streams.evaluation.split import bucket
from tests.test_evaluation import corpus_layout


@pytest.fixture(scope="module")
def fixtures_root(tmp_path_factory):
    return corpus_layout(tmp_path_factory.mktemp("behavior-split"))


@pytest.fixture(scope="module")
def traces(fixtures_root):
    return behavior.load(fixtures_root)


def _trace(corpus: str, case_id: str, label: str = "benign", agent: str = "a", **meta: str) -> behavior.Trace:
    return behavior.Trace(corpus, case_id, label, f"{corpus}-app", agent, "g", [], dict(meta))


def test_split_is_a_fixed_hash_of_the_group():
    # pinned: a change of salt, share or key format would silently move sessions between the sides
    assert behavior.SPLIT_SALT == "aiwatch-behavior-split-1" and behavior.SPLIT_TEST_SHARE == 0.5
    t = _trace("agentdojo", "m/1", suite="banking", user_task="user_task_0", injection_task="None")
    assert behavior.split_group(t) == "agentdojo/banking/user_task_0"
    assert bucket("agentdojo/banking/user_task_0", behavior.SPLIT_SALT) == pytest.approx(0.5197531789666258)
    assert behavior.split_side(t) == "dev"
    assert behavior.split_side(_trace("asb", "clean/0", agent="asb-finance_agent")) == "test"
    assert [behavior.split_side(t) for _ in range(3)] == ["dev"] * 3


def test_groups_keep_a_task_on_one_side_across_models_and_corpora():
    # AgentDojo: the same user task in another model configuration, attacked or not, or in the DRIFT runs
    a = _trace("agentdojo", "model-a/3", "benign", suite="slack", user_task="user_task_7", injection_task="None")
    b = _trace("agentdojo", "model-b/9", "hijack", suite="slack", user_task="user_task_7",
               injection_task="injection_task_3")
    c = _trace("agentdojo_drift", "m/slack/user_task_7/important_instructions/injection_task_1.json", "attempt",
               suite="slack", user_task="user_task_7", injection_task="injection_task_1")
    assert len({behavior.split_group(t) for t in (a, b, c)}) == 1
    # InjecAgent: one attacker case, whatever the model and the user case
    cases = [_trace("injecagent", f"{m}/dh/{i}", "hijack", kind="dh", attacker_tools="AugustSmartLockGrantGuestAccess")
             for m in ("gpt-4.1", "Llama-3-70b") for i in (0, 5)]
    assert len({behavior.split_side(t) for t in cases}) == 1
    # ASB: an agent's clean and attacked runs; tau-bench: every trial of a task
    asb = [_trace("asb", f"{f}/{i}", agent="asb-system_admin_agent") for f in ("clean_x", "observation_y") for i in (0, 7)]
    assert len({behavior.split_group(t) for t in asb}) == 1
    tau = [_trace("tau_bench", f"airline/12/{i}") for i in (12, 62, 112)]
    assert {behavior.split_group(t) for t in tau} == {"tau_bench/airline/12"}


def test_fixture_sessions_split_into_disjoint_non_empty_sides(traces):
    assert len(traces) >= 5
    sides_of_group: dict[str, set[str]] = defaultdict(set)
    by_side: dict[str, list[behavior.Trace]] = defaultdict(list)
    for t in traces:
        side = behavior.split_side(t)
        assert side in behavior.SIDES
        sides_of_group[behavior.split_group(t)].add(side)
        by_side[side].append(t)
    assert all(len(s) == 1 for s in sides_of_group.values())  # no group on both sides
    assert by_side["dev"] and by_side["test"]
    assert {t.corpus for t in by_side["dev"]} >= {"agentdojo", "agentdojo_drift"}
    assert {t.corpus for t in by_side["test"]} >= {"asb"}
    # the invariant export and the DRIFT run of user_task_0 land together
    ut0 = {behavior.split_side(t) for t in traces if t.meta.get("user_task") == "user_task_0"}
    assert len(ut0) == 1


def test_assignment_is_stable_across_loads(fixtures_root, traces):
    first = [(t.corpus, t.case_id, behavior.split_side(t)) for t in traces]
    second = [(t.corpus, t.case_id, behavior.split_side(t)) for t in behavior.load(fixtures_root)]
    assert first == second


def test_summarise_per_side_adds_up(traces):
    outcomes = behavior.run_sessions(traces)
    whole = {r["corpus"]: r for r in behavior.summarise(outcomes)}
    dev = {r["corpus"]: r for r in behavior.summarise(outcomes, side="dev")}
    test = {r["corpus"]: r for r in behavior.summarise(outcomes, side="test")}
    for label in behavior.LABELS:
        pairs = [d["all"][label] if "all" in d else (0, 0) for d in (dev, test)]
        assert tuple(map(sum, zip(*pairs))) == whole["all"][label]


def test_cli_split_columns_and_outcomes_do_not_depend_on_the_side_shown(fixtures_root, tmp_path, capsys):
    assert behavior.main(["--corpora", str(fixtures_root), "--no-baselines", "--json", str(tmp_path / "all.json")]) == 0
    out = capsys.readouterr().out
    assert "| corpus | hijack recall: dev | test | benign flagged: dev | test |" in out
    assert "Held-out split" in out and "sessions dev/test" in out
    assert behavior.main(["--corpora", str(fixtures_root), "--no-baselines", "--split", "dev",
                          "--json", str(tmp_path / "dev.json")]) == 0
    out_dev = capsys.readouterr().out
    assert "dev side" in out_dev and ": test" not in out_dev
    all_rows = json.loads((tmp_path / "all.json").read_text())
    dev_rows = json.loads((tmp_path / "dev.json").read_text())
    assert set(all_rows["session"]) == {"dev", "test"} and set(dev_rows["session"]) == {"dev"}
    assert dev_rows["session"]["dev"] == all_rows["session"]["dev"]
    assert dev_rows["cold"]["dev"] == all_rows["cold"]["dev"]


def test_show_misses_lists_the_dev_side_unless_test_is_asked(fixtures_root, capsys):
    assert behavior.main(["--corpora", str(fixtures_root), "--no-baselines", "--show-misses", "5"]) == 0
    out = capsys.readouterr().out
    assert "Missed hijacks (dev side)" in out
    assert behavior.main(["--corpora", str(fixtures_root), "--no-baselines", "--split", "test", "--show-misses", "5"]) == 0
    assert "Missed hijacks (test side)" in capsys.readouterr().out
