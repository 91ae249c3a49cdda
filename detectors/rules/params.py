"""Params: named allow-lists and thresholds declared once in the pack, looked up per event.

A param is either one value for every event, or a table keyed by event fields tried in order (most
specific first) with an optional default::

    params:
      allowed_tools:
        match: glob
        by:
          labels.workflow: {refund: [lookup_order, issue_refund]}
          app: {support-bot: [lookup_order, search_kb]}
        # no default: apps not listed are not judged by rules using this param

When nothing applies (no key matched and no default), every condition using the param is false for
that event, and ``param_defined: <name>`` is false — which is how a rule finds apps nobody registered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from detectors.rules.fields import FieldSpec
from detectors.rules.issues import Pos
from schemas.event import Event


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True, eq=False)
class Param:
    name: str
    kind: str  # "list" | "number"
    match: str  # match mode used by in / not_in unless the condition names one
    by: tuple[tuple[FieldSpec, Mapping[str, Any]], ...]
    default: Any  # MISSING when there is none
    description: str
    pos: Pos

    def value(self, event: Event) -> Any:
        """The value in force for ``event`` (``MISSING`` when none applies)."""
        for spec, table in self.by:
            key = spec.get(event)
            if isinstance(key, str) and key in table:
                return table[key]
        return self.default

    def key_for(self, event: Event) -> str:
        """Which entry applied, in words (evidence: 'app=support-bot', 'default')."""
        for spec, table in self.by:
            key = spec.get(event)
            if isinstance(key, str) and key in table:
                return f"{spec.name}={key}"
        return "default" if self.default is not MISSING else "none"


@dataclass(frozen=True, slots=True, eq=False)
class ParamTest:
    """A param compiled for one operator: the per-event value already turned into a test."""

    param: Param
    by: tuple[tuple[FieldSpec, Mapping[str, Callable[[object], bool]]], ...]
    default: Callable[[object], bool] | None

    @classmethod
    def build(cls, param: Param, factory: Callable[[Any], Callable[[object], bool]]) -> "ParamTest":
        by = tuple((spec, {k: factory(v) for k, v in table.items()}) for spec, table in param.by)
        default = None if param.default is MISSING else factory(param.default)
        return cls(param, by, default)

    def test_for(self, event: Event) -> Callable[[object], bool] | None:
        for spec, table in self.by:
            key = spec.get(event)
            if isinstance(key, str) and key in table:
                return table[key]
        return self.default
