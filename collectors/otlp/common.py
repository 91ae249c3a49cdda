"""Building blocks shared by the dialect adapters: attribute access, the fields every event of a
span shares, and the one place where messages, tool executions and retrievals become draft events.

Keys (unique within a session, the basis of deterministic event ids):

- ``sys:<hash>``            system instructions given apart from the messages
- ``m<pos>:<hash>``         the message at position ``pos`` of the conversation (prompt/completion)
- ``tc:<call id>``          a tool call (proposed by the model or executed: the same call, one event)
- ``tr:<call id>``          a tool's result
- ``span:<span id>:<what>`` metadata-only events, tool events without a call id, retrievals
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from schemas import limits

from collectors.otlp.model import (
    STATUS_ERROR,
    Draft,
    LogView,
    Mapped,
    Message,
    Resource,
    SpanView,
    ToolCall,
    ToolResponse,
    Turn,
)

COLLECTOR = "otlp"
_LABEL = limits.MAX_LABEL_VALUE_CHARS

ROLES = {
    "system": "system", "user": "user", "assistant": "assistant", "tool": "tool", "developer": "developer",
    "human": "user", "ai": "assistant", "model": "assistant", "bot": "assistant", "function": "tool",
    "ipython": "tool",
}


@dataclass(slots=True)
class Ctx:
    """What an adapter may know beyond its own record: the app bound to the caller's token, and
    the other spans of the same request (to find the enclosing agent)."""

    app: str | None = None
    spans: dict[str, SpanView] = field(default_factory=dict)

    def ancestors(self, span: SpanView, limit: int = 32) -> Iterator[SpanView]:
        parent = span.parent_span_id
        while parent and limit > 0:
            found = self.spans.get(parent)
            if found is None or found is span:
                return
            yield found
            parent = found.parent_span_id
            limit -= 1


# -- attribute helpers ------------------------------------------------------------------------

def first(attrs: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = attrs.get(name)
        if value is not None and value != "":
            return value
    return None


def text_of(value: Any) -> str | None:
    """A value as text: strings as they are, structures as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return str(value)


