"""Shared fixtures: a real Kafka broker for the session, a fresh ClickHouse DSN and topic names per test."""

from __future__ import annotations

import asyncio
import os
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import LocalBroker, docker_available


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"no Kafka broker on CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        _delete_session_topics(given)  # that broker outlives the session
        return
    if docker_available():  # pragma: no cover - machines with a Docker engine
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
        return
    broker = LocalBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except Exception as exc:  # noqa: BLE001 - report why, then fail or skip
        _unavailable(str(exc))
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def clickhouse_dsn(tmp_path: Path) -> str:
    """A ClickHouse DSN of its own per test: an embedded chDB directory, or CLICKHOUSE_DSN when set."""
    given = os.environ.get("CLICKHOUSE_DSN")
    if given:
        return given
    return f"chdb://{tmp_path / 'clickhouse'}"


_SESSION_PREFIXES: set[str] = set()


def _delete_session_topics(bootstrap: str) -> None:
    """Delete the topics this session's tests made on a broker that outlives it."""
    from streams.topics import delete_topics_with_prefix

    try:
        asyncio.run(delete_topics_with_prefix(bootstrap, _SESSION_PREFIXES))
    except Exception as exc:  # noqa: BLE001 - cleanup must not turn a green session red
        warnings.warn(f"could not delete this session's test topics: {exc}", stacklevel=1)


@pytest.fixture
def topic_prefix() -> str:
    """Unique topic names per test so tests sharing one broker never see each other's events."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    _SESSION_PREFIXES.add(prefix)
    return prefix
