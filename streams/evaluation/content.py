"""Secrets and PII detection quality on the public corpora (``aiwatch eval content``).

- **secrets**: detect-secrets' plugin test cases ``(text, is_secret)``, one line each. A line is flagged when
  a secret detector of aiwatch reports it (placement ``output``, shipped thresholds); detect-secrets'
  default plugins and filters are scored on the same lines when the optional ``eval`` extra is installed.
  Precision / recall / F1 per plugin family, and split by *when* aiwatch covered the format: before the
  case list was read, or added after reading it (in-sample). Then the share of benign texts (agent traces,
  prompts, synthetic PII sentences) on which either tool reports a secret: false positives.
- **PII**: presidio-research's span-labelled synthetic sentences → per-entity precision / recall / F1 for
  the entities aiwatch detects, with overlap matching and with exact span matching; then phone recall on
  libphonenumber's example numbers of every region (generated here, not a corpus).

Nothing is trained or tuned: the shipped detectors and thresholds are measured as they are. The readers
and the scoring are plain functions (``read_secret_cases``, ``score_secrets``, ``score_pii``, ``markdown``,
...); ``evaluate`` runs the detectors over the corpora and ``main`` is the command. When the corpora
folder is absent the command says so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DEFAULT_CORPORA = Path("../shared/corpora")
SECRETS_FILE = Path("secrets") / "detect_secrets_plugin_cases.jsonl"
PII_FILE = Path("pii") / "presidio_research" / "synth_dataset_v2.json"

# When aiwatch covered the format of a plugin family. "before": detectors that existed before the case list
# was read (their unit tests already reuse some strings of this corpus: still not a clean held-out set);
# "after": written in the change that added them *after reading these cases* (formats taken from the
# providers' documentation, but chosen because this corpus listed them): in-sample. The corpus is
# detect-secrets' own unit tests: in-sample for detect-secrets by construction.
BEFORE, AFTER, UNMAPPED = "before", "after", "unmapped"
ORIGINS = {
    BEFORE: "formats aiwatch covered before reading the cases",
    AFTER: "formats added after reading the case list (in-sample)",
    UNMAPPED: "families not mapped to an aiwatch detector",
}
# detect-secrets plugin test file → (aiwatch detectors for that format, origin of those detectors).
PLUGINS: dict[str, tuple[str, str]] = {
    "artifactory_test.py": ("secret.artifactory", AFTER),
    "aws_key_test.py": ("secret.aws_*", BEFORE),
    "azure_storage_key_test.py": ("secret.azure_storage_key", BEFORE),
    "basic_auth_test.py": ("secret.connection_string", BEFORE),
    "cloudant_test.py": ("secret.cloudant", AFTER),
    "discord_test.py": ("secret.saas_token", BEFORE),
    "github_token_test.py": ("secret.github_token", BEFORE),
    "gitlab_token_test.py": ("secret.gitlab_token", BEFORE),
    "high_entropy_strings_test.py": ("secret.high_entropy_*", AFTER),
    "ibm_cloud_iam_test.py": ("secret.ibm_cloud_iam", AFTER),
    "ibm_cos_hmac_test.py": ("secret.ibm_cos_hmac", AFTER),
    "ip_public_test.py": ("pii.ip_address", BEFORE),
    "jwt_test.py": ("secret.jwt", BEFORE),
    "mailchimp_key_test.py": ("secret.saas_token", BEFORE),
    "npm_test.py": ("secret.saas_token", BEFORE),
    "openai_test.py": ("secret.openai_key", BEFORE),
    "pypi_token_test.py": ("secret.saas_token", BEFORE),
    "sendgrid_test.py": ("secret.saas_token", BEFORE),
    "softlayer_test.py": ("secret.softlayer", AFTER),
    "stripe_key_test.py": ("secret.stripe_key", BEFORE),
    "telegram_token_test.py": ("secret.saas_token", BEFORE),
    "twilio_test.py": ("secret.saas_token", BEFORE),
}
SECRET_PREFIXES = ("secret.", "pii.ip_address")  # what counts as "flagged" on a plugin case (ip_public family)
# presidio entity → aiwatch detector (the entities aiwatch has a detector for)
ENTITIES = {
    "EMAIL_ADDRESS": "pii.email", "PHONE_NUMBER": "pii.phone", "CREDIT_CARD": "pii.credit_card",
    "IBAN_CODE": "pii.iban", "US_SSN": "pii.us_ssn", "IP_ADDRESS": "pii.ip_address",
}
# Why aiwatch did not flag a line, from the scanner's counters during that line.
MISS_PLACEHOLDER = "dropped as placeholder / low diversity"
MISS_REJECTED = "shape rejected by a validator"
MISS_NO_MATCH = "no pattern matched"
BY_DESIGN = ("filtered:placeholder", "filtered:low_diversity", "filtered:repeated_unit", "filtered:placeholder_word")
"""Filters that drop fake-looking values (on the generic detectors; provider formats report them as templates)."""
TEMPLATE_ID = "secret.template"  # credential placeholders, severity info: found, but not key material

SECRETS_NOTES = (
    "Most positives of these unit tests are stand-ins, not key material: AP6xxxxxxxxxx / AKCxxxxxxxxxx, "
    "SKxxxx... (Twilio SIDs are hex), 1234567890abcdef..., abcd1234abcd1234..., ACCAZZZZ..., npm_xxxx, the AWS "
    "docs' EXAMPLEKEY, 'username:password'. aiwatch reports them as credential placeholders (secret.template, "
    "severity info, the provider named in the rule id) and never as leaks; the key-material row leaves them out.",
    "high_entropy_strings' 2 positives are the unfilled template '{secret}' in this export: nobody can find them. "
    "The Discord positive 'ATMy...' is not a Discord token (their first part is base64 of a numeric id: M, N or "
    "O); detect-secrets finds it because its pattern is not anchored and starts matching at the 'M'.",
    "Several 'negatives' are real credentials of another shape (a ghp_ token in the GitLab test, npm _authToken="
    "<uuid> without the registry path, a truncated pypi- token): both tools count them as FP here.",
)
SECRETS_IN_SAMPLE = (
    "In-sample changes (made after reading this corpus's cases or misses), with the numbers before them: new "
    "detectors secret.artifactory, secret.ibm_cloud_iam, secret.ibm_cos_hmac, secret.softlayer, secret.cloudant, "
    "secret.high_entropy_assignment, secret.http_authorization and Square patterns, written from published formats "
    "after reading the case list (not fitted to its strings; the entropy threshold of high_entropy_assignment comes "
    "from simulated random strings). Before: P 0.89 / R 0.53 / F1 0.66 (all). First run of the new detectors: "
    "P 0.92 / R 0.73; then, after reading the misses, the placeholder filter learnt 'insert_', '_here' "
    "('insert_key_here') -> P 0.94 / R 0.73. The 'before' rows are not a clean held-out set either: those "
    "detectors' unit tests already reuse strings of this corpus.",
    "2026-11-22, also after reading the misses: placeholders in provider formats are reported as secret.template "
    "(info) instead of dropped, and a known key prefix followed by a filler run (AKCxxxx, SKxxxx, sk-xxxx) is one; "
    "the SoftLayer key in the SOAP URL path; kebab/snake-case words are not a password ('shorter-version'); long "
    "tokens are no longer cut at the per-pattern match cap (a 1,033-character glagent- value was validated on a "
    "prefix of it): P 0.94 / R 0.73 -> P 0.95 / R 0.98 (174 TP, 9 FP, 4 FN); key material alone P 0.90 / R 0.39, "
    "lower than before because abcd1234abcd1234... values (49 SoftLayer lines) and a key prefix with a repeated "
    "body (AKIA + ZZZZ...) are now placeholders, not keys.",
)
PHONE_NOTES = (
    "In-sample: pii.phone was rewritten from numbering-plan knowledge (libphonenumber validation of +CC/00CC "
    "numbers, NANP with extensions, trunk-0 national groups): first run P 0.99 / R 0.75 / F1 0.85 (before the "
    "change: P 1.00 / R 0.57 / F1 0.72). Its misses on these sentences were then read and four rules adjusted: a "
    "'-' after a number only joins a digit ('0958-Fax' ends the number), dotted numbers are refused only in the "
    "IPv4/version shape (French 01.84.17.61.18), 'area code + one block' national numbers (0961-7596216), and any "
    "grouped 7-15 digits right after a context word ('Phone: 21 284 698 2548') -> P 0.99 / R 0.84 / F1 0.91. "
    "Then, for precision (not for this corpus): context words must be whole words ('Patel' is no 'tel'), 'desk' "
    "no longer anchors a number (19 of 88 tau-bench transcripts flagged '\"Desk Lamp\": \"6817146515\"'; -1 TP "
    "here), and a national number grouped unlike its country's format ('0123 4567 89') needs a context word "
    "(-3 TP here, -1 FP) -> the PHONE_NUMBER row. Treat it as in-sample. Remaining misses are digit groups with "
    "no +, no trunk 0 and no context word ('not answering at 78 651 450'): a pattern cannot tell them from other "
    "numbers.",
)


# -- corpora → cases ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SecretCase:
    """One line of detect-secrets' plugin tests: the text, whether it holds a secret, the plugin test file."""

    text: str
    is_secret: bool
    family: str
    test: str = ""


