"""Real services for the tests: a Kafka broker and a ClickHouse DSN, never mocks.

Resolution order for Kafka (same for CI and a laptop):
1. ``KAFKA_BOOTSTRAP_SERVERS`` when set (an existing broker);
2. testcontainers' KafkaContainer when a Docker engine answers;
3. otherwise a local Apache Kafka started from the Maven Central jars by ``infra/kafka/start.sh``.
On CI (``CI`` set) a broker that cannot be had is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KAFKA_INFRA = REPO / "infra" / "kafka"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass
class LocalBroker:
    """A real single-node KRaft broker in its own directory and ports, started by our infra scripts."""

    directory: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            AIWATCH_KAFKA_DIR=str(self.directory),
        )
        return env

    def start(self) -> str:
        proc = subprocess.run(
            ["bash", str(KAFKA_INFRA / "start.sh")], env=self._env(), capture_output=True, text=True, timeout=240
        )
        if proc.returncode != 0:
            raise RuntimeError(f"local Kafka broker did not start:\n{proc.stdout}\n{proc.stderr}")
        return self.bootstrap

    def stop(self) -> None:
        subprocess.run(["bash", str(KAFKA_INFRA / "stop.sh")], env=self._env(), capture_output=True, timeout=90)


@contextmanager
def kafka_broker(directory: Path, bootstrap: str | None = None) -> Iterator[str]:
    """``bootstrap`` when given; otherwise a ``LocalBroker`` in ``directory``, started for the block and
    stopped after it (for the benchmarks)."""
    if bootstrap:
        yield bootstrap
        return
    broker = LocalBroker(directory)
    print("starting a local Kafka broker ...", file=sys.stderr)
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()
