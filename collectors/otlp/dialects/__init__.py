"""Telemetry dialects of GenAI spans and logs: an explicit registry and the detector that picks one.

Each adapter module has ``CONVENTION`` (recorded in ``source.convention``) and
``to_events(record, ctx) -> Mapped | None`` (``None``: nothing of interest in that record).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from collectors.otlp.dialects import openinference, openllmetry, otel_latest, otel_legacy


def _registry(*modules: ModuleType) -> dict[str, ModuleType]:
    out: dict[str, ModuleType] = {}
    for module in modules:
        name = module.__name__.rsplit(".", 1)[-1]
        if name in out:
            raise ValueError(f"duplicate dialect {name!r}")
        out[name] = module
    return out


REGISTRY: dict[str, ModuleType] = _registry(otel_latest, otel_legacy, openllmetry, openinference)

_OPENLLMETRY_PREFIXES = ("traceloop.", "gen_ai.prompt.", "gen_ai.completion.", "llm.request.type")
_OPENINFERENCE_PREFIXES = ("llm.input_messages.", "llm.output_messages.")
_LATEST_ONLY = ("gen_ai.provider.name", "gen_ai.input.messages", "gen_ai.output.messages",
                "gen_ai.system_instructions")


def detect_span(attrs: dict[str, Any]) -> str | None:
    """The dialect of a span from its attribute names; None for spans that are not GenAI."""
    if "openinference.span.kind" in attrs:
        return "openinference"
    genai = False
    for key in attrs:
        if key.startswith(_OPENLLMETRY_PREFIXES):
            return "openllmetry"
        if key.startswith(_OPENINFERENCE_PREFIXES):
            return "openinference"
        if key.startswith("gen_ai."):
            genai = True
    if not genai:
        return None
    if any(key in attrs for key in _LATEST_ONLY):
        return "otel_latest"
    if "gen_ai.system" in attrs:
        return "otel_legacy"
    if "gen_ai.operation.name" in attrs:
        return "otel_latest"
    return None


def detect_log(event_name: str) -> str | None:
    if event_name == otel_latest.INFERENCE_EVENT:
        return "otel_latest"
    if event_name in otel_legacy.MESSAGE_EVENTS:
        return "otel_legacy"
    return None
