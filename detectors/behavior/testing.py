"""Tiny builders of Event v1 objects for doctests, tests and benchmarks of the behavioural layer.

    >>> e = ev("tool_call", tool="send_email", args={"to": "a@b.example"}, session="s1")
    >>> (e.kind, e.tool.name, e.session_id)
    ('tool_call', 'send_email', 's1')
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

from schemas.event import Event

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
_SEQ = itertools.count()


def ev(kind: str, *, text: str | None = None, role: str | None = None, tool: str | None = None,
       args: dict[str, Any] | None = None, call_id: str | None = None, session: str = "s1", app: str = "app",
       agent: str | None = "agent", user: str | None = "u1", ts: datetime | float | None = None,
       event_id: str | None = None, usage: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
       documents: list[dict[str, Any]] | None = None, model: dict[str, Any] | None = None,
       result_bytes: int | None = None, status: str | None = None, destination: str | None = None) -> Event:
    """One event; timestamps advance one second per call unless ``ts`` is given (seconds after T0 or a datetime)."""
    n = next(_SEQ)
    if ts is None:
        when = T0 + timedelta(seconds=n)
    elif isinstance(ts, datetime):
        when = ts
    else:
        when = T0 + timedelta(seconds=float(ts))
    data: dict[str, Any] = {
        "schema": "aiwatch.event/1", "event_id": event_id or f"e{n}", "ts": when, "kind": kind, "app": app,
        "session_id": session, "labels": labels or {},
    }
    if agent:
        data["agent"] = agent
    if user:
        data["actor"] = {"user_id": user}
    if text is not None:
        data["content"] = {"role": role or {"prompt": "user", "completion": "assistant", "tool_result": "tool"}.get(kind),
                           "text": text}
    if tool is not None or kind == "tool_call":
        data["tool"] = {"name": tool, "call_id": call_id, "arguments": args if kind != "tool_result" else None,
                        "result_bytes": result_bytes, "status": status, "destination": destination}
    if documents is not None:
        data["retrieval"] = {"source": "kb://docs", "documents": documents}
    if usage is not None:
        data["usage"] = usage
    if model is not None:
        data["model"] = model
    return Event.model_validate(data)
