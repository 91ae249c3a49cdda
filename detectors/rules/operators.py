"""Condition operators, looked up in one explicit dict, and the value matchers they compile to.

Every operator is compiled once, when the rule file is loaded, into a small callable ``test(value)``
applied to one field value; the condition node handles absent and multi-valued fields (see
``conditions.Leaf``). String comparisons can ignore case (``ignore_case: true``); ``in``/``not_in``/
``equals``/``not_equals`` compare by a ``match`` mode:

- ``exact`` (default): equality;
- ``glob``: shell patterns (``gpt-4o*``, ``claude-?-*``) — no regex backtracking;
- ``prefix``: the value starts with an entry;
- ``host``: the value (a host name or URL) is the entry or a subdomain of it; entries may be globs
  (``bedrock-runtime.*.amazonaws.com``).

``regex`` uses Python ``re`` (``search``) on one field. Patterns are capped in length, refused when a
quantified group is itself quantified (``(a+)+``, the classic catastrophic-backtracking shape), and
applied to at most ``MAX_REGEX_INPUT`` characters of the value.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

MATCH_MODES = ("exact", "glob", "prefix", "host")
MAX_REGEX_CHARS = 512
MAX_REGEX_INPUT = 65_536
HOST_CACHE = 4096  # distinct endpoint strings remembered by normalize_host (a pack sees few)
HOST_CACHE_CHARS = 512  # longer values are normalised every time: the cache stays under ~2 MB
# a group holding a repeat, itself repeated without bound: (a+)+, (\w+\s?)*, (?:x*y){2,}
NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d+,\})")

Test = Callable[[object], bool]


@dataclass(frozen=True, slots=True)
class OpSpec:
    """How an operator is written and what it accepts.

    ``types``: field types it applies to. ``operand``: ``scalar`` (one value of the field's type),
    ``list`` (a list of them or ``{param: name}``), ``strings`` (a string or a list of strings, any of
    which may match), ``regex``, ``number`` (a number or ``{param: name}``) or ``bool``.
    """

    name: str
    types: frozenset[str]
    operand: str
    negated: bool = False
    doc: str = ""


_ANY = frozenset({"str", "num", "bool", "any"})
_STR = frozenset({"str", "any"})
_NUM = frozenset({"num", "any"})

def registry(items: Iterable[Any]) -> MappingProxyType:
    """An explicit, read-only name → item registry; a duplicate name is a programming error."""
    out: dict[str, Any] = {}
    for item in items:
        if item.name in out:
            raise ValueError(f"duplicate registry name {item.name!r}")
        out[item.name] = item
    return MappingProxyType(out)


OPERATORS = registry((
    OpSpec("equals", _ANY, "scalar", doc="the value equals the operand"),
    OpSpec("not_equals", _ANY, "scalar", negated=True, doc="the value differs from the operand"),
    OpSpec("in", _ANY, "list", doc="the value is one of a list (or a param)"),
    OpSpec("not_in", _ANY, "list", negated=True, doc="the value is none of a list (or a param): allow-lists"),
    OpSpec("contains", _STR, "strings", doc="the value contains a substring"),
    OpSpec("startswith", _STR, "strings", doc="the value starts with a string"),
    OpSpec("endswith", _STR, "strings", doc="the value ends with a string"),
    OpSpec("regex", _STR, "regex", doc="a Python regular expression is found in the value"),
    OpSpec("gt", _NUM, "number", doc="value > operand"),
    OpSpec("gte", _NUM, "number", doc="value >= operand"),
    OpSpec("lt", _NUM, "number", doc="value < operand"),
    OpSpec("lte", _NUM, "number", doc="value <= operand"),
    OpSpec("exists", _ANY, "bool", doc="the field is present (true) or absent (false)"),
))

MODIFIERS = ("ignore_case", "match")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- matchers for equals / in -------------------------------------------------------------------------


def normalize_host(value: str) -> str:
    """``https://API.example.com:443/v1`` → ``api.example.com``; a bare host stays itself.

    Cached (bounded in entries and in size): ``urlsplit`` dominates a host test, and events repeat the
    same few endpoints; a long value (any text a rule points a host test at) is not kept.
    """
    return _normalize_host_cached(value) if len(value) <= HOST_CACHE_CHARS else _normalize_host(value)


def _normalize_host(value: str) -> str:
    text = value.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text).hostname
    except ValueError:
        host = None
    return (host or text).lower().rstrip(".")


_normalize_host_cached = lru_cache(maxsize=HOST_CACHE)(_normalize_host)


def _globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(parts)) if parts else None


def set_matcher(values: Iterable[object], mode: str, ignore_case: bool) -> Test:
    """A test for "value is one of the strings in ``values``" under a match mode (module docstring)."""
    strings = [v for v in values if isinstance(v, str)]
    if ignore_case or mode == "host":
        strings = [s.lower() for s in strings]
    if mode == "exact":
        exact = frozenset(strings)
        return lambda value: isinstance(value, str) and (value.lower() if ignore_case else value) in exact
    if mode == "prefix":
        prefixes = tuple(strings)
        return lambda value: isinstance(value, str) and (value.lower() if ignore_case else value).startswith(prefixes)
    if mode == "glob":
        rx = _globs(strings)
        return lambda value: isinstance(value, str) and rx is not None and rx.match(value.lower() if ignore_case else value) is not None
    # host: exact host, any subdomain of it, or a glob over the host
    names = [s[2:] if s.startswith("*.") and not any(c in s[2:] for c in "*?[") else s for s in strings]
    plain_hosts = frozenset(n.rstrip(".") for n in names if not any(c in n for c in "*?["))
    suffixes = tuple("." + h for h in plain_hosts)
    rx = _globs(n for n in names if any(c in n for c in "*?["))

    def host_test(value: object) -> bool:
        if not isinstance(value, str):
            return False
        host = normalize_host(value)
        return host in plain_hosts or host.endswith(suffixes) or (rx is not None and rx.match(host) is not None)
    return host_test


def _scalar_equals(expected: object) -> Test:
    """Equality that does not confuse True with 1 (YAML and Python both would)."""
    if isinstance(expected, bool):
        return lambda value: isinstance(value, bool) and value is expected
    if is_number(expected):
        return lambda value: is_number(value) and value == expected
    return lambda value: value == expected


def membership(values: list[object], mode: str, ignore_case: bool) -> Test:
    if all(isinstance(v, str) for v in values) or mode != "exact":
        return set_matcher(values, mode, ignore_case)
    tests = [set_matcher([v], mode, ignore_case) if isinstance(v, str) else _scalar_equals(v) for v in values]
    return lambda value: any(t(value) for t in tests)


# -- string, regex and number tests ---------------------------------------------------------------------


def string_test(op: str, needles: list[str], ignore_case: bool) -> Test:
    subs = tuple(n.lower() for n in needles) if ignore_case else tuple(needles)

    def prep(value: object) -> str | None:
        if not isinstance(value, str):
            return None
        return value.lower() if ignore_case else value

    if op == "contains":
        def contains(value: object) -> bool:
            v = prep(value)
            return v is not None and any(s in v for s in subs)
        return contains
    if op == "startswith":
        return lambda value: (v := prep(value)) is not None and v.startswith(subs)
    return lambda value: (v := prep(value)) is not None and v.endswith(subs)


def regex_problem(pattern: str) -> str | None:
    """Why a regex operand is refused, or ``None``."""
    if len(pattern) > MAX_REGEX_CHARS:
        return f"regex is {len(pattern)} characters long, more than {MAX_REGEX_CHARS}"
    if NESTED_QUANTIFIER.search(pattern):
        return "regex repeats a group that itself repeats (like '(a+)+'): catastrophic backtracking risk"
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"regex does not compile: {exc}"
    return None


def regex_test(pattern: str, ignore_case: bool) -> Test:
    rx = re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    return lambda value: isinstance(value, str) and rx.search(value, 0, MAX_REGEX_INPUT) is not None


COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def compare_test(op: str, bound: float) -> Test:
    cmp = COMPARE[op]
    return lambda value: is_number(value) and cmp(value, bound)  # type: ignore[arg-type]
