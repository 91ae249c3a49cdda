"""Bytes → Event, with a reason code for everything that can be wrong with the bytes.

Every refusal names its class (``reason``) for counters and a readable ``detail`` for the DLQ.
"""

from __future__ import annotations

import orjson
from pydantic import ValidationError

from schemas import limits
from schemas.errors import describe
from schemas.event import Event


class InvalidEvent(ValueError):
    """Raised for input that is not an Event v1; carries a short reason code and a readable detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_event(raw: bytes | None, max_bytes: int = limits.MAX_EVENT_BYTES) -> Event:
    if raw is None or len(raw) == 0:
        raise InvalidEvent("empty", "message has no value")
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"event is {len(raw)} bytes, the limit is {max_bytes} bytes")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidEvent("bad_encoding", f"not valid UTF-8 at byte {exc.start}: {exc.reason}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("not_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidEvent("not_object", f"an event is a JSON object, got {type(data).__name__}")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent("invalid", describe(exc)) from None
    except (ValueError, RecursionError) as exc:  # pragma: no cover - validators raise ValidationError
        raise InvalidEvent("invalid", str(exc)[:500]) from None


def dump_event(event: Event) -> bytes:
    """Canonical JSON for an event (aliases, no None fields): what collectors publish."""
    return orjson.dumps(event.model_dump(mode="json", by_alias=True, exclude_none=True))
