"""The evaluation command: corpora → events → scores → tables (see ``protocol`` for the method)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CORPORA = Path("../shared/corpora")


def corpora_missing(path: Path) -> str | None:
    """Why the corpora cannot be used (None when they can)."""
    if not path.is_dir():
        return f"corpora folder {path} not found"
    if not any(path.iterdir()):
        return f"corpora folder {path} is empty"
    return None


def settings_of(model: Any) -> Any:
    """The protocol settings the model was trained with (as recorded in its artifact)."""
    from streams.evaluation.protocol import Settings

    training = (model.meta or {}).get("training", {})
    split = training.get("split", {})
    defaults = Settings()
    return Settings(spec=model.spec, C=training.get("C", defaults.C), target_fpr=training.get("target_fpr", defaults.target_fpr),
                    test=split.get("test", defaults.test), calib=split.get("calib", defaults.calib),
                    salt=split.get("salt", defaults.salt))


def speed_samples(ds: Any, n: int = 1000, chars: int = 1000) -> list[str]:
    """``n`` texts of about ``chars`` characters cut from the corpora (deterministic)."""
    long = [t for t in ds.text if len(t) >= chars] or list(ds.text)  # tiny corpora: whatever there is
    step = max(1, len(long) // n)
    return [t[:chars] for t in long[::step][:n]]


def evaluate(corpora: Path, *, model_path: Path | None = None, loso: bool = True, sources: list[str] | None = None,
             model: Any = None, dataset: Any = None, log: Any = None, dev: bool = False) -> dict[str, Any]:
    """Run the evaluation; returns a JSON-ready dict (tables in ``report.markdown``). With ``dev``, only
    the development protocol (grouped folds of the training side, trained with the model's settings):
    the test side is not scored."""
    from detectors.classifier import InjectionClassifier, file_sha256, DEFAULT_ARTIFACT
    from streams.evaluation import protocol

    log = log or protocol._log
    if model is None:
        if model_path is None:
            model_path = Path(__file__).resolve().parents[2] / "detectors" / "models" / DEFAULT_ARTIFACT
        model = InjectionClassifier.load(model_path)
    settings = settings_of(model)
    ds = dataset if dataset is not None else protocol.prepare(corpora, settings, sources, log)
    heur, heur_flag, heur_note = protocol.heuristic_scores(ds)
    log(f"heuristics: {heur_note}")
    if dev:
        scored = [protocol.score_dev(ds, settings, log=log)]
    else:
        scored = [protocol.score_group_split(ds, model)]
        if loso:
            scored.append(protocol.score_loso(ds, settings, log, base=dict(model.heads)))
    results: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "corpora": str(corpora),
        "heuristics": heur_note,
        "model": {"file": Path(model_path).name if model_path else "(in memory)", "version": model.version,
                  "sha256": file_sha256(model_path) if model_path else None,
                  "bytes": os.path.getsize(model_path) if model_path else 0,
                  "thresholds": {n: h.threshold for n, h in model.heads.items()}},
        "units": _unit_counts(ds),
        "category": [r for s in scored for r in protocol.category_results(ds, s, heur, heur_flag)],
        "sources": [r for s in scored for r in protocol.source_results(ds, s, heur, heur_flag)],
        "timings": ds.timings,
    }
    samples = speed_samples(ds)
    if samples:
        results["speed"] = {p: protocol.speed(model, samples, p) for p in ("direct", "indirect")}
    return results


def _unit_counts(ds: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for src, pl, y, aux, side in zip(ds.source, ds.placement, ds.label, ds.aux, ds.side):
        key = f"{pl}/{'attack' if y else 'benign'}{'/aux' if aux else ''}"
        out.setdefault(str(src), {}).setdefault(key, 0)
        out[str(src)][key] += 1
    return out


def convert_command(corpora: Path, out: Path, sources: list[str] | None) -> int:
    from streams.evaluation.corpora import load_cases
    from streams.evaluation.events import convert, write_jsonl

    out.mkdir(parents=True, exist_ok=True)
    n = write_jsonl(convert(load_cases(corpora, sources)), out / "events.jsonl", out / "labels.jsonl")
    print(f"wrote {n} events to {out / 'events.jsonl'} and their labels to {out / 'labels.jsonl'}")
    return 0


def main(argv: list[str] | None = None, prog: str = "python -m streams.evaluation") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure the prompt-injection / jailbreak detectors (heuristics, classifier, both) on the "
                    "public corpora: recall at 1% and 0.1% FPR and at the shipped threshold, leave-one-source-out "
                    "and on the shipped model's held-out groups. Skips (exit 0) when the corpora are absent.")
    parser.add_argument("command", nargs="?", choices=("run", "convert"), default="run",
                        help="run: evaluate and print the tables (default); convert: write the corpora as Event v1 JSONL")
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA, help="corpora folder (default ../shared/corpora)")
    parser.add_argument("--model", type=Path, default=None, help="classifier artifact (default: the shipped one)")
    parser.add_argument("--sources", default=None, help="comma-separated corpus ids (default: all)")
    parser.add_argument("--no-loso", action="store_true", help="skip leave-one-source-out (retrains one model per corpus)")
    parser.add_argument("--dev", action="store_true",
                        help="the development protocol only: grouped cross-validation inside the training side, "
                             "trained with the model's settings; the test side is not scored. Choose changes "
                             "here, then measure the test side once")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the tables here")
    parser.add_argument("--out", type=Path, default=Path("eval-events"), help="convert: output folder")
    args = parser.parse_args(argv)

    why = corpora_missing(args.corpora)
    if why:
        print(f"aiwatch evaluation: {why}; skipping (see ../shared/corpora/README.md)", file=sys.stderr)
        return 0
    sources = [s.strip() for s in args.sources.split(",") if s.strip()] if args.sources else None
    if args.command == "convert":
        return convert_command(args.corpora, args.out, sources)

    from streams.evaluation.report import markdown

    results = evaluate(args.corpora, model_path=args.model, loso=not args.no_loso, sources=sources, dev=args.dev)
    text = markdown(results)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=_jsonable), encoding="utf-8")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
