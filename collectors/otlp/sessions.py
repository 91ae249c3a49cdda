"""Which session a model call belongs to, and which of its messages were already published.

A chat span repeats the whole conversation at every turn. Each message must become one event per
session, never one per turn. Two mechanisms, both bounded:

1. **Thread links.** Every turn's messages hash into a chain (``chain(app) → h0 → h1 → …``). After a
   turn is published, the chain of its whole thread (inputs + outputs) is remembered with its
   session. A later turn whose inputs start with that thread continues it: those messages are
   skipped, and the turn inherits the session — even when the telemetry carries no conversation id
   and the turns are in different traces (what the OpenAI instrumentation does). A link is only
   followed when explicit session ids and user ids, where both sides have one, agree.
2. **Seen keys.** Per session (the explicit id, else the linked one, else the trace), a bounded LRU
   of draft keys (``m<pos>:<hash>``, ``tc:<call id>`` …) catches what links cannot: the same content
   arriving as span attributes and as log events, a tool call proposed by the model and then
   executed, a retried export.

Event ids are derived from (app, session namespace, key), so what the bounded memory forgets the
worker's idempotent sinks still absorb.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from collectors.otlp.hashing import chain, event_id
from collectors.otlp.model import Draft, Mapped


@dataclass(slots=True, frozen=True)
class Link:
    namespace: str
    session: str | None
    explicit: bool
    user: str | None


@dataclass(slots=True)
class Resolved:
    namespace: str | None          # dedup scope; None: no context at all, nothing deduplicated
    session: str | None            # session_id written on the events
    inferred: str | None           # "linked" / "trace" when the session was not given by the telemetry
    skip: int                      # thread positions below this were published by an earlier turn
    chain: list[bytes]


class Conversations:
    """Session resolution and dedup state; owned by one receiver, not thread-safe."""

    def __init__(self, *, max_sessions: int = 20_000, max_keys: int = 2_048, max_links: int = 100_000) -> None:
        self.max_sessions = max_sessions
        self.max_keys = max_keys
        self.max_links = max_links
        self._seen: OrderedDict[tuple[str, str], dict[str, None]] = OrderedDict()
        self._links: OrderedDict[bytes, Link] = OrderedDict()
        self._calls: OrderedDict[tuple[str, str, str, str], str] = OrderedDict()
        self.evicted_sessions = 0
        self.evicted_keys = 0

    # -- sessions -------------------------------------------------------------------------

    def resolve(self, mapped: Mapped) -> Resolved:
        app = mapped.base["app"]
        hashes: list[bytes] = []
        if mapped.thread:
            h = chain(b"", app)
            for digest in mapped.thread:
                h = chain(h, digest)
                hashes.append(h)
        link, skip = self._longest(hashes, mapped)
        explicit = mapped.session_id
        if explicit:
            return Resolved(f"s:{explicit}", explicit, None, skip, hashes)
        if link is not None:
            return Resolved(link.namespace, link.session, "linked", skip, hashes)
        if mapped.trace_id:
            return Resolved(f"t:{mapped.trace_id}", f"trace-{mapped.trace_id}", "trace", skip, hashes)
        return Resolved(None, None, None, skip, hashes)

    def _longest(self, hashes: list[bytes], mapped: Mapped) -> tuple[Link | None, int]:
        links = self._links
        for i in range(len(hashes) - 1, -1, -1):
            link = links.get(hashes[i])
            if link is None:
                continue
            if mapped.session_id and link.explicit and link.session != mapped.session_id:
                continue
            if mapped.user_id and link.user and link.user != mapped.user_id:
                continue
            links.move_to_end(hashes[i])
            return link, i + 1
        return None, 0

    def register(self, resolved: Resolved, mapped: Mapped) -> None:
        """Remember a fully published turn so the next one can continue it."""
        if resolved.namespace is None or not resolved.chain or len(mapped.thread) <= mapped.n_input:
            return
        key = resolved.chain[-1]
        self._links[key] = Link(resolved.namespace, resolved.session, bool(mapped.session_id), mapped.user_id)
        self._links.move_to_end(key)
        while len(self._links) > self.max_links:
            self._links.popitem(last=False)

    # -- seen keys ------------------------------------------------------------------------

    def seen(self, app: str, namespace: str, key: str) -> bool:
        keys = self._seen.get((app, namespace))
        return keys is not None and key in keys

    def mark(self, app: str, namespace: str, key: str) -> None:
        scope = (app, namespace)
        keys = self._seen.get(scope)
        if keys is None:
            keys = self._seen[scope] = {}
            if len(self._seen) > self.max_sessions:
                self._seen.popitem(last=False)
                self.evicted_sessions += 1
        else:
            self._seen.move_to_end(scope)
        keys[key] = None
        if len(keys) > self.max_keys:
            del keys[next(iter(keys))]
            self.evicted_keys += 1

    def skipped(self, resolved: Resolved, app: str, draft: Draft) -> bool:
        if 0 <= draft.thread_index < resolved.skip:
            return True
        return resolved.namespace is not None and self.seen(app, resolved.namespace, draft.key)

    # -- tool calls -----------------------------------------------------------------------

    def adopt_call_ids(self, resolved: Resolved, app: str, drafts: list[Draft]) -> None:
        """Give tool executions that carry no call id (OpenLLMetry tool spans, ...) the id of the
        call the model proposed in this session with the same name and arguments, so proposal and
        execution are one tool_call event, and the execution's result is the tool_result."""
        namespace = resolved.namespace
        if namespace is None:
            return
        for draft in drafts:
            if draft.kind != "tool_call":
                continue
            tool = draft.fields["tool"]
            name = str(tool.get("name"))
            args = _args_digest(tool.get("arguments"))
            call_id = tool.get("call_id")
            if call_id:
                for key in ((app, namespace, name, args), (app, namespace, name, "*")):
                    self._calls[key] = call_id
                    self._calls.move_to_end(key)
                while len(self._calls) > self.max_links:
                    self._calls.popitem(last=False)
                continue
            if not draft.key.startswith("span:"):
                continue
            found = self._calls.get((app, namespace, name, args if args != "-" else "*"))
            if found is None:
                continue
            span_key = draft.key.rsplit(":", 1)[0]
            draft.key = f"tc:{found}"
            draft.fields = {**draft.fields, "tool": {**tool, "call_id": found}}
            for other in drafts:
                if other.kind == "tool_result" and other.key == f"{span_key}:result":
                    other.key = f"tr:{found}"
                    other.fields = {**other.fields, "tool": {**other.fields["tool"], "call_id": found}}

    def sizes(self) -> dict[str, int]:
        return {"sessions": len(self._seen), "links": len(self._links)}


def draft_event_id(app: str, resolved: Resolved, draft: Draft, fallback: list[str]) -> str:
    """Deterministic within a session; without any context, unique per request (``fallback``)."""
    if resolved.namespace is not None:
        return event_id(app, resolved.namespace, draft.key)
    if not fallback:
        fallback.append(os.urandom(8).hex())
    return event_id(app, f"x:{fallback[0]}", draft.key)


def _args_digest(arguments: Any) -> str:
    if arguments is None:
        return "-"
    try:
        return orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode()[:2048]
    except (TypeError, orjson.JSONEncodeError):
        return "?"
