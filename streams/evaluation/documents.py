"""What aiwatch would report on your own documents, before it alerts on them.

A RAG agent reads documents the detectors were never measured on: a knowledge base, product docs,
tickets, runbooks. ``aiwatch eval documents PATH ...`` cuts the text files under PATH into
retrieval-sized chunks, scans each chunk as a retrieved document (untrusted placement) with the shipped
detectors, and reports the share of chunks with a finding, per detector and per pattern, with examples.
The documents are taken to be benign, so every finding is a false positive to expect on that content —
or something to look at — and the table says where a rule exception would go.

The public corpora hold no technical documentation; this is how the injection heuristics were checked
on it (README, "Detection quality").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from schemas.event import Event

DEFAULT_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".html", ".htm", ".adoc")
CHUNK_CHARS = 2_000  # a typical retrieval chunk
MAX_FILE_BYTES = 5_000_000
MAX_CHUNKS_PER_FILE = 100  # a huge file must not weigh as much as a whole folder


@dataclass
class Report:
    """Counts of one run: chunks scanned and flagged, per detector and pattern, with examples."""

    files: int = 0
    skipped: Counter = field(default_factory=Counter)  # why files were not read
    chunks: int = 0
    flagged: int = 0
    by_detector: Counter = field(default_factory=Counter)  # chunks with a finding of the detector
    by_pattern: Counter = field(default_factory=Counter)  # (detector, pattern) -> chunks
    examples: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))

    def to_json(self) -> dict[str, Any]:
        return {
            "files": self.files, "skipped": dict(self.skipped), "chunks": self.chunks, "flagged": self.flagged,
            "by_detector": dict(self.by_detector.most_common()),
            "by_pattern": [{"detector": d, "pattern": p, "chunks": n} for (d, p), n in self.by_pattern.most_common()],
            "examples": [{"detector": d, "pattern": p, "examples": ex} for (d, p), ex in self.examples.items()],
        }


def text_files(paths: Iterable[Path], suffixes: Sequence[str] = DEFAULT_SUFFIXES,
               skipped: Counter | None = None) -> Iterator[Path]:
    """Files under ``paths`` (files given directly are taken whatever their suffix), in a stable order."""
    for root in paths:
        if root.is_file():
            yield root
            continue
        if not root.is_dir():
            if skipped is not None:
                skipped["not found"] += 1
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix.lower() in suffixes:
                yield path


def read_text(path: Path, skipped: Counter) -> str | None:
    """The file as UTF-8 text, or None (counted in ``skipped``) when it is too big, unreadable or binary."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            skipped["larger than 5 MB"] += 1
            return None
        data = path.read_bytes()
    except OSError:
        skipped["unreadable"] += 1
        return None
    if b"\x00" in data[:8192]:
        skipped["binary"] += 1
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        skipped["not UTF-8"] += 1
        return None


def chunks(text: str, size: int = CHUNK_CHARS, limit: int = MAX_CHUNKS_PER_FILE) -> list[str]:
    """Consecutive ``size``-character pieces of ``text`` (at most ``limit``), blank ones left out."""
    out = [text[i:i + size] for i in range(0, min(len(text), size * limit), size)]
    return [c for c in out if c.strip()]


def retrieval_event(doc_id: str, text: str, n: int = 0) -> Event:
    """Chunk ``text`` of document ``doc_id`` as the ``n``-th retrieval event of a run."""
    return Event.model_validate({
        "schema": "aiwatch.event/1", "event_id": f"doc-{n}", "kind": "retrieval",
        "app": "documents", "ts": datetime.now(timezone.utc),
        "retrieval": {"source": "documents", "documents": [{"id": doc_id[:200], "text": text}]},
    })


