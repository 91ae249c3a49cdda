"""Data contracts of aiwatch (DESIGN §3): Event v1, Finding v1, settings. Imports nothing else of ours."""

from schemas.event import EVENT_SCHEMA, Event, EventKind, text_sha256
from schemas.finding import FINDING_SCHEMA, Category, Finding, Mode, Severity
from schemas.parse import InvalidEvent, dump_event, parse_event

__all__ = [
    "EVENT_SCHEMA", "Event", "EventKind", "text_sha256",
    "FINDING_SCHEMA", "Category", "Finding", "Mode", "Severity",
    "InvalidEvent", "dump_event", "parse_event",
]
