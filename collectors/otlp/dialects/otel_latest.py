"""OTel GenAI semantic conventions >= 1.37 (``gen_ai_latest_experimental``).

Spans: ``gen_ai.operation.name`` with ``gen_ai.provider.name``; opt-in content as
``gen_ai.input.messages`` / ``gen_ai.output.messages`` (JSON string or structured, role + parts)
and ``gen_ai.system_instructions``; tools ``gen_ai.tool.{name,call.id,call.arguments,call.result}``;
retrieval ``gen_ai.retrieval.{documents,query.text}``. Content may instead arrive as the log event
``gen_ai.client.inference.operation.details`` carrying the same attributes.
"""

from __future__ import annotations

from typing import Any

from collectors.otlp import common as c
from collectors.otlp.model import SPAN_KIND_CLIENT, LogView, Mapped, SpanView, Turn

CONVENTION = "otel-genai-1.37"
INFERENCE_EVENT = "gen_ai.client.inference.operation.details"
MODEL_OPERATIONS = frozenset({"chat", "generate_content", "text_completion"})
AGENT_NAME = ("gen_ai.agent.name", "gen_ai.agent.id")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
SESSION = ("gen_ai.conversation.id", "session.id")
USER = ("user.id", "enduser.id", "gen_ai.user.id")


def to_events(record: SpanView | LogView, ctx: c.Ctx) -> Mapped | None:
    if isinstance(record, LogView):
        return _inference_log(record, ctx)
    return _span(record, ctx)


def _start(resource: Any, attrs: dict[str, Any], ctx: c.Ctx, *, trace_id: str | None, span_id: str | None,
           parent: str | None = None) -> Mapped:
    return c.gen_ai_start(resource, attrs, ctx, CONVENTION, providers=PROVIDER, users=USER, sessions=SESSION,
                          trace_id=trace_id, span_id=span_id, parent=parent)


def _call_labels(attrs: dict[str, Any]) -> dict[str, str]:
    labels = {"operation": str(attrs.get("gen_ai.operation.name") or "chat")}
    response_id = attrs.get("gen_ai.response.id")
    if response_id:
        labels["response_id"] = c.clip(str(response_id), 256)
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if reasons:
        labels["finish_reasons"] = c.clip(",".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons))
    error = attrs.get("error.type")
    if error:
        labels["error_type"] = c.clip(str(error), 256)
    return labels


def _turn(attrs: dict[str, Any]) -> Turn:
    return Turn(inputs=c.parts_messages(attrs.get("gen_ai.input.messages")),
                outputs=c.parts_messages(attrs.get("gen_ai.output.messages"), output=True),
                system=c.system_message(attrs.get("gen_ai.system_instructions")))


def _span(span: SpanView, ctx: c.Ctx) -> Mapped | None:
    attrs = span.attrs
    operation = attrs.get("gen_ai.operation.name")
    mapped = _start(span.resource, attrs, ctx, trace_id=span.trace_id, span_id=span.span_id,
                    parent=span.parent_span_id)
    agent = c.agent_of(span, ctx, AGENT_NAME)
    if operation == "execute_tool":
        if agent:
            mapped.base["agent"] = agent
        tool_type = attrs.get("gen_ai.tool.type")
        captured = "gen_ai.tool.call.arguments" in attrs or "gen_ai.tool.call.result" in attrs
        c.tool_execution(mapped, span, name=attrs.get("gen_ai.tool.name"), call_id=attrs.get("gen_ai.tool.call.id"),
                         args=attrs.get("gen_ai.tool.call.arguments"), result=attrs.get("gen_ai.tool.call.result"),
                         captured=captured, labels={"tool_type": str(tool_type)} if tool_type else None)
        return mapped
    if operation == "retrieval":
        if agent:
            mapped.base["agent"] = agent
        raw = c.maybe_json(attrs.get("gen_ai.retrieval.documents"))
        documents = [c.document(d) for d in raw] if isinstance(raw, list) else []
        c.retrieval(mapped, span, source=c.first(attrs, "gen_ai.data_source.id", "server.address"),
                    documents=documents, query=attrs.get("gen_ai.retrieval.query.text"))
        return mapped
    if operation == "invoke_agent":
        return _agent(span, ctx, mapped)
    if operation not in MODEL_OPERATIONS and not ("gen_ai.input.messages" in attrs or "gen_ai.output.messages" in attrs):
        return None  # embeddings, create_agent, invoke_workflow: no event of their own
    if agent:
        mapped.base["agent"] = agent
    turn = _turn(attrs)
    usage = c.usage(input_tokens=attrs.get("gen_ai.usage.input_tokens"),
                    output_tokens=attrs.get("gen_ai.usage.output_tokens"), span=span)
    labels = _call_labels(attrs)
    if not turn.inputs and not turn.outputs and turn.system is None:
        c.metadata(mapped, span, usage_fields=usage, labels=labels,
                   outputs=c.error_of(span) is None or "output_tokens" in usage)
        mapped.join = "span"  # content may follow as an inference-details log
        return mapped
    c.conversation(mapped, turn, c.TurnTimes(c.seconds(span.start_ns), c.seconds(span.end_ns)),
                   usage_fields=usage, output_labels=labels)
    return mapped


