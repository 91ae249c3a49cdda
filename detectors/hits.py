"""Raw hyperscan matches → scored, validated, de-duplicated hits.

Order of work per match (cheap first): placement weight (skip detectors that do not apply here), byte →
character offsets, ``extend``, ``validate``, ``locate``, named filters, context words, score. Then
overlapping hits of one overlap group keep the best (priority, score, length). A Hit never holds the raw
value of a sensitive match: only its hash and a masked excerpt.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from detectors import masking
from detectors.config import ScannerConfig
from detectors.engine import Engine
from detectors.fields import Field
from detectors.filters import context_word
from detectors.spec import Detector, Pattern


MAX_LEFT = 128  # characters a match may grow leftwards (Pattern.extend_left)


@dataclass(frozen=True, slots=True)
class Hit:
    """One confirmed match: where, what, how strong, and why (``notes``)."""

    detector: str
    pattern: str
    field: str
    placement: str
    start: int  # character offsets of the value (what is hashed/masked) in the original field value
    end: int
    score: float
    excerpt: str  # masked for sensitive detectors, the matched text otherwise
    sha256: str | None  # of the matched value (sensitive detectors only)
    notes: tuple[str, ...] = ()

    def evidence(self) -> dict[str, object]:
        item: dict[str, object] = {
            "kind": "match", "field": self.field, "placement": self.placement, "pattern": self.pattern,
            "span": [self.start, self.end], "score": round(self.score, 3),
        }
        if self.sha256 is not None:
            item["masked"] = self.excerpt
            item["sha256"] = self.sha256
        else:
            item["excerpt"] = self.excerpt
        if self.notes:
            item["notes"] = list(self.notes)
        return item


@dataclass(slots=True)
class _Candidate:
    detector: Detector
    pattern: Pattern
    field: int
    start: int
    end: int
    vstart: int
    vend: int
    score: float
    notes: list[str]


def _decoded_len(chunk: bytes) -> int:
    try:
        return len(chunk.decode("utf-8", "surrogatepass"))
    except UnicodeDecodeError:
        return len(chunk.decode("utf-8", "ignore"))


class _Offsets:
    """Byte → character offsets of one non-ASCII field, converted in one forward pass (O(field))."""

    __slots__ = ("data", "map")

    def __init__(self, data: bytes, positions: list[int]) -> None:
        self.data = data
        self.map: dict[int, int] = {}
        last_b = last_c = 0
        for pos in sorted(set(positions)):
            last_c += _decoded_len(data[last_b:pos])
            last_b = pos
            self.map[pos] = last_c

    def __getitem__(self, pos: int) -> int:
        return self.map[pos]


def candidates(
    raw: list[tuple[int, int, int]],
    engine: Engine,
    fields: Sequence[Field],
    encoded: Sequence[bytes],
    starts: Sequence[int],
    config: ScannerConfig,
    stats: Counter,
) -> list[_Candidate]:
    """Validated, scored candidates (before overlap resolution) from raw byte matches."""
    entries, som = engine.entries, engine.som
    longest: dict[tuple[int, int], int] = {}
    for pid, s, e in raw:
        if not som[pid]:
            # No start known: each end is its own match (the engine already folded the consecutive ends
            # of a token growing char by char into its last one: engine._collect).
            longest[(pid, -e)] = e
        elif longest.get((pid, s), -1) < e:
            longest[(pid, s)] = e
    out: list[_Candidate] = []
    one = len(fields) == 1
    offsets: dict[int, _Offsets] = {}
    if any(len(b) != len(f.text) for b, f in zip(encoded, fields)):
        offsets = _non_ascii_offsets(longest, fields, encoded, starts)
    for (pid, bs), be in sorted(longest.items()):
        det, pat = entries[pid]
        if bs < 0:
            bs = be - 1  # locates the field; the real start is recovered below
        fi = 0 if one else bisect_right(starts, bs) - 1
        field = fields[fi]
        weight = det.placements.get(field.placement, 0.0)
        if not weight:
            continue
        data = encoded[fi]
        ls, le = bs - starts[fi], be - starts[fi]
        if le > len(data):
            continue  # ran across the field separator
        text = field.text
        if len(data) == len(text):  # ASCII: bytes are characters
            cs, ce = ls, le
        else:
            conv = offsets[fi]
            cs, ce = conv[max(ls, 0)], conv[le]
        if not som[pid]:
            cs = engine.start_of(pid, text, ce)
        if pat.extend_left:
            stop = max(0, cs - MAX_LEFT)
            while cs > stop and text[cs - 1] in pat.extend_left:
                cs -= 1
        if pat.extend is not None:
            m = pat.extend.match(text, ce)
            if m:
                ce = m.end()
        factor = 1.0
        if det.validate is not None:
            verdict = det.validate(text, cs, ce, config)
            if verdict is None:
                stats[f"rejected:{det.id}"] += 1
                continue
            factor = verdict
        vs, ve = det.locate(text, cs, ce) if det.locate is not None else (cs, ce)
        notes: list[str] = []
        if det.validation and det.validate is not None:
            notes.append(f"validated: {det.validation}")
        for flt in det.filters:
            if flt.check(text, vs, ve):
                stats[f"filtered:{flt.name}"] += 1
                template = det.placeholder_as
                if flt.template and template is not None and template.id in engine.detector_ids:
                    stats[f"template:{det.id}"] += 1
                    notes = [f"filter {flt.name}: a stand-in value in the format of {det.id}, reported as a placeholder"]
                    pat, det, factor = template_pattern(det, pat), template, 1.0
                    break
                factor *= flt.factor
                notes.append(f"filter {flt.name}: x{flt.factor:g}")
                if not factor:
                    break
        if not factor:
            continue
        score = pat.score * factor * weight
        if det.context:
            word = context_word(text, cs, ce, det.context, det.context_window)
            if word is not None:
                score += det.context_boost
                notes.append(f"context word {word!r}: +{det.context_boost:g}")
        if weight != 1.0:
            notes.append(f"placement {field.placement}: x{weight:g}")
        out.append(_Candidate(det, pat, fi, cs, ce, vs, ve, min(1.0, score), notes))
    return out


@lru_cache(maxsize=None)
def template_pattern(det: Detector, pat: Pattern) -> Pattern:
    """The pattern a placeholder match is reported under: named after the provider pattern it filled
    (``aws_access_key.key_id``), scored as its template detector's patterns are."""
    assert det.placeholder_as is not None
    return Pattern(f"{det.id.partition('.')[2]}.{pat.name}", pat.regex, det.placeholder_as.patterns[0].score)


