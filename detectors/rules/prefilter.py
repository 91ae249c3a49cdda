"""Which rules can match an event, decided once per pack so most rules are skipped per event.

Most rules start with ``{field: kind, ...}`` or need a detector finding (``any_finding``), and most
events are of one kind and carry no finding: walking every condition tree for every event spends
most of its time proving that again. At load time each rule's condition is read for two necessary
conditions, and the rules are grouped by (event kind, event has findings):

- ``event_kinds``: the kinds for which the condition can hold — from leaves on ``kind`` (their
  compiled test applied to every ``EventKind`` value), intersected under ``all``, united under ``any``;
- ``needs_finding``: the condition is false when the event has no detector finding.

Both are conservative (``None`` / ``False`` when unsure), so the rules left out of a group are exactly
rules whose condition is false for such an event: results never change, only the work. Within a group,
a rule is tested with ``residual``: its condition without the top-level ``kind`` tests, already known
to hold for that kind (``explain`` still walks the whole condition, so evidence is unchanged). Events
whose kind is not a plain ``str`` of ``EventKind`` (a ``model_construct`` oddity) get every rule, whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from detectors.rules.conditions import All, Any_, AnyFinding, Leaf, Node
from detectors.rules.fields import EVENT_FIELDS
from detectors.rules.model import Rule
from schemas.event import EventKind

KINDS: tuple[str, ...] = tuple(k.value for k in EventKind)
_KIND_FIELD = EVENT_FIELDS["kind"]


def _kind_test(node: Node) -> Callable[[object], bool] | None:
    """The compiled test of a leaf on the event's ``kind`` (exists and param operands: ``None``)."""
    if isinstance(node, Leaf) and node.field is _KIND_FIELD and not node.finding_scope and node.param is None:
        return node.test
    return None


def event_kinds(node: Node) -> frozenset[str] | None:
    """The event kinds for which ``node`` can hold, or ``None`` when it does not depend on the kind alone."""
    if isinstance(node, Leaf):
        test = _kind_test(node)
        return None if test is None else frozenset(k for k in KINDS if test(k))
    if isinstance(node, All):
        kinds: frozenset[str] | None = None
        for child in node.children:
            found = event_kinds(child)
            if found is not None:
                kinds = found if kinds is None else kinds & found
        return kinds
    if isinstance(node, Any_):
        union: set[str] = set()
        for child in node.children:
            found = event_kinds(child)
            if found is None:
                return None
            union |= found
        return frozenset(union)
    return None  # not, any_finding, param_defined: no bound on the kind


def needs_finding(node: Node) -> bool:
    """True when ``node`` is false for every event without detector findings."""
    if isinstance(node, AnyFinding):
        return True
    if isinstance(node, All):
        return any(needs_finding(c) for c in node.children)
    if isinstance(node, Any_):
        return all(needs_finding(c) for c in node.children)
    return False


def residual(node: Node, kind: str) -> Node | None:
    """``node`` for events of ``kind``: top-level ``kind`` tests that hold for it dropped (``None``: holds)."""
    test = _kind_test(node)
    if test is not None and test(kind):
        return None
    if not isinstance(node, All):
        return node
    rest = tuple(c for c in node.children if not ((t := _kind_test(c)) is not None and t(kind)))
    if len(rest) == len(node.children):
        return node
    if len(rest) <= 1:
        return rest[0] if rest else None
    return All(rest, node.pos)


Candidate = tuple[Rule, Node | None]  # a rule and what is left to test (None: it matches)


@dataclass(frozen=True, slots=True)
class RuleIndex:
    """The rules of a pack grouped by (event kind, has findings), each group in pack (rule-id) order."""

    rules: tuple[Candidate, ...]
    groups: Mapping[tuple[str, bool], tuple[Candidate, ...]]

    @classmethod
    def build(cls, rules: Sequence[Rule]) -> "RuleIndex":
        plans = [(rule, event_kinds(rule.condition), needs_finding(rule.condition)) for rule in rules]
        groups = {
            (kind, has_findings): tuple((rule, residual(rule.condition, kind)) for rule, kinds, needs in plans
                                        if (kinds is None or kind in kinds) and (has_findings or not needs))
            for kind in KINDS for has_findings in (False, True)
        }
        return cls(whole(rules), MappingProxyType(groups))

    def candidates(self, kind: object, has_findings: bool) -> tuple[Candidate, ...]:
        """The rules that can match an event of ``kind`` (with or without findings); every rule when unsure."""
        if type(kind) is str:
            group = self.groups.get((kind, has_findings))
            if group is not None:
                return group
        return self.rules


def whole(rules: Sequence[Rule]) -> tuple[Candidate, ...]:
    """Candidates that test each rule's whole condition (no prefilter)."""
    return tuple((rule, rule.condition) for rule in rules)
