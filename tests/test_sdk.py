"""The Python SDK against a real Kafka broker: what it records, whom it attributes it to, and that
nothing is lost or blocks when the broker goes away."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest

from collectors.publisher import Tuning
from collectors.sdk import Monitor
from schemas import limits
from schemas.event import text_sha256
from schemas.parse import parse_event
from schemas.settings import Settings
from tests.brokers import LocalBroker, free_port
from tests.harness import consume_records, create_topic, events_of

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

FAST = Tuning(delivery_timeout=3.0, connect_timeout=3.0, reconnect_min=0.2, reconnect_max=1.0)


# -- helpers (real broker only) ---------------------------------------------------------------

PARTITIONS = 3
# every record of a topic from the start: stops once ``expected`` arrived and 1 s passed without more
# (so duplicates or extras would be seen), or at the timeout
consume = partial(consume_records, settle=1.0)


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def settings_for(home: Path, bootstrap: str, topic: str, **extra: object) -> Settings:
    return Settings(home=home, kafka_bootstrap_servers=bootstrap, topic_events=topic, **extra)


@pytest.fixture
def topic(kafka_bootstrap: str, topic_prefix: str) -> str:
    return create_topic(kafka_bootstrap, f"{topic_prefix}.events", PARTITIONS)


@pytest.fixture
def monitor(tmp_path: Path, kafka_bootstrap: str, topic: str) -> Iterator[Monitor]:
    mon = Monitor("billing-bot", env="test", settings=settings_for(tmp_path / "home", kafka_bootstrap, topic),
                  tuning=FAST)
    yield mon
    mon.close()


# -- what is recorded --------------------------------------------------------------------------

def test_records_every_kind_and_each_validates(monitor: Monitor, kafka_bootstrap: str, topic: str) -> None:
    with monitor.session(user_id="u-42", roles=["support", "refunds"], agent="triage", session_id="s-1",
                         labels={"workflow": "refund"}):
        ids = {
            "prompt": monitor.prompt("Refund order 17", model="gpt-4o", labels={"channel": "chat"}),
            "completion": monitor.completion("Calling the refund tool", model={"provider": "openai", "name": "gpt-4o"},
                                             usage={"input_tokens": 812, "output_tokens": 95, "cost_usd": 0.01}),
            "tool_call": monitor.tool_call("refund", {"order": 17, "amount": 9.5}, call_id="c-1",
                                           destination="https://payments.internal"),
            "tool_result": monitor.tool_result("refund", "c-1", "refunded", latency_ms=12.5),
            "retrieval": monitor.retrieval("kb://policies", ["Refunds within 30 days",
                                                              {"id": "p2", "score": 0.8, "classification": "internal",
                                                               "text": "VIP rules"}]),
            "agent_message": monitor.agent_message("please verify", to_agent="auditor"),
        }
    assert all(ids.values())
    assert monitor.flush(30), monitor.stats()

    records = consume(kafka_bootstrap, topic, expected=6)
    assert len(records) == 6
    events = {e.kind: e for e in events_of(records)}
    assert set(events) == set(ids)
    for record in records:
        assert record.key == b"s-1"  # key = session_id, so a session stays on one partition, in order
    for kind, event in events.items():
        assert event.app == "billing-bot" and event.env == "test" and event.session_id == "s-1"
        assert event.agent == "triage"
        assert event.actor is not None and event.actor.user_id == "u-42"
        assert event.actor.roles == ["support", "refunds"]
        assert event.source is not None and event.source.collector == "sdk"
        assert event.labels["workflow"] == "refund"
        assert event.ts.tzinfo is not None
    assert events["prompt"].content.text == "Refund order 17" and events["prompt"].content.role == "user"  # type: ignore[union-attr]
    assert events["prompt"].model.name == "gpt-4o" and events["prompt"].labels["channel"] == "chat"  # type: ignore[union-attr]
    assert events["completion"].usage.input_tokens == 812 and events["completion"].model.provider == "openai"  # type: ignore[union-attr]
    assert events["tool_call"].tool.arguments == {"order": 17, "amount": 9.5}  # type: ignore[union-attr]
    assert events["tool_call"].event_id != "c-1" and events["tool_call"].tool.call_id == "c-1"  # type: ignore[union-attr]
    result = events["tool_result"]
    assert result.tool.call_id == "c-1" and result.tool.status == "ok" and result.tool.result_bytes == 8  # type: ignore[union-attr]
    assert result.content.text == "refunded" and result.usage.latency_ms == 12.5  # type: ignore[union-attr]
    docs = events["retrieval"].retrieval.documents  # type: ignore[union-attr]
    assert [d.text for d in docs] == ["Refunds within 30 days", "VIP rules"] and docs[1].score == 0.8
    assert events["agent_message"].labels["to_agent"] == "auditor"
    assert monitor.stats()["sent"] == 6 and monitor.stats()["dropped"] == 0


def test_session_context_is_per_thread_and_per_task(monitor: Monitor, kafka_bootstrap: str, topic: str) -> None:
    start = threading.Barrier(4)

    def worker(i: int) -> None:
        with monitor.session(user_id=f"user-{i}", session_id=f"thread-{i}"):
            start.wait()
            for j in range(20):
                monitor.prompt(f"{i}/{j}", labels={"expect": f"thread-{i}", "user": f"user-{i}"})
                time.sleep(0.0005)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def agent(i: int) -> None:
        async with monitor.session(agent=f"agent-{i}", session_id=f"task-{i}"):
            for j in range(10):
                monitor.prompt(f"{i}/{j}", labels={"expect": f"task-{i}", "agent": f"agent-{i}"})
                await asyncio.sleep(0)

    async def agents() -> None:
        await asyncio.gather(*(agent(i) for i in range(4)))

    with monitor.session(session_id="outer", user_id="alice", roles=["admin"]):
        asyncio.run(agents())  # tasks inherit "outer" but each overrides session_id and agent
        orphan = threading.Thread(target=lambda: monitor.prompt("orphan", labels={"expect": "none"}))
        orphan.start()
        orphan.join()  # a plain new thread starts without the caller's session
        with ThreadPoolExecutor(1) as pool:
            pool.submit(monitor.wrap(lambda: monitor.prompt("wrapped", labels={"expect": "outer"}))).result()
        with monitor.session(agent="planner"):
            monitor.prompt("nested", labels={"expect": "outer", "agent": "planner"})
        monitor.prompt("after nested", labels={"expect": "outer", "agent": ""})
    monitor.prompt("no session", labels={"expect": "none"})
    assert monitor.flush(30)

    expected_count = 4 * 20 + 4 * 10 + 5
    events = events_of(consume(kafka_bootstrap, topic, expected=expected_count))
    assert len(events) == expected_count
    for event in events:
        expect = event.labels["expect"]
        assert event.session_id == (None if expect == "none" else expect), event
        if "user" in event.labels:
            assert event.actor is not None and event.actor.user_id == event.labels["user"]
        if expect.startswith("task-"):
            assert event.actor is not None and event.actor.user_id == "alice"  # inherited from the outer session
        if "agent" in event.labels:
            assert event.agent == (event.labels["agent"] or None)
        if expect == "none":
            assert event.actor is None and event.agent is None


def test_tool_decorator_records_calls_results_and_errors(monitor: Monitor, kafka_bootstrap: str, topic: str) -> None:
    class Declined(Exception):
        pass

    declined = Declined("card declined")

    @monitor.tool
    def lookup(order_id: str, verbose: bool = False) -> dict[str, str]:
        return {"order": order_id, "status": "shipped"}

    @monitor.tool(name="pay")
    def charge(amount: float) -> None:
        raise declined

    class Service:
        @monitor.tool
        def double(self, x: int) -> int:
            return 2 * x

    @monitor.tool
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return "<html>page</html>"

    @monitor.tool(name="async_fail")
    async def broken() -> None:
        await asyncio.sleep(0)
        raise KeyError("missing")

    assert lookup.__name__ == "lookup" and asyncio.iscoroutinefunction(fetch)
    with monitor.session(session_id="tools"):
        assert lookup("A1") == {"order": "A1", "status": "shipped"}
        with pytest.raises(Declined) as info:
            charge(10.0)
        assert info.value is declined  # the host's own exception object, unchanged
        assert traceback.extract_tb(info.value.__traceback__)[-1].name == "charge"
        assert Service().double(x=3) == 6
        assert asyncio.run(fetch("https://example.com")) == "<html>page</html>"
        with pytest.raises(KeyError):
            asyncio.run(broken())
    assert monitor.flush(30)

    events = events_of(consume(kafka_bootstrap, topic, expected=10))
    assert len(events) == 10
    calls = {e.tool.call_id: e for e in events if e.kind == "tool_call"}  # type: ignore[union-attr]
    results = {e.tool.call_id: e for e in events if e.kind == "tool_result"}  # type: ignore[union-attr]
    assert set(calls) == set(results) and len(calls) == 5
    by_name = {c.tool.name: (c, results[cid]) for cid, c in calls.items()}  # type: ignore[union-attr]
    assert set(by_name) == {"lookup", "pay", "double", "fetch", "async_fail"}

    call, result = by_name["lookup"]
    assert call.tool.arguments == {"order_id": "A1"}  # type: ignore[union-attr]
    assert result.tool.status == "ok" and json.loads(result.content.text) == {"order": "A1", "status": "shipped"}  # type: ignore[union-attr]
    assert result.usage is not None and result.usage.latency_ms is not None
    call, result = by_name["pay"]
    assert call.tool.arguments == {"amount": 10.0}  # type: ignore[union-attr]
    assert result.tool.status == "error" and result.tool.error == "Declined: card declined"  # type: ignore[union-attr]
    assert by_name["double"][0].tool.arguments == {"x": 3}  # self is not an argument  # type: ignore[union-attr]
    assert by_name["fetch"][1].content.text == "<html>page</html>"  # type: ignore[union-attr]
    assert by_name["async_fail"][1].tool.status == "error"  # type: ignore[union-attr]
    assert by_name["async_fail"][1].tool.error == "KeyError: 'missing'"  # type: ignore[union-attr]
    assert all(e.session_id == "tools" for e in events)


def test_long_texts_are_truncated_with_the_hash_of_the_whole(monitor: Monitor, kafka_bootstrap: str, topic: str) -> None:
    prompt = "p" * (limits.MAX_TEXT_CHARS + 1000)
    output = "ü" * (limits.MAX_TEXT_CHARS + 10)  # 2 bytes per character: also over the event byte limit
    monitor.prompt(prompt)
    monitor.tool_result("download", "c-9", output)
    monitor.completion("short")
    assert monitor.flush(30)

    records = consume(kafka_bootstrap, topic, expected=3)
    events = {e.kind: e for e in events_of(records)}
    assert all(len(r.value) <= limits.MAX_EVENT_BYTES for r in records)
    long_prompt = events["prompt"].content
    assert long_prompt is not None and long_prompt.truncated and long_prompt.sha256 == text_sha256(prompt)
    assert long_prompt.text == prompt[: limits.MAX_TEXT_CHARS]
    result = events["tool_result"]
    assert result.content is not None and result.content.truncated and result.content.sha256 == text_sha256(output)
    assert result.content.text and output.startswith(result.content.text)
    assert result.tool is not None and result.tool.result_bytes == len(output.encode())
    assert events["completion"].content is not None and not events["completion"].content.truncated


# -- never blocking, never losing --------------------------------------------------------------

def test_full_queue_drops_and_counts_without_blocking_or_raising(tmp_path: Path, topic_prefix: str) -> None:
    down = f"127.0.0.1:{free_port()}"  # nothing listens: Kafka is unreachable
    settings = settings_for(tmp_path / "home", down, f"{topic_prefix}.events", sdk_queue_size=8)
    monitor = Monitor("app", settings=settings, tuning=FAST)
    n, slowest = 20_000, 0.0
    started = time.perf_counter()
    try:
        for i in range(n):
            t0 = time.perf_counter()
            monitor.prompt("x" * 1000)
            slowest = max(slowest, time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        stats = monitor.stats()
        assert stats["dropped"] > 0 and stats["errors"] == 0
        assert elapsed < 5.0, f"{n} records took {elapsed:.2f}s"
        assert slowest < 0.5, f"one record call blocked for {slowest:.3f}s"
    finally:
        monitor.close(timeout=5)
    stats = monitor.stats()
    assert stats["spooled"] + stats["dropped"] == n  # every event is accounted for
    assert stats["spool_records"] == stats["spooled"] > 0


def test_broker_down_while_recording_spools_then_delivers_everything(tmp_path: Path, topic_prefix: str) -> None:
    broker = LocalBroker(tmp_path / "kafka")
    broker.start()
    monitor = None
    try:
        topic = create_topic(broker.bootstrap, f"{topic_prefix}.events", PARTITIONS)
        monitor = Monitor("app", settings=settings_for(tmp_path / "home", broker.bootstrap, topic), tuning=FAST)
        with monitor.session(session_id="before"):
            before = {monitor.prompt(f"before {i}") for i in range(5)}
        assert monitor.flush(30)

        broker.stop()
        n, slowest = 300, 0.0
        during: set[str | None] = set()
        for i in range(n):
            t0 = time.perf_counter()
            with monitor.session(session_id=f"s{i % 7}"):
                during.add(monitor.prompt(f"while down {i}", labels={"i": str(i)}))
            slowest = max(slowest, time.perf_counter() - t0)
        assert slowest < 0.5, f"a record call blocked for {slowest:.3f}s while Kafka was down"
        wait_for(lambda: monitor.stats()["spool_records"] >= n, 30, "the events to be spooled")  # type: ignore[union-attr]
        assert not monitor.flush(0.5)  # cannot be delivered while the broker is down

        broker.start()
        assert monitor.flush(60), monitor.stats()
        stats = monitor.stats()
        assert stats["dropped"] == 0 and stats["outages"] >= 1 and stats["spool_records"] == 0
        records = consume(broker.bootstrap, topic, expected=n + 5)
        ids = [parse_event(r.value).event_id for r in records]
        assert set(ids) == before | during
        assert len(during) == n
    finally:
        if monitor is not None:
            monitor.close(timeout=5)
        broker.stop()


def test_spool_survives_a_restart_of_the_sdk(tmp_path: Path, kafka_bootstrap: str, topic: str) -> None:
    home = tmp_path / "home"
    down = f"127.0.0.1:{free_port()}"
    first = Monitor("app", settings=settings_for(home, down, topic), tuning=FAST)
    ids = {first.prompt(f"spooled {i}") for i in range(50)}
    first.close(timeout=5)
    assert first.stats()["spooled"] == 50 and first.stats()["spool_records"] == 50

    second = Monitor("app", settings=settings_for(home, kafka_bootstrap, topic), tuning=FAST)
    try:
        more = {second.prompt(f"live {i}") for i in range(5)}
        assert second.flush(30), second.stats()
        assert second.stats()["sent"] == 55
    finally:
        second.close()
    records = consume(kafka_bootstrap, topic, expected=55)
    order = [parse_event(r.value).event_id for r in records]
    assert set(order) == ids | more and len(order) == 55


CRASHING_APP = """
import json, os, sys, time
from pathlib import Path
from collectors.sdk import Monitor
from schemas.settings import Settings

