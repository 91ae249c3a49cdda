"""OTel GenAI semantic conventions <= 1.36 (what instrumentations emit without
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``).

Spans carry ``gen_ai.system`` (not ``gen_ai.provider.name``), the request/response model, usage
(``gen_ai.usage.{input,output}_tokens``, or ``{prompt,completion}_tokens`` before 1.27) and no
content. Content comes as one log event per message — ``gen_ai.system.message``,
``gen_ai.user.message``, ``gen_ai.assistant.message`` (``tool_calls``), ``gen_ai.tool.message``
(``id``) and ``gen_ai.choice`` (``index``, ``finish_reason``, ``message``) — in order, on the
call's span context; up to 1.26 it could also come as span events ``gen_ai.content.prompt`` /
``gen_ai.content.completion`` with a JSON ``gen_ai.prompt`` / ``gen_ai.completion`` attribute.
"""

from __future__ import annotations

from typing import Any

from collectors.otlp import common as c
from collectors.otlp.model import LogView, Mapped, Message, SpanView, ToolCall, ToolResponse, Turn

CONVENTION = "otel-genai-1.36"
MESSAGE_EVENTS = frozenset({"gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message",
                            "gen_ai.tool.message", "gen_ai.choice"})
MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", None})
AGENT_NAME = ("gen_ai.agent.name", "gen_ai.agent.id")
PROVIDER = ("gen_ai.system", "gen_ai.provider.name")
SESSION = ("gen_ai.conversation.id", "session.id")
USER = ("user.id", "enduser.id")


def to_events(record: SpanView | list[LogView], ctx: c.Ctx) -> Mapped | None:
    """A span, or the message log events of one span (in the order they were emitted)."""
    if isinstance(record, list):
        return _logs(record, ctx)
    return _span(record, ctx)


def _start(resource: Any, attrs: dict[str, Any], ctx: c.Ctx, *, trace_id: str | None, span_id: str | None,
           parent: str | None = None) -> Mapped:
    return c.gen_ai_start(resource, attrs, ctx, CONVENTION, providers=PROVIDER, users=USER, sessions=SESSION,
                          trace_id=trace_id, span_id=span_id, parent=parent)


