"""From decoded OTLP records to published events: dialect detection, adaptation, the join of a
model call's metadata (span) with its content (log events), session resolution, dedup, publish.

Transport-free: the HTTP server (``collectors.otlp.server``) decodes and authenticates, then calls
:meth:`Receiver.spans` / :meth:`Receiver.logs`. The sink is anything with ``offer(event) -> bool``
— the SDK's :class:`collectors.publisher.Publisher` in production (non-blocking, spools to disk
while Kafka is down). ``offer`` returning False means the queue is full: the request is answered
503 (the exporter retries), and since a message key is only marked as published once its event
was accepted, the retry publishes exactly what was missing.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from schemas.event import EVENT_SCHEMA

from collectors.otlp.common import Ctx
from collectors.otlp.dialects import REGISTRY, detect_log, detect_span
from collectors.otlp.model import Draft, LogView, Mapped, SpanView
from collectors.otlp.sessions import Conversations, Resolved, draft_event_id
from collectors.otlp.settings import OtlpSettings

log = logging.getLogger("aiwatch.otlp")

_ACTIVE_SECONDS = 600.0   # an app that sent joinable spans/logs this recently is expected to send more


class Sink(Protocol):
    def offer(self, item: Any) -> bool: ...


class Busy(Exception):
    """The sink refused an event (queue full): answer 503, the exporter retries."""


@dataclass(slots=True)
class _Waiting:
    mapped: Mapped
    deadline: float
    dialect: str


class Receiver:
    def __init__(self, sink: Sink, settings: OtlpSettings | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or OtlpSettings()
        self.sink = sink
        self.conversations = Conversations(max_sessions=self.settings.max_sessions,
                                           max_keys=self.settings.max_keys_per_session,
                                           max_links=self.settings.max_links)
        self.counts: collections.Counter[str] = collections.Counter()
        self._clock = clock
        self._waiting: collections.OrderedDict[tuple[str, str, str], _Waiting] = collections.OrderedDict()
        # model calls already published, by (app, trace, span): "span", or "content:<in><out>"
        # (which halves of the conversation the content had) when its logs went out alone
        self._done: collections.OrderedDict[tuple[str, str, str], str] = collections.OrderedDict()
        self._sends_spans: dict[str, float] = {}
        self._sends_logs: dict[str, float] = {}

    # -- entry points ---------------------------------------------------------------------

    def spans(self, views: list[SpanView], app: str | None = None) -> None:
        """Map and publish the spans of one request. Raises :class:`Busy` when the sink is full."""
        ctx = Ctx(app=app, spans={v.span_id: v for v in views if v.span_id})
        self.counts["spans_received"] += len(views)
        for span in sorted(views, key=lambda v: v.start_ns):
            dialect = detect_span(span.attrs)
            if dialect is None:
                self.counts["spans_ignored"] += 1
                continue
            self.counts["spans_genai"] += 1
            self.counts[f"spans_{dialect}"] += 1
            try:
                mapped = REGISTRY[dialect].to_events(span, ctx)
            except Exception:  # noqa: BLE001 - one odd span must not fail the others
                self.counts["map_errors"] += 1
                log.exception("aiwatch OTLP: could not map a %s span %r (skipped, counted)", dialect, span.name[:80])
                continue
            if mapped is None:
                continue
            self._route(mapped, dialect, is_span=True)

    def logs(self, views: list[LogView], app: str | None = None) -> None:
        """Map and publish the log records of one request (GenAI events; others are ignored)."""
        ctx = Ctx(app=app)
        self.counts["logs_received"] += len(views)
        groups: dict[tuple[str, Any, Any], list[LogView]] = {}
        for record in views:
            dialect = detect_log(record.event_name)
            if dialect is None:
                self.counts["logs_ignored"] += 1
                continue
            self.counts["logs_genai"] += 1
            if dialect == "otel_legacy" and record.span_id:
                groups.setdefault((dialect, record.trace_id, record.span_id), []).append(record)
            else:  # one record is one unit (inference details; legacy events without a span)
                groups[(dialect, id(record), None)] = [record]
        for (dialect, _, _), records in groups.items():
            try:
                mapped = REGISTRY[dialect].to_events(records if dialect == "otel_legacy" else records[0], ctx)
            except Exception:  # noqa: BLE001
                self.counts["map_errors"] += 1
                log.exception("aiwatch OTLP: could not map %s log events (skipped, counted)", dialect)
                continue
            if mapped is not None:
                self._route(mapped, dialect, is_span=False)

    def expire(self, *, everything: bool = False) -> None:
        """Publish model calls whose other half did not come in time (or all, at shutdown)."""
        now = self._clock()
        while self._waiting:
            key, waiting = next(iter(self._waiting.items()))
            if not everything and waiting.deadline > now:
                break
            self._publish(waiting.mapped)          # may raise Busy: the entry stays, retried next time
            del self._waiting[key]
            self.counts["joins_expired"] += 1
            self._finish(key, waiting.mapped)

    def stats(self) -> dict[str, int]:
        out = dict(self.counts)
        out["joins_waiting"] = len(self._waiting)
        out.update(self.conversations.sizes())
        return out

    # -- join of metadata and content -----------------------------------------------------

    def _route(self, mapped: Mapped, dialect: str, *, is_span: bool) -> None:
        app = mapped.base["app"]
        now = self._clock()
        seen = self._sends_spans if is_span else self._sends_logs
        seen[app] = now
        if len(seen) > 10_000:  # apps are few; without tokens, service names are caller-chosen
            del seen[min(seen, key=seen.__getitem__)]
        span_id = mapped.base.get("span_id")
        key = (app, mapped.trace_id or "", span_id or "")
        window = self.settings.join_seconds
        if mapped.join is None or not span_id or window <= 0:
            self._publish(self._unjoined(key, mapped) if span_id else mapped)
            if span_id:
                self._finish(key, mapped)
            if is_span and span_id:
                other = self._waiting.pop(key, None)  # content logged for a span that carried it too
                if other is not None:
                    self._publish(other.mapped)
            return
        waiting = self._waiting.get(key)
        if waiting is not None and waiting.mapped.join != mapped.join:
            content, meta = (mapped, waiting.mapped) if mapped.join == "content" else (waiting.mapped, mapped)
            self._publish(merge(content, meta))
            del self._waiting[key]
            self.counts["joins_matched"] += 1
            self._finish(key, meta)
            return
        partner_active = (self._sends_logs if mapped.join == "span" else self._sends_spans).get(app)
        if key in self._done or waiting is not None or partner_active is None \
                or now - partner_active > _ACTIVE_SECONDS:
            # the other half already went, this half came twice (logs of one call split over two
            # requests), or this app does not send the other half: nothing to wait for
            self._publish(self._unjoined(key, mapped))
            self._finish(key, mapped)
            return
        self._waiting[key] = _Waiting(mapped, now + window, dialect)
        while len(self._waiting) > self.settings.join_max:
            old_key, old = self._waiting.popitem(last=False)
            old.mapped.materialize()
            self.counts["joins_overflow"] += 1
            try:
                self._publish(old.mapped)
            except Busy:
                self.counts["dropped"] += len(old.mapped.drafts)
                log.warning("aiwatch OTLP: join buffer full while Kafka publishing is saturated; "
                            "%d event(s) dropped (counted)", len(old.mapped.drafts))
            self._finish(old_key, old.mapped)

    def _unjoined(self, key: tuple[str, str, str], mapped: Mapped) -> Mapped:
        """A metadata-only span whose content already went out alone: only what the content lacked."""
        done = self._done.get(key)
        if mapped.join != "span" or done is None or not done.startswith("content:"):
            return mapped
        had_inputs, had_outputs = done[-2] == "1", done[-1] == "1"
        kept = [d for d in mapped.drafts
                if not ((d.key.endswith(":prompt") and had_inputs) or (d.key.endswith(":completion") and had_outputs))]
        self.counts["events_joined_late"] += len(mapped.drafts) - len(kept)
        return Mapped(base=mapped.base, drafts=kept, session_id=mapped.session_id, user_id=mapped.user_id,
                      trace_id=mapped.trace_id, convention=mapped.convention)

    def _finish(self, key: tuple[str, str, str], mapped: Mapped) -> None:
        if mapped.join == "content" and self._done.get(key) != "span":
            self._done[key] = f"content:{int(mapped.n_input > 0)}{int(len(mapped.thread) > mapped.n_input)}"
        else:
            self._done[key] = "span"
        self._done.move_to_end(key)
        if len(self._done) > 100_000:
            self._done.popitem(last=False)

    # -- publishing -----------------------------------------------------------------------

    def _publish(self, mapped: Mapped) -> None:
        conversations = self.conversations
        resolved = conversations.resolve(mapped)
        if resolved.skip:
            self.counts["messages_repeated"] += resolved.skip  # history already published by earlier turns
        mapped.materialize(resolved.skip)
        base = mapped.base
        app = base["app"]
        fallback: list[str] = []
        offer = self.sink.offer
        conversations.adopt_call_ids(resolved, app, mapped.drafts)
        for draft in mapped.drafts:
            if conversations.skipped(resolved, app, draft):
                self.counts["events_deduplicated"] += 1
                continue
            event = build_event(base, draft, resolved, draft_event_id(app, resolved, draft, fallback))
            if not offer(event):
                self.counts["events_refused"] += 1
                raise Busy("the event queue is full")
            self.counts["events_published"] += 1
            self.counts[f"events_{draft.kind}"] += 1
            if resolved.namespace is not None:
                conversations.mark(app, resolved.namespace, draft.key)
        conversations.register(resolved, mapped)


def build_event(base: dict[str, Any], draft: Draft, resolved: Resolved, event_id: str) -> dict[str, Any]:
    event = {"schema": EVENT_SCHEMA, "event_id": event_id, "kind": draft.kind}
    event.update(base)
    fields = draft.fields
    labels = fields.get("labels")
    event.update(fields)
    merged = dict(base["labels"])
    if labels:
        merged.update(labels)
    if resolved.session is not None:
        event["session_id"] = resolved.session
        if resolved.inferred:
            merged["session_inferred"] = resolved.inferred
    if merged:
        event["labels"] = merged
    else:
        event.pop("labels", None)
    return event


def merge(content: Mapped, meta: Mapped) -> Mapped:
    """One model call from its content (log events) and its metadata-only span: the content's
    messages, with the span's identity, model, usage and timing; the span's metadata events only
    for what the content lacks."""
    content.materialize()
    meta.materialize()
    base = dict(meta.base)
    labels = dict(content.base.get("labels", {}))
    labels.update(meta.base.get("labels", {}))
    base["labels"] = labels
    for name in ("agent", "actor", "env", "tenant"):
        if name not in base and name in content.base:
            base[name] = content.base[name]
    model = dict(content.base.get("model") or {})
    model.update(meta.base.get("model") or {})
    if model:
        base["model"] = model
    out = Mapped(base=base, session_id=meta.session_id or content.session_id,
                 user_id=meta.user_id or content.user_id, trace_id=meta.trace_id or content.trace_id,
                 thread=content.thread, n_input=content.n_input, convention=content.convention)
    has_inputs = content.n_input > 0
    has_outputs = len(content.thread) > content.n_input
    meta_prompt = next((d for d in meta.drafts if d.key.endswith(":prompt")), None)
    meta_completion = next((d for d in meta.drafts if d.key.endswith(":completion")), None)
    if not has_inputs and meta_prompt is not None:
        out.drafts.append(meta_prompt)
    first_output = True
    for draft in content.drafts:
        if first_output and draft.kind == "completion" and draft.thread_index >= content.n_input \
                and meta_completion is not None:
            first_output = False
            fields = dict(draft.fields)
            usage = meta_completion.fields.get("usage")
            if usage:
                fields["usage"] = {**usage, **(fields.get("usage") or {})}
            span_labels = {k: v for k, v in meta_completion.fields.get("labels", {}).items() if k != "content"}
            fields["labels"] = {**span_labels, **fields.get("labels", {})}
            draft = Draft(draft.kind, draft.key, fields, draft.thread_index)
        out.drafts.append(draft)
    if not has_outputs and meta_completion is not None:
        out.drafts.append(meta_completion)
    return out

