"""``aiwatch replay``: the worker's detectors and rules over a JSONL file, offline and deterministic.

How users backtest a rule change before deploying it: same code as the worker (``detectors.pipeline``),
exceptions judged at each event's own time, findings written as Finding v1 JSON lines in event order.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
from tqdm import tqdm

from detectors.pipeline import Detection
from schemas import Event, InvalidEvent, parse_event

BATCH = 256  # events detected together: the classifier's cost is mostly per call


@dataclass
class ReplayReport:
    lines: int = 0
    events: int = 0
    invalid: int = 0
    findings: int = 0
    seconds: float = 0.0
    by_category: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.events / self.seconds if self.seconds else 0.0
        lines = [f"{self.events} events replayed ({self.invalid} invalid lines skipped) in {self.seconds:.2f}s "
                 f"({rate:,.0f} events/s); {self.findings} findings"]
        lines += [f"  {category:24} {count:>8}" for category, count in self.by_category.most_common()]
        if self.invalid:
            lines.append("invalid lines: " + ", ".join(f"{r}={n}" for r, n in self.by_reason.most_common()))
            lines += [f"  {e}" for e in self.first_errors]
        return "\n".join(lines)


def _emit(findings: list, sink: IO[bytes], report: ReplayReport, include_learn: bool) -> None:
    for finding in findings:
        if finding.mode == "learn" and not include_learn:
            continue
        report.findings += 1
        report.by_category[str(finding.category)] += 1
        sink.write(orjson.dumps(finding.model_dump(mode="json", by_alias=True)) + b"\n")


def _emit_batch(detection: Detection, events: list[Event], sink: IO[bytes], report: ReplayReport,
                include_learn: bool) -> None:
    """Detect over a batch of events (the classifier scores a batch at once) and empty it."""
    for findings in detection.process_batch(events):
        _emit(findings, sink, report, include_learn)
    events.clear()


@contextmanager
def _output(path: str | None) -> Iterator[IO[bytes]]:
    if path in (None, "-"):
        yield sys.stdout.buffer
        return
    with open(path, "wb") as handle:
        yield handle


def replay(path: str | Path, detection: Detection, out: str | None = None, progress: bool = True,
           include_learn: bool = False) -> ReplayReport:
    report = ReplayReport()
    source = Path(path)
    started = time.perf_counter()
    with source.open("rb") as handle, _output(out) as sink, tqdm(
        total=source.stat().st_size, unit="B", unit_scale=True, desc="replay", disable=not progress,
        file=sys.stderr,
    ) as bar:
        pending: list = []
        for raw in handle:
            if len(pending) >= BATCH:
                _emit_batch(detection, pending, sink, report, include_learn)
            report.lines += 1
            bar.update(len(raw))
            line = raw.strip()
            if not line:
                continue
            try:
                event = parse_event(line)
            except InvalidEvent as exc:
                report.invalid += 1
                report.by_reason[exc.reason] += 1
                if len(report.first_errors) < 5:
                    report.first_errors.append(f"line {report.lines}: {exc.reason}: {exc.detail[:200]}")
                continue
            report.events += 1
            pending.append(event)
        _emit_batch(detection, pending, sink, report, include_learn)
        _emit(detection.finish(), sink, report, include_learn)
    report.seconds = time.perf_counter() - started
    return report
