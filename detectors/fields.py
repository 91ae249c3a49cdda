"""Event → the texts to scan, each with its path, its placement and a bounded length.

Placement is decided here, once, from the event kind and the content role (see ``spec.Placement``).
Tool-call arguments are flattened iteratively (deeply nested input cannot exhaust the stack) into one
field per string value, prefixed by its key (``password: hunter2!``) so that key names act as context.
Long fields are cut to their head and tail (``ScannerConfig.max_field_chars``).
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.config import ScannerConfig
from schemas.event import Event

GAP = "\n\n"  # stands for the skipped middle of a long field; a newline stops line-bound patterns

ROLE_PLACEMENT = {"user": "direct", "system": "system", "developer": "system", "assistant": "output", "tool": "indirect"}
KIND_PLACEMENT = {
    "completion": "output", "tool_call": "output", "tool_result": "indirect",
    "retrieval": "indirect", "agent_message": "indirect",
}
WHERE = {
    ("prompt", "direct"): "the user prompt",
    ("prompt", "system"): "the system prompt",
    ("prompt", "output"): "an assistant turn of the prompt",
    ("prompt", "indirect"): "a tool message of the prompt",
    ("completion", "output"): "the model output",
    ("tool_call", "output"): "the model output",
    ("tool_call", "tool_args"): "tool-call arguments",
    ("completion", "tool_args"): "proposed tool-call arguments",
    ("tool_result", "indirect"): "a tool result",
    ("retrieval", "indirect"): "a retrieved document",
    ("agent_message", "indirect"): "a message from another agent",
}


@dataclass(slots=True)
class Field:
    """One text to scan. Offsets in ``text`` map back to the original value with ``original``."""

    path: str
    placement: str
    where: str
    text: str  # what is scanned: key prefix + value (head + GAP + tail when cut)
    prefix: int = 0  # characters of the key prefix before the value
    head: int = 0  # characters of the value kept at its start when cut
    skipped: int = 0  # characters of the value not scanned (0 when not cut)

    def original(self, pos: int) -> int:
        """Position in the original value of position ``pos`` in ``text`` (clamped into the value)."""
        p = max(0, pos - self.prefix)
        if self.skipped and p >= self.head:
            p = max(self.head, p - len(GAP)) + self.skipped
        return p


def _cut(value: str, limit: int) -> tuple[str, int, int]:
    if len(value) <= limit:
        return value, len(value), 0
    half = limit // 2
    tail = limit - half
    return value[:half] + GAP + value[-tail:], half, len(value) - limit


class _Budget:
    __slots__ = ("chars", "fields", "truncated", "dropped")

    def __init__(self, config: ScannerConfig) -> None:
        self.chars = config.max_event_chars
        self.fields = config.max_fields
        self.truncated = 0
        self.dropped = 0


def _add(out: list[Field], budget: _Budget, config: ScannerConfig, path: str, placement: str, where: str,
         value: str, prefix: str = "") -> None:
    if not value:
        return
    if budget.fields <= 0 or budget.chars <= 0:
        budget.dropped += 1
        return
    limit = min(config.max_field_chars, max(budget.chars, 64))
    text, head, skipped = _cut(value, limit)
    if skipped:
        budget.truncated += 1
    budget.chars -= len(text)
    budget.fields -= 1
    out.append(Field(path, placement, where, prefix + text if prefix else text, len(prefix), head, skipped))


def _flatten_arguments(out: list[Field], budget: _Budget, config: ScannerConfig, arguments: dict, where: str) -> None:
    """Depth-first, document order, iterative; strings and long integers become fields."""
    stack: list[tuple[str, str, object, int]] = [("tool.arguments", "", arguments, 0)]
    while stack:
        path, key, value, depth = stack.pop()
        if isinstance(value, str):
            _add(out, budget, config, path, "tool_args", where, value, f"{key[:64]}: " if key else "")
        elif isinstance(value, dict):
            if depth >= config.max_argument_depth:
                budget.dropped += 1
                continue
            for k, v in reversed(list(value.items())):
                stack.append((f"{path}.{k}", str(k), v, depth + 1))
        elif isinstance(value, list):
            if depth >= config.max_argument_depth:
                budget.dropped += 1
                continue
            for i in range(len(value) - 1, -1, -1):
                stack.append((f"{path}[{i}]", key, value[i], depth + 1))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000:
            _add(out, budget, config, path, "tool_args", where, str(value), f"{key[:64]}: " if key else "")


def content_placement(event: Event) -> str:
    """Where ``content.text`` sits: a prompt by its role (user → direct), other kinds by kind."""
    if event.kind == "prompt":
        role = event.content.role if event.content is not None else None
        return ROLE_PLACEMENT.get(role or "user", "direct")
    return KIND_PLACEMENT.get(event.kind, "indirect")


def extract(event: Event, config: ScannerConfig) -> tuple[list[Field], int, int]:
    """Fields of ``event`` to scan, plus how many were truncated and how many were dropped."""
    out: list[Field] = []
    budget = _Budget(config)
    kind = event.kind
    content = event.content
    if content is not None and content.text:
        placement = content_placement(event)
        _add(out, budget, config, "content.text", placement, WHERE.get((kind, placement), kind), content.text)
    tool = event.tool
    if tool is not None:
        if tool.arguments:
            _flatten_arguments(out, budget, config, tool.arguments, WHERE.get((kind, "tool_args"), "tool-call arguments"))
        if tool.error and kind == "tool_result":
            _add(out, budget, config, "tool.error", "indirect", "a tool error", tool.error)
    retrieval = event.retrieval
    if retrieval is not None:
        for i, doc in enumerate(retrieval.documents):
            if doc.text:
                _add(out, budget, config, f"retrieval.documents[{i}].text", "indirect", "a retrieved document", doc.text)
    return out, budget.truncated, budget.dropped


def single(text: str, placement: str, path: str, config: ScannerConfig) -> list[Field]:
    """A lone text as one field (``ContentScanner.scan_text``), bounded like event fields."""
    out: list[Field] = []
    _add(out, _Budget(config), config, path, placement, placement, text)
    return out