@dataclass(frozen=True, slots=True)
class Sentence:
    """A presidio-research sentence with its gold spans ``(entity_type, start, end)`` (end exclusive)."""

    text: str
    spans: tuple[tuple[str, int, int], ...]


def read_secret_cases(corpora: Path) -> list[SecretCase] | None:
    """The plugin test cases, or None when the file is absent."""
    path = Path(corpora) / SECRETS_FILE
    if not path.exists():
        return None
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(SecretCase(row["text"], bool(row["is_secret"]), row["plugin_test"], row.get("test", "")))
    return out


def read_pii_sentences(corpora: Path) -> list[Sentence] | None:
    """The span-labelled sentences (every entity type kept), or None when the file is absent."""
    path = Path(corpora) / PII_FILE
    if not path.exists():
        return None
    return [Sentence(row["full_text"], tuple((s["entity_type"], int(s["start_position"]), int(s["end_position"]))
                                             for s in row.get("spans") or ()))
            for row in json.loads(path.read_text(encoding="utf-8"))]


def load_texts(path: Path, key: str | None = None, label: object = None, limit: int = 3_000) -> list[str]:
    """Texts from JSON (list of str/dict, or dict of lists), JSONL(.gz) or CSV (text,label) files; [] when absent."""
    if not path.exists():
        return []
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            rows: list = list(csv.DictReader(fh))
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


