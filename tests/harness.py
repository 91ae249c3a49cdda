"""Runs the real worker as a subprocess and talks to it the way users do: Kafka in, HTTP out; and the
Kafka helpers the tests and benchmarks share (create a topic, produce, read a topic from the beginning)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from collectors.encode import encode_event
from schemas.event import Event
from schemas.parse import parse_event
from tests.brokers import free_port


@dataclass
class WorkerProcess:
    """``aiwatch worker`` with its own topics, consumer group, state directory and web port."""

    bootstrap: str
    home: Path
    prefix: str
    clickhouse_dsn: str
    web_port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def topics(self) -> dict[str, str]:
        return {
            "events": f"{self.prefix}.events",
            "dlq": f"{self.prefix}.events.dlq",
            "findings": f"{self.prefix}.findings",
            "alerts": f"{self.prefix}.alerts",
            "state": f"{self.prefix}.state",
        }

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            CLICKHOUSE_DSN=self.clickhouse_dsn,
            AIWATCH_HOME=str(self.home),
            AIWATCH_APP_ID=self.prefix,
            AIWATCH_WEB_PORT=str(self.web_port),
            AIWATCH_TOPIC_EVENTS=self.topics["events"],
            AIWATCH_TOPIC_DLQ=self.topics["dlq"],
            AIWATCH_TOPIC_FINDINGS=self.topics["findings"],
            AIWATCH_TOPIC_ALERTS=self.topics["alerts"],
            AIWATCH_TOPIC_STATE=self.topics["state"],
            AIWATCH_KAFKA_SESSION_TIMEOUT_S="6",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> "WorkerProcess":
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "worker.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.health() is not None:
                return self
            time.sleep(0.3)
        raise TimeoutError(f"worker not healthy after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.home / "worker.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _get(self, path: str, data: bytes | None = None) -> dict | None:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{self.web_port}{path}", data=data)
            with urllib.request.urlopen(req, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def health(self) -> dict | None:
        return self._get("/health")

    def counters(self) -> dict[str, float]:
        return (self.health() or {}).get("counters", {})

    def sql(self, query: str) -> list[list]:
        body = self._get("/sql", data=query.encode())
        if body is None:
            raise RuntimeError("worker did not answer /sql")
        if "error" in body:
            raise RuntimeError(body["error"])
        return body["rows"]

    def scalar(self, query: str) -> object:
        return self.sql(query)[0][0]

    def wait_for(self, query: str, expected: object, timeout: float = 120.0) -> object:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.scalar(query)
            except RuntimeError:
                value = None
            if value == expected:
                return value
            time.sleep(0.5)
        raise AssertionError(f"{query!r} = {value!r}, expected {expected!r} within {timeout}s\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit — the crash case."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def produce(bootstrap: str, topic: str, values: list[bytes], keys: list[bytes | None] | None = None,
            max_request_size: int = 16_777_216) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_request_size=max_request_size
        )
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value, key=(keys[i] if keys else None)) for i, value in enumerate(values)
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> str:
    """Create topic ``name`` (replication factor 1) and return its name."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(create())
    return name


LARGE_FETCH = {"max_partition_fetch_bytes": 16_777_216, "fetch_max_bytes": 33_554_432}
"""Consumer options for records up to 16 MB (the 10 MB messages of tests/test_pipeline.py)."""


def consume_records(bootstrap: str, topic: str, expected: int, timeout: float = 30.0, settle: float = 0.0, *,
                    poll_ms: int = 200, **consumer_options: Any) -> list[ConsumerRecord]:
    """Every record of ``topic`` from the beginning, without a consumer group.

    Stops once ``expected`` records arrived and then ``settle`` seconds passed without more (so
    duplicates or extras would be seen; 0: as soon as ``expected`` arrived), or at ``timeout``.
    ``consumer_options`` go to ``AIOKafkaConsumer`` (e.g. ``**LARGE_FETCH``).
    """

    async def read() -> list[ConsumerRecord]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None, **consumer_options)
        await consumer.start()
        out: list[ConsumerRecord] = []
        got: list[ConsumerRecord] = []
        quiet_since: float | None = None
        deadline = time.monotonic() + timeout
        try:
            while True:
                if len(out) >= expected:
                    now = time.monotonic()
                    quiet_since = now if got or quiet_since is None else quiet_since
                    if now - quiet_since >= settle:
                        break
                if time.monotonic() >= deadline:
                    break
                batch = await consumer.getmany(timeout_ms=poll_ms)
                got = [record for records in batch.values() for record in records]
                out.extend(got)
        finally:
            await consumer.stop()
        return out

    return asyncio.run(read())


def events_of(records: list[ConsumerRecord]) -> list[Event]:
    """The records' values parsed by the worker's parser."""
    return [parse_event(record.value) for record in records]


def consume_events(bootstrap: str, topic: str, expected: int, timeout: float = 30.0, settle: float = 0.0,
                   **options: Any) -> list[Event]:
    """``consume_records``, parsed by the worker's parser."""
    return events_of(consume_records(bootstrap, topic, expected, timeout, settle, **options))


def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[ConsumerRecord]:
    """Read a topic from the beginning until ``expected`` records arrived (or the timeout); records up to 16 MB."""
    return consume_records(bootstrap, topic, expected, timeout, poll_ms=500, **LARGE_FETCH)


class ListSink:
    """A sink for ``collectors.otlp.receiver.Receiver``: collects what the receiver offers; refuses
    after ``capacity`` events (a full queue)."""

    def __init__(self, capacity: int | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.capacity = capacity

    def offer(self, event: dict[str, Any]) -> bool:
        if self.capacity is not None and len(self.events) >= self.capacity:
            return False
        self.events.append(event)
        return True

    def parsed(self) -> list[Event]:
        return validated(self.events)


def validated(events: list[dict[str, Any]]) -> list[Event]:
    """Encode like the publisher does, then parse like the worker does."""
    return [parse_event(encode_event(dict(event))[1]) for event in events]
