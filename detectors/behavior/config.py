"""Configuration of the behavioural layer: frozen, picklable values, checked when built.

Every bound that protects memory is here with the reason it exists; reaching one is counted and
reported as a finding, never silent (see ``SessionTracker.stats``, ``BaselineModel`` caps).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from detectors.behavior.actions import CLASSES
from detectors.behavior.findings import Emit
from schemas.finding import Mode

DEFAULT_SENSITIVITY = {
    "public": 0, "internal": 1, "confidential": 2, "pii": 2, "personal": 2, "sensitive": 2,
    "restricted": 3, "secret": 3, "phi": 3, "pci": 3, "credentials": 3, "top_secret": 4,
}


def _check_positive(obj: object, names: tuple[str, ...]) -> list[str]:
    return [f"{n} must be at least 1, got {getattr(obj, n)}" for n in names if getattr(obj, n) < 1]


@dataclass(frozen=True)
class SessionConfig:
    """Session detection (taint → action, unrequested actions, loops, runaway, sensitivity).

    Bounds: a session keeps at most ``max_indicators`` untrusted indicators (oldest forgotten first,
    counted, one ``session.indicator_cap`` finding), ``max_user_indicators`` user-supplied ones,
    ``max_fingerprints`` distinct tool calls for loop detection and ``max_chain`` event ids of evidence.
    A tracker keeps at most ``max_sessions`` open sessions (least recently active closed first) and
    closes a session ``session_ttl_s`` seconds of *event time* after its last event.
    """

    mode: Mode = Mode.monitor
    policy_version: str | None = None
    # what counts as untrusted content, and which tool results are first-party (trusted)
    trusted_tools: frozenset[str] = frozenset()
    trust_system_prompt: bool = True
    tool_classes: Mapping[str, str] = field(default_factory=dict)  # tool name -> action class override
    allowed_tools: frozenset[str] = frozenset()  # never "unrequested" (e.g. a logging tool)
    # taint → sink
    taint_classes: frozenset[str] = frozenset({"fetch", "send", "pay", "share", "write", "delete", "execute"})
    unrequested_classes: frozenset[str] = frozenset({"send", "pay", "share", "delete", "execute", "write"})
    min_score: float = 0.5  # findings below are counted (``stats``), not emitted
    # a value from content as the *destination* (recipient, url, account…) of an action of a class the
    # user did not ask for while asking for others ("reschedule my meeting" → send_email to an address
    # read in an email); values carried as data (form fields) are not enough
    mismatch_score: float = 0.65
    # a tainted destination that was only ever the whole value of a record field (a sender, a payee of a past
    # payment) scores at most this when the user asked for actions (below min_score: counted, not emitted)
    record_score: float = 0.45
    # loops
    loop_repeats: int = 5
    loop_ignore_tools: frozenset[str] = frozenset()
    # runaway: hard caps (None: off) and the multiple of the app's p99 that is "far beyond"
    max_tool_calls: int | None = None
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    runaway_factor: float = 3.0
    profile_warmup: int = 30  # closed sessions of an app before its p99 is trusted
    # destinations: a value taken from content is "new" when unflagged sessions of the app have not
    # used it in ``destination_known_after`` sessions; judged only after ``destination_warmup`` sessions
    destination_warmup: int = 10
    destination_known_after: int = 2
    novelty_max_rate: float = 0.05  # "new destination" alerts only where they would flag ≤ 5% of the app's sessions
    max_destinations: int = 50_000  # per app profile (least used forgotten first, counted, reported)
    max_sink_keys: int = 64  # destinations remembered per session for the profile
    runaway_min_tool_calls: int = 20  # never call fewer than this "runaway", whatever the p99
    runaway_min_tokens: int = 20_000
    runaway_min_cost_usd: float = 0.5
    # sensitivity
    sensitivity_levels: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SENSITIVITY))
    escalation_step: int = 2
    # bounds
    max_indicators: int = 512
    max_user_indicators: int = 256
    max_fingerprints: int = 256
    max_chain: int = 64
    max_text_chars: int = 65_536  # of one text scanned for indicators
    max_sessions: int = 100_000
    session_ttl_s: float = 3_600.0

    def __post_init__(self) -> None:
        problems = _check_positive(self, ("loop_repeats", "max_indicators", "max_user_indicators",
                                          "max_fingerprints", "max_chain", "max_text_chars", "max_sessions",
                                          "profile_warmup", "destination_warmup", "destination_known_after",
                                          "max_destinations", "max_sink_keys"))
        for name in ("min_score", "mismatch_score", "record_score"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.novelty_max_rate <= 1.0:
            problems.append(f"novelty_max_rate must be in (0, 1], got {self.novelty_max_rate}")
        if self.runaway_factor <= 1.0:
            problems.append(f"runaway_factor must be above 1, got {self.runaway_factor}")
        if self.session_ttl_s <= 0:
            problems.append(f"session_ttl_s must be positive, got {self.session_ttl_s}")
        for tool, cls in self.tool_classes.items():
            if cls not in CLASSES:
                problems.append(f"tool_classes[{tool!r}] = {cls!r} is not one of {', '.join(CLASSES)}")
        for name in ("taint_classes", "unrequested_classes"):
            bad = sorted(set(getattr(self, name)) - set(CLASSES))
            if bad:
                problems.append(f"{name} holds unknown classes {bad}")
        if problems:
            raise ValueError("invalid SessionConfig: " + "; ".join(problems))

    @property
    def emit(self) -> Emit:
        return Emit(self.mode, self.policy_version)