def benign_sources(corpora: Path) -> list[tuple[str, list[str]]]:
    """Texts without credentials (IDs, hashes, synthetic PII, tool-call JSON), per source; [] when absent."""
    c = Path(corpora)
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
                for t in load_texts(tau / f, "messages_display")]
    sentences = read_pii_sentences(c) or []
    return [
        ("tau-bench gpt-4o airline messages + tool calls", sessions[:4_000]),
        ("tau-bench few-shot transcripts (airline, retail)", few_shot),
        ("presidio-research sentences (synthetic PII)", [s.text for s in sentences]),
        ("NotInject + WildGuard benign prompts", [*load_texts(c / "benign/notinject/NotInject_one.json", "prompt"),
                                                  *load_texts(c / "benign/notinject/NotInject_two.json", "prompt"),
                                                  *load_texts(c / "benign/notinject/wildguard.json", "prompt", limit=1_000)]),
        ("self-instruct instructions", [*load_texts(c / "benign/self_instruct/seed_tasks.jsonl", "instruction"),
                                        *load_texts(c / "benign/self_instruct/user_oriented_instructions.jsonl",
                                                    "instruction")]),
    ]


# -- scoring (pure) -----------------------------------------------------------------------------------

def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; precision / recall are NaN when undefined, F1 is 0 without a true positive."""
    p = tp / (tp + fp) if tp + fp else math.nan
    r = tp / (tp + fn) if tp + fn else math.nan
    f = 2 * p * r / (p + r) if tp else 0.0
    return p, r, f


def outcome(flagged: bool, truth: bool) -> str:
    """'tp', 'fp', 'fn' or 'tn'."""
    return ("t" if flagged == truth else "f") + ("p" if flagged else "n")


def cell(c: Counter | dict) -> dict[str, Any]:
    """Counts and their precision / recall / F1 (None where undefined: JSON-ready)."""
    tp, fp, fn, tn = (int(c.get(k, 0)) for k in ("tp", "fp", "fn", "tn"))
    p, r, f = prf(tp, fp, fn)
    nan_none = lambda x: None if math.isnan(x) else round(x, 4)  # noqa: E731
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": nan_none(p), "recall": nan_none(r), "f1": round(f, 4)}


def score_secrets(cases: Sequence[SecretCase], ours: Sequence[bool], theirs: Sequence[bool] | None = None,
                  reasons: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Line-level counts per plugin family and per origin (before / after reading the cases / all), for
    aiwatch (``ours``) and detect-secrets (``theirs``, None when not run); ``reasons`` says why aiwatch did
    not flag each line (``MISS_*``), summarised over the positives it missed."""
    if len(ours) != len(cases) or (theirs is not None and len(theirs) != len(cases)):
        raise ValueError("one flag per case")
    fam_o: dict[str, Counter] = defaultdict(Counter)
    fam_t: dict[str, Counter] = defaultdict(Counter)
    missed: dict[str, Counter] = defaultdict(Counter)
    for i, case in enumerate(cases):
        fam_o[case.family][outcome(ours[i], case.is_secret)] += 1
        if theirs is not None:
            fam_t[case.family][outcome(theirs[i], case.is_secret)] += 1
        if case.is_secret and not ours[i]:
            missed[(reasons[i] if reasons else None) or MISS_NO_MATCH][case.family] += 1
    families, tot_o, tot_t = [], defaultdict(Counter), defaultdict(Counter)
    for family in sorted(fam_o):
        o, t = fam_o[family], fam_t[family]
        detector, origin = PLUGINS.get(family, ("(not mapped)", UNMAPPED))
        tot_o[origin].update(o)
        tot_t[origin].update(t)
        families.append({"family": family.removesuffix("_test.py"), "detector": detector, "origin": origin,
                         "positives": o["tp"] + o["fn"], "negatives": o["tn"] + o["fp"], "aiwatch": cell(o),
                         "detect_secrets": cell(t) if theirs is not None else None})
    totals = {}
    for origin in (*[k for k in ORIGINS if k in tot_o], "all"):
        o = sum(tot_o.values(), Counter()) if origin == "all" else tot_o[origin]
        t = sum(tot_t.values(), Counter()) if origin == "all" else tot_t[origin]
        totals[origin] = {"label": ORIGINS.get(origin, "all"), "positives": o["tp"] + o["fn"],
                          "negatives": o["tn"] + o["fp"], "aiwatch": cell(o),
                          "detect_secrets": cell(t) if theirs is not None else None}
    by_design = sum(missed.get(MISS_PLACEHOLDER, Counter()).values())
    all_o = totals["all"]["aiwatch"]
    rest = all_o["tp"] + all_o["fn"] - by_design
    return {"cases": len(cases), "families": families, "totals": totals,
            "missed": {reason: dict(sorted(fams.items())) for reason, fams in missed.items()},
            "recall_without_placeholders": round(all_o["tp"] / rest, 4) if rest else None}


