"""Cases → Event v1 sessions, with the labels kept beside the events (never inside them).

Per the corpora README: system and user messages become ``prompt`` events, assistant text a
``completion``, each assistant tool call a ``tool_call`` (``call_id``, ``arguments``), each tool message a
``tool_result`` (``content.text``), and a retrieved document a ``retrieval`` event. All events of a case
share one ``session_id`` and get synthetic, strictly increasing timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from schemas import limits
from streams.evaluation.corpora import Case, short_hash

EVENT_SCHEMA = "aiwatch.event/1"
CONVENTION = "aiwatch-eval/1"
BASE_TS = datetime(2024, 1, 1, tzinfo=timezone.utc)
SESSION_SPACING = timedelta(minutes=10)  # between the starts of consecutive sessions
EVENT_SPACING = timedelta(milliseconds=250)  # between consecutive events of a session


@dataclass(frozen=True, slots=True)
class EventLabel:
    """What we know about an event that the event itself must not say."""

    event_id: str
    session_id: str
    source: str
    case_id: str
    subset: str
    kind: str
    placement: str | None  # "direct" (user turn), "indirect" (tool result / document), None: not scored
    attack: str | None  # attack category this event carries, None when it carries none
    case_attack: str | None  # attack category of the whole case (session)
    groups: tuple[str, ...]
    payload: str | None = None  # the injected text inside the event text, when known

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ts(session_index: int, event_index: int) -> str:
    t = BASE_TS + session_index * SESSION_SPACING + event_index * EVENT_SPACING
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _content(role: str, text: str | None) -> dict[str, Any]:
    text = text or ""
    content: dict[str, Any] = {"role": role, "text": text[: limits.MAX_TEXT_CHARS]}
    if len(text) > limits.MAX_TEXT_CHARS:
        content["truncated"] = True
    return content


def case_events(case: Case, session_index: int, app_prefix: str = "eval") -> tuple[list[dict[str, Any]], list[EventLabel]]:
    """One case as Event v1 dicts (JSON-ready, ``schema`` alias) and their labels, in session order."""
    session_id = f"{case.source}-{short_hash(case.source + '/' + case.case_id, 20)}"
    common = {"schema": EVENT_SCHEMA, "app": f"{app_prefix}-{case.source}", "session_id": session_id,
              "source": {"collector": "file", "convention": CONVENTION}}
    events: list[dict[str, Any]] = []
    labels: list[EventLabel] = []

    def add(kind: str, placement: str | None, carries: bool, payload: str | None = None, **parts: Any) -> None:
        i = len(events)
        event_id = f"{session_id}-{i:04d}"
        events.append({**common, "event_id": event_id, "ts": _ts(session_index, i), "kind": kind, **parts})
        labels.append(EventLabel(event_id, session_id, case.source, case.case_id, case.subset, kind, placement,
                                 case.attack if carries else None, case.attack, case.groups,
                                 payload if carries else None))

    for m in case.messages:
        if m.role in ("system", "user"):
            add("prompt", "direct" if m.role == "user" else None, m.attack, m.payload, content=_content(m.role, m.text))
        elif m.role == "assistant":
            if m.text:
                add("completion", None, False, content=_content("assistant", m.text))
            for call in m.tool_calls:
                add("tool_call", None, False, tool={"name": call.name[: limits.MAX_NAME_CHARS], "call_id": call.call_id,
                                                    "arguments": call.arguments})
        elif m.role == "tool":
            tool = {"name": (m.name or "unknown")[: limits.MAX_NAME_CHARS], "status": "ok"}
            if m.call_id:
                tool["call_id"] = m.call_id
            add("tool_result", "indirect", m.attack, m.payload, tool=tool, content=_content("tool", m.text))
        elif m.role == "document":
            text = (m.text or "")[: limits.MAX_TEXT_CHARS]
            add("retrieval", "indirect", m.attack, m.payload,
                retrieval={"source": m.name or case.source, "documents": [{"id": f"{session_id}-doc", "text": text}]})
        else:  # pragma: no cover - readers only produce the roles above
            raise ValueError(f"unknown message role {m.role!r} in {case.source}:{case.case_id}")
    return events, labels


def convert(cases: Iterable[Case], app_prefix: str = "eval") -> Iterator[tuple[dict[str, Any], EventLabel]]:
    """Every event of every case with its label, sessions one after another."""
    for index, case in enumerate(cases):
        events, labels = case_events(case, index, app_prefix)
        yield from zip(events, labels)


def write_jsonl(pairs: Iterable[tuple[dict[str, Any], EventLabel]], events_path: Path, labels_path: Path) -> int:
    """Events to one JSONL file, their labels (same order, joined on ``event_id``) to another."""
    n = 0
    with Path(events_path).open("wb") as ev, Path(labels_path).open("wb") as lab:
        for event, label in pairs:
            ev.write(orjson.dumps(event) + b"\n")
            lab.write(orjson.dumps(label.to_json()) + b"\n")
            n += 1
    return n


def event_text(event: dict[str, Any]) -> str:
    """The text an event's placement is judged on: content text, or the documents of a retrieval."""
    if event.get("content") and event["content"].get("text") is not None:
        return event["content"]["text"]
    docs = (event.get("retrieval") or {}).get("documents") or []
    return "\n\n".join(d.get("text") or "" for d in docs)