home, bootstrap, topic = sys.argv[1:4]
monitor = Monitor("app", settings=Settings(home=Path(home), kafka_bootstrap_servers=bootstrap, topic_events=topic))
ids = [monitor.prompt(f"before the crash {i}") for i in range(40)]
deadline = time.monotonic() + 20
while monitor.stats()["spool_records"] < 40 and time.monotonic() < deadline:
    time.sleep(0.05)
print(json.dumps(ids), flush=True)
os._exit(0)  # no close(), no atexit: a crash
"""


def test_spool_survives_a_crash_of_the_process(tmp_path: Path, kafka_bootstrap: str, topic: str) -> None:
    home = tmp_path / "home"
    down = f"127.0.0.1:{free_port()}"
    proc = subprocess.run([sys.executable, "-c", CRASHING_APP, str(home), down, topic],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    ids = set(json.loads(proc.stdout))
    assert len(ids) == 40

    monitor = Monitor("app", settings=settings_for(home, kafka_bootstrap, topic), tuning=FAST)
    try:
        assert monitor.flush(30), monitor.stats()
    finally:
        monitor.close()
    records = consume(kafka_bootstrap, topic, expected=40)
    assert {parse_event(r.value).event_id for r in records} == ids


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_gets_a_publisher_of_its_own(monitor: Monitor, kafka_bootstrap: str, topic: str) -> None:
    parent_id = monitor.prompt("from the parent")
    assert monitor.flush(30)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child, as in a gunicorn / celery prefork worker
        code = 1
        try:
            os.close(read)
            child_id = monitor.prompt("from the child")
            delivered = monitor.flush(20)
            os.write(write, json.dumps([child_id, delivered]).encode())
            monitor.close()
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_id, delivered = json.loads(pipe.read() or "[null, false]")
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0 and delivered
    second = monitor.prompt("parent again")
    assert monitor.flush(30)  # the parent's publisher is unaffected
    ids = {parse_event(r.value).event_id for r in consume(kafka_bootstrap, topic, expected=3)}
    assert ids == {parent_id, child_id, second}


def test_public_methods_never_raise(monitor: Monitor) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("boom")

        def __iter__(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    weird = Unprintable()
    monitor.prompt(weird, model=weird, labels=weird)  # type: ignore[arg-type]
    monitor.completion(None, usage=weird)  # type: ignore[arg-type]
    monitor.tool_call(weird, weird)  # type: ignore[arg-type]
    monitor.tool_result(weird, weird, weird, status=weird)  # type: ignore[arg-type]
    monitor.retrieval(weird, weird)  # type: ignore[arg-type]
    monitor.agent_message(weird, to_agent=weird)  # type: ignore[arg-type]
    with monitor.session(roles=weird, labels=weird):  # type: ignore[arg-type]
        monitor.prompt("inside")
    monitor.close()
    monitor.close()
    monitor.prompt("after close")  # counted as dropped, not raised
    assert monitor.flush(0.1) is False
    assert monitor.stats()["errors"] >= 1
