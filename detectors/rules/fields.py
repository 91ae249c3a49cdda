"""The fields a rule may test: an explicit registry over the Event and over detector findings.

Event fields are addressed by their path in Event v1 (``model.name``, ``tool.result_bytes``), plus
two open families: ``labels.<key>`` and ``tool.arguments.<path>`` (``*`` matches any key at one
level). Finding fields (``category``, ``placement``, ``score``, …) describe one finding of a content
detector for the same event; a rule reaches them with ``any_finding`` or the ``findings.<field>``
shorthand.

Every field has a type (``str``, ``num``, ``bool`` or ``any``), says whether it holds several values
(``multi``: the condition holds when it holds for one of them) and whether its value is sensitive
(evidence then shows a masked excerpt and a hash, never the value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from detectors.rules.operators import registry
from detectors.spec import PLACEMENTS
from schemas.event import Event, EventKind
from schemas.finding import Category, Finding, Mode, Severity

FieldType = str  # "str" | "num" | "bool" | "any"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    get: Callable[[Any], Any]
    multi: bool = False
    sensitive: bool = False
    choices: tuple[str, ...] = ()
    doc: str = ""


# -- findings of content detectors, as rules see them -------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingView:
    """What rules can test about one detector finding (built from ``schemas.Finding`` or a test stub)."""

    detector: str = "stub"
    category: str = "policy_violation"
    severity: str = "medium"
    score: float = 1.0
    placement: str | None = None
    field: str | None = None
    rule_id: str | None = None
    tags: tuple[str, ...] = ()
    mode: str = "monitor"
    finding_id: str | None = None

    @classmethod
    def of(cls, finding: "Finding | FindingView") -> "FindingView":
        if isinstance(finding, FindingView):
            return finding
        placement = field = None
        for item in finding.evidence:
            if isinstance(item, dict) and item.get("kind") == "summary":
                placement, field = item.get("placement"), item.get("field")
                break
        if placement is None:
            placement = next((t.partition(":")[2] for t in finding.tags if t.startswith("placement:")), None)
        return cls(
            detector=finding.detector, category=_value(finding.category), severity=_value(finding.severity),
            score=float(finding.score), placement=placement, field=field, rule_id=finding.rule_id,
            tags=tuple(finding.tags), mode=_value(finding.mode), finding_id=finding.finding_id,
        )


def _value(item: Any) -> str:
    """Enum members and their values alike (Finding stores values, but a model_construct may not)."""
    return str(getattr(item, "value", item))


def _attr(name: str) -> Callable[[Any], Any]:
    return attrgetter(name)  # getattr(obj, name), in C: read once per finding per condition


FINDING_FIELDS: Mapping[str, FieldSpec] = registry((
    FieldSpec("detector", "str", _attr("detector"), doc="content detector id, e.g. secret.aws_access_key"),
    FieldSpec("category", "str", _attr("category"), choices=tuple(c.value for c in Category)),
    FieldSpec("severity", "str", _attr("severity"), choices=tuple(s.value for s in Severity)),
    FieldSpec("score", "num", _attr("score"), doc="0..1"),
    FieldSpec("placement", "str", _attr("placement"), choices=PLACEMENTS,
              doc="where the text sat: direct, indirect (untrusted), system, output, tool_args"),
    FieldSpec("field", "str", _attr("field"), doc="event field the detector matched, e.g. tool.arguments.to"),
    FieldSpec("rule_id", "str", _attr("rule_id"), doc="detector pattern id"),
    FieldSpec("tags", "str", _attr("tags"), multi=True),
    FieldSpec("mode", "str", _attr("mode"), choices=tuple(m.value for m in Mode)),
))

STUB_KEYS = frozenset(FINDING_FIELDS) | {"finding_id"}


# -- event fields ---------------------------------------------------------------------------------------


def _part(part: str, name: str) -> Callable[[Event], Any]:
    def get(event: Event) -> Any:
        obj = getattr(event, part)
        return None if obj is None else getattr(obj, name, None)
    return get


def _roles(event: Event) -> Any:
    return tuple(event.actor.roles) if event.actor is not None and event.actor.roles else None


def _docs(name: str) -> Callable[[Event], Any]:
    def get(event: Event) -> Any:
        retrieval = event.retrieval
        if retrieval is None:
            return None
        values = []
        for doc in retrieval.documents:  # a loop, not a genexpr: this runs for every retrieval event
            v = getattr(doc, name, None)
            if v is not None:
                values.append(v)
        return tuple(values) or None
    return get


def _doc_count(event: Event) -> Any:
    return None if event.retrieval is None else len(event.retrieval.documents)


def _chars(event: Event) -> Any:
    text = event.content.text if event.content is not None else None
    return None if text is None else len(text)


def _top(name: str) -> Callable[[Event], Any]:
    return attrgetter(name)  # getattr(event, name), in C (names here have no dots)


_EVENT_LIST: tuple[FieldSpec, ...] = (
    FieldSpec("kind", "str", _top("kind"), choices=tuple(k.value for k in EventKind)),
    FieldSpec("app", "str", _top("app")),
    FieldSpec("env", "str", _top("env")),
    FieldSpec("tenant", "str", _top("tenant")),
    FieldSpec("agent", "str", _top("agent")),
    FieldSpec("session_id", "str", _top("session_id")),
    FieldSpec("event_id", "str", _top("event_id")),
    FieldSpec("actor.user_id", "str", _part("actor", "user_id")),
    FieldSpec("actor.roles", "str", _roles, multi=True),
    FieldSpec("actor.on_behalf_of", "str", _part("actor", "on_behalf_of")),
    FieldSpec("actor.service_account", "str", _part("actor", "service_account")),
    FieldSpec("model.provider", "str", _part("model", "provider")),
    FieldSpec("model.name", "str", _part("model", "name"), doc="requested model"),
    FieldSpec("model.served", "str", _part("model", "served"), doc="model that answered"),
    FieldSpec("model.endpoint", "str", _part("model", "endpoint"), doc="host or URL the call went to"),
    FieldSpec("content.role", "str", _part("content", "role"), choices=("system", "user", "assistant", "tool", "developer")),
    FieldSpec("content.text", "str", _part("content", "text"), sensitive=True),
    FieldSpec("content.truncated", "bool", _part("content", "truncated")),
    FieldSpec("content.chars", "num", _chars, doc="length of content.text in characters"),
    FieldSpec("tool.name", "str", _part("tool", "name")),
    FieldSpec("tool.call_id", "str", _part("tool", "call_id")),
    FieldSpec("tool.status", "str", _part("tool", "status"), choices=("ok", "error")),
    FieldSpec("tool.error", "str", _part("tool", "error"), sensitive=True),
    FieldSpec("tool.result_bytes", "num", _part("tool", "result_bytes")),
    FieldSpec("tool.destination", "str", _part("tool", "destination")),
    FieldSpec("retrieval.source", "str", _part("retrieval", "source")),
    FieldSpec("retrieval.documents.id", "str", _docs("id"), multi=True),
    FieldSpec("retrieval.documents.classification", "str", _docs("classification"), multi=True),
    FieldSpec("retrieval.documents.score", "num", _docs("score"), multi=True),
    FieldSpec("retrieval.documents.count", "num", _doc_count),
    FieldSpec("usage.input_tokens", "num", _part("usage", "input_tokens")),
    FieldSpec("usage.output_tokens", "num", _part("usage", "output_tokens")),
    FieldSpec("usage.cost_usd", "num", _part("usage", "cost_usd")),
    FieldSpec("usage.latency_ms", "num", _part("usage", "latency_ms")),
    FieldSpec("source.collector", "str", _part("source", "collector")),
    FieldSpec("source.convention", "str", _part("source", "convention")),
)
EVENT_FIELDS: Mapping[str, FieldSpec] = registry(_EVENT_LIST)
PREFIXES = ("labels.", "tool.arguments.", "findings.")
MAX_ARGUMENT_VALUES = 256  # values collected from one tool.arguments path


def _label(key: str) -> Callable[[Event], Any]:
    return lambda event: event.labels.get(key)


def _arguments(path: tuple[str, ...]) -> Callable[[Event], Any]:
    def get(event: Event) -> Any:
        if event.tool is None or event.tool.arguments is None:
            return None
        level: list[Any] = [event.tool.arguments]
        for key in path:
            nxt: list[Any] = []
            for obj in level:
                if isinstance(obj, list):  # a list on the way: look into each element
                    obj_items = [o for o in obj if isinstance(o, dict)]
                else:
                    obj_items = [obj] if isinstance(obj, dict) else []
                for o in obj_items:
                    if key == "*":
                        nxt.extend(o.values())
                    elif key in o:
                        nxt.append(o[key])
            level = nxt[:MAX_ARGUMENT_VALUES]
        values: list[Any] = []
        for v in level:
            if isinstance(v, list):
                values.extend(x for x in v if not isinstance(x, (dict, list)))
            elif not isinstance(v, dict):
                values.append(v)
        values = [v for v in values if v is not None][:MAX_ARGUMENT_VALUES]
        return tuple(values) or None
    return get


def event_field(name: str) -> FieldSpec | None:
    """The spec of an event field path, or ``None`` when no such field exists."""
    spec = EVENT_FIELDS.get(name)
    if spec is not None:
        return spec
    if name.startswith("labels.") and len(name) > len("labels."):
        return FieldSpec(name, "str", _label(name[len("labels."):]))
    if name.startswith("tool.arguments.") and len(name) > len("tool.arguments."):
        parts = tuple(name[len("tool.arguments."):].split("."))
        if all(parts):
            return FieldSpec(name, "any", _arguments(parts), multi=True, sensitive=True)
    return None


def field_names() -> list[str]:
    """Names offered in did-you-mean suggestions."""
    return list(EVENT_FIELDS) + ["labels.<key>", "tool.arguments.<path>"] + [f"findings.{n}" for n in FINDING_FIELDS]
