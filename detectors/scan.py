"""ContentScanner: Event → Findings with every content detector, in one hyperscan pass per event.

    >>> from detectors.scan import ContentScanner, ScannerConfig
    >>> scanner = ContentScanner(ScannerConfig(url_allowlist=("example.com",)))
    >>> [h.detector for h in scanner.scan_text("key AKIAQWERTYUIOPASDFGH", placement="output")]
    ['secret.aws_access_key']

All fields of an event (content text, flattened tool arguments, tool error, retrieved documents) are
encoded once and joined with a separator that no pattern crosses, so an event costs one hyperscan
call however many fields it has. The scanner is deterministic and holds no per-event state; its only
mutable attribute is ``stats`` (counters of scans, matches, filters, truncations) for metrics.
Pickling a scanner pickles its config; unpickling recompiles. One scanner serves one thread at a
time (hyperscan scratch space is per database); give each worker thread its own scanner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from detectors import fields as fields_mod
from detectors import findings
from detectors.config import ScannerConfig
from detectors.engine import Engine
from detectors.hits import Hit, candidates, resolve_overlaps, to_hit
from detectors.registry import REGISTRY, select
from detectors.spec import PLACEMENTS, Detector
from schemas.event import Event
from schemas.finding import Finding

SEPARATOR = b"\n\x00\n"  # between fields: newline ends line-bound patterns, NUL is in no token class

__all__ = ["ContentScanner", "ScannerConfig", "Hit"]


class ContentScanner:
    """Runs the selected content detectors over events; see the module docstring."""

    def __init__(self, config: ScannerConfig | None = None, registry: Mapping[str, Detector] | None = None) -> None:
        self.config = config if config is not None else ScannerConfig()
        self._registry = registry
        known = registry if registry is not None else REGISTRY
        chosen = select(known, self.config.detectors, self.config.exclude)
        for det_id in self.config.thresholds:
            if det_id not in known:
                raise ValueError(f"threshold given for unknown detector id {det_id!r}")
        self.detectors: dict[str, Detector] = {d.id: d for d in chosen}
        self._engine = Engine([(d, p) for d in chosen for p in d.patterns_for(self.config)])
        self.stats: Counter[str] = Counter()

    def __reduce__(self):
        if self._registry is not None:
            raise TypeError("a ContentScanner built with a custom registry cannot be pickled")
        return (type(self), (self.config,))

    @property
    def pattern_count(self) -> int:
        return len(self._engine.entries)

    # -- public API ------------------------------------------------------------------------------

    def scan(self, event: Event) -> list[Finding]:
        """Findings for one event (empty for most events)."""
        fields, truncated, dropped = fields_mod.extract(event, self.config)
        self.stats["events"] += 1
        if truncated:
            self.stats["fields_truncated"] += truncated
        if dropped:
            self.stats["fields_dropped"] += dropped
        if not fields:
            return []
        hits = self._hits(fields)
        if not hits:
            return []
        out = findings.build(event, hits, fields, self.detectors, self.config)
        self.stats["findings"] += len(out)
        return out

    def scan_many(self, events: Iterable[Event]) -> list[Finding]:
        """Findings of several events, in event order (replay)."""
        out: list[Finding] = []
        for event in events:
            out.extend(self.scan(event))
        return out

    def hits(self, event: Event) -> list[Hit]:
        """Confirmed hits of one event before they are grouped into findings (tests, tuning)."""
        fields, _, _ = fields_mod.extract(event, self.config)
        return self._hits(fields) if fields else []

    def scan_text(self, text: str, placement: str = "direct", path: str = "text") -> list[Hit]:
        """Hits in a lone text as if it sat at ``placement`` (evaluation, tests)."""
        if placement not in PLACEMENTS:
            raise ValueError(f"unknown placement {placement!r}; one of {', '.join(PLACEMENTS)}")
        fields = fields_mod.single(text, placement, path, self.config)
        return self._hits(fields) if fields else []

    # -- internals -------------------------------------------------------------------------------

    def _hits(self, fields: list[fields_mod.Field]) -> list[Hit]:
        if len(fields) == 1:
            encoded = [fields[0].text.encode("utf-8", "surrogatepass")]
            data = encoded[0]
            starts = [0]
        else:
            encoded = [f.text.encode("utf-8", "surrogatepass") for f in fields]
            data = SEPARATOR.join(encoded)
            starts, pos = [], 0
            for b in encoded:
                starts.append(pos)
                pos += len(b) + len(SEPARATOR)
        raw, capped, stopped = self._engine.matches(data, self.config.max_matches, self.config.max_matches_per_pattern)
        if not raw:
            return []
        stats = self.stats
        stats["matches"] += len(raw)
        if capped:
            stats["matches_over_pattern_cap"] += capped
        if stopped:
            stats["scans_stopped_at_max_matches"] += 1
        cands = candidates(raw, self._engine, fields, encoded, starts, self.config, stats)
        if not cands:
            return []
        return [to_hit(c, fields) for c in resolve_overlaps(cands)]
