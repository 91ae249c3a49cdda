"""Per-event cost of the policy-as-code rule engine (``RuleEngine.evaluate``) on one core.

Events come from ``collectors.synthetic`` (whole agent sessions whose apps, models and tools match the
default pack's allow-lists, plus an optional share of planted incidents), parsed before timing. Their
content-detector findings are computed before timing too, with ``ContentScanner`` as the worker's
``detectors.pipeline.Detection`` does, so the timed loop is ``RuleEngine.evaluate`` only.

    /work/venv/bin/python bench/rules.py                       # default pack, 20,000 events
    /work/venv/bin/python bench/rules.py --incident-rate 0.3 --rules infra/rules
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.synthetic import synthetic_events  # noqa: E402
from detectors.config import ScannerConfig  # noqa: E402
from detectors.rules import RuleEngine  # noqa: E402
from detectors.scan import ContentScanner  # noqa: E402
from schemas.event import Event  # noqa: E402
from schemas.finding import Finding  # noqa: E402
from timing import cpu_passes  # noqa: E402

Workload = list[tuple[Event, list[Finding]]]


def make_workload(n: int, seed: int, incident_rate: float) -> Workload:
    """``n`` parsed events, each with its content-detector findings."""
    scanner = ContentScanner(ScannerConfig(url_allowlist=("example.com",)))
    events = [Event.model_validate(e) for e in synthetic_events(n, seed=seed, incident_rate=incident_rate)]
    return [(event, scanner.scan(event)) for event in events]


def one_pass(engine: RuleEngine, workload: Workload) -> int:
    """One pass of ``evaluate`` over the workload; the findings it returned."""
    found = 0
    for event, content in workload:
        found += len(engine.evaluate(event, content, now=event.ts))
    return found


def measure(engine: RuleEngine, workload: Workload, min_seconds: float) -> tuple[list[float], int]:
    """µs/event of each pass (at least three, at least ``min_seconds`` CPU in all), GC off while timing."""
    seconds, found = cpu_passes(lambda: one_pass(engine, workload), min_seconds)
    return [dt / len(workload) * 1e6 for dt in seconds], found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--incident-rate", type=float, default=0.0, help="share of sessions with a planted incident")
    ap.add_argument("--rules", action="append", help="rule file or directory (repeatable; default infra/rules)")
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum measured CPU seconds")
    args = ap.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    engine = RuleEngine.from_paths(args.rules or ["infra/rules"])
    workload = make_workload(args.events, args.seed, args.incident_rate)
    with_findings = sum(1 for _, content in workload if content)
    print(f"events: {len(workload):,}  with content findings: {with_findings:,}  rules: {len(engine.pack.rules)}"
          f"  ({engine.policy_version})")
    per_event, found = measure(engine, workload, args.seconds)
    best = min(per_event)
    print(f"RuleEngine.evaluate: best {best:.2f} us/event ({1e6 / best:,.0f} events/s), "
          f"passes {', '.join(f'{p:.2f}' for p in per_event)} us/event; {found:,} rule findings per pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
