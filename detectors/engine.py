"""One hyperscan database for every pattern of every selected detector, and the raw scan over it.

Hyperscan runs all expressions in a single pass over the bytes, so the cost of a scan barely depends on
the number of detectors; the Python callback runs only on matches. Expression id ``i`` is
``entries[i]`` — the (detector, pattern) it came from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import hyperscan

from detectors.spec import Detector, Pattern

START_WINDOW = 512  # characters searched back from the end of a match without start-of-match


_NONE: list = []  # shared empty result (never mutated by callers)


class PatternError(ValueError):
    """A declared pattern hyperscan refuses; the message names the detector and the pattern."""


class _Collector:
    """Per-scan match sink: a cap per pattern (a flood of one pattern must not blind the others) and
    a hard cap on everything (after which hyperscan stops).

    Hyperscan reports every end offset of a match, so a 2 KB token is ~2,000 reports with one start. They
    are folded into one entry (its end grows: same start, or for patterns without start-of-match the
    next end offset) before any cap is applied: the caps count matches, not end offsets, and a long token
    is never cut at the cap (a 1 KB JWT used to be validated, and rejected, on its first 270 characters).
    """

    __slots__ = ("out", "counts", "per_pattern", "limit", "capped", "som", "last")

    def __init__(self, per_pattern: int, limit: int, som: tuple[bool, ...]) -> None:
        self.out: list[tuple[int, int, int]] = []
        self.counts: dict[int, int] = {}
        self.per_pattern = per_pattern
        self.limit = limit
        self.capped = 0
        self.som = som
        self.last: dict[int, tuple[int, int, int]] = {}  # pattern id -> (index in ``out`` or -1 if capped, start, end)


def _collect(pid: int, start: int, end: int, _flags: int, c: _Collector) -> bool | None:
    last = c.last.get(pid)
    if last is not None:
        i, s0, e0 = last
        # the same match, longer: same start, or (no start known) the next end offset of a growing token
        if (s0 == start) if c.som[pid] else (e0 == end - 1):
            c.last[pid] = (i, start, end)
            if i >= 0:
                c.out[i] = (pid, start, end)
            return None
    n = c.counts.get(pid, 0) + 1
    c.counts[pid] = n
    if n > c.per_pattern:
        c.capped += 1
        c.last[pid] = (-1, start, end)  # its longer ends are the same capped match
        return None
    c.last[pid] = (len(c.out), start, end)
    c.out.append((pid, start, end))
    if len(c.out) >= c.limit:
        return True  # stop scanning: hyperscan raises ScanTerminated
    return None


def _flags(pattern: Pattern) -> int:
    flags = hyperscan.HS_FLAG_MULTILINE
    if pattern.som:
        flags |= hyperscan.HS_FLAG_SOM_LEFTMOST
    if pattern.caseless:
        flags |= hyperscan.HS_FLAG_CASELESS
    return flags


def _start_regex(pattern: Pattern) -> re.Pattern[str]:
    """The pattern in Python, anchored at its end: ``search(text, lo, end)`` finds the leftmost start."""
    flags = re.MULTILINE | re.ASCII | (re.IGNORECASE if pattern.caseless else 0)
    return re.compile(f"(?:{pattern.regex})\\Z", flags)


def compile_one(detector: Detector, pattern: Pattern) -> None:
    """Compile a single pattern, raising PatternError with its name (used to explain a failed build)."""
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[pattern.regex.encode("utf-8")], ids=[0], elements=1, flags=[_flags(pattern)])
    except hyperscan.error as exc:
        raise PatternError(
            f"pattern {pattern.name!r} of detector {detector.id!r} does not compile in hyperscan: {exc}"
        ) from None


class Engine:
    """Compiled patterns of the selected detectors; ``matches`` returns raw (id, start, end) byte spans."""

    def __init__(self, entries: Sequence[tuple[Detector, Pattern]]) -> None:
        self.entries: tuple[tuple[Detector, Pattern], ...] = tuple(entries)
        self.som: tuple[bool, ...] = tuple(p.som for _, p in self.entries)
        self.detector_ids: frozenset[str] = frozenset(d.id for d, _ in self.entries)
        self._start: dict[int, re.Pattern[str]] = {
            i: _start_regex(p) for i, (_, p) in enumerate(self.entries) if not p.som
        }
        self._db: hyperscan.Database | None = None
        if not self.entries:
            return
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        try:
            db.compile(
                expressions=[p.regex.encode("utf-8") for _, p in self.entries],
                ids=list(range(len(self.entries))),
                elements=len(self.entries),
                flags=[_flags(p) for _, p in self.entries],
            )
        except hyperscan.error:
            for det, pat in self.entries:  # name the culprit
                compile_one(det, pat)
            raise
        self._db = db

    def start_of(self, pid: int, text: str, end: int) -> int:
        """Start of a match of a pattern compiled without start-of-match, ending at ``end``."""
        lo = max(0, end - START_WINDOW)
        m = self._start[pid].search(text, lo, end)
        if m is not None:
            return m.start()
        line = text.rfind("\n", lo, end)  # Python and hyperscan disagree (rare): the line is the span
        return line + 1 if line != -1 else lo

    def matches(self, data: bytes, limit: int, per_pattern: int) -> tuple[list[tuple[int, int, int]], int, bool]:
        """Matches in ``data``: ``(matches, matches over the per-pattern cap, stopped at limit)``.

        Matches are ``(pattern id, start, end)`` in byte offsets; hyperscan reports every end
        offset of a match, so callers keep the longest per start. Patterns compiled without
        start-of-match report start 0: callers use ``start_of``.
        """
        if self._db is None or not data:
            return _NONE, 0, False
        c = _Collector(per_pattern, limit, self.som)
        try:
            self._db.scan(data, match_event_handler=_collect, context=c)
        except hyperscan.ScanTerminated:
            return c.out, c.capped, True
        return (c.out or _NONE), c.capped, False