def _span(span: SpanView, ctx: c.Ctx) -> Mapped | None:
    attrs = span.attrs
    operation = attrs.get("gen_ai.operation.name")
    mapped = _start(span.resource, attrs, ctx, trace_id=span.trace_id, span_id=span.span_id,
                    parent=span.parent_span_id)
    agent = c.agent_of(span, ctx, AGENT_NAME)
    if agent:
        mapped.base["agent"] = agent
    if operation == "execute_tool":
        c.tool_execution(mapped, span, name=attrs.get("gen_ai.tool.name"), call_id=attrs.get("gen_ai.tool.call.id"),
                         args=attrs.get("gen_ai.tool.call.arguments"), result=attrs.get("gen_ai.tool.call.result"),
                         captured="gen_ai.tool.call.arguments" in attrs)
        return mapped
    if operation not in MODEL_OPERATIONS:
        return None  # embeddings, agents, workflows
    labels = {"operation": str(operation or "chat")}
    reasons = attrs.get("gen_ai.response.finish_reasons")
    if reasons:
        labels["finish_reasons"] = c.clip(",".join(map(str, reasons)) if isinstance(reasons, list) else str(reasons))
    if attrs.get("gen_ai.response.id"):
        labels["response_id"] = c.clip(str(attrs["gen_ai.response.id"]), 256)
    usage = c.usage(input_tokens=c.first(attrs, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
                    output_tokens=c.first(attrs, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
                    span=span)
    turn = _span_event_turn(span)
    if turn is not None:
        c.conversation(mapped, turn, c.TurnTimes(c.seconds(span.start_ns), c.seconds(span.end_ns)),
                       usage_fields=usage, output_labels=labels)
        return mapped
    c.metadata(mapped, span, usage_fields=usage, labels=labels,
               outputs=c.error_of(span) is None or "output_tokens" in usage)
    mapped.join = "span"  # the content, if captured, comes as log events of this span
    return mapped


def _span_event_turn(span: SpanView) -> Turn | None:
    """Content recorded on the span itself (<= 1.26 span events, or per-message span events)."""
    if not span.events:
        return None
    turn = Turn()
    found = False
    for name, _, attrs in span.events:
        if name == "gen_ai.content.prompt":
            found = True
            turn.inputs.extend(_flat_messages(attrs.get("gen_ai.prompt")))
        elif name == "gen_ai.content.completion":
            found = True
            turn.outputs.extend(_flat_messages(attrs.get("gen_ai.completion"), output=True))
        elif name in MESSAGE_EVENTS:
            found = True
            message = _event_message(name, attrs.get("body", attrs))
            if message is not None:
                (turn.outputs if name == "gen_ai.choice" else turn.inputs).append(message)
    return turn if found else None


def _flat_messages(value: Any, *, output: bool = False) -> list[Message]:
    value = c.maybe_json(value)
    if isinstance(value, str):
        return [Message("assistant" if output else "user", value)]
    out = []
    for raw in value if isinstance(value, list) else []:
        if isinstance(raw, dict):
            message = Message(c.role_of(raw.get("role") or ("assistant" if output else "user")),
                              c.text_of(raw.get("content")))
            message.tool_calls = _tool_calls(raw.get("tool_calls"))
            out.append(message)
    return out


def _tool_calls(value: Any) -> list[ToolCall]:
    out = []
    for call in value if isinstance(value, list) else []:
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        out.append(ToolCall(c._str(call.get("id")), c._str(function.get("name") or call.get("name")),
                            c.arguments(function.get("arguments", call.get("arguments")))))
    return out


def _event_message(name: str, body: Any) -> Message | None:
    body = c.maybe_json(body)
    if not isinstance(body, dict):
        body = {"content": body} if isinstance(body, str) else {}
    role = name[len("gen_ai."):-len(".message")] if name.endswith(".message") else "assistant"
    if name == "gen_ai.choice":
        inner = body.get("message") if isinstance(body.get("message"), dict) else {}
        message = Message(c.role_of(inner.get("role") or "assistant"), c.text_of(inner.get("content")))
        message.tool_calls = _tool_calls(inner.get("tool_calls"))
        message.finish_reason = c._str(body.get("finish_reason"))
        return message
    message = Message(c.role_of(body.get("role") or role))
    content = body.get("content")
    if message.role == "tool":
        message.responses.append(ToolResponse(c._str(body.get("id")), c.text_of(content)))
        return message
    message.text = c.text_of(content)
    message.tool_calls = _tool_calls(body.get("tool_calls"))
    return message


def _logs(logs: list[LogView], ctx: c.Ctx) -> Mapped | None:
    first = logs[0]
    turn = Turn()
    choices: list[tuple[int, Message]] = []
    attrs: dict[str, Any] = {}
    for log in logs:
        attrs.update(log.attrs)
        message = _event_message(log.event_name, log.body)
        if message is None:
            continue
        if log.event_name == "gen_ai.choice":
            index = log.body.get("index") if isinstance(log.body, dict) else None
            choices.append((c.as_int(index) or len(choices), message))
        else:
            turn.inputs.append(message)
    turn.outputs = [m for _, m in sorted(choices, key=lambda pair: pair[0])]
    if not turn.inputs and not turn.outputs:
        return None
    mapped = _start(first.resource, attrs, ctx, trace_id=first.trace_id, span_id=first.span_id)
    start, end = c.log_time(first), c.log_time(logs[-1])
    c.conversation(mapped, turn, c.TurnTimes(start, end))
    mapped.join = "content" if first.span_id else None
    return mapped
