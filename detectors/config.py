"""Configuration of a ContentScanner: a frozen, picklable value (the scanner is rebuilt from it).

Bounds (why they exist): a field longer than ``max_field_chars`` is scanned as its first and last
``max_field_chars // 2`` characters (secrets and injections cluster at the edges of pasted blobs and
tool outputs; the middle of a huge field is skipped and the finding evidence says so);
``max_event_chars`` caps all fields of one event together; arguments are flattened iteratively to
``max_argument_depth`` levels and ``max_fields`` values; a pattern matching more than
``max_matches_per_pattern`` times in one event is ignored beyond that (a table of numbers must not
blind the secret detectors), and ``max_matches`` stops a scan outright. Together they bound the time
spent on any event; every cap that fires is counted in ``ContentScanner.stats``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas import limits
from schemas.finding import Mode


@dataclass(frozen=True)
class ScannerConfig:
    """What to scan for and how far; see the module docstring for the bounds."""

    detectors: tuple[str, ...] | None = None  # None: every registered detector
    exclude: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)  # detector id -> min score
    url_allowlist: tuple[str, ...] = ()  # hosts (and their subdomains) links may point to
    canaries: tuple[str, ...] = ()  # strings planted in system prompts; seeing one is a leak
    system_prompts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # app or "session:<id>"
    prompt_ngram: int = 6  # words per system-prompt shingle
    prompt_min_coverage: float = 0.25  # share of a prompt's shingles an output must reproduce
    max_field_chars: int = 65_536
    max_event_chars: int = 262_144
    max_fields: int = 512
    max_argument_depth: int = limits.MAX_ARGUMENT_DEPTH
    max_matches: int = 16_384
    max_matches_per_pattern: int = 256
    max_evidence: int = 10  # evidence items per finding (the total count is always kept)
    mode: Mode = Mode.monitor
    policy_version: str | None = None

    def __post_init__(self) -> None:
        problems = []
        for name in ("max_field_chars", "max_event_chars", "max_fields", "max_argument_depth",
                     "max_matches", "max_matches_per_pattern", "max_evidence", "prompt_ngram"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_field_chars < 64:
            problems.append(f"max_field_chars must be at least 64, got {self.max_field_chars}")
        if not 0.0 < self.prompt_min_coverage <= 1.0:
            problems.append(f"prompt_min_coverage must be in (0, 1], got {self.prompt_min_coverage}")
        for det, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                problems.append(f"threshold of {det} must be in [0, 1], got {value}")
        for canary in self.canaries:
            if len(canary) < 8:
                problems.append(f"canary {canary[:4]!r}... is shorter than 8 characters (would match by chance)")
        if problems:
            raise ValueError("invalid ScannerConfig: " + "; ".join(problems))
        object.__setattr__(self, "_allow", tuple(h.lower().lstrip(".") for h in self.url_allowlist))

    def host_allowed(self, host: str | None) -> bool:
        """True when ``host`` is an allow-listed host or one of its subdomains."""
        if not host:
            return False
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in self._allow)  # type: ignore[attr-defined]