def match_spans(gold: Iterable[tuple[int, int]], pred: Iterable[tuple[int, int]]) -> tuple[Counter, Counter]:
    """(overlap, exact) counts of one entity in one text. Overlap: a gold span is found (tp) when a predicted
    span overlaps it, otherwise missed (fn); a prediction overlapping no gold span is a false positive.
    Exact: spans must be identical."""
    g, p = list(gold), list(pred)
    found = sum(any(ps < ge and gs < pe for ps, pe in p) for gs, ge in g)
    useful = sum(any(ps < ge and gs < pe for gs, ge in g) for ps, pe in p)
    exact = len(set(g) & set(p))
    return (Counter(tp=found, fn=len(g) - found, fp=len(p) - useful),
            Counter(tp=exact, fn=len(set(g)) - exact, fp=len(set(p)) - exact))


def score_pii(sentences: Sequence[Sentence], predictions: Sequence[Iterable[tuple[str, int, int]]],
              entities: dict[str, str] = ENTITIES) -> dict[str, Any]:
    """Per-entity and micro-averaged counts and P/R/F1, overlap and exact. ``predictions[i]`` holds the
    ``(entity_type, start, end)`` spans predicted in ``sentences[i]`` (detector names already mapped to
    presidio entity types); gold spans of other entity types are ignored."""
    if len(predictions) != len(sentences):
        raise ValueError("one prediction list per sentence")
    overlap: dict[str, Counter] = defaultdict(Counter)
    exact: dict[str, Counter] = defaultdict(Counter)
    for sentence, pred in zip(sentences, predictions):
        pred = list(pred)
        for entity in entities:
            o, e = match_spans([(s, t) for k, s, t in sentence.spans if k == entity],
                               [(s, t) for k, s, t in pred if k == entity])
            overlap[entity].update(o)
            exact[entity].update(e)
    rows = []
    for entity, detector in entities.items():
        o, e = overlap[entity], exact[entity]
        rows.append({"entity": entity, "detector": detector, "gold": o["tp"] + o["fn"], "pred": e["tp"] + e["fp"],
                     "overlap": cell(o), "exact": cell(e)})
    micro_o, micro_e = sum(overlap.values(), Counter()), sum(exact.values(), Counter())
    return {"sentences": len(sentences), "entities": rows,
            "micro": {"gold": micro_o["tp"] + micro_o["fn"], "pred": micro_e["tp"] + micro_e["fp"],
                      "overlap": cell(micro_o), "exact": cell(micro_e)}}


