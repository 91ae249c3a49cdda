"""OpenInference (Arize Phoenix) spans.

``openinference.span.kind``: LLM (``llm.input_messages.{i}.message.{role,content,name,tool_call_id}``,
``...message.contents.{k}.message_content.text``, ``...message.tool_calls.{j}.tool_call.{id,function.name,function.arguments}``,
``llm.output_messages...``, ``llm.model_name``, ``llm.provider``/``llm.system``, ``llm.token_count.{prompt,completion}``),
TOOL (``tool.name``, ``tool_call.id``, ``input.value``, ``output.value``), RETRIEVER
(``retrieval.documents.{i}.document.{id,score,content,metadata}``, query in ``input.value``), AGENT
(``agent.name``, ``input.value``/``output.value``). Identity: ``session.id``, ``user.id``, ``metadata``, ``tag.tags``.
"""

from __future__ import annotations

from typing import Any

from collectors.otlp import common as c
from collectors.otlp.model import Mapped, Message, SpanView, ToolCall, ToolResponse, Turn

CONVENTION = "openinference"
KIND = "openinference.span.kind"


def to_events(span: SpanView, ctx: c.Ctx) -> Mapped | None:
    attrs = span.attrs
    kind = str(attrs.get(KIND) or "").upper()
    base = c.base_fields(span.resource, ctx, CONVENTION, trace_id=span.trace_id, span_id=span.span_id,
                         parent_span_id=span.parent_span_id)
    c.set_model(base, provider=c.first(attrs, "llm.provider", "llm.system"), name=attrs.get("llm.model_name"))
    user = c.set_actor(base, attrs.get("user.id"))
    mapped = c.new_mapped(base, CONVENTION, session_id=attrs.get("session.id"), user_id=user, trace_id=span.trace_id)
    tags = attrs.get("tag.tags")
    if isinstance(tags, list) and tags:
        base["labels"]["tags"] = c.clip(",".join(map(str, tags)))
    agent = _agent(span, ctx)
    if kind == "AGENT":
        return _sub_agent(span, ctx, mapped, agent)
    if agent:
        base["agent"] = agent
    if kind == "TOOL":
        c.tool_execution(mapped, span, name=c.first(attrs, "tool.name", "tool_call.function.name") or span.name,
                         call_id=c.first(attrs, "tool_call.id", "tool.id"),
                         args=c.first(attrs, "tool_call.function.arguments", "input.value"),
                         result=attrs.get("output.value"),
                         captured="input.value" in attrs or "tool_call.function.arguments" in attrs)
        return mapped
    if kind == "RETRIEVER":
        documents = [c.document(c.sub(fields, "document.")) for _, fields in c.indexed(attrs, "retrieval.documents.")]
        c.retrieval(mapped, span, source=c.first(attrs, "retrieval.source", "db.system") or span.name,
                    documents=documents, query=attrs.get("input.value"))
        return mapped
    if kind != "LLM":
        return None  # CHAIN, EMBEDDING, RERANKER, GUARDRAIL, EVALUATOR, PROMPT
    turn = Turn(inputs=_messages(attrs, "llm.input_messages."),
                outputs=_messages(attrs, "llm.output_messages.", output=True))
    if not turn.inputs and not turn.outputs:
        turn = _from_values(attrs)
    usage = c.usage(input_tokens=attrs.get("llm.token_count.prompt"),
                    output_tokens=attrs.get("llm.token_count.completion"), span=span)
    labels = {"operation": "chat"}
    return c.model_call(mapped, span, turn, usage, labels)


def _agent(span: SpanView, ctx: c.Ctx) -> str | None:
    attrs = span.attrs
    if attrs.get("agent.name") is not None:
        return str(attrs["agent.name"])
    if str(attrs.get(KIND) or "").upper() == "AGENT":
        return span.name
    for parent in ctx.ancestors(span):
        if str(parent.attrs.get(KIND) or "").upper() == "AGENT":
            return str(parent.attrs.get("agent.name") or parent.name)
    return None


def _sub_agent(span: SpanView, ctx: c.Ctx, mapped: Mapped, agent: str | None) -> Mapped | None:
    """An AGENT span inside another: its input is a message from the outer agent."""
    caller = None
    for parent in ctx.ancestors(span):
        if str(parent.attrs.get(KIND) or "").upper() == "AGENT":
            caller = str(parent.attrs.get("agent.name") or parent.name)
            break
    text = c.text_of(span.attrs.get("input.value"))
    if caller is None or text is None:
        return None
    mapped.base["agent"] = caller
    c.conversation(mapped, Turn(inputs=[Message("user", text)]),
                   c.TurnTimes(c.seconds(span.start_ns), c.seconds(span.end_ns)), to_agent=agent or span.name)
    return mapped


def _messages(attrs: dict[str, Any], prefix: str, *, output: bool = False) -> list[Message]:
    out = []
    for _, fields in c.indexed(attrs, prefix):
        fields = c.sub(fields, "message.")
        message = Message(c.role_of(fields.get("role") or ("assistant" if output else "user")),
                          c.text_of(fields.get("content")), name=fields.get("name"))
        if message.text is None:
            texts = [str(part.get("message_content.text")) for _, part in c.indexed(fields, "contents.")
                     if part.get("message_content.text") is not None]
            if texts:
                message.text = "\n".join(texts)
        for _, call in c.indexed(fields, "tool_calls."):
            message.tool_calls.append(ToolCall(c._str(call.get("tool_call.id")),
                                               c._str(call.get("tool_call.function.name")),
                                               c.arguments(call.get("tool_call.function.arguments"))))
        if message.role == "tool":
            message.responses.append(ToolResponse(c._str(fields.get("tool_call_id")), message.text))
            message.text = None
        if output:
            message.finish_reason = c._str(fields.get("finish_reason"))
        out.append(message)
    return out


def _from_values(attrs: dict[str, Any]) -> Turn:
    """LLM span without structured messages: ``input.value`` (a request JSON with ``messages``, or
    a plain prompt) and ``output.value``."""
    turn = Turn()
    raw_in = c.maybe_json(attrs.get("input.value"))
    if isinstance(raw_in, dict) and isinstance(raw_in.get("messages"), list):
        for item in raw_in["messages"]:
            if isinstance(item, dict):
                turn.inputs.append(Message(c.role_of(item.get("role")), c.text_of(item.get("content"))))
    elif raw_in is not None:
        turn.inputs.append(Message("user", c.text_of(raw_in)))
    raw_out = attrs.get("output.value")
    if raw_out is not None:
        turn.outputs.append(Message("assistant", c.text_of(raw_out)))
    return turn
