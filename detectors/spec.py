"""What a content detector declares: data, not code paths.

A detector is a frozen description — id, category, severity, tags, patterns with base scores, named
false-positive filters, context words and optional hooks. The engine (``detectors.engine``) compiles
the patterns of every selected detector into one hyperscan database; ``detectors.hits`` applies the
hooks to each match. Detector modules therefore never run regexes themselves.

Patterns are hyperscan syntax (PCRE subset, bytes, no look-around, no back-references) and are compiled
with ``HS_FLAG_SOM_LEFTMOST`` so the match start is known, and ``HS_FLAG_MULTILINE`` so ``^``/``$``
mean line (and field) boundaries — fields of one event are scanned together, separated by newlines. Two consequences shape every pattern:
hyperscan reports *every* end offset of a match (the engine keeps the longest per start), and SOM
refuses large bounded repeats such as ``.{0,80}`` — use unbounded classes or word gaps
``(?:\\s+\\S+){0,12}`` instead. ``tests/test_detectors_conformance.py`` compiles them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from schemas.finding import Category, Severity

if TYPE_CHECKING:  # pragma: no cover
    from detectors.config import ScannerConfig
    from detectors.hits import Hit

Placement = Literal["direct", "indirect", "system", "output", "tool_args"]
"""Where a text sits in the conversation; it decides how much a match means.

- ``direct``: written by the user (user turn of a prompt).
- ``indirect``: entered the context from elsewhere — tool results, retrieved documents, messages of
  other agents. Text addressing the AI here is the indirect prompt-injection signal.
- ``system``: system/developer instructions (trusted; injection heuristics are off here).
- ``output``: written by the model (completions).
- ``tool_args``: arguments of a tool call the model asked for (what the agent is about to do).
"""

PLACEMENTS: tuple[str, ...] = ("direct", "indirect", "system", "output", "tool_args")
ALL_PLACEMENTS: Mapping[str, float] = {p: 1.0 for p in PLACEMENTS}

# validate(text, start, end, config) -> score factor (1.0 confirmed, < 1 weaker) or None (reject).
Validator = Callable[[str, int, int, "ScannerConfig"], "float | None"]
# locate(text, start, end) -> (start, end) of the sensitive value inside the match (masked and hashed).
Locator = Callable[[str, int, int], "tuple[int, int]"]
Masker = Callable[[str], str]
# combine(hits of one field, scope {app, "session:<id>"}, config) -> (score, hits shown as evidence)
Combiner = Callable[[list["Hit"], frozenset[str], "ScannerConfig"], "tuple[float, list[Hit]]"]


@dataclass(frozen=True, eq=False)
class Pattern:
    """One hyperscan expression with the score a match earns before hooks and placement weights.

    ``extend`` is an optional Python regex matched (anchored) at the hyperscan match end to extend a
    short anchor such as ``https?://`` to the whole token — one small check per match instead of a
    pattern that reports a match at every character of a long token.

    ``extend_left`` does the same towards the start: the match grows left over these characters (at
    most ``hits.MAX_LEFT``). Hyperscan is slow on patterns that *begin* with a repeated class (every
    word is a candidate start), so ``user@example.org`` is anchored on ``x@example.org`` and grown left.

    ``som=False`` compiles without start-of-match tracking, which is what makes phrase patterns with
    word gaps expensive to compile (seconds for a few dozen); the engine then recovers the start of
    each (rare) match with the same expression in Python, anchored at the match end, within
    ``engine.START_WINDOW`` characters. Use it for heuristics whose exact start is cosmetic.
    """

    name: str
    regex: str
    score: float
    caseless: bool = False
    extend: re.Pattern[str] | None = None
    extend_left: frozenset[str] = frozenset()
    som: bool = True


@dataclass(frozen=True, eq=False)
class Filter:
    """A named false-positive filter: ``check(text, start, end)`` True means "probably not real".

    ``factor`` multiplies the score when the filter fires (0 drops the match). Scanners count every
    firing under ``filtered:<name>`` so suppression is never silent.

    ``template``: the filter recognises a stand-in value (``EXAMPLE``, ``xxxx``, ``abcd1234abcd1234``).
    On a detector with ``placeholder_as`` the match is then reported under that detector (a credential
    *template*, severity info) instead of being dropped.
    """

    name: str
    check: Callable[[str, int, int], bool]
    factor: float = 0.0
    template: bool = False


@dataclass(frozen=True, eq=False)
class Detector:
    """Declaration of one content detector (see module docstring)."""

    id: str
    category: Category
    severity: Severity
    title: str
    description: str
    patterns: tuple[Pattern, ...]
    tags: tuple[str, ...] = ()
    placements: Mapping[str, float] = field(default_factory=lambda: dict(ALL_PLACEMENTS))
    placement_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    validate: Validator | None = None
    validation: str = ""  # what ``validate`` checks, in words, for evidence ("Luhn checksum")
    filters: tuple[Filter, ...] = ()
    context: tuple[str, ...] = ()  # lower-case words that raise the score when seen near a match
    context_boost: float = 0.25
    context_window: int = 48  # characters before the match searched for context words
    locate: Locator | None = None
    mask: Masker | None = None  # None: the matched text is shown (non-sensitive detectors only)
    sensitive: bool = True  # evidence holds only a hash and a masked excerpt
    min_score: float = 0.5
    combine: Literal["max", "noisy_or"] | Combiner = "max"  # hits of one field -> finding score
    priority: int = 0  # on overlapping matches of one overlap group, the higher priority wins
    overlap_group: str = ""  # defaults to the category
    resolve_overlaps: bool = True
    dynamic: Callable[["ScannerConfig"], tuple[Pattern, ...]] | None = None  # patterns from config
    placeholder_as: "Detector | None" = None  # where a ``template`` filter's match is reported (see Filter)
    enforcement: str = ""  # what an enforcing control would have done; "" = by category and placement

    @property
    def group(self) -> str:
        return self.overlap_group or str(self.category.value)

    def patterns_for(self, config: "ScannerConfig") -> tuple[Pattern, ...]:
        """Static patterns plus those built from the scanner configuration (canaries, prompts)."""
        if self.dynamic is None:
            return self.patterns
        return self.patterns + self.dynamic(config)