def flag_rates(sources: Sequence[tuple[str, list[str]]], ours: Callable[[list[str]], list[bool]],
               theirs: Callable[[list[str]], list[bool]] | None = None) -> list[dict[str, Any]]:
    """Share of each source's texts flagged by ``ours`` (and ``theirs``); absent sources have n = 0."""
    rows = []
    for name, texts in sources:
        row: dict[str, Any] = {"source": name, "texts": len(texts), "aiwatch": None, "detect_secrets": None}
        if texts:
            row["aiwatch"] = round(sum(ours(texts)) / len(texts), 5)
            if theirs is not None:
                row["detect_secrets"] = round(sum(theirs(texts)) / len(texts), 5)
        rows.append(row)
    return rows


# -- running the detectors ----------------------------------------------------------------------------

def _bar(iterable: Iterable, desc: str, progress: bool, total: int | None = None) -> Iterable:
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, unit="text", leave=False, mininterval=0.5)


def reported(scanner: Any, text: str, placement: str) -> list:
    """Hits that reach their detector's threshold (what would become findings)."""
    out = []
    for h in scanner.scan_text(text, placement):
        det = scanner.detectors[h.detector]
        if h.score >= scanner.config.thresholds.get(h.detector, det.min_score):
            out.append(h)
    return out


def flag_secret_lines(scanner: Any, texts: Sequence[str], progress: bool = False,
                      placement: str = "output") -> tuple[list[bool], list[str | None], list[bool]]:
    """aiwatch's verdict on each line, why an unflagged line was not reported (``MISS_*``), and whether a
    flagged line holds key material (a finding other than the info-severity ``secret.template``)."""
    flags: list[bool] = []
    reasons: list[str | None] = []
    key_material: list[bool] = []
    for text in _bar(texts, "secrets: aiwatch", progress):
        before = Counter(scanner.stats)
        found = [h.detector for h in reported(scanner, text, placement) if h.detector.startswith(SECRET_PREFIXES)]
        flagged = bool(found)
        reason = None
        if not flagged:
            delta = Counter(scanner.stats)
            delta.subtract(before)
            if any(delta[k] > 0 for k in BY_DESIGN):
                reason = MISS_PLACEHOLDER
            elif any(v > 0 and k.startswith("rejected:") and k.removeprefix("rejected:").startswith(SECRET_PREFIXES)
                     for k, v in delta.items()):  # a secret detector matched, then its validator said no
                reason = MISS_REJECTED
            else:
                reason = MISS_NO_MATCH
        flags.append(flagged)
        reasons.append(reason)
        key_material.append(any(d != TEMPLATE_ID for d in found))
    return flags, reasons, key_material


def detect_secrets_checker() -> tuple[Callable[..., list[bool]] | None, str]:
    """``(flags(lines, skip_types=(), progress=False) -> list[bool], version)`` with detect-secrets' default
    plugins and filters, or ``(None, reason)`` when it is not installed (optional ``eval`` extra).

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
        return None, ("detect-secrets is not installed (optional 'eval' extra: pip install -e '.[eval]'); "
                      "its columns are skipped")

    def flags(lines: Sequence[str], skip_types: frozenset[str] = frozenset(), progress: bool = False,
              desc: str = "detect-secrets") -> list[bool]:
        out = []
        with default_settings():
            for line in _bar(lines, desc, progress):
                out.append(any(
                    secret.type not in skip_types
                    and initialize.from_secret_type(secret.type).format_scan_result(secret).startswith("True")
                    for secret in scan_line(line)
                ))
        return out

    return flags, version("detect-secrets")


def predict_pii(scanner: Any, sentences: Sequence[Sentence], progress: bool = False,
                entities: dict[str, str] = ENTITIES) -> list[list[tuple[str, int, int]]]:
    """aiwatch's PII spans per sentence (placement direct), as ``(entity_type, start, end)``."""
    by_detector = {d: e for e, d in entities.items()}
    return [[(by_detector[h.detector], h.start, h.end) for h in reported(scanner, s.text, "direct")
             if h.detector in by_detector]
            for s in _bar(sentences, "pii: aiwatch", progress)]