def maybe_json(value: Any) -> Any:
    """Attributes that hold JSON in a string (``gen_ai.input.messages``, ``input.value`` ...)."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def as_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    try:
        number = int(float(value))
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def arguments(value: Any) -> dict[str, Any] | None:
    """Tool-call arguments as an object: JSON strings parsed, anything else wrapped as ``value``."""
    if value is None:
        return None
    value = maybe_json(value)
    if isinstance(value, dict):
        return value
    return {"value": value}


def indexed(attrs: dict[str, Any], prefix: str, limit: int = 10_000) -> list[tuple[int, dict[str, Any]]]:
    """Flattened lists (``gen_ai.prompt.0.role``): [(index, {"role": ...}), ...] by index."""
    groups: dict[int, dict[str, Any]] = {}
    size = len(prefix)
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        head, _, rest = key[size:].partition(".")
        if not head.isdigit() or not rest:
            continue
        index = int(head)
        if index >= limit:
            continue
        groups.setdefault(index, {})[rest] = value
    return sorted(groups.items())


def sub(attrs: dict[str, Any], prefix: str) -> dict[str, Any]:
    """{rest: value} of the keys under ``prefix``."""
    size = len(prefix)
    return {key[size:]: value for key, value in attrs.items() if key.startswith(prefix)}


def role_of(value: Any) -> str:
    role = str(value or "user").lower()
    return ROLES.get(role, role)


def clip(text: str, size: int = _LABEL) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def semconv_version(resource: Resource) -> str | None:
    url = resource.schema_url
    if url and "/schemas/" in url:
        return url.rsplit("/", 1)[-1][:32]
    return None


# -- base fields ------------------------------------------------------------------------------

def seconds(ns: int) -> float:
    return ns / 1e9 if ns > 0 else time.time()


def base_fields(resource: Resource, ctx: Ctx, convention: str, *, trace_id: str | None, span_id: str | None,
                parent_span_id: str | None = None) -> dict[str, Any]:
    """Fields every event of one span or log shares. ``app`` is the token's app when the caller
    authenticated (a caller cannot speak for another app); ``service.name`` is kept as a label."""
    rattrs = resource.attrs
    service = rattrs.get("service.name")
    labels: dict[str, str] = {}
    if ctx.app:
        app = ctx.app
        if service and service != app:
            labels["service_name"] = clip(str(service))
    else:
        app = str(service or "unknown_service")
    base: dict[str, Any] = {"app": app, "source": {"collector": COLLECTOR, "convention": convention}}
    env = first(rattrs, "deployment.environment.name", "deployment.environment")
    if env is not None:
        base["env"] = str(env)
    tenant = first(rattrs, "tenant.id", "aiwatch.tenant")
    if tenant is not None:
        base["tenant"] = str(tenant)
    if trace_id:
        base["trace_id"] = trace_id
    if span_id:
        base["span_id"] = span_id
    if parent_span_id:
        base["parent_span_id"] = parent_span_id
    version = semconv_version(resource)
    if version:
        labels["semconv"] = version
    if resource.scope:
        labels["instrumentation"] = clip(resource.scope, 256)
    base["labels"] = labels
    return base


def set_model(base: dict[str, Any], *, provider: Any = None, name: Any = None, served: Any = None,
              address: Any = None, port: Any = None) -> None:
    model = {}
    if provider is not None:
        model["provider"] = str(provider)
    if name is not None:
        model["name"] = str(name)
    if served is not None:
        model["served"] = str(served)
    if address is not None:
        model["endpoint"] = f"{address}:{port}" if port not in (None, "", 0, 443, 80) else str(address)
    if model:
        base["model"] = model


def set_actor(base: dict[str, Any], user_id: Any = None, roles: Any = None) -> str | None:
    actor: dict[str, Any] = {}
    if user_id is not None:
        actor["user_id"] = str(user_id)
    if roles:
        actor["roles"] = [str(r) for r in roles] if isinstance(roles, (list, tuple)) else [str(roles)]
    if actor:
        base["actor"] = actor
    return actor.get("user_id")


def agent_of(span: SpanView, ctx: Ctx, names: tuple[str, ...]) -> str | None:
    """The agent acting in ``span``: its own attribute, else the nearest enclosing agent span's."""
    own = first(span.attrs, *names)
    if own is not None:
        return str(own)
    for parent in ctx.ancestors(span):
        found = first(parent.attrs, *names)
        if found is not None:
            return str(found)
    return None


