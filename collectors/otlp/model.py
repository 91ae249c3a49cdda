"""What the OTLP decoder hands to dialect adapters, and what adapters hand back.

Decoding (protobuf or JSON) yields plain views — :class:`SpanView`, :class:`LogView` — with
attributes already turned into Python values, so adapters never see the wire format. Adapters
return a :class:`Mapped`: draft events plus the conversation *thread* (content hashes of the
messages in order) that :mod:`collectors.otlp.sessions` uses to link turns and drop repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from collectors.otlp.hashing import short_hash

_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 1, 2, 3, 4, 5
STATUS_ERROR = 2


@dataclass(slots=True)
class Resource:
    """Resource and scope of a batch of spans or logs."""

    attrs: dict[str, Any]
    scope: str = ""
    scope_version: str = ""
    schema_url: str = ""


@dataclass(slots=True)
class SpanView:
    resource: Resource
    trace_id: str | None
    span_id: str | None
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attrs: dict[str, Any]
    status_code: int = 0
    status_message: str = ""
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


@dataclass(slots=True)
class LogView:
    resource: Resource
    time_ns: int
    trace_id: str | None
    span_id: str | None
    event_name: str
    body: Any
    attrs: dict[str, Any]
    severity: str = ""


# -- conversation model -----------------------------------------------------------------------

@dataclass(slots=True)
class ToolCall:
    id: str | None
    name: str | None
    arguments: dict[str, Any] | None     # None: not captured


@dataclass(slots=True)
class ToolResponse:
    id: str | None
    text: str | None


@dataclass(slots=True)
class Message:
    """One chat message, normalized across dialects. ``text`` None = no text (or not captured)."""

    role: str
    text: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    responses: list[ToolResponse] = field(default_factory=list)
    finish_reason: str | None = None
    name: str | None = None              # participant name (OpenAI ``name``), kept as a label

    def digest(self) -> str:
        """Content hash: same message, same hash, whichever dialect or turn it came from (the
        finish reason and participant name are not content)."""
        if not self.tool_calls and not self.responses:
            return short_hash(orjson.dumps((self.role, self.text)))
        payload = (self.role, self.text, [(c.id, c.name, c.arguments) for c in self.tool_calls],
                   [(r.id, r.text) for r in self.responses])
        return short_hash(orjson.dumps(payload, option=_SORTED, default=str))


@dataclass(slots=True)
class Turn:
    """The messages of one model call: what went in, what came out."""

    inputs: list[Message] = field(default_factory=list)
    outputs: list[Message] = field(default_factory=list)
    system: Message | None = None        # system instructions given apart from the messages


@dataclass(slots=True)
class Draft:
    """An event before its session, id and dedup are settled. ``key`` is unique within a session."""

    kind: str
    key: str
    fields: dict[str, Any]
    thread_index: int = -1    # position of its message in ``Mapped.thread``; -1 = not a message


@dataclass(slots=True)
class Mapped:
    """What an adapter made of one span (or of the logs of one span)."""

    base: dict[str, Any]                              # fields every draft shares (app, ts, model, actor, ...)
    drafts: list[Draft] = field(default_factory=list)
    session_id: str | None = None                     # explicit conversation id, when the telemetry has one
    user_id: str | None = None
    trace_id: str | None = None
    thread: list[str] = field(default_factory=list)   # message hashes in order: [system] + inputs + outputs
    n_input: int = 0                                  # how many of ``thread`` came in (incl. system)
    convention: str = ""
    # Content and metadata of one model call may come apart (content as log events, usage on the
    # span): "span" = metadata-only span, "content" = content from logs; the receiver joins them.
    join: str | None = None
    # Drafts of conversation messages are built only for the messages that survive the session's
    # prefix skip (a long chat repeats its whole history at every turn): ``materialize(skip)``.
    pending: list[Callable[[int], list[Draft]]] = field(default_factory=list)

    def materialize(self, skip: int = 0) -> None:
        if self.pending:
            built: list[Draft] = []
            for job in self.pending:
                built.extend(job(skip))
            self.pending.clear()
            self.drafts[:0] = built


EMPTY: list[Draft] = []