def _agent(span: SpanView, ctx: c.Ctx, mapped: Mapped) -> Mapped | None:
    """An agent invocation. Its messages are the same the model spans under it carry, so only a
    call *into another agent* (a remote agent: CLIENT span, or an agent inside an agent) makes
    events: the input is an agent_message to that agent, the answer one back to the caller."""
    attrs = span.attrs
    name = c.first(attrs, *AGENT_NAME)
    caller = None
    for parent in ctx.ancestors(span):
        if parent.attrs.get("gen_ai.operation.name") == "invoke_agent":
            caller = c.first(parent.attrs, *AGENT_NAME)
            break
    if span.kind != SPAN_KIND_CLIENT and caller is None:
        return None
    turn = _turn(attrs)
    if not turn.inputs and not turn.outputs:
        return None
    target = str(name or span.name)
    if caller:
        mapped.base["agent"] = str(caller)
    times = c.TurnTimes(c.seconds(span.start_ns), c.seconds(span.end_ns))
    c.conversation(mapped, Turn(inputs=turn.inputs, system=turn.system), times, to_agent=target)
    if turn.outputs:
        reply = c.new_mapped({**mapped.base, "agent": target}, CONVENTION, session_id=mapped.session_id,
                             user_id=mapped.user_id, trace_id=mapped.trace_id)
        for message in turn.outputs:
            message.role = "user"  # the answer is input to the caller, not a completion of its model
        c.conversation(reply, Turn(inputs=turn.outputs), c.TurnTimes(times.end, times.end),
                       to_agent=str(caller) if caller else "caller")
        reply.materialize()
        for draft in reply.drafts:
            draft.key = f"reply:{span.span_id}:{draft.key}"
            draft.thread_index = -1  # not part of the caller's thread
            draft.fields["agent"] = target
            mapped.drafts.append(draft)
    return mapped


def _inference_log(log: LogView, ctx: c.Ctx) -> Mapped | None:
    """``gen_ai.client.inference.operation.details``: content only. Metadata and usage come from
    the span (the log repeats them), so a log without content makes no event."""
    attrs = log.attrs
    body = log.body if isinstance(log.body, dict) else {}
    merged = {**body, **attrs} if body else attrs
    turn = _turn(merged)
    if not turn.inputs and not turn.outputs and turn.system is None:
        return None
    mapped = _start(log.resource, merged, ctx, trace_id=log.trace_id, span_id=log.span_id)
    agent = c.first(merged, *AGENT_NAME)
    if agent:
        mapped.base["agent"] = str(agent)
    ts = c.log_time(log)
    usage = c.usage(input_tokens=merged.get("gen_ai.usage.input_tokens"),
                    output_tokens=merged.get("gen_ai.usage.output_tokens"))
    c.conversation(mapped, turn, c.TurnTimes(ts, ts), usage_fields=usage or None, output_labels=_call_labels(merged))
    mapped.join = "content"  # waits briefly for its span's usage and timing
    return mapped