def _non_ascii_offsets(longest: dict[tuple[int, int], int], fields: Sequence[Field], encoded: Sequence[bytes],
                       starts: Sequence[int]) -> dict[int, _Offsets]:
    wanted: dict[int, list[int]] = {}
    one = len(fields) == 1
    for (_, bs), be in longest.items():
        if bs < 0:
            bs = be - 1
        fi = 0 if one else bisect_right(starts, bs) - 1
        if len(encoded[fi]) != len(fields[fi].text):
            wanted.setdefault(fi, []).extend((max(bs - starts[fi], 0), be - starts[fi]))
    return {fi: _Offsets(encoded[fi], pos) for fi, pos in wanted.items()}


def _better(a: _Candidate, b: _Candidate) -> bool:
    return (a.detector.priority, a.score, a.end - a.start) > (b.detector.priority, b.score, b.end - b.start)


def resolve_overlaps(cands: list[_Candidate]) -> list[_Candidate]:
    """Within one field and overlap group, overlapping candidates keep the best one."""
    cands.sort(key=lambda c: (c.field, c.detector.group, c.start, -c.end))
    kept: list[_Candidate] = []
    for c in cands:
        if not c.detector.resolve_overlaps:
            kept.append(c)
            continue
        prev = None
        for k in range(len(kept) - 1, -1, -1):  # last kept of the same field and group
            other = kept[k]
            if other.field != c.field or other.detector.group != c.detector.group:
                break
            if other.detector.resolve_overlaps:
                prev = k
                break
        if prev is not None and c.start < kept[prev].end:
            if _better(c, kept[prev]):
                kept[prev] = c
            continue
        kept.append(c)
    return kept


def to_hit(c: _Candidate, fields: Sequence[Field]) -> Hit:
    field = fields[c.field]
    det = c.detector
    value = field.text[c.vstart:c.vend]
    if det.sensitive:
        excerpt = det.mask(value) if det.mask is not None else masking.mask_secret(value)
        digest: str | None = masking.sha256(value)
    else:
        excerpt = masking.printable(value, 200)
        digest = None
    return Hit(
        detector=det.id, pattern=c.pattern.name, field=field.path, placement=field.placement,
        start=field.original(c.vstart), end=field.original(c.vend), score=c.score, excerpt=excerpt,
        sha256=digest, notes=tuple(c.notes),
    )
