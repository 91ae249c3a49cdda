"""The Python SDK: record what an LLM application did, out of band, in microseconds.

    from collectors.sdk import Monitor

    monitor = Monitor(app="billing-bot", env="prod")
    with monitor.session(user_id="u-42", roles=["support"], agent="triage"):
        monitor.prompt(user_text, model="gpt-4o")
        ...
        monitor.completion(answer, model="gpt-4o", usage={"input_tokens": 812, "output_tokens": 95})

    @monitor.tool                      # or @monitor.tool(name="refund")
    def refund(order_id: str, amount: float) -> str: ...

Each call builds a plain Event v1 dict and hands it to a background publisher (see
``collectors.publisher``); serialization, bounding to the schema limits and Kafka I/O happen on
that thread. No public method ever raises into the host application: failures are counted in
``stats()["errors"]`` and logged on the ``aiwatch.sdk`` logger.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar, overload

from schemas import limits
from schemas.event import EVENT_SCHEMA
from schemas.settings import Settings

from collectors import context, tools
from collectors.encode import encode_event
from collectors.publisher import Publisher, Tuning

log = logging.getLogger("aiwatch.sdk")

F = TypeVar("F", bound=Callable[..., Any])
ModelSpec = str | Mapping[str, Any] | None

_MAX_TEXT = limits.MAX_TEXT_CHARS
_current_session = context.current


class Monitor:
    """Records events of one application. Create one per process and keep it; ``close()`` at the end
    (also done at interpreter exit) delivers or spools what is pending."""

    def __init__(
        self,
        app: str,
        *,
        env: str | None = None,
        tenant: str | None = None,
        settings: Settings | None = None,
        topic: str | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.app = app
        self._base: dict[str, Any] = {"schema": EVENT_SCHEMA, "app": app, "source": {"collector": "sdk"}}
        if env is not None:
            self._base["env"] = env
        if tenant is not None:
            self._base["tenant"] = tenant
        try:
            self.settings = settings or Settings()
            encode = partial(encode_event, max_bytes=self.settings.max_event_bytes)
            self._publisher: Publisher | _Disabled = Publisher(
                self.settings, encode, topic=topic, tuning=tuning, client_id=f"aiwatch-sdk-{app}"[:200])
        except Exception:  # noqa: BLE001 - a misconfigured monitor must not take the application down
            log.exception("aiwatch SDK disabled: could not start the publisher (events are counted as dropped)")
            self._publisher = _Disabled()

    # -- context --------------------------------------------------------------------------

    def session(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        roles: Iterable[str] | None = None,
        agent: str | None = None,
        on_behalf_of: str | None = None,
        service_account: str | None = None,
        tenant: str | None = None,
        labels: Mapping[str, Any] | None = None,
    ) -> context.SessionScope:
        """``with``/``async with`` block stamping identity on every event recorded inside it.

        Nested sessions inherit what they do not set; a missing ``session_id`` is generated.
        """
        try:
            session = context.open_session(
                session_id=session_id, user_id=user_id, roles=roles, agent=agent, on_behalf_of=on_behalf_of,
                service_account=service_account, tenant=tenant, labels=labels)
        except Exception:  # noqa: BLE001
            self._publisher.count_error()
            log.exception("aiwatch SDK: invalid session arguments; using an anonymous session")
            session = context.open_session()
        return context.SessionScope(session)

    @staticmethod
    def wrap(fn: F) -> F:
        """Carry the current session into ``fn`` when it runs in another thread or an executor."""
        return context.propagate(fn)

    # -- recording ------------------------------------------------------------------------

    def _emit(self, kind: str, fields: dict[str, Any], labels: Mapping[str, Any] | None,
              event_id: str | None = None) -> str:
        """The hot path: a dict built from precomputed parts and one append."""
        event = self._base.copy()
        event_id = event_id or os.urandom(16).hex()
        event["event_id"] = event_id
        event["ts"] = time.time()  # epoch seconds; RFC 3339 text is produced on the publisher thread
        event["kind"] = kind
        session = _current_session()
        if session is not None:
            event.update(session.fields)
            if session.labels:
                labels = {**session.labels, **labels} if labels else session.labels
        event.update(fields)
        if labels:
            event["labels"] = dict(labels)
        self._publisher.offer(event)
        return event_id

    def prompt(self, text: Any, *, role: str = "user", model: ModelSpec = None,
               labels: Mapping[str, Any] | None = None) -> str | None:
        """A prompt sent to a model (``role``: user, system, developer, tool). Returns the event id."""
        try:
            fields: dict[str, Any] = {"content": _content(text, role)}
            if model is not None:
                fields["model"] = _model(model)
            return self._emit("prompt", fields, labels)
        except Exception:  # noqa: BLE001
            return self._failed("prompt")

    def completion(self, text: Any, *, model: ModelSpec = None, usage: Mapping[str, Any] | None = None,
                   labels: Mapping[str, Any] | None = None) -> str | None:
        """A model's answer; ``usage`` takes input_tokens, output_tokens, cost_usd, latency_ms."""
        try:
            fields: dict[str, Any] = {"content": _content(text, "assistant")}
            if model is not None:
                fields["model"] = _model(model)
            if usage:
                fields["usage"] = dict(usage)
            return self._emit("completion", fields, labels)
        except Exception:  # noqa: BLE001
            return self._failed("completion")

    def tool_call(self, name: str, arguments: Any = None, *, call_id: str | None = None,
                  destination: str | None = None, labels: Mapping[str, Any] | None = None) -> str | None:
        """A tool invocation chosen by the model/agent. Returns the call id (the event id when not given)."""
        try:
            event_id = os.urandom(16).hex()
            call_id = call_id or event_id
            tool: dict[str, Any] = {"name": name, "call_id": call_id,
                                    "arguments": dict(arguments) if isinstance(arguments, Mapping)
                                    else ({} if arguments is None else {"value": arguments})}
            if destination is not None:
                tool["destination"] = destination
            self._emit("tool_call", {"tool": tool}, labels, event_id)
            return call_id
        except Exception:  # noqa: BLE001
            return self._failed("tool_call")

    def tool_result(self, name: str, call_id: str | None, text: Any = None, *, status: str = "ok",
                    error: str | None = None, latency_ms: float | None = None,
                    labels: Mapping[str, Any] | None = None) -> str | None:
        """What a tool returned (``text``) or how it failed (``status="error"``, ``error``)."""
        try:
            tool: dict[str, Any] = {"name": name, "status": status}
            if call_id is not None:
                tool["call_id"] = call_id
            if error is not None:
                tool["error"] = error
            fields: dict[str, Any] = {"tool": tool}
            if text is not None:
                fields["content"] = _content(text, "tool", tool)
            if latency_ms is not None:
                fields["usage"] = {"latency_ms": latency_ms}
            return self._emit("tool_result", fields, labels)
        except Exception:  # noqa: BLE001
            return self._failed("tool_result")

    def retrieval(self, source: str, documents: Iterable[Any], *,
                  labels: Mapping[str, Any] | None = None) -> str | None:
        """Context retrieved for the model (RAG): documents as strings or {id, score, classification, text}."""
        try:
            docs = documents if isinstance(documents, list) else list(documents)
            if len(docs) > limits.MAX_DOCUMENTS:
                labels = {**(labels or {}), "documents_total": str(len(docs))}
            return self._emit("retrieval", {"retrieval": {"source": source, "documents": docs[:limits.MAX_DOCUMENTS]}},
                              labels)
        except Exception:  # noqa: BLE001
            return self._failed("retrieval")

    def agent_message(self, text: Any, *, to_agent: str, labels: Mapping[str, Any] | None = None) -> str | None:
        """A message from the current agent to another agent (``labels.to_agent``)."""
        try:
            return self._emit("agent_message", {"content": _content(text, "assistant")},
                              {**(labels or {}), "to_agent": to_agent})
        except Exception:  # noqa: BLE001
            return self._failed("agent_message")

    @overload
    def tool(self, fn: F) -> F: ...

    @overload
    def tool(self, fn: None = None, *, name: str | None = None) -> Callable[[F], F]: ...

    def tool(self, fn: Any = None, *, name: str | None = None) -> Any:
        """Decorator for tool functions (sync or async): records the call and its result or error."""
        if fn is None:
            return lambda f: self.tool(f, name=name)
        try:
            return tools.decorate(self, fn, name)
        except Exception:  # noqa: BLE001 - an undecoratable tool still has to work
            self._failed("tool decorator")
            return fn

    def _failed(self, what: str) -> None:
        self._publisher.count_error()
        log.debug("aiwatch SDK: recording %s failed", what, exc_info=True)
        return None

    # -- delivery -------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything recorded so far is acknowledged by Kafka; False on timeout (e.g. while
        the broker is down — the events then stay spooled). Never raises."""
        try:
            return self._publisher.flush(timeout)
        except Exception:  # noqa: BLE001
            self._publisher.count_error()
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Deliver pending events (up to ``timeout``), spool the rest for the next start. Never raises."""
        try:
            self._publisher.close(timeout)
        except Exception:  # noqa: BLE001
            log.exception("aiwatch SDK: close failed")

    def stats(self) -> dict[str, int]:
        """Counters: sent, spooled, dropped, errors; gauges: queued, inflight, spool_records, spool_bytes."""
        try:
            return self._publisher.stats()
        except Exception:  # noqa: BLE001
            return {}

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _content(text: Any, role: str, tool: dict[str, Any] | None = None) -> dict[str, Any]:
    """Content part. Texts over the limit are cut here, on the application thread, so a queued event
    never holds more than the limit; ``sha256`` (and a tool's ``result_bytes``) describe the whole text."""
    if type(text) is not str:
        text = text.decode("utf-8", "replace") if isinstance(text, (bytes, bytearray)) else tools.result_text(text)
    if len(text) <= _MAX_TEXT:
        return {"role": role, "text": text}
    encoded = text.encode("utf-8", "surrogatepass")
    if tool is not None:
        tool["result_bytes"] = len(encoded)
    return {"role": role, "text": text[:_MAX_TEXT], "truncated": True, "sha256": hashlib.sha256(encoded).hexdigest()}


def _model(model: ModelSpec) -> dict[str, Any]:
    return {"name": model} if isinstance(model, str) else dict(model or {})


class _Disabled:
    """Stands in for the publisher when it could not start: counts, never raises."""

    def __init__(self) -> None:
        self.dropped = self.errors = 0

    def offer(self, item: Any) -> bool:
        self.dropped += 1
        return False

    def count_error(self) -> None:
        self.errors += 1

    def stats(self) -> dict[str, int]:
        return {"sent": 0, "spooled": 0, "dropped": self.dropped, "errors": self.errors, "queued": 0,
                "inflight": 0, "spool_records": 0, "spool_bytes": 0}

    def flush(self, timeout: float = 0) -> bool:
        return False

    def close(self, timeout: float = 0) -> None:
        return None
