"""``aiwatch send FILE.jsonl``: publish the lines of a JSONL file to the events topic, as they are.

Why as-is: the worker is the one place that validates (bad lines go to the DLQ there with their
original bytes and a reason), so a file replays exactly what another system produced. Lines are
only parsed to choose the Kafka key (``session_id``, else ``event_id``) so a session's events land
on one partition in order; a line that does not parse is sent without a key and counted as
``unparsed``. Blank lines are skipped. The producer is idempotent with ``acks=all``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from schemas.settings import Settings

_MAX_PENDING = 5_000            # un-acknowledged sends before waiting for acks (bounded memory)
_DELIVERY_TIMEOUT = 60.0        # no acknowledgement progress this long → the rest count as failed


class SendError(RuntimeError):
    """The file could not be sent at all (broker unreachable, topic missing, file unreadable)."""


@dataclass
class SendReport:
    """What happened to the file: every non-blank line is either sent or failed."""

    lines: int = 0          # non-blank lines read
    sent: int = 0           # acknowledged by the broker
    failed: int = 0         # refused by the broker / not acknowledged in time
    unparsed: int = 0       # sent without a key because they are not a JSON object (the worker DLQs them)
    skipped: int = 0        # blank lines
    bytes: int = 0


def send_file(path: str | Path, settings: Settings | None = None, *, progress: bool = True,
              topic: str | None = None) -> SendReport:
    """Publish ``path`` ("-" = stdin) line by line; raises SendError only when nothing can be sent."""
    return asyncio.run(send_file_async(path, settings, progress=progress, topic=topic))


async def send_file_async(path: str | Path, settings: Settings | None = None, *, progress: bool = True,
                          topic: str | None = None) -> SendReport:
    from aiokafka import AIOKafkaProducer

    settings = settings or Settings()
    topic = topic or settings.topic_events
    report = SendReport()
    with _open(path) as (stream, total):
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="aiwatch-send",
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.sdk_linger_ms,
            max_batch_size=262_144,
            max_request_size=settings.max_message_bytes,
            **settings.kafka_client_options(),
        )
        try:
            await asyncio.wait_for(producer.start(), 30)
            await asyncio.wait_for(producer.partitions_for(topic), 30)
        except Exception as exc:  # noqa: BLE001
            await _stop(producer)
            raise SendError(f"cannot publish to topic {topic!r} at {settings.kafka_bootstrap_servers}: "
                            f"{type(exc).__name__}: {exc}") from None
        try:
            with _progress(progress, total, path) as bar:
                await _publish(producer, topic, stream, bar, report)
        finally:
            await _stop(producer)
    return report


async def _publish(producer: Any, topic: str, stream: IO[bytes], bar: Any, report: SendReport) -> None:
    pending: set[asyncio.Future[Any]] = set()
    for raw in stream:
        report.bytes += len(raw)
        bar.update(len(raw))
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            report.skipped += 1
            continue
        report.lines += 1
        parsed, key = _key(line)
        if not parsed:
            report.unparsed += 1
        try:
            pending.add(await producer.send(topic, line, key=key))
        except Exception:  # noqa: BLE001 - e.g. a line over max_message_bytes
            report.failed += 1
        if len(pending) >= _MAX_PENDING:
            pending = await _settle(pending, report, wait_all=False)
    await _settle(pending, report, wait_all=True)


def _key(line: bytes) -> tuple[bool, bytes | None]:
    """(is a JSON object, Kafka key): session_id, else event_id, else no key."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False, None
    if not isinstance(data, dict):
        return False, None
    key = data.get("session_id") or data.get("event_id")
    return True, (str(key).encode("utf-8", "replace") if key else None)


async def _settle(pending: set[asyncio.Future[Any]], report: SendReport, *, wait_all: bool) -> set[asyncio.Future[Any]]:
    """Count finished sends; wait for all (or for the oldest half) with a progress deadline."""
    target = 0 if wait_all else len(pending) // 2
    while len(pending) > target:
        done, pending = await asyncio.wait(pending, timeout=_DELIVERY_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if not done:  # no progress at all: give up on the rest
            report.failed += len(pending)
            for future in pending:
                future.cancel()
            return set()
        for future in done:
            if future.cancelled() or future.exception() is not None:
                report.failed += 1
            else:
                report.sent += 1
    return pending


@contextmanager
def _open(path: str | Path) -> Iterator[tuple[IO[bytes], int | None]]:
    if str(path) == "-":
        yield sys.stdin.buffer, None
        return
    file = Path(path)
    try:
        stream = file.open("rb")
    except OSError as exc:
        raise SendError(f"cannot read {file}: {exc.strerror or exc}") from None
    with stream:
        yield stream, file.stat().st_size


@contextmanager
def _progress(enabled: bool, total: int | None, path: str | Path) -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"send {path}", disable=not enabled)
    try:
        yield bar
    finally:
        bar.close()


async def _stop(producer: Any) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 10)
    except BaseException:  # noqa: BLE001 - best effort on the way out
        pass
