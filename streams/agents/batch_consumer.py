"""The ``batch`` feeder of the ingest stage: a consumer-group member that fetches with ``getmany``,
hands each batch to the processor and commits the batch's offsets only after it returned.

It runs as a task of the Faust worker (same process, web views, lifecycle and producer), so a crash
at any point replays at most the uncommitted batches, which the idempotent sinks absorb.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.settings import Settings
from streams.agents.ingest import IngestProcessor
from streams.ingest import RawMessage

log = logging.getLogger("aiwatch.ingest")


def ingest_group(settings: Settings) -> str:
    return f"{settings.app_id}-ingest"


async def consume(settings: Settings, processor: IngestProcessor, stopping: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic_events,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=ingest_group(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.max_message_bytes,
        fetch_max_bytes=max(settings.max_message_bytes * 2, 52_428_800),
        session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
        heartbeat_interval_ms=max(int(settings.kafka_session_timeout_s * 250), 500),
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        while not stopping.is_set():
            fetched = await consumer.getmany(
                timeout_ms=int(settings.batch_seconds * 1000), max_records=settings.batch_size
            )
            if not fetched:
                continue
            messages = [
                RawMessage(tp.topic, tp.partition, m.offset, m.key, m.value)
                for tp, records in fetched.items() for m in records
            ]
            await processor.process(messages)
            await consumer.commit(offsets_of(fetched))
    finally:
        await consumer.stop()  # leaves the group at once, so a restart does not wait for a session timeout


def offsets_of(fetched: dict[TopicPartition, list]) -> dict[TopicPartition, int]:
    """The offsets to commit after a batch: one past the last record of each partition."""
    return {tp: records[-1].offset + 1 for tp, records in fetched.items()}
