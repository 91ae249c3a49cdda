"""The ingest stage as plain code: raw Kafka messages → rows to store and records to dead-letter.

Kept free of Faust so it is tested directly and reused by benchmarks; the Faust agent only feeds it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from detectors.redact import Redactor, blank_texts
from schemas import Event, InvalidEvent, parse_event
from streams import metrics
from streams.sinks.rows import event_row

log = logging.getLogger("aiwatch.ingest")

DLQ_STORED_PAYLOAD_BYTES = 1_048_576  # the full bytes stay on the DLQ topic; ClickHouse keeps the first MiB


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class DeadLetter:
    message: RawMessage
    reason: str
    detail: str

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        m = self.message
        return [
            ("aiwatch.reason", self.reason.encode()),
            ("aiwatch.detail", self.detail.encode("utf-8", "replace")[:2048]),
            ("aiwatch.source", f"{m.topic}/{m.partition}/{m.offset}".encode()),
        ]

    def row(self, received_at: datetime) -> tuple:
        m, payload = self.message, self.message.value or b""
        stored = payload[:DLQ_STORED_PAYLOAD_BYTES]
        return (
            f"{m.topic}/{m.partition}/{m.offset}", received_at, m.topic, m.partition, m.offset, self.reason,
            self.detail, len(payload), hashlib.sha256(payload).hexdigest(), stored, len(stored) < len(payload),
        )


@dataclass
class Batch:
    events: list[Event] = field(default_factory=list)
    positions: list[tuple[str, int, int]] = field(default_factory=list)  # (topic, partition, offset) per event
    raw: list[bytes] = field(default_factory=list)  # the bytes of each event, as received
    event_rows: list[tuple] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def triage(messages: list[RawMessage], max_event_bytes: int, redactor: Redactor | None = None) -> Batch:
    """Validate every message; nothing is dropped: each ends up as a row or as a dead letter. With a
    ``redactor`` the stored row holds the redacted copy; ``events`` (what the detectors see) the original."""
    batch = Batch()
    metrics.received.inc(len(messages))
    for message in messages:
        try:
            event = parse_event(message.value, max_bytes=max_event_bytes)
            stored = _redacted(redactor, event) if redactor is not None else event
            batch.event_rows.append(event_row(stored, message.partition, message.offset))
            batch.events.append(event)
            batch.positions.append((message.topic, message.partition, message.offset))
            batch.raw.append(message.value)
        except InvalidEvent as exc:
            batch.dead_letters.append(DeadLetter(message, exc.reason, exc.detail))
            metrics.invalid.labels(exc.reason).inc()
        except Exception as exc:  # noqa: BLE001 - the worker never crashes on input
            batch.dead_letters.append(DeadLetter(message, "internal", f"{type(exc).__name__}: {exc}"[:500]))
            metrics.invalid.labels("internal").inc()
    metrics.valid.inc(len(batch.event_rows))
    return batch


def _redacted(redactor: Redactor, event: Event) -> Event:
    try:
        stored, values = redactor.redact(event)
    except Exception:  # noqa: BLE001 - a redaction bug must neither crash the worker nor leak: drop the texts
        log.exception("redaction failed on event %s; its texts are not stored", event.event_id)
        metrics.redaction_errors.inc()
        return blank_texts(event)
    if values:
        metrics.redacted.inc(values)
    return stored


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