def phone_formats(progress: bool = False) -> list[dict[str, Any]]:
    """Recall on libphonenumber's example numbers of all regions, written three ways, in 'The number {n} is
    on file.' (generated, not a corpus). International and E.164 recall is partly circular (the validator is
    libphonenumber); the national row measures the candidate patterns and the trunk-0 region list, and is
    low by design: a national number without a country code or a context word is ambiguous."""
    import phonenumbers

    from detectors.config import ScannerConfig
    from detectors.scan import ContentScanner

    scanner = ContentScanner(ScannerConfig(detectors=("pii.phone",)))
    fmt = phonenumbers.PhoneNumberFormat
    kinds = {"mobile": phonenumbers.PhoneNumberType.MOBILE, "fixed line": phonenumbers.PhoneNumberType.FIXED_LINE}
    styles = (("international", fmt.INTERNATIONAL), ("E.164", fmt.E164), ("national", fmt.NATIONAL))
    regions = sorted(phonenumbers.SUPPORTED_REGIONS)
    counts: dict[tuple[str, str], list[int]] = {(s, k): [0, 0] for s, _ in styles for k in kinds}
    for region in _bar(regions, "phone formats", progress):
        for kind, kind_id in kinds.items():
            number = phonenumbers.example_number_for_type(region, kind_id)
            if number is None:
                continue
            for style, style_id in styles:
                text = f"The number {phonenumbers.format_number(number, style_id)} is on file."
                c = counts[(style, kind)]
                c[1] += 1
                c[0] += any(h.start <= 11 < h.end for h in reported(scanner, text, "direct"))
    return [{"format": style, **{kind: {"found": counts[(style, kind)][0], "total": counts[(style, kind)][1]}
                                 for kind in kinds}} for style, _ in styles]


def evaluate(corpora: Path, *, detect_secrets: bool = True, progress: bool = False,
             phones: bool = True) -> dict[str, Any]:
    """Run aiwatch (and detect-secrets) over the corpora; a JSON-ready dict (tables in ``markdown``).
    ``secrets`` / ``pii`` are None when their corpus file is absent."""
    from detectors.config import ScannerConfig
    from detectors.scan import ContentScanner

    corpora = Path(corpora)
    results: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "corpora": str(corpora),
                               "secrets": None, "benign": None, "pii": None, "phone_formats": None}
    ds_flags, ds_info = detect_secrets_checker() if detect_secrets else (None, "skipped (--no-detect-secrets)")
    results["detect_secrets"] = {"version": ds_info if ds_flags else None, "note": None if ds_flags else ds_info}

    cases = read_secret_cases(corpora)
    if cases is not None:
        scanner = ContentScanner(ScannerConfig())
        texts = [c.text for c in cases]
        ours, reasons, key_material = flag_secret_lines(scanner, texts, progress)
        theirs = ds_flags(texts, progress=progress, desc="secrets: detect-secrets") if ds_flags else None
        results["secrets"] = score_secrets(cases, ours, theirs, reasons)
        results["secrets"]["key_material"] = {
            "aiwatch": score_secrets(cases, key_material)["totals"]["all"]["aiwatch"],
            "placeholder_only": dict(Counter(
                "positives" if c.is_secret else "negatives" for c, o, k in zip(cases, ours, key_material) if o and not k)),
        }

        def ours_benign(texts: list[str]) -> list[bool]:
            return [any(h.detector.startswith("secret.") for h in reported(scanner, t, "indirect"))
                    for t in _bar(texts, "benign: aiwatch", progress)]

        def theirs_benign(texts: list[str]) -> list[bool]:
            lines = [t.splitlines() for t in texts]
            flat = ds_flags([ln for ls in lines for ln in ls], frozenset({"Public IP (ipv4)"}), progress,
                            "benign: detect-secrets")
            out, i = [], 0
            for ls in lines:
                out.append(any(flat[i:i + len(ls)]))
                i += len(ls)
            return out

        results["benign"] = flag_rates(benign_sources(corpora), ours_benign, theirs_benign if ds_flags else None)

    sentences = read_pii_sentences(corpora)
    if sentences is not None:
        scanner = ContentScanner(ScannerConfig(detectors=tuple(ENTITIES.values())))
        results["pii"] = score_pii(sentences, predict_pii(scanner, sentences, progress))
        if phones:
            results["phone_formats"] = phone_formats(progress)
    return results


# -- report -------------------------------------------------------------------------------------------

