"""Event v1 (DESIGN §3.1): one thing an AI application did, as published on ``aiwatch.events``.

The model is strict about what it needs (required fields, types, sizes) and lenient about what it
does not know: unknown fields are kept (``extra="allow"``), never a reason to reject an event.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from schemas import limits

EVENT_SCHEMA = "aiwatch.event/1"

HexId = Field(default=None, max_length=64, pattern=r"^[0-9a-fA-F]+$")
Name = Field(default=None, max_length=limits.MAX_NAME_CHARS)


class EventKind(str, Enum):
    prompt = "prompt"
    completion = "completion"
    tool_call = "tool_call"
    tool_result = "tool_result"
    retrieval = "retrieval"
    agent_message = "agent_message"


class _Part(BaseModel):
    """Sub-objects keep unknown fields too: collectors of newer versions must not be refused."""

    model_config = ConfigDict(extra="allow", frozen=False)


class Actor(_Part):
    user_id: str | None = Name
    roles: list[str] = Field(default_factory=list, max_length=limits.MAX_ROLES)
    on_behalf_of: str | None = Name
    service_account: str | None = Name


class ModelInfo(_Part):
    provider: str | None = Name
    name: str | None = Name
    served: str | None = Name
    endpoint: str | None = Field(default=None, max_length=2048)


class Content(_Part):
    role: Literal["system", "user", "assistant", "tool", "developer"] | None = None
    text: str | None = Field(default=None, max_length=limits.MAX_TEXT_CHARS)
    truncated: bool = False
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


def _check_arguments(value: Any) -> None:
    """Bound depth and size of tool arguments without recursion (deep input cannot blow the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > limits.MAX_ARGUMENT_NODES:
            raise ValueError(f"tool arguments hold more than {limits.MAX_ARGUMENT_NODES} values")
        if depth > limits.MAX_ARGUMENT_DEPTH:
            raise ValueError(f"tool arguments are nested deeper than {limits.MAX_ARGUMENT_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str) and len(item) > limits.MAX_TEXT_CHARS:
            raise ValueError(f"a tool argument is longer than {limits.MAX_TEXT_CHARS} characters")


class Tool(_Part):
    name: str | None = Name
    call_id: str | None = Field(default=None, max_length=limits.MAX_ID_CHARS)
    arguments: dict[str, Any] | None = None
    status: Literal["ok", "error"] | None = None
    error: str | None = Field(default=None, max_length=limits.MAX_LABEL_VALUE_CHARS)
    result_bytes: int | None = Field(default=None, ge=0)
    destination: str | None = Field(default=None, max_length=2048)

    @field_validator("arguments", mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if value is not None:
            _check_arguments(value)
        return value


class Document(_Part):
    id: str | None = Field(default=None, max_length=1024)
    score: float | None = None
    classification: str | None = Name
    text: str | None = Field(default=None, max_length=limits.MAX_TEXT_CHARS)


class Retrieval(_Part):
    source: str | None = Field(default=None, max_length=2048)
    documents: list[Document] = Field(default_factory=list, max_length=limits.MAX_DOCUMENTS)


class Usage(_Part):
    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    latency_ms: float | None = Field(default=None, ge=0)


class Source(_Part):
    collector: str | None = Name
    convention: str | None = Name


class Event(BaseModel):
    """Event v1. ``schema`` is a Python-reserved name on BaseModel, hence the alias."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, use_enum_values=True)

    schema_: Literal["aiwatch.event/1"] = Field(alias="schema")
    event_id: str = Field(min_length=1, max_length=limits.MAX_ID_CHARS)
    ts: AwareDatetime
    kind: EventKind
    app: str = Field(min_length=1, max_length=limits.MAX_NAME_CHARS)
    env: str | None = Name
    tenant: str | None = Name
    agent: str | None = Name
    session_id: str | None = Field(default=None, max_length=limits.MAX_ID_CHARS)
    trace_id: str | None = HexId
    span_id: str | None = HexId
    parent_span_id: str | None = HexId
    actor: Actor | None = None
    model: ModelInfo | None = None
    content: Content | None = None
    tool: Tool | None = None
    retrieval: Retrieval | None = None
    usage: Usage | None = None
    labels: dict[str, str] = Field(default_factory=dict, max_length=limits.MAX_LABELS)
    source: Source | None = None

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(timezone.utc)

    @field_validator("labels")
    @classmethod
    def _label_sizes(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if len(key) > limits.MAX_NAME_CHARS or len(item) > limits.MAX_LABEL_VALUE_CHARS:
                raise ValueError(f"label {key[:40]!r} is longer than allowed")
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> "Event":
        """Each kind carries the part that makes it meaningful (DESIGN §3.1 'Per kind')."""
        kind = self.kind
        if kind == "tool_call" and self.tool is None:
            raise ValueError("a tool_call event needs 'tool'")
        if kind == "tool_result" and self.tool is None and self.content is None:
            raise ValueError("a tool_result event needs 'tool' or 'content'")
        if kind == "retrieval" and self.retrieval is None:
            raise ValueError("a retrieval event needs 'retrieval'")
        return self

    @field_serializer("ts")
    def _rfc3339(self, value: datetime) -> str:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    @property
    def text(self) -> str | None:
        """The main text of the event, whatever its kind (used by sinks and detectors)."""
        return self.content.text if self.content else None

    @property
    def extra(self) -> dict[str, Any]:
        """Fields this version does not know, kept as they came."""
        return dict(self.__pydantic_extra__ or {})


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
