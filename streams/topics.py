"""The Kafka topics of aiwatch, with their partitions and retention, and their idempotent creation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.settings import Settings

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_hours: int
    max_message_bytes: int
    why: str
    cleanup: str = "delete"

    def configs(self) -> dict[str, str]:
        configs = {"max.message.bytes": str(self.max_message_bytes), "cleanup.policy": self.cleanup}
        if self.cleanup == "delete":
            configs["retention.ms"] = str(self.retention_hours * HOUR_MS)
        return configs


def topic_specs(settings: Settings) -> list[TopicSpec]:
    s = settings
    return [
        TopicSpec(s.topic_events, s.events_partitions, s.topic_retention_hours, s.max_message_bytes,
                  "telemetry in; keyed by session_id so a session stays in order on one partition"),
        TopicSpec(s.topic_dlq, 1, s.dlq_retention_hours, s.max_message_bytes,
                  "refused input with the original bytes and the reason in headers"),
        TopicSpec(s.topic_findings, s.events_partitions, s.topic_retention_hours, 1_048_576,
                  "Finding v1 from detectors and rules"),
        TopicSpec(s.topic_alerts, 1, s.dlq_retention_hours, 1_048_576,
                  "OCSF Detection Findings for the SOC"),
        TopicSpec(s.topic_state, 1, 0, s.max_message_bytes,
                  "changelog of the worker's behavioural state (compacted; restores a worker that lost its disk)",
                  cleanup="compact"),
    ]


async def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics; existing ones are left as they are. Returns the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            await admin.create_topics(
                [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.configs()) for spec in missing]
            )
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def delete_topics_with_prefix(bootstrap: str, prefixes: Iterable[str], timeout_s: float = 30.0,
                                    **client_options: object) -> list[str]:
    """Delete every topic whose name starts with one of ``prefixes`` (the topics of a test session or a
    benchmark run on a shared broker: left behind, a developer's broker gathers thousands of them and
    takes minutes to start). Returns the names deleted."""
    wanted = tuple(p for p in prefixes if p)
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **client_options)
    await admin.start()
    try:
        mine = sorted(t for t in await admin.list_topics() if t.startswith(wanted))
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()