def usage(*, input_tokens: Any = None, output_tokens: Any = None, span: SpanView | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    value = as_int(input_tokens)
    if value is not None:
        out["input_tokens"] = value
    value = as_int(output_tokens)
    if value is not None:
        out["output_tokens"] = value
    if span is not None and span.end_ns > span.start_ns > 0:
        out["latency_ms"] = round((span.end_ns - span.start_ns) / 1e6, 3)
    return out


def error_of(span: SpanView) -> str | None:
    if span.status_code != STATUS_ERROR:
        return None
    return clip(span.status_message or str(span.attrs.get("error.type") or "error"), _LABEL)


def new_mapped(base: dict[str, Any], convention: str, *, session_id: Any, user_id: str | None,
               trace_id: str | None) -> Mapped:
    return Mapped(base=base, session_id=str(session_id) if session_id is not None else None, user_id=user_id,
                  trace_id=trace_id, convention=convention)


def gen_ai_start(resource: Any, attrs: dict[str, Any], ctx: Ctx, convention: str, *, providers: tuple[str, ...],
                 users: tuple[str, ...], sessions: tuple[str, ...], trace_id: str | None, span_id: str | None,
                 parent: str | None = None) -> Mapped:
    """The common fields of an OTel GenAI span or log (both convention versions): resource, model from
    the ``gen_ai.*`` / ``server.*`` attributes, actor and session; ``providers``, ``users`` and
    ``sessions`` are the attribute names to try, in the version's order."""
    base = base_fields(resource, ctx, convention, trace_id=trace_id, span_id=span_id, parent_span_id=parent)
    set_model(base, provider=first(attrs, *providers), name=attrs.get("gen_ai.request.model"),
              served=attrs.get("gen_ai.response.model"), address=attrs.get("server.address"),
              port=attrs.get("server.port"))
    user = set_actor(base, first(attrs, *users))
    return new_mapped(base, convention, session_id=first(attrs, *sessions), user_id=user, trace_id=trace_id)


def model_call(mapped: Mapped, span: Any, turn: Any, usage: dict[str, Any], labels: dict[str, str]) -> Mapped:
    """A model-call span → one event per message of ``turn``, or, when content capture was off (no
    messages), one metadata event with the usage and labels."""
    if not turn.inputs and not turn.outputs:
        metadata(mapped, span, usage_fields=usage, labels=labels,
                 outputs=error_of(span) is None or "output_tokens" in usage)
        return mapped
    conversation(mapped, turn, TurnTimes(seconds(span.start_ns), seconds(span.end_ns)),
                 usage_fields=usage, output_labels=labels)
    return mapped


# -- conversations ----------------------------------------------------------------------------

@dataclass(slots=True)
class TurnTimes:
    start: float
    end: float


def conversation(mapped: Mapped, turn: Turn, times: TurnTimes, *, usage_fields: dict[str, Any] | None = None,
                 output_labels: dict[str, str] | None = None, to_agent: str | None = None) -> None:
    """The turn's thread of hashes now, and (deferred, see ``Mapped.materialize``) drafts for its
    messages: inputs at ``times.start``, outputs at ``times.end``. ``to_agent``: the inputs are a
    message to that agent."""
    thread = mapped.thread
    offset = len(thread)
    system_digest = turn.system.digest() if turn.system is not None else None
    if system_digest is not None:
        thread.append(system_digest)
    input_digests = [m.digest() for m in turn.inputs]
    thread.extend(input_digests)
    mapped.n_input = len(thread)
    output_digests = [m.digest() for m in turn.outputs]
    thread.extend(output_digests)

    def build(skip: int) -> list[Draft]:
        drafts: list[Draft] = []
        names: dict[str, str] = {}
        for message in turn.inputs:
            for call in message.tool_calls:
                if call.id and call.name:
                    names[call.id] = call.name
        index = offset
        if system_digest is not None:
            if index >= skip:
                kind = "agent_message" if to_agent else "prompt"
                drafts.append(Draft(kind, f"{'a' if to_agent else ''}sys:{system_digest}",
                                    _text_fields(kind, turn.system, times.start, None, to_agent), index))
            index += 1
        for pos, (message, digest) in enumerate(zip(turn.inputs, input_digests)):
            if index >= skip:
                before = len(drafts)
                _message(drafts, message, pos, digest, times.start, names, to_agent=to_agent)
                _index(drafts, before, index)
            index += 1
        n = len(turn.inputs)
        for j, (message, digest) in enumerate(zip(turn.outputs, output_digests)):
            if index >= skip:
                labels = dict(output_labels or {})
                if message.finish_reason:
                    labels["finish_reason"] = clip(str(message.finish_reason), 256)
                before = len(drafts)
                _message(drafts, message, n + j, digest, times.end, names,
                         usage_fields=usage_fields if j == 0 else None, labels=labels)
                _index(drafts, before, index)
            index += 1
        return drafts

    mapped.pending.append(build)


def _index(drafts: list[Draft], start: int, index: int) -> None:
    for k in range(start, len(drafts)):
        drafts[k].thread_index = index


def _text_fields(kind: str, message: Message, ts: float, pos: int | None, to_agent: str | None = None,
                 labels: dict[str, str] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"ts": ts}
    content: dict[str, Any] = {"role": message.role}
    if message.text is not None:
        content["text"] = message.text
    fields["content"] = content
    out_labels = dict(labels) if labels else {}
    if pos is not None:
        out_labels["message_index"] = str(pos)
    if message.name:
        out_labels["participant"] = clip(str(message.name), 256)
    if to_agent:
        out_labels["to_agent"] = clip(to_agent, 256)
    if message.tool_calls:
        out_labels["tool_calls"] = clip(",".join(c.name or "?" for c in message.tool_calls))
    elif message.text is None:
        out_labels["content"] = "not_captured"
    if out_labels:
        fields["labels"] = out_labels
    return fields


def _message(drafts: list[Draft], message: Message, pos: int, digest: str, ts: float, names: dict[str, str], *,
             usage_fields: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
             to_agent: str | None = None) -> None:
    role = message.role
    if message.responses:
        for k, response in enumerate(message.responses):
            key = f"tr:{response.id}" if response.id else f"m{pos}.r{k}:{digest}"
            tool: dict[str, Any] = {"status": "ok"}
            if response.id:
                tool["call_id"] = response.id
                if response.id in names:
                    tool["name"] = names[response.id]
            fields: dict[str, Any] = {"ts": ts, "tool": tool, "labels": {"message_index": str(pos)}}
            if response.text is not None:
                fields["content"] = {"role": "tool", "text": response.text}
            else:
                fields["labels"]["content"] = "not_captured"
            drafts.append(Draft("tool_result", key, fields))
        if message.text is None or role == "tool":
            return
    if role == "assistant":
        fields = _text_fields("completion", message, ts, pos, labels=labels)
        if usage_fields:
            fields["usage"] = usage_fields
        drafts.append(Draft("completion", f"m{pos}:{digest}", fields))
        for k, call in enumerate(message.tool_calls):
            key = f"tc:{call.id}" if call.id else f"m{pos}.c{k}:{digest}"
            tool = {"name": call.name}
            if call.id:
                tool["call_id"] = call.id
            if call.arguments is not None:
                tool["arguments"] = call.arguments
            drafts.append(Draft("tool_call", key, {"ts": ts, "tool": tool, "labels": {"message_index": str(pos)}}))
        return
    if to_agent:  # own key space: the same text as a model prompt elsewhere is a different event
        drafts.append(Draft("agent_message", f"a{pos}:{digest}",
                            _text_fields("agent_message", message, ts, pos, to_agent, labels)))
        return
    drafts.append(Draft("prompt", f"m{pos}:{digest}", _text_fields("prompt", message, ts, pos, None, labels)))


def metadata(mapped: Mapped, span: SpanView, *, usage_fields: dict[str, Any], labels: dict[str, str],
             outputs: bool = True) -> None:
    """A model call whose content was not captured still says who called which model, when, at
    what cost: one prompt and (when the call returned) one completion event without text."""
    key = f"span:{span.span_id}"
    marker = {"content": "not_captured"}
    mapped.drafts.append(Draft("prompt", f"{key}:prompt",
                               {"ts": seconds(span.start_ns), "labels": {**labels, **marker}}))
    if outputs:
        fields: dict[str, Any] = {"ts": seconds(span.end_ns), "labels": {**labels, **marker}}
        if usage_fields:
            fields["usage"] = usage_fields
        mapped.drafts.append(Draft("completion", f"{key}:completion", fields))


def tool_execution(mapped: Mapped, span: SpanView, *, name: Any, call_id: Any, args: Any, result: Any,
                   captured: bool, labels: dict[str, str] | None = None) -> None:
    """An executed tool: one tool_call (at start) and one tool_result (at end, with status)."""
    call_id = str(call_id) if call_id not in (None, "") else None
    name = str(name) if name is not None else span.name
    key = f"tc:{call_id}" if call_id else f"span:{span.span_id}:call"
    tool: dict[str, Any] = {"name": name}
    if call_id:
        tool["call_id"] = call_id
    parsed = arguments(args)
    if parsed is not None:
        tool["arguments"] = parsed
    extra = dict(labels or {})
    if not captured:
        extra["content"] = "not_captured"
    mapped.drafts.append(Draft("tool_call", key, {"ts": seconds(span.start_ns), "tool": tool, "labels": dict(extra)}))
    error = error_of(span)
    result_tool: dict[str, Any] = {"name": name, "status": "error" if error else "ok"}
    if call_id:
        result_tool["call_id"] = call_id
    if error:
        result_tool["error"] = error
    fields: dict[str, Any] = {"ts": seconds(span.end_ns), "tool": result_tool, "labels": dict(extra)}
    if result is not None:
        fields["content"] = {"role": "tool", "text": text_of(result)}
    if span.end_ns > span.start_ns > 0:
        fields["usage"] = {"latency_ms": round((span.end_ns - span.start_ns) / 1e6, 3)}
    mapped.drafts.append(Draft("tool_result", f"tr:{call_id}" if call_id else f"span:{span.span_id}:result", fields))


def retrieval(mapped: Mapped, span: SpanView, *, source: Any, documents: list[dict[str, Any]], query: Any,
              labels: dict[str, str] | None = None) -> None:
    out_labels = dict(labels or {})
    if query is not None:
        out_labels["query"] = clip(text_of(query) or "")
    if len(documents) > limits.MAX_DOCUMENTS:
        out_labels["documents_total"] = str(len(documents))
        documents = documents[: limits.MAX_DOCUMENTS]
    fields: dict[str, Any] = {"ts": seconds(span.end_ns or span.start_ns),
                              "retrieval": {"source": str(source or span.name), "documents": documents}}
    if out_labels:
        fields["labels"] = out_labels
    mapped.drafts.append(Draft("retrieval", f"span:{span.span_id}:retrieval", fields))


def document(raw: Any) -> dict[str, Any]:
    """A retrieved document in any dialect's shape → {id, score, text, classification}."""
    if isinstance(raw, str):
        return {"text": raw}
    if not isinstance(raw, dict):
        return {"text": text_of(raw)}
    doc: dict[str, Any] = {}
    doc_id = first(raw, "id", "document.id", "doc_id")
    if doc_id is not None:
        doc["id"] = str(doc_id)
    score = first(raw, "score", "document.score", "relevance_score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        doc["score"] = float(score)
    elif isinstance(score, str):
        try:
            doc["score"] = float(score)
        except ValueError:
            pass
    text = first(raw, "content", "document.content", "text", "page_content")
    if text is not None:
        doc["text"] = text_of(text)
    meta = first(raw, "metadata", "document.metadata")
    meta = maybe_json(meta)
    if isinstance(meta, dict):
        classification = first(meta, "classification", "data_class", "sensitivity")
        if classification is not None:
            doc["classification"] = str(classification)
    return doc


def log_time(log: LogView) -> float:
    return seconds(log.time_ns)


# -- message parts of the OTel GenAI JSON schema (>= 1.37), also used by other dialects -------

def parts_message(raw: Any, *, output: bool = False) -> Message | None:
    """One message of ``gen_ai.input.messages``/``gen_ai.output.messages`` (role + parts)."""
    if not isinstance(raw, dict):
        return None
    role = raw.get("role")
    message = Message(ROLES.get(role, role) if isinstance(role, str) and role in ROLES else role_of(role),
                      name=raw.get("name"))
    texts: list[str] = []
    parts = raw.get("parts")
    if parts is None and "content" in raw:  # tolerate the flat {role, content} shape
        parts = [{"type": "text", "content": raw.get("content")}]
    for part in parts if isinstance(parts, (list, tuple)) else ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            value = part.get("content")
            if value is not None:
                texts.append(value if isinstance(value, str) else text_of(value) or "")
        elif kind == "tool_call":
            message.tool_calls.append(ToolCall(_str(part.get("id")), _str(part.get("name")),
                                               arguments(part.get("arguments"))))
        elif kind == "tool_call_response":
            result = part.get("response", part.get("result"))
            message.responses.append(ToolResponse(_str(part.get("id")), text_of(result)))
        elif kind == "reasoning":
            continue  # model reasoning is not a message of the conversation
        elif "content" in part:  # blob/uri/file parts carry no text we can inspect
            value = part.get("content")
            if isinstance(value, str) and kind in (None, "", "input_text", "output_text"):
                texts.append(value)
    if texts:
        message.text = texts[0] if len(texts) == 1 else "\n".join(texts)
    if output:
        message.finish_reason = _str(raw.get("finish_reason"))
    return message


def parts_messages(value: Any, *, output: bool = False) -> list[Message]:
    value = maybe_json(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    out = []
    for raw in value:
        message = parts_message(raw, output=output)
        if message is not None:
            out.append(message)
    return out


def system_message(value: Any) -> Message | None:
    """``gen_ai.system_instructions``: a list of parts (or a plain string)."""
    value = maybe_json(value)
    if value is None:
        return None
    if isinstance(value, str):
        return Message("system", value)
    if isinstance(value, dict):
        value = [value]
    texts = [text_of(p.get("content")) or "" for p in value if isinstance(p, dict) and p.get("content") is not None] \
        if isinstance(value, (list, tuple)) else []
    return Message("system", "\n".join(texts)) if texts else None


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
