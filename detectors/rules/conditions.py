"""Match conditions: compiled once from YAML into small frozen predicate objects.

Grammar (each condition is a mapping)::

    {all: [cond, ...]}          every condition holds
    {any: [cond, ...]}          at least one holds
    {not: cond}                 the condition does not hold
    {any_finding: cond}         one detector finding of the event satisfies cond (finding fields)
    {param_defined: name}       the param has a value for this event (an entry or a default)
    {field: path, <operator>: operand[, ignore_case: bool][, match: exact|glob|prefix|host]}

A rule's ``match`` may also be a list, read as ``all``. ``field: findings.<f>`` is shorthand for
``any_finding: {field: <f>, ...}``; two such conditions under one ``all`` may be satisfied by
*different* findings (lint warns; use ``any_finding`` with ``all`` inside to bind them to one).

Semantics: a condition on an absent field is false (for every operator but ``exists: false``);
on a multi-valued field (``actor.roles``, ``retrieval.documents.classification``, ``findings.tags``,
``tool.arguments.*``) it holds when it holds for one of the values — so ``not_in`` means "one value
is outside the list", which is what an allow-list check wants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detectors.masking import mask_secret, printable, sha256
from detectors.rules import operators as ops
from detectors.rules.fields import FINDING_FIELDS, FieldSpec, FindingView, event_field, field_names
from detectors.rules.issues import Issues, Pos, did_you_mean
from detectors.rules.params import Param, ParamTest
from detectors.rules.source import LList, LMap
from schemas.event import Event

COMBINATORS = ("all", "any", "not", "any_finding", "param_defined")
LEAF_KEYS = ("field",) + tuple(ops.OPERATORS) + ops.MODIFIERS
MAX_LEAVES = 256
MAX_DEPTH = 16
EVIDENCE_VALUES = 5  # values shown per condition / findings shown per any_finding


@dataclass(frozen=True, slots=True)
class Ctx:
    """What conditions see: one event and the detector findings of that event."""

    event: Event
    findings: tuple[FindingView, ...] = ()


@dataclass(slots=True)
class Explanation:
    """Filled while explaining a matched rule: the conditions that held and the findings they used."""

    conditions: list[dict[str, Any]] = field(default_factory=list)
    findings: list[FindingView] = field(default_factory=list)


def show(value: object, sensitive: bool) -> dict[str, Any]:
    """A value as evidence: as is when harmless, masked and hashed when sensitive."""
    if not sensitive or isinstance(value, bool) or ops.is_number(value):
        return {"value": value if isinstance(value, (bool, int, float)) else printable(str(value), 200)}
    text = str(value)
    return {"value_masked": mask_secret(text[:4096]), "value_sha256": sha256(text)[:16]}


class ParamRef(str):
    """An operand naming a param (shown as ``param <name>``, not as a quoted string)."""

    __slots__ = ()


def _operand_text(operand: object) -> str:
    if isinstance(operand, ParamRef):
        return str(operand)
    if isinstance(operand, list):
        inner = ", ".join(str(v) for v in operand[:8])
        return f"[{inner}{', …' if len(operand) > 8 else ''}]"
    return repr(operand) if isinstance(operand, str) else str(operand)


# -- nodes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Leaf:
    field: FieldSpec
    op: str
    operand: object  # as written (a param reads "param <name>")
    test: ops.Test | None  # per value; None for exists and param operands
    param: ParamTest | None
    pos: Pos
    finding_scope: bool = False

    def _values(self, ctx: Ctx, finding: FindingView | None) -> object:
        return self.field.get(finding if self.finding_scope else ctx.event)

    def _test(self, ctx: Ctx) -> ops.Test | None:
        return self.test if self.param is None else self.param.test_for(ctx.event)

    def holds(self, ctx: Ctx, finding: FindingView | None = None) -> bool:
        # The hot path of every rule: ``_values``/``_test`` inlined, no generator per call.
        spec = self.field
        value = spec.get(finding if self.finding_scope else ctx.event)
        if self.op == "exists":
            present = value is not None and value != ()
            return present is self.operand
        if value is None:
            return False
        test = self.test if self.param is None else self.param.test_for(ctx.event)
        if test is None:
            return False
        if spec.multi:
            for v in value:  # type: ignore[union-attr]
                if test(v):
                    return True
            return False
        return test(value)

    def describe(self) -> str:
        return f"{self.field.name} {self.op} {_operand_text(self.operand)}"

    def explain(self, ctx: Ctx, finding: FindingView | None, out: Explanation) -> None:
        value = self._values(ctx, finding)
        item: dict[str, Any] = {"kind": "condition", "condition": self.describe(), "field": self.field.name,
                                "at": f"{self.pos.line}:{self.pos.col}"}
        if self.param is not None:
            item["param"] = self.param.param.name
            item["param_entry"] = self.param.param.key_for(ctx.event)
        if value is not None and self.op != "exists":
            test = self._test(ctx)
            values = value if self.field.multi else (value,)
            hits = [v for v in values if test is not None and test(v)][:EVIDENCE_VALUES]  # type: ignore[union-attr]
            shown = [show(v, self.field.sensitive) for v in hits]
            if len(shown) == 1 and not self.field.multi:
                item.update(shown[0])
            else:
                item["values"] = shown
        out.conditions.append(item)

    def leaves(self) -> int:
        return 1


@dataclass(frozen=True, slots=True, eq=False)
class All:
    children: tuple[Any, ...]
    pos: Pos

    def holds(self, ctx: Ctx, finding: FindingView | None = None) -> bool:
        for c in self.children:  # a loop, not all(genexpr): no generator object per call
            if not c.holds(ctx, finding):
                return False
        return True

    def describe(self) -> str:
        return "all(" + "; ".join(c.describe() for c in self.children) + ")"

    def explain(self, ctx: Ctx, finding: FindingView | None, out: Explanation) -> None:
        for c in self.children:
            c.explain(ctx, finding, out)

    def leaves(self) -> int:
        return sum(c.leaves() for c in self.children)


@dataclass(frozen=True, slots=True, eq=False)
class Any_:
    children: tuple[Any, ...]
    pos: Pos

    def holds(self, ctx: Ctx, finding: FindingView | None = None) -> bool:
        for c in self.children:  # a loop, not any(genexpr): no generator object per call
            if c.holds(ctx, finding):
                return True
        return False

    def describe(self) -> str:
        return "any(" + "; ".join(c.describe() for c in self.children) + ")"

    def explain(self, ctx: Ctx, finding: FindingView | None, out: Explanation) -> None:
        for c in self.children:
            if c.holds(ctx, finding):
                c.explain(ctx, finding, out)
                return

    def leaves(self) -> int:
        return sum(c.leaves() for c in self.children)


@dataclass(frozen=True, slots=True, eq=False)
class Not:
    child: Any
    pos: Pos

    def holds(self, ctx: Ctx, finding: FindingView | None = None) -> bool:
        return not self.child.holds(ctx, finding)

    def describe(self) -> str:
        return f"not({self.child.describe()})"

    def explain(self, ctx: Ctx, finding: FindingView | None, out: Explanation) -> None:
        out.conditions.append({"kind": "condition", "condition": self.describe(), "at": f"{self.pos.line}:{self.pos.col}"})

    def leaves(self) -> int:
        return self.child.leaves()


@dataclass(frozen=True, slots=True, eq=False)
class AnyFinding:
    child: Any
    pos: Pos

    def holds(self, ctx: Ctx, finding: FindingView | None = None) -> bool:
        child = self.child
        for f in ctx.findings:  # a loop, not any(genexpr): no generator object per call
            if child.holds(ctx, f):
                return True
        return False

    def describe(self) -> str:
        return f"any_finding({self.child.describe()})"

    def explain(self, ctx: Ctx, finding: FindingView | None, out: Explanation) -> None:
        matched = [f for f in ctx.findings if self.child.holds(ctx, f)]
        out.findings.extend(matched)
        out.conditions.append({
            "kind": "condition", "condition": self.describe(), "at": f"{self.pos.line}:{self.pos.col}",
            "findings_matched": len(matched),
            "findings": [{k: v for k, v in (("finding_id", f.finding_id), ("detector", f.detector),
                                            ("category", f.category), ("placement", f.placement),
                                            ("field", f.field), ("score", f.score)) if v is not None}
                         for f in matched[:EVIDENCE_VALUES]],
        })

    def leaves(self) -> int:
        return self.child.leaves()


@dataclass(frozen=True, slots=True, eq=False)
class ParamDefined:
    param: Param
    pos: Pos

    def holds(self, ctx: Ctx, finding: FindingView | None = None) -> bool:
        return self.param.key_for(ctx.event) != "none"

    def describe(self) -> str:
        return f"param_defined {self.param.name}"

    def explain(self, ctx: Ctx, finding: FindingView | None, out: Explanation) -> None:
        out.conditions.append({"kind": "condition", "condition": self.describe(), "param_entry": self.param.key_for(ctx.event),
                               "at": f"{self.pos.line}:{self.pos.col}"})

    def leaves(self) -> int:
        return 1


Node = Leaf | All | Any_ | Not | AnyFinding | ParamDefined


# -- compiler -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Compiler:
    """Compiles conditions of one pack, recording issues; ``params`` must be parsed first."""

    issues: Issues
    params: dict[str, Param]
    _param_tests: dict[tuple, ParamTest] = field(default_factory=dict)

    def compile(self, node: Any, pos: Pos) -> Node | None:
        """A rule's or exception's ``match`` value → a node (``None`` after recording issues)."""
        if isinstance(node, LList):
            return self._list_all(node, pos, "event", 0)
        compiled = self._node(node, pos, "event", 0)
        if compiled is not None and compiled.leaves() > MAX_LEAVES:
            self.issues.error("too-complex", f"condition has {compiled.leaves()} comparisons, more than {MAX_LEAVES}", pos)
            return None
        return compiled

    def _list_all(self, items: LList, pos: Pos, scope: str, depth: int) -> Node | None:
        if not items:
            self.issues.error("empty-condition", "an empty list of conditions", pos)
            return None
        children = [self._node(item, items.ipos(i), scope, depth + 1) for i, item in enumerate(items)]
        if any(c is None for c in children):
            return None
        self._warn_unbound(children, items, pos)
        return All(tuple(children), pos)  # type: ignore[arg-type]

    def _warn_unbound(self, children: Sequence[Any], items: LList, pos: Pos) -> None:
        shorthand = [i for i, c in enumerate(children)
                     if isinstance(c, AnyFinding) and isinstance(items[i], LMap) and "field" in items[i]]
        if len(shorthand) >= 2:
            self.issues.warning(
                "unbound-findings",
                "several 'findings.*' conditions under one 'all' may be satisfied by different findings; "
                "use 'any_finding: {all: [...]}' to require one finding that satisfies them all",
                items.ipos(shorthand[1]))

    def _node(self, node: Any, pos: Pos, scope: str, depth: int) -> Node | None:
        if depth > MAX_DEPTH:
            self.issues.error("too-deep", f"conditions nested deeper than {MAX_DEPTH} levels", pos)
            return None
        if not isinstance(node, LMap):
            self.issues.error("condition-type", "a condition must be a mapping such as {field: app, equals: x} or {all: [...]}", pos)
            return None
        combos = [k for k in node if k in COMBINATORS]
        if combos:
            if len(node) > 1:
                other = next(k for k in node if k != combos[0])
                self.issues.error("unknown-key", f"{combos[0]!r} must stand alone in its condition; found also {other!r}", node.kpos(other))
                return None
            return self._combinator(node, combos[0], scope, depth)
        if "field" not in node:
            first = next(iter(node), None)
            if first is None:
                self.issues.error("empty-condition", "an empty condition", pos)
            else:
                hint = did_you_mean(first, COMBINATORS + ("field",))
                if not hint and (event_field(first) is not None or first.startswith("findings.")):
                    hint = f" (a condition is written {{field: {first}, <operator>: value}})"
                self.issues.error("unknown-key", f"unknown condition key {first!r}{hint}; expected 'field' or one of {', '.join(COMBINATORS)}", node.kpos(first))
            return None
        return self._leaf(node, scope)

    def _combinator(self, node: LMap, key: str, scope: str, depth: int) -> Node | None:
        value, vpos = node[key], node.vpos(key)
        if key in ("all", "any"):
            if not isinstance(value, LList):
                self.issues.error("condition-type", f"'{key}' takes a list of conditions", vpos)
                return None
            if not value:
                self.issues.error("empty-condition", f"'{key}' with no conditions", vpos)
                return None
            children = [self._node(item, value.ipos(i), scope, depth + 1) for i, item in enumerate(value)]
            if any(c is None for c in children):
                return None
            if key == "all":
                self._warn_unbound(children, value, node.pos)
                return All(tuple(children), node.pos)  # type: ignore[arg-type]
            return Any_(tuple(children), node.pos)  # type: ignore[arg-type]
        if key == "not":
            child = self._list_all(value, vpos, scope, depth) if isinstance(value, LList) else self._node(value, vpos, scope, depth + 1)
            return Not(child, node.pos) if child is not None else None
        if key == "any_finding":
            if scope == "finding":
                self.issues.error("nested-any-finding", "'any_finding' inside 'any_finding'", node.kpos(key))
                return None
            child = self._list_all(value, vpos, "finding", depth) if isinstance(value, LList) else self._node(value, vpos, "finding", depth + 1)
            return AnyFinding(child, node.pos) if child is not None else None
        # param_defined
        if scope == "finding":
            self.issues.error("wrong-scope", "'param_defined' tests the event, not a finding", node.kpos(key))
            return None
        param = self._param_named(value, vpos)
        return ParamDefined(param, node.pos) if param is not None else None

    def _param_named(self, name: object, pos: Pos) -> Param | None:
        if not isinstance(name, str):
            self.issues.error("operand-type", "a param name must be a string", pos)
            return None
        param = self.params.get(name)
        if param is None:
            self.issues.error("unknown-param", f"unknown param {name!r}{did_you_mean(name, self.params)}", pos)
        return param

    # -- leaves -----------------------------------------------------------------------------------

    def _field(self, node: LMap, scope: str) -> tuple[FieldSpec, bool] | None:
        name, pos = node["field"], node.vpos("field")
        if not isinstance(name, str):
            self.issues.error("unknown-field", "'field' must be a field path such as model.name", pos)
            return None
        if scope == "finding":
            spec = FINDING_FIELDS.get(name.removeprefix("findings."))
            if spec is None:
                hint = did_you_mean(name, list(FINDING_FIELDS))
                self.issues.error("unknown-field", f"unknown finding field {name!r}{hint}; inside any_finding use one of {', '.join(FINDING_FIELDS)}", pos)
                return None
            return spec, True
        if name.startswith("findings."):
            spec = FINDING_FIELDS.get(name[len("findings."):])
            if spec is None:
                hint = did_you_mean(name, [f"findings.{n}" for n in FINDING_FIELDS])
                self.issues.error("unknown-field", f"unknown field {name!r}{hint}", pos)
                return None
            return spec, True
        spec = event_field(name)
        if spec is None:
            candidates = field_names()
            head, _, tail = name.partition(".")
            if tail:
                candidates += [f"labels.{tail}", f"tool.arguments.{tail}"]
            self.issues.error("unknown-field", f"unknown field {name!r}{did_you_mean(name, candidates)}", pos)
            return None
        return spec, False

    def _leaf(self, node: LMap, scope: str) -> Node | None:
        bad = False
        operators = []
        for key in node:
            if key == "field" or key in ops.MODIFIERS:
                continue
            if key in ops.OPERATORS:
                operators.append(key)
                continue
            hint = did_you_mean(key, list(ops.OPERATORS) + list(ops.MODIFIERS))
            what = "key" if hint and hint.split("'")[1] in ops.MODIFIERS else "operator"
            self.issues.error(f"unknown-{what}", f"unknown {what} {key!r}{hint}", node.kpos(key))
            bad = True
        resolved = self._field(node, scope)
        if not operators:
            if not bad:
                self.issues.error("no-operator", f"condition on {node['field']!r} has no operator (one of {', '.join(ops.OPERATORS)})", node.pos)
            return None
        if len(operators) > 1:
            self.issues.error("many-operators", f"one operator per condition, found {', '.join(operators)}; combine conditions with 'all'", node.kpos(operators[1]))
            return None
        if resolved is None or bad:
            return None
        spec, in_finding = resolved
        op = ops.OPERATORS[operators[0]]
        leaf = self._compile_leaf(node, spec, op, in_finding)
        if leaf is None:
            return None
        if in_finding and scope == "event":  # findings.<f> shorthand
            return AnyFinding(leaf, node.pos)
        return leaf

    def _modifiers(self, node: LMap, spec: FieldSpec, op: ops.OpSpec) -> tuple[bool, str | None] | None:
        ok = True
        ignore_case = node.get("ignore_case", False)
        if "ignore_case" in node:
            if not isinstance(ignore_case, bool):
                self.issues.error("operand-type", "'ignore_case' must be true or false", node.vpos("ignore_case"))
                ok = False
            elif spec.type not in ("str", "any") or op.operand in ("number", "bool"):
                self.issues.error("bad-modifier", f"'ignore_case' applies to text comparisons, not to {op.name} on {spec.name}", node.kpos("ignore_case"))
                ok = False
        match = node.get("match")
        if "match" in node:
            if op.name not in ("equals", "not_equals", "in", "not_in"):
                self.issues.error("bad-modifier", f"'match' applies to equals, not_equals, in and not_in, not to {op.name}", node.kpos("match"))
                ok = False
            elif match not in ops.MATCH_MODES:
                self.issues.error("bad-modifier", f"unknown match mode {match!r}{did_you_mean(match, ops.MATCH_MODES)}; one of {', '.join(ops.MATCH_MODES)}", node.vpos("match"))
                ok = False
            elif spec.type not in ("str", "any"):
                self.issues.error("bad-modifier", f"'match: {match}' compares text; {spec.name} is a {_TYPE_WORDS[spec.type]}", node.kpos("match"))
                ok = False
        return (bool(ignore_case), match) if ok else None

    def _compile_leaf(self, node: LMap, spec: FieldSpec, op: ops.OpSpec, in_finding: bool) -> Leaf | None:
        opos = node.vpos(op.name)
        if spec.type not in op.types:
            self.issues.error("operator-type", f"operator {op.name!r} does not apply to {spec.name}, a {_TYPE_WORDS[spec.type]}", node.kpos(op.name))
            return None
        mods = self._modifiers(node, spec, op)
        if mods is None:
            return None
        ignore_case, match = mods
        raw = node[op.name]
        common = {"field": spec, "op": op.name, "pos": node.pos, "finding_scope": in_finding}

        if op.operand == "bool":
            if not isinstance(raw, bool):
                self.issues.error("operand-type", f"'{op.name}' takes true or false", opos)
                return None
            return Leaf(operand=raw, test=None, param=None, **common)

        if op.operand == "number":
            if isinstance(raw, LMap):
                param = self._param_operand(raw, opos, "number")
                if param is None:
                    return None
                ptest = self._param_test(param, op.name, "", False)
                return Leaf(operand=ParamRef(f"param {param.name}"), test=None, param=ptest, **common)
            if not ops.is_number(raw):
                self.issues.error("operand-type", f"'{op.name}' takes a number or {{param: name}}", opos)
                return None
            return Leaf(operand=raw, test=ops.compare_test(op.name, raw), param=None, **common)

        if op.operand == "regex":
            pattern = _text(node, op.name)
            if pattern is None:
                self.issues.error("operand-type", "'regex' takes a pattern string", opos)
                return None
            problem = ops.regex_problem(pattern)
            if problem:
                self.issues.error("bad-regex", problem, opos)
                return None
            return Leaf(operand=pattern, test=ops.regex_test(pattern, ignore_case), param=None, **common)

        if op.operand == "strings":
            needles = _texts(node, op.name)
            if needles is None:
                self.issues.error("operand-type", f"'{op.name}' takes a string or a list of strings", opos)
                return None
            test = ops.string_test(op.name, needles, ignore_case)
            return Leaf(operand=needles if len(needles) > 1 else needles[0], test=test, param=None, **common)

        # scalar (equals, not_equals) and list (in, not_in)
        if op.operand == "list" and isinstance(raw, LMap):
            param = self._param_operand(raw, opos, "list")
            if param is None:
                return None
            mode = match or param.match
            ptest = self._param_test(param, op.name, mode, ignore_case)
            return Leaf(operand=ParamRef(f"param {param.name}"), test=None, param=ptest, **common)
        if op.operand == "list":
            if not isinstance(raw, LList):
                self.issues.error("operand-type", f"'{op.name}' takes a list of values or {{param: name}}", opos)
                return None
            if not raw:
                self.issues.error("operand-type", f"'{op.name}' with an empty list", opos)
                return None
            values = [self._scalar(raw, i, spec, raw.ipos(i)) for i in range(len(raw))]
        else:
            values = [self._scalar(node, op.name, spec, opos)]
        if any(v is _BAD for v in values):
            return None
        mode = match or "exact"
        if not self._choices_ok(spec, values, mode, node, op, raw):
            return None
        test = ops.membership(values, mode, ignore_case)
        if op.negated:
            positive = test
            test = lambda value, _t=positive: not _t(value)  # noqa: E731
        operand: object = values if op.operand == "list" else values[0]
        return Leaf(operand=operand, test=test, param=None, **common)

    def _scalar(self, container: Any, key: Any, spec: FieldSpec, pos: Pos) -> object:
        value = container[key]
        if isinstance(value, (LMap, LList)) or value is None:
            self.issues.error("operand-type", f"expected a single {_VALUE_WORDS[spec.type]} for {spec.name}", pos)
            return _BAD
        if spec.type == "str":
            text = value if isinstance(value, str) else container.raw.get(key)
            if text is None:
                self.issues.error("operand-type", f"expected text for {spec.name}, got {value!r}", pos)
                return _BAD
            return text
        if spec.type == "num" and not ops.is_number(value):
            self.issues.error("operand-type", f"expected a number for {spec.name}, got {value!r}", pos)
            return _BAD
        if spec.type == "bool" and not isinstance(value, bool):
            self.issues.error("operand-type", f"expected true or false for {spec.name}, got {value!r}", pos)
            return _BAD
        if not isinstance(value, (str, int, float, bool)):
            text = container.raw.get(key)
            if text is None:
                self.issues.error("operand-type", f"expected text, a number or true/false, got {value!r}", pos)
                return _BAD
            return text
        return value

    def _choices_ok(self, spec: FieldSpec, values: list[object], mode: str, node: LMap, op: ops.OpSpec, raw: Any) -> bool:
        if not spec.choices or mode != "exact":
            return True
        ok = True
        for i, v in enumerate(values):
            if v not in spec.choices:
                pos = raw.ipos(i) if isinstance(raw, LList) else node.vpos(op.name)
                self.issues.error("bad-value", f"{spec.name} is never {v!r}{did_you_mean(v, spec.choices)}; it is one of {', '.join(spec.choices)}", pos)
                ok = False
        return ok

    def _param_operand(self, raw: LMap, pos: Pos, kind: str) -> Param | None:
        if list(raw) != ["param"]:
            extra = next((k for k in raw if k != "param"), None)
            where = raw.kpos(extra) if extra is not None else pos
            self.issues.error("operand-type", f"a param operand is written {{param: name}}{did_you_mean(extra, ['param'])}", where)
            return None
        param = self._param_named(raw["param"], raw.vpos("param"))
        if param is None:
            return None
        if param.kind != kind:
            want = "a list" if kind == "list" else "a number"
            self.issues.error("param-type", f"param {param.name!r} holds {'lists' if param.kind == 'list' else 'numbers'}; this operator needs {want}", raw.vpos("param"))
            return None
        return param

    def _param_test(self, param: Param, op: str, mode: str, ignore_case: bool) -> ParamTest:
        key = (param.name, op, mode, ignore_case)
        cached = self._param_tests.get(key)
        if cached is None:
            if op in ops.COMPARE:
                cached = ParamTest.build(param, lambda bound: ops.compare_test(op, bound))
            else:
                negated = ops.OPERATORS[op].negated

                def factory(values: list[object]) -> ops.Test:
                    test = ops.membership(values, mode, ignore_case)
                    return (lambda value: not test(value)) if negated else test
                cached = ParamTest.build(param, factory)
            self._param_tests[key] = cached
        return cached


_BAD = object()
_TYPE_WORDS = {"str": "text field", "num": "number", "bool": "true/false field", "any": "value"}
_VALUE_WORDS = {"str": "text value", "num": "number", "bool": "true or false", "any": "value"}


def _text(node: LMap | LList, key: Any) -> str | None:
    value = node[key]
    if isinstance(value, str):
        return value
    if isinstance(value, (LMap, LList)) or value is None:
        return None
    return node.raw.get(key)


def _texts(node: LMap, key: str) -> list[str] | None:
    value = node[key]
    if isinstance(value, LList):
        out = [_text(value, i) for i in range(len(value))]
        return out if out and all(v is not None and v != "" for v in out) else None  # type: ignore[misc]
    text = _text(node, key)
    return [text] if text else None
