"""The behavioural layer in its own process (``streams.behavior_process``): a real spawned child, the
same findings as the layer in line, state saved and restored by the child, bad input counted."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from detectors.behavior.pipeline import BehaviorPipeline
from schemas import Event
from streams.behavior_process import BehaviorProcess, BehaviorProcessError, Item

FIXTURES = Path(__file__).parent / "fixtures" / "behavior"


def session_events(name: str, session: str) -> list[bytes]:
    spec = json.loads((FIXTURES / f"{name}.json").read_text())
    start = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
    return [orjson.dumps({"schema": "aiwatch.event/1", "event_id": f"{session}-{n}", "app": "mail-agent",
                          "session_id": session, "actor": {"user_id": "u-7"},
                          "ts": (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **step})
            for n, step in enumerate(spec["events"])]


def items(raws: list[bytes], first_offset: int = 0, score: float = 0.0) -> list[Item]:
    return [Item(raw, "events", 0, first_offset + n, score) for n, raw in enumerate(raws)]


def keys(findings: list) -> list[tuple[str, str, str]]:
    return sorted((f.event_id, f.rule_id, f.category) for f in findings)


def run(coro):
    return asyncio.run(coro)


def test_same_findings_as_the_layer_in_line(tmp_path: Path) -> None:
    raws = session_events("hijack_tool_result", "s-1")
    pipeline = BehaviorPipeline()
    inline = [f for raw in raws for f in pipeline.process(Event.model_validate_json(raw))]

    async def remote() -> tuple[dict, dict]:
        child = BehaviorProcess(tmp_path / "state.pkl")
        try:
            answer = await child.submit(items(raws))
            return answer, dict(child.stats)
        finally:
            await child.stop()

    answer, stats = run(remote())
    found = [f for _, fs in answer["findings"] for f in fs]
    assert keys(found) == keys(inline)
    assert any(f.category in ("goal_hijack", "exfiltration") for f in found)
    by_index = {i: fs for i, fs in answer["findings"]}
    for i, fs in by_index.items():  # each finding comes back at the position of its event
        assert {f.event_id for f in fs} == {f"s-1-{i}"}
    assert answer["errors"] == 0 and stats["session.open"] == 1


def test_state_is_saved_by_the_child_and_restored_with_its_offsets(tmp_path: Path) -> None:
    raws = session_events("hijack_tool_result", "s-2")
    before, after = raws[:3], raws[3:]
    path = tmp_path / "state.pkl"

    async def first() -> dict:
        child = BehaviorProcess(path)
        try:
            assert child.source == "new"
            await child.submit(items(before))
            return await child.save(force=True, want_blob=True)
        finally:
            await child.stop()

    saved = run(first())
    assert saved["saved"] and saved["blob"] and path.exists()

    async def second() -> tuple[BehaviorProcess, dict, dict]:
        child = BehaviorProcess(path)
        try:
            replayed = await child.submit(items(before))  # redelivered after a restart: already in the state
            fresh = await child.submit(items(after, first_offset=3))
            return child, replayed, fresh
        finally:
            await child.stop()

    child, replayed, fresh = run(second())
    assert child.source == "local" and child.restored_from == {("events", 0): 3}
    assert replayed["findings"] == []
    hijacks = [f for _, fs in fresh["findings"] for f in fs if f.category in ("goal_hijack", "exfiltration")]
    assert hijacks, "the action after the restart is judged with the tool result read before it"


def test_baselines_split_by_env_in_the_child_and_a_changed_split_learns_again(tmp_path: Path) -> None:
    """``Settings.baseline_partition_by`` reaches the child; a state saved under another split keeps its
    sessions (the hijack is still seen across the restart) and its baselines start learning again."""
    raws = [orjson.dumps({**orjson.loads(r), "env": "prod"}) for r in session_events("hijack_tool_result", "s-env")]
    before, after = raws[:3], raws[3:]
    path = tmp_path / "state.pkl"

    async def first() -> dict:
        child = BehaviorProcess(path)  # one baseline per app
        try:
            await child.submit(items(before))
            return await child.save(force=True)
        finally:
            await child.stop()

    assert run(first())["saved"]

    async def second() -> tuple[BehaviorProcess, dict, list]:
        child = BehaviorProcess(path, partition_by=("env",))
        try:
            fresh = await child.submit(items(after, first_offset=3))
            return child, fresh, await child.snapshot(datetime(2026, 11, 2, tzinfo=timezone.utc))
        finally:
            await child.stop()

    child, fresh, rows = run(second())
    assert child.source == "local"
    assert child.stats["baseline.events"] == len(after)  # learning again from the restore on (not 3 + 3)
    assert [f for _, fs in fresh["findings"] for f in fs if f.category in ("goal_hijack", "exfiltration")]
    entity_rows = [r for r in rows if r["detector"].startswith(("rare_", "high_", "time_of_day", "hst_"))]
    assert entity_rows and {r["partition"] for r in entity_rows} == {"env=prod"}


def test_changelog_snapshot_is_used_without_a_local_file(tmp_path: Path) -> None:
    raws = session_events("hijack_tool_result", "s-3")

    async def snapshot() -> bytes:
        child = BehaviorProcess(tmp_path / "a.pkl")
        try:
            await child.submit(items(raws[:3]))
            return (await child.save(force=True, want_blob=True))["blob"]
        finally:
            await child.stop()

    blob = run(snapshot())

    async def restore() -> BehaviorProcess:
        child = BehaviorProcess(tmp_path / "b.pkl", changelog_blob=blob)
        await child.stop()
        return child

    child = run(restore())
    assert child.source == "changelog" and child.restored_from == {("events", 0): 3}


def test_an_event_that_breaks_the_layer_is_counted_and_the_next_ones_go_on(tmp_path: Path) -> None:
    raws = session_events("hijack_tool_result", "s-4")

    async def go() -> tuple[dict, dict, list]:
        child = BehaviorProcess(tmp_path / "state.pkl")
        try:
            bad = await child.submit([Item(b"{not json", "events", 0, 0, 0.0)])
            good = await child.submit(items(raws, first_offset=1))
            rows = await child.snapshot(datetime.now(timezone.utc))
            return bad, good, rows
        finally:
            await child.stop()

    bad, good, rows = run(go())
    assert bad["errors"] == 1 and bad["findings"] == []
    assert good["errors"] == 0 and good["findings"]
    assert rows and {"detector", "entity"} <= set(rows[0])


def test_child_exits_when_the_worker_goes_away(tmp_path: Path) -> None:
    child = BehaviorProcess(tmp_path / "state.pkl")
    proc = child._proc  # noqa: SLF001 - the test watches the real process
    child._conn.close()  # what the kernel does to a worker killed with SIGKILL
    deadline = time.monotonic() + 30
    while proc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.is_alive() and proc.exitcode == 0


def test_a_child_spawned_early_waits_for_its_state_and_ends_if_never_needed(tmp_path: Path) -> None:
    """The worker spawns the child before its own start-up so both import in parallel; the state comes
    later (``init``). A worker that then refuses to start must not leave the child behind."""
    early = BehaviorProcess()
    assert early.source == "not started" and early._proc.is_alive()  # noqa: SLF001
    early.init(tmp_path / "state.pkl")
    assert early.source == "new"

    async def go() -> list:
        answer = await early.submit(items(session_events("hijack_tool_result", "s-early")))
        return [f for _, found in answer["findings"] for f in found]

    assert {f.category for f in run(go())} & {"goal_hijack", "exfiltration"}
    run(early.stop())

    unused = BehaviorProcess()
    proc = unused._proc  # noqa: SLF001
    unused.close()
    assert not proc.is_alive() and proc.exitcode == 0


def test_a_dead_child_is_a_clear_error(tmp_path: Path) -> None:
    child = BehaviorProcess(tmp_path / "state.pkl")
    child._proc.kill()  # noqa: SLF001
    child._proc.join(10)  # noqa: SLF001

    async def go() -> None:
        await child.submit(items(session_events("hijack_tool_result", "s-5")))

    with pytest.raises(BehaviorProcessError, match="behavioural process is gone"):
        run(go())


def test_the_event_a_child_dies_on_is_known_and_can_be_skipped(tmp_path: Path) -> None:
    """A hard crash while feeding one event (fault injection): the worker's handle names that event,
    and a child told to skip it feeds the rest of the batch."""
    raws = session_events("hijack_tool_result", "s-poison")
    marker = json.loads(raws[2])["event_id"]  # "s-poison-2": only that event's bytes hold it
    child = BehaviorProcess(tmp_path / "state.pkl", failpoint=marker)

    async def feed(process: BehaviorProcess) -> dict:
        return await process.submit(items(raws, first_offset=40))

    with pytest.raises(BehaviorProcessError, match="exit code 70"):
        run(feed(child))
    assert child.dying_at() == (0, 42)
    child.close()

    again = BehaviorProcess(tmp_path / "state.pkl", skip={("events", 0, 42)})
    answer = run(feed(again))
    assert answer["skipped"] == 1 and answer["errors"] == 0
    assert again.dying_at() is None  # between batches: no event is being fed
    run(again.stop())


def test_periodic_save_is_written_by_a_forked_copy(tmp_path: Path) -> None:
    """A due save that the worker does not wait for is written in the background, and restores exactly."""
    raws = session_events("hijack_tool_result", "s-6")
    path = tmp_path / "state.pkl"

    async def go() -> tuple[dict, int | None]:
        child = BehaviorProcess(path, save_seconds=0)
        try:
            await child.submit(items(raws[:3]))
            answer = await child.save()  # due, no bytes wanted: forked
            after = await child.submit(items(raws[3:], first_offset=3))  # the layer goes on meanwhile
            return answer, len(after["findings"])
        finally:
            await child.stop()  # reaps the copy

    answer, later = run(go())
    assert answer["saved"] is False and answer["blob"] is None and answer["generation"] == 1
    assert later, "the layer kept working while the copy wrote"

    async def restore() -> BehaviorProcess:
        child = BehaviorProcess(path)
        await child.stop()
        return child

    restored = run(restore())
    assert restored.source == "local" and restored.generation == 1
    assert restored.restored_from == {("events", 0): 3}, "the snapshot is of the instant of the save"


def test_the_child_sees_the_event_the_worker_validated() -> None:
    """The child re-parses the bytes the worker accepted with pydantic's JSON parser, or with the
    worker's own ``parse_event`` where the two read a number differently: the layer gets the same Event."""
    import random

    from collectors.synthetic import synthetic_events
    from schemas.parse import InvalidEvent, parse_event
    from streams.behavior_process import _batch

    raws = session_events("hijack_tool_result", "s-7") + [orjson.dumps(e) for e in synthetic_events(2000, seed=5)]
    rng = random.Random(3)
    for raw in raws[:400]:  # random byte edits of real events, kept where the worker accepts them
        edited = bytearray(raw)
        pos = rng.randrange(len(edited))
        insert = bytes(rng.choice(b'0123456789eE.-+"\\u') for _ in range(rng.randint(0, 3)))
        edited[pos:pos + rng.randint(0, 2)] = insert
        try:
            parse_event(bytes(edited))
            raws.append(bytes(edited))
        except InvalidEvent:
            pass
    raws.append(b'{"schema":"aiwatch.event/1","event_id":"e1","ts":"2026-11-01T00:00:00+02:00","kind":"tool_call",'
                b'"app":"a","app":"b","tool":{"name":"t","arguments":{"n":1e-7,"big":9007199254740993,'
                b'"deep":[[{"x":null}]],"s":"\\u00e9\\ud83d\\ude00\\n"}},'
                b'"usage":{"cost_usd":0.1000000000000000055511151231257827,"input_tokens":12}}')
    huge = (b'{"schema":"aiwatch.event/1","event_id":"e2","ts":"2026-11-01T00:00:00Z","kind":"tool_call",'
            b'"app":"a","session_id":"s-8","tool":{"name":"send_money","arguments":{"account":123456789012345678901}}}')
    assert Event.model_validate_json(huge) != parse_event(huge), "pydantic's parser keeps the integer"
    seen = []

    class Recorder:
        def process(self, event: Event, signals: dict) -> list:
            seen.append(event)
            return []

        def stats(self) -> dict:
            return {}

    class Store:
        pipeline = Recorder()

        def wants(self, *position: object) -> bool:
            return True

        def advance(self, *position: object) -> None:
            return None

    assert len(raws) > 2100
    _batch(Store(), [Item(huge, "events", 0, 0, 0.0), *items(raws, first_offset=1)])
    assert seen == [parse_event(huge), *(parse_event(r) for r in raws)]


def test_events_redelivered_without_a_restart_are_not_fed_twice(tmp_path: Path) -> None:
    """A rebalance hands a partition back from its last commit, behind what the layer has seen: the
    redelivered events must neither raise findings again nor count twice in the baselines."""
    raws = session_events("hijack_tool_result", "s-9")

    async def go() -> tuple[dict, dict, dict, dict]:
        child = BehaviorProcess(tmp_path / "state.pkl")
        try:
            first = await child.submit(items(raws))
            stats_first = dict(child.stats)
            again = await child.submit(items(raws))
            return first, stats_first, again, dict(child.stats)
        finally:
            await child.stop()

    first, stats_first, again, stats_again = run(go())
    assert first["findings"] and again["findings"] == []
    assert stats_again["session.events"] == stats_first["session.events"] == len(raws)