def scan(paths: Sequence[Path], *, suffixes: Sequence[str] = DEFAULT_SUFFIXES, size: int = CHUNK_CHARS,
         examples: int = 3, max_files: int | None = None, progress: bool = False) -> Report:
    """Scan the documents under ``paths`` as retrieved documents; see the module docstring."""
    from detectors.scan import ContentScanner

    scanner = ContentScanner()
    report = Report()
    files = list(text_files(paths, suffixes, report.skipped))[:max_files]
    if progress:
        from tqdm import tqdm

        files = tqdm(files, desc="documents", unit=" files", file=sys.stderr, mininterval=0.5)
    for path in files:
        text = read_text(path, report.skipped)
        if text is None:
            continue
        report.files += 1
        for i, chunk in enumerate(chunks(text, size)):
            report.chunks += 1
            findings = scanner.scan(retrieval_event(f"{path}#{i}", chunk, report.chunks))
            if not findings:
                continue
            report.flagged += 1
            report.by_detector.update({f.detector for f in findings})
            seen: set[tuple[str, str]] = set()
            for f in findings:
                for item in f.evidence:
                    pattern = item.get("pattern")
                    key = (f.detector, str(pattern))
                    if pattern is None or key in seen:
                        continue
                    seen.add(key)
                    report.by_pattern[key] += 1
                    if len(report.examples[key]) < examples:
                        shown = item.get("excerpt") or item.get("masked") or ""  # sensitive values stay masked
                        report.examples[key].append({"file": f"{path}#{i}", "excerpt": str(shown)})
    return report


def markdown(report: Report, paths: Sequence[Path]) -> str:
    share = (lambda n: f"{100 * n / report.chunks:.2f}%") if report.chunks else (lambda n: "–")
    lines = [
        f"### aiwatch findings on {', '.join(str(p) for p in paths)}",
        "",
        f"{report.files} files, {report.chunks} chunks scanned as retrieved documents; "
        f"{report.flagged} chunks ({share(report.flagged)}) with a finding."
        + (f" Skipped files: {', '.join(f'{n} {why}' for why, n in report.skipped.items())}." if report.skipped else ""),
        "",
        "| detector | pattern | chunks | share | example |",
        "|---|---|---|---|---|",
    ]
    for (det, pat), n in report.by_pattern.most_common():
        ex = report.examples.get((det, pat)) or [{}]
        excerpt = ex[0].get("excerpt", "").replace("|", "\\|").replace("\n", " ")[:80]
        lines.append(f"| {det} | {pat} | {n} | {share(n)} | `{ex[0].get('file', '')}`: {excerpt} |")
    if not report.by_pattern:
        lines.append("| – | – | 0 | – | – |")
    return "\n".join(lines) + "\n"


def build_parser(prog: str = "python -m streams.evaluation.documents") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="What aiwatch would report on your own documents (a knowledge base, product docs, tickets): "
                    "text files are cut into retrieval-sized chunks and scanned as retrieved documents with the "
                    "shipped detectors. Prints the share of chunks with a finding per detector and pattern, with an "
                    "example each: on benign documents, the false positives to expect before alerting on them.",
        epilog="Example: aiwatch eval documents ./kb /usr/share/doc --json kb-findings.json")
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders (folders are searched recursively)")
    parser.add_argument("--suffixes", default=",".join(DEFAULT_SUFFIXES),
                        help=f"file suffixes read in folders (default {','.join(DEFAULT_SUFFIXES)})")
    parser.add_argument("--chunk", type=int, default=CHUNK_CHARS, help=f"characters per chunk (default {CHUNK_CHARS})")
    parser.add_argument("--max-files", type=int, default=None, help="read at most this many files")
    parser.add_argument("--examples", type=int, default=3, help="examples kept per pattern (default 3)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the counts and examples here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m streams.evaluation.documents") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.chunk < 100:
        parser.error("--chunk must be at least 100 characters")
    suffixes = tuple(s if s.startswith(".") else f".{s}" for s in (x.strip().lower() for x in args.suffixes.split(",")) if s)
    report = scan(args.paths, suffixes=suffixes, size=args.chunk, examples=args.examples, max_files=args.max_files,
                  progress=not args.quiet)
    if report.files == 0:
        print(f"{prog}: no readable text files under {', '.join(map(str, args.paths))}", file=sys.stderr)
        return 2
    print(markdown(report, args.paths), end="")
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
