"""OpenLLMetry (Traceloop) spans, the flattened attribute style of its releases before the move
to the OTel conventions.

LLM spans: ``llm.request.type``, ``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.prompt.{i}.{role,content,tool_call_id}``, ``gen_ai.prompt.{i}.tool_calls.{j}.{id,name,arguments}``,
``gen_ai.completion.{i}.{role,content,finish_reason}``, ``gen_ai.completion.{i}.tool_calls.{j}.{id,name,arguments}``
(older: ``function_call.{name,arguments}``), usage ``gen_ai.usage.{prompt,completion}_tokens``.
Workflow spans: ``traceloop.span.kind`` (workflow, task, agent, tool), ``traceloop.entity.{name,input,output}``;
identity in ``traceloop.association.properties.*`` (``user_id``, ``session_id``).
"""

from __future__ import annotations

from typing import Any

from collectors.otlp import common as c
from collectors.otlp.model import Mapped, Message, SpanView, ToolCall, ToolResponse, Turn

CONVENTION = "openllmetry"
ASSOC = "traceloop.association.properties."
SESSION = (ASSOC + "session_id", ASSOC + "conversation_id", ASSOC + "thread_id", ASSOC + "chat_id",
           "gen_ai.conversation.id", "session.id")
USER = (ASSOC + "user_id", ASSOC + "userId", "user.id", "enduser.id")


def to_events(span: SpanView, ctx: c.Ctx) -> Mapped | None:
    attrs = span.attrs
    base = c.base_fields(span.resource, ctx, CONVENTION, trace_id=span.trace_id, span_id=span.span_id,
                         parent_span_id=span.parent_span_id)
    c.set_model(base, provider=c.first(attrs, "gen_ai.system", "llm.vendor"),
                name=c.first(attrs, "gen_ai.request.model", "llm.request.model"),
                served=c.first(attrs, "gen_ai.response.model", "llm.response.model"),
                address=attrs.get("server.address"), port=attrs.get("server.port"))
    user = c.set_actor(base, c.first(attrs, *USER))
    mapped = c.new_mapped(base, CONVENTION, session_id=c.first(attrs, *SESSION), user_id=user,
                          trace_id=span.trace_id)
    workflow = attrs.get("traceloop.workflow.name")
    if workflow:
        base["labels"]["workflow"] = c.clip(str(workflow), 256)
    kind = attrs.get("traceloop.span.kind")
    agent = _agent(span, ctx)
    if kind == "tool":
        if agent:
            base["agent"] = agent
        entity_input = c.maybe_json(attrs.get("traceloop.entity.input"))
        c.tool_execution(mapped, span, name=c.first(attrs, "traceloop.entity.name") or span.name,
                         call_id=c.first(attrs, "gen_ai.tool.call.id", "tool_call.id"),
                         args=_tool_arguments(entity_input), result=_output(attrs.get("traceloop.entity.output")),
                         captured="traceloop.entity.input" in attrs)
        return mapped
    if kind == "agent":
        return _sub_agent(span, ctx, mapped, agent)
    has_messages = any(k.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for k in attrs)
    if not has_messages and attrs.get("llm.request.type") not in ("chat", "completion"):
        return None  # workflows, tasks, embeddings, vector stores
    if agent:
        base["agent"] = agent
    turn = Turn(inputs=_messages(attrs, "gen_ai.prompt."), outputs=_messages(attrs, "gen_ai.completion.", output=True))
    usage = c.usage(input_tokens=c.first(attrs, "gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens",
                                         "llm.usage.prompt_tokens"),
                    output_tokens=c.first(attrs, "gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens",
                                          "llm.usage.completion_tokens"), span=span)
    labels = {"operation": str(attrs.get("llm.request.type") or "chat")}
    if attrs.get("gen_ai.response.id"):
        labels["response_id"] = c.clip(str(attrs["gen_ai.response.id"]), 256)
    return c.model_call(mapped, span, turn, usage, labels)


def _agent(span: SpanView, ctx: c.Ctx) -> str | None:
    own = c.first(span.attrs, "gen_ai.agent.name")
    if own is None and span.attrs.get("traceloop.span.kind") == "agent":
        own = span.attrs.get("traceloop.entity.name")
    if own is not None:
        return str(own)
    for parent in ctx.ancestors(span):
        if parent.attrs.get("traceloop.span.kind") == "agent" or "gen_ai.agent.name" in parent.attrs:
            found = c.first(parent.attrs, "gen_ai.agent.name", "traceloop.entity.name")
            if found is not None:
                return str(found)
    return None


def _sub_agent(span: SpanView, ctx: c.Ctx, mapped: Mapped, agent: str | None) -> Mapped | None:
    """An agent inside another agent: its input is a message from the outer agent to it."""
    caller = None
    for parent in ctx.ancestors(span):
        if parent.attrs.get("traceloop.span.kind") == "agent":
            caller = c.first(parent.attrs, "gen_ai.agent.name", "traceloop.entity.name")
            break
    if caller is None:
        return None
    text = _output(span.attrs.get("traceloop.entity.input"))
    if text is None:
        return None
    mapped.base["agent"] = str(caller)
    c.conversation(mapped, Turn(inputs=[Message("user", text)]),
                   c.TurnTimes(c.seconds(span.start_ns), c.seconds(span.end_ns)), to_agent=agent or span.name)
    return mapped


def _text(value: Any) -> str | None:
    """Content is text, or (multimodal) a JSON list of parts with ``text``."""
    value = c.maybe_json(value)
    if isinstance(value, list):
        texts = [p.get("text") for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(texts) if texts else c.text_of(value)
    return c.text_of(value)


def _messages(attrs: dict[str, Any], prefix: str, *, output: bool = False) -> list[Message]:
    out = []
    for _, fields in c.indexed(attrs, prefix):
        message = Message(c.role_of(fields.get("role") or ("assistant" if output else "user")),
                          _text(fields.get("content")))
        for _, call in c.indexed(fields, "tool_calls."):
            message.tool_calls.append(ToolCall(c._str(call.get("id")), c._str(call.get("name")),
                                               c.arguments(call.get("arguments"))))
        if "function_call.name" in fields:
            message.tool_calls.append(ToolCall(None, c._str(fields.get("function_call.name")),
                                               c.arguments(fields.get("function_call.arguments"))))
        if message.role == "tool":
            message.responses.append(ToolResponse(c._str(fields.get("tool_call_id")), message.text))
            message.text = None
        if output:
            message.finish_reason = c._str(fields.get("finish_reason"))
        out.append(message)
    return out


def _tool_arguments(entity_input: Any) -> Any:
    """``traceloop.entity.input`` of a tool: {"args": [...], "kwargs": {...}} (or {"inputs": ...})."""
    if isinstance(entity_input, dict):
        kwargs = entity_input.get("kwargs")
        args = entity_input.get("args")
        if isinstance(kwargs, dict) or isinstance(args, list):
            out = dict(kwargs) if isinstance(kwargs, dict) else {}
            if args:
                out["args"] = args
            return out
        if isinstance(entity_input.get("inputs"), dict):
            return entity_input["inputs"]
    return entity_input


def _output(value: Any) -> str | None:
    value = c.maybe_json(value)
    if isinstance(value, dict) and set(value) <= {"output", "outputs", "kwargs", "args", "inputs"}:
        inner = value.get("output", value.get("outputs", value.get("inputs")))
        if inner is not None:
            return c.text_of(inner)
    return c.text_of(value)