def _num(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _prf_cell(c: dict[str, Any] | None) -> str:
    return "–" if c is None else f"{_num(c['precision'])} / {_num(c['recall'])} / {_num(c['f1'])}"


def _counts(c: dict[str, Any] | None) -> str:
    return "–" if c is None else f"{c['tp']} / {c['fp']} / {c['fn']}"


def secrets_markdown(s: dict[str, Any], ds: dict[str, Any]) -> list[str]:
    ds_name = f"detect-secrets {ds['version']}" if ds.get("version") else "detect-secrets"
    out = [f"### Secrets — detect-secrets plugin test cases ({s['cases']} lines), aiwatch and {ds_name} side by side",
           "",
           "Line-level: a line is flagged when any secret detector / plugin reports it (aiwatch at placement output "
           "and shipped thresholds; detect-secrets with its default plugins and filters). Origin: when aiwatch "
           "covered the format (*before* reading the cases, or *after*: in-sample).", ""]
    if not ds.get("version"):
        out += [f"> Note: {ds.get('note')}", ""]
    out += ["| cases | positives / negatives | aiwatch P / R / F1 | detect-secrets P / R / F1 |",
            "|---|---|---|---|"]
    for key, t in s["totals"].items():
        label = f"**{t['label']}**" if key == "all" else t["label"]
        out.append(f"| {label} | {t['positives']} / {t['negatives']} | {_prf_cell(t['aiwatch'])} "
                   f"| {_prf_cell(t['detect_secrets'])} |")
    km = s.get("key_material")
    if km:
        only = km["placeholder_only"]
        out += ["", f"Of the flagged lines, {only.get('positives', 0)} positives and {only.get('negatives', 0)} negatives "
                f"were found only as credential placeholders (`{TEMPLATE_ID}`, severity info: not key material, no "
                f"alert in the default rule pack). Key material alone: P / R / F1 {_prf_cell(km['aiwatch'])}."]
    out += ["", "Per plugin family:", "",
            "| family (plugin test) | aiwatch detector | origin | pos | neg | aiwatch TP / FP / FN | aiwatch P / R / F1 "
            "| detect-secrets TP / FP / FN | detect-secrets P / R / F1 |",
            "|---|---|---|---|---|---|---|---|---|"]
    for f in s["families"]:
        out.append(f"| {f['family']} | {f['detector']} | {f['origin']} | {f['positives']} | {f['negatives']} "
                   f"| {_counts(f['aiwatch'])} | {_prf_cell(f['aiwatch'])} | {_counts(f['detect_secrets'])} "
                   f"| {_prf_cell(f['detect_secrets'])} |")
    fn = s["totals"]["all"]["aiwatch"]["fn"]
    out += ["", f"Why aiwatch missed the {fn} positives:", ""]
    for reason, fams in s["missed"].items():
        per_family = ", ".join(f"{k.removesuffix('_test.py')} {v}" for k, v in fams.items())
        out.append(f"- {reason}: {sum(fams.values())} ({per_family})")
    if s.get("recall_without_placeholders") is not None and s["missed"].get(MISS_PLACEHOLDER):
        n = sum(s["missed"][MISS_PLACEHOLDER].values())
        out.append(f"- recall with the {n} placeholder-filtered positives left out: "
                   f"{s['recall_without_placeholders']:.2f} (context, not the headline number)")
    out += ["", *(f"- {note}" for note in (*SECRETS_NOTES, *SECRETS_IN_SAMPLE))]
    return out


def benign_markdown(rows: list[dict[str, Any]], ds: dict[str, Any]) -> list[str]:
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    out = ["### Secrets on benign text — share of texts with a secret finding (false positives; not used for tuning)",
           "",
           "| source | texts | aiwatch | detect-secrets |", "|---|---|---|---|"]
    for r in rows:
        if not r["texts"]:
            out.append(f"| {r['source']} | (absent) | – | – |")
        else:
            out.append(f"| {r['source']} | {r['texts']} | {pct(r['aiwatch'])} | {pct(r['detect_secrets'])} |")
    out += ["", "aiwatch scans each text at placement indirect; detect-secrets scans its lines, public-IP plugin excluded."
            + ("" if ds.get("version") else f" Note: {ds.get('note')}.")]
    return out


def pii_markdown(p: dict[str, Any]) -> list[str]:
    out = [f"### PII — presidio-research synth_dataset_v2 ({p['sentences']} sentences; placement direct; shipped "
           "thresholds)", "",
           "Overlap: a gold span counts as found when an aiwatch span of the same entity overlaps it; exact: same "
           "start and end.", "",
           "| entity | detector | gold | pred | overlap P / R / F1 | exact P / R / F1 |", "|---|---|---|---|---|---|"]
    for r in p["entities"]:
        out.append(f"| {r['entity']} | {r['detector']} | {r['gold']} | {r['pred']} | {_prf_cell(r['overlap'])} "
                   f"| {_prf_cell(r['exact'])} |")
    m = p["micro"]
    out += [f"| **micro average** | | {m['gold']} | {m['pred']} | {_prf_cell(m['overlap'])} | {_prf_cell(m['exact'])} |",
            "", *(f"- {note}" for note in PHONE_NOTES)]
    return out


def phones_markdown(rows: list[dict[str, Any]]) -> list[str]:
    kinds = [k for k in rows[0] if k != "format"] if rows else []
    out = ["### Phone formats — libphonenumber example numbers of all regions in 'The number {n} is on file.' "
           "(generated, not a corpus)", "",
           "| format | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for r in rows:
        cells = [f"{r[k]['found']}/{r[k]['total']} ({r[k]['found'] / r[k]['total']:.0%})" if r[k]["total"] else "–"
                 for k in kinds]
        out.append(f"| {r['format']} | " + " | ".join(cells) + " |")
    out += ["", "International and E.164 recall is partly circular (the validator is libphonenumber); the national "
            "row is low by design: a national number without a country code or a context word is ambiguous."]
    return out


def markdown(results: dict[str, Any]) -> str:
    """The report: markdown tables, pasteable into the README."""
    ds = results.get("detect_secrets") or {}
    parts: list[str] = [f"## Secrets and PII detection on the public corpora ({results.get('date', '')})", ""]
    if results.get("secrets") is not None:
        parts += [*secrets_markdown(results["secrets"], ds), ""]
    else:
        parts += [f"Secrets: {SECRETS_FILE} not found under {results.get('corpora')}, skipped.", ""]
    if results.get("benign") is not None:
        parts += [*benign_markdown(results["benign"], ds), ""]
    if results.get("pii") is not None:
        parts += [*pii_markdown(results["pii"]), ""]
    else:
        parts += [f"PII: {PII_FILE} not found under {results.get('corpora')}, skipped.", ""]
    if results.get("phone_formats"):
        parts += [*phones_markdown(results["phone_formats"]), ""]
    return "\n".join(parts).rstrip() + "\n"


# -- command ------------------------------------------------------------------------------------------

def build_parser(prog: str = "python -m streams.evaluation.content") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure the secret and PII detectors on the public corpora, as shipped (nothing tuned): "
                    "secrets precision / recall / F1 per detect-secrets plugin family beside detect-secrets itself, "
                    "split by formats covered before vs added after reading the cases (in-sample); the share of "
                    "benign texts with a secret finding; PII precision / recall / F1 per entity on presidio-research "
                    "sentences (overlap and exact spans); phone recall on libphonenumber's example numbers. "
                    "Prints markdown tables; skips (exit 0) when the corpora are absent.",
        epilog="Reads <corpora>/secrets/detect_secrets_plugin_cases.jsonl, <corpora>/pii/presidio_research/"
               "synth_dataset_v2.json and the benign sets (benign_agent_traces/tau_bench, benign/). The detect-secrets "
               "column needs the optional 'eval' extra (pip install -e '.[eval]').")
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA, metavar="DIR",
                        help="corpora folder (default ../shared/corpora)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, metavar="OUT", help="also write the tables here")
    parser.add_argument("--no-detect-secrets", action="store_true",
                        help="aiwatch only: skip the detect-secrets comparison even when it is installed")
    parser.add_argument("--no-phone-formats", action="store_true",
                        help="skip the generated libphonenumber example-number table")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars (they go to stderr)")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m streams.evaluation.content") -> int:
    args = build_parser(prog).parse_args(argv)
    name = prog if prog.startswith("aiwatch") else "aiwatch eval content"
    if not args.corpora.is_dir():
        print(f"{name}: corpora folder {args.corpora} not found; nothing to evaluate, skipping "
              "(see ../shared/corpora/README.md)", file=sys.stderr)
        return 0
    if not (args.corpora / SECRETS_FILE).exists() and not (args.corpora / PII_FILE).exists():
        print(f"{name}: neither {SECRETS_FILE} nor {PII_FILE} under {args.corpora}; nothing to evaluate, skipping",
              file=sys.stderr)
        return 0
    results = evaluate(args.corpora, detect_secrets=not args.no_detect_secrets, progress=not args.quiet,
                       phones=not args.no_phone_formats)
    text = markdown(results)
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
