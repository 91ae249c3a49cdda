"""The behavioural state's changelog on Kafka: each saved snapshot is also published, in chunks, to a
compacted topic, so a worker that lost its local store (a new machine, a wiped disk) restores from it.

Layout per worker (``app_id``): keys ``<app_id>/chunk/<n>`` hold ``generation (8 bytes) + data`` and
``<app_id>/manifest`` holds ``{"generation", "chunks", "sha256", "bytes"}``, published last. Compaction
keeps the newest value per key; a restore assembles the chunks of the manifest's generation and checks
the digest, so a snapshot interrupted half-way is never used.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.settings import Settings

CHUNK_BYTES = 4 * 1024 * 1024


def _manifest_key(app_id: str) -> bytes:
    return f"{app_id}/manifest".encode()


def _chunk_key(app_id: str, n: int) -> bytes:
    return f"{app_id}/chunk/{n}".encode()


async def publish(producer: AIOKafkaProducer, settings: Settings, blob: bytes, generation: int) -> None:
    header = struct.pack(">Q", generation)
    chunks = [blob[i:i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)] or [b""]
    sends = [await producer.send(settings.topic_state, header + chunk, key=_chunk_key(settings.app_id, n))
             for n, chunk in enumerate(chunks)]
    await asyncio.gather(*sends)
    manifest = {"generation": generation, "chunks": len(chunks), "sha256": hashlib.sha256(blob).hexdigest(),
                "bytes": len(blob)}
    await (await producer.send(settings.topic_state, orjson.dumps(manifest), key=_manifest_key(settings.app_id)))


async def fetch(settings: Settings, timeout_s: float = 30.0) -> bytes | None:
    """The newest complete snapshot of this worker's state on the changelog, or None."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
                                group_id=None, max_partition_fetch_bytes=settings.max_message_bytes,
                                fetch_max_bytes=max(settings.max_message_bytes * 2, 52_428_800),
                                **settings.kafka_client_options())
    await consumer.start()
    latest: dict[bytes, bytes] = {}
    try:
        if settings.topic_state not in await consumer.topics():
            return None
        tps = [TopicPartition(settings.topic_state, 0)]  # created with one partition (streams.topics)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        prefix = f"{settings.app_id}/".encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline and any([await consumer.position(tp) < ends[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key and record.key.startswith(prefix):
                        latest[record.key] = record.value
    finally:
        await consumer.stop()
    raw = latest.get(_manifest_key(settings.app_id))
    if raw is None:
        return None
    manifest = orjson.loads(raw)
    parts = []
    for n in range(manifest["chunks"]):
        value = latest.get(_chunk_key(settings.app_id, n))
        if value is None or struct.unpack(">Q", value[:8])[0] != manifest["generation"]:
            return None
        parts.append(value[8:])
    blob = b"".join(parts)
    return blob if hashlib.sha256(blob).hexdigest() == manifest["sha256"] else None
