"""``aiwatch eval content``: secrets and PII detection quality, on hand-written fixtures in the corpora's formats.

The fixtures (``tests/fixtures/corpus_formats/secrets/x-detect_secrets_plugin_cases.jsonl`` and
``pii/x-presidio_research/synth_dataset_v2.json``) are our own lines, laid out as ``../shared/corpora`` is by
``tests.test_evaluation.corpus_layout``. Secret-shaped values in them are written with a JSON ``\\uXXXX``
escape so that repository secret scanners do not match the raw file.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from detectors.config import ScannerConfig
from detectors.scan import ContentScanner
from streams.cli import main as cli_main
from streams.evaluation import content
from streams.evaluation.content import (
    MISS_NO_MATCH,
    MISS_PLACEHOLDER,
    SecretCase,
    Sentence,
    evaluate,
    flag_rates,
    flag_secret_lines,
    markdown,
    match_spans,
    prf,
    read_pii_sentences,
    read_secret_cases,
    score_pii,
    score_secrets,
)
from tests.test_evaluation import corpus_layout

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return corpus_layout(tmp_path_factory.mktemp("content"))


@pytest.fixture(scope="module")
def results(root):
    return evaluate(root, detect_secrets=True, progress=False, phones=False)


def _family(results, name):
    return next(f for f in results["secrets"]["families"] if f["family"] == name)


# -- readers ------------------------------------------------------------------------------------------

def test_readers_decode_the_fixture_formats(root):
    cases = read_secret_cases(root)
    assert len(cases) == 7
    assert cases[0].family == "github_token_test.py" and cases[0].is_secret
    assert "gh" "p_" in cases[0].text  # the \u0070 escape is decoded
    assert Counter(c.is_secret for c in cases) == {True: 4, False: 3}
    sentences = read_pii_sentences(root)
    assert len(sentences) == 3
    s1 = sentences[0]
    spans = {e: s1.text[s:t] for e, s, t in s1.spans}
    assert spans == {"PHONE_NUMBER": "+44 20 7946 0321", "EMAIL_ADDRESS": "marta.quiroga@correo-sur.es",
                     "PERSON": "Marta Quiroga"}


def test_readers_return_none_when_the_corpus_file_is_absent(tmp_path):
    assert read_secret_cases(tmp_path) is None and read_pii_sentences(tmp_path) is None


# -- secrets ------------------------------------------------------------------------------------------

def test_known_secret_line_is_a_true_positive(results):
    github = _family(results, "github_token")
    assert {k: github["aiwatch"][k] for k in ("tp", "fp", "fn", "tn")} == {"tp": 1, "fp": 0, "fn": 0, "tn": 1}
    assert _family(results, "softlayer")["aiwatch"]["tp"] == 1


def test_placeholder_is_found_as_a_template_not_as_key_material(results):
    aws = _family(results, "aws_key")["aiwatch"]  # AKIA + 16 X: a credential placeholder (secret.template)
    assert (aws["tp"], aws["fn"], aws["tn"], aws["fp"]) == (1, 0, 1, 0)
    assert results["secrets"]["missed"] == {MISS_NO_MATCH: {"acme_vendor_test.py": 1}}
    key = results["secrets"]["key_material"]
    assert key["placeholder_only"] == {"positives": 1}
    assert (key["aiwatch"]["tp"], key["aiwatch"]["fn"]) == (2, 2)  # without the placeholder: github + softlayer
    assert results["secrets"]["recall_without_placeholders"] == pytest.approx(3 / 4, abs=1e-3)  # none dropped


def test_flag_secret_lines_says_why_and_whether_key_material():
    scanner = ContentScanner(ScannerConfig())
    lines = ["password = your_password_here", "AKIA" + "X" * 16, "id = AKIA" "QWERTYUIOPASDFG7", "nothing here"]
    flags, reasons, key = flag_secret_lines(scanner, lines)
    assert flags == [False, True, True, False]
    assert reasons == [MISS_PLACEHOLDER, None, None, MISS_NO_MATCH]  # the generic detector drops its placeholder
    assert key == [False, False, True, False]


def test_split_before_vs_after_reading_the_cases(results):
    totals = results["secrets"]["totals"]
    assert list(totals) == ["before", "after", "unmapped", "all"]
    before, after, unmapped, every = (totals[k]["aiwatch"] for k in totals)
    assert (before["tp"], before["fn"], before["precision"], before["recall"], before["f1"]) == (2, 0, 1.0, 1.0, 1.0)
    assert (after["tp"], after["fn"], after["f1"]) == (1, 0, 1.0)
    assert unmapped["fn"] == 1 and unmapped["precision"] is None  # nothing predicted: precision undefined
    assert (every["tp"], every["fp"], every["fn"], every["tn"]) == (3, 0, 1, 3)
    assert _family(results, "acme_vendor")["detector"] == "(not mapped)"


def test_detect_secrets_column_side_by_side(results):
    pytest.importorskip("detect_secrets")
    assert results["detect_secrets"]["version"]
    aws = _family(results, "aws_key")["detect_secrets"]
    # detect-secrets takes the placeholder key (TP) and the bare sha256 hex (FP) where aiwatch takes neither
    assert (aws["tp"], aws["fp"]) == (1, 1)
    before = results["secrets"]["totals"]["before"]["detect_secrets"]
    assert before["precision"] == pytest.approx(2 / 3, abs=1e-3) and before["recall"] == 1.0


def test_detect_secrets_absent_skips_its_column_with_a_note(root, monkeypatch):
    for name in [m for m in sys.modules if m == "detect_secrets" or m.startswith("detect_secrets.")] + ["detect_secrets"]:
        monkeypatch.setitem(sys.modules, name, None)  # import fails as when the extra is not installed
    res = evaluate(root, progress=False, phones=False)
    assert res["detect_secrets"]["version"] is None
    assert "not installed" in res["detect_secrets"]["note"]
    assert all(f["detect_secrets"] is None for f in res["secrets"]["families"])
    assert all(r["detect_secrets"] is None for r in res["benign"])
    text = markdown(res)
    assert "> Note: detect-secrets is not installed" in text
    assert "| github_token | secret.github_token | before | 1 | 1 | 1 / 0 / 0 | 1.00 / 1.00 / 1.00 | – | – |" in text


def test_score_secrets_counts_every_outcome():
    cases = [SecretCase("a", True, "jwt_test.py"), SecretCase("b", True, "jwt_test.py"),
             SecretCase("c", False, "jwt_test.py"), SecretCase("d", False, "softlayer_test.py")]
    s = score_secrets(cases, [True, False, True, False], None, [None, MISS_PLACEHOLDER, None, MISS_NO_MATCH])
    jwt = s["families"][0]
    assert jwt["family"] == "jwt" and jwt["origin"] == "before" and jwt["detect_secrets"] is None
    assert {k: jwt["aiwatch"][k] for k in ("tp", "fp", "fn", "tn")} == {"tp": 1, "fp": 1, "fn": 1, "tn": 0}
    assert jwt["aiwatch"]["f1"] == 0.5
    assert s["missed"] == {MISS_PLACEHOLDER: {"jwt_test.py": 1}}  # only missed positives are explained
    assert s["totals"]["after"]["aiwatch"]["tn"] == 1
    with pytest.raises(ValueError):
        score_secrets(cases, [True])


def test_benign_rows_and_flag_rates(results):
    rows = {r["source"]: r for r in results["benign"]}
    assert rows["presidio-research sentences (synthetic PII)"]["texts"] == 3
    assert rows["tau-bench gpt-4o airline messages + tool calls"]["texts"] > 0
    assert all(r["aiwatch"] == 0.0 for r in rows.values() if r["texts"])  # hand-written benign texts, no secrets
    out = flag_rates([("x", ["k1", "plain", "k2", "plain"]), ("none", [])], lambda ts: [t.startswith("k") for t in ts])
    assert out[0]["aiwatch"] == 0.5 and out[0]["detect_secrets"] is None
    assert out[1] == {"source": "none", "texts": 0, "aiwatch": None, "detect_secrets": None}


# -- PII ----------------------------------------------------------------------------------------------

def test_match_spans_overlap_and_exact():
    overlap, exact = match_spans([(0, 10), (20, 30)], [(2, 10), (40, 45)])
    assert overlap == Counter(tp=1, fn=1, fp=1)
    assert exact == Counter(tp=0, fn=2, fp=2)
    overlap, exact = match_spans([(0, 10)], [(0, 10)])
    assert overlap["tp"] == exact["tp"] == 1 and overlap["fp"] == exact["fp"] == 0
    assert match_spans([(0, 5)], [(5, 9)])[0] == Counter(tp=0, fn=1, fp=1)  # touching is not overlapping


def test_score_pii_per_entity_f1_on_three_sentences():
    sentences = [
        Sentence("s1", (("EMAIL_ADDRESS", 0, 10), ("PHONE_NUMBER", 20, 30), ("PERSON", 40, 50))),
        Sentence("s2", (("PHONE_NUMBER", 0, 8),)),
        Sentence("s3", (("EMAIL_ADDRESS", 5, 25),)),
    ]
    predictions = [
        [("EMAIL_ADDRESS", 0, 10), ("PHONE_NUMBER", 21, 30)],  # exact e-mail, phone off by one
        [],  # phone missed
        [("EMAIL_ADDRESS", 12, 25), ("EMAIL_ADDRESS", 30, 40)],  # overlapping but not exact, plus one false
    ]
    out = score_pii(sentences, predictions, {"EMAIL_ADDRESS": "pii.email", "PHONE_NUMBER": "pii.phone"})
    email, phone = out["entities"]
    # e-mail overlap: gold 2 found 2, 1 false prediction -> P 2/3, R 1, F1 0.8; exact: 1 hit, P 1/3, R 1/2, F1 0.4
    assert (email["gold"], email["pred"]) == (2, 3)
    assert email["overlap"]["precision"] == pytest.approx(2 / 3, abs=1e-3) and email["overlap"]["recall"] == 1.0
    assert email["overlap"]["f1"] == pytest.approx(0.8)
    assert email["exact"]["precision"] == pytest.approx(1 / 3, abs=1e-3) and email["exact"]["f1"] == pytest.approx(0.4)
    # phone overlap: 1 of 2 found, no false -> F1 2/3; exact: nothing identical -> F1 0
    assert phone["overlap"]["f1"] == pytest.approx(2 / 3, abs=1e-3) and phone["exact"]["f1"] == 0.0
    assert phone["exact"]["precision"] == 0.0 and phone["exact"]["recall"] == 0.0
    micro = out["micro"]["overlap"]
    assert (micro["tp"], micro["fp"], micro["fn"]) == (3, 1, 1)
    assert out["micro"]["gold"] == 4  # the PERSON span is not counted


def test_pii_fixture_through_the_detectors(results):
    rows = {r["entity"]: r for r in results["pii"]["entities"]}
    email, phone, card = rows["EMAIL_ADDRESS"], rows["PHONE_NUMBER"], rows["CREDIT_CARD"]
    # the 'mailto:'-prefixed gold span matches by overlap only; the unlabelled second address is a false positive
    assert (email["overlap"]["tp"], email["overlap"]["fp"], email["overlap"]["fn"]) == (2, 1, 0)
    assert email["overlap"]["f1"] == pytest.approx(0.8) and email["exact"]["f1"] == pytest.approx(0.4)
    # '+44 20 7946 0321' is found; '61 442 907' (no +, no trunk 0, no context word) is not
    assert (phone["overlap"]["tp"], phone["overlap"]["fn"], phone["overlap"]["fp"]) == (1, 1, 0)
    assert card["exact"]["f1"] == 1.0
    assert rows["US_SSN"]["gold"] == 0 and rows["US_SSN"]["overlap"]["precision"] is None


def test_prf_edge_cases():
    p, r, f = prf(0, 0, 3)
    assert math.isnan(p) and r == 0.0 and f == 0.0
    assert prf(3, 1, 0) == (0.75, 1.0, pytest.approx(6 / 7))


# -- the command --------------------------------------------------------------------------------------

def test_cli_prints_the_tables_and_writes_json(root, tmp_path, capsys):
    out = tmp_path / "content.json"
    md = tmp_path / "content.md"
    code = cli_main(["eval", "content", "--corpora", str(root), "--json", str(out), "--markdown", str(md), "-q",
                     "--no-phone-formats"])
    assert code == 0
    text = capsys.readouterr().out
    assert "### Secrets — detect-secrets plugin test cases (7 lines)" in text
    assert "| formats aiwatch covered before reading the cases | 2 / 2 | 1.00 / 1.00 / 1.00 |" in text
    assert "| formats added after reading the case list (in-sample) | 1 / 1 | 1.00 / 1.00 / 1.00 |" in text
    assert "### Secrets on benign text" in text and "| presidio-research sentences (synthetic PII) | 3 | 0.0% |" in text
    assert "| EMAIL_ADDRESS | pii.email | 2 | 3 | 0.67 / 1.00 / 0.80 | 0.33 / 0.50 / 0.40 |" in text
    assert "Phone formats" not in text
    assert md.read_text(encoding="utf-8") == text
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["secrets"]["totals"]["all"]["aiwatch"]["tp"] == 3
    assert saved["pii"]["micro"]["overlap"]["f1"] == pytest.approx(0.8)


def test_cli_no_detect_secrets(root, capsys):
    assert cli_main(["eval", "content", "--corpora", str(root), "--no-detect-secrets", "-q", "--no-phone-formats"]) == 0
    text = capsys.readouterr().out
    assert "> Note: skipped (--no-detect-secrets)" in text
    assert "| **all** | 4 / 3 | 1.00 / 0.75 / 0.86 | – |" in text


def test_phone_formats_table():
    rows = content.phone_formats()
    by = {r["format"]: r for r in rows}
    assert set(by) == {"international", "E.164", "national"}
    intl = by["international"]["mobile"]
    assert intl["total"] > 200 and intl["found"] / intl["total"] > 0.9


def test_missing_corpora_exit_zero_with_a_message(tmp_path):
    run = subprocess.run([sys.executable, "-m", "streams.cli", "eval", "content", "--corpora", str(tmp_path / "absent")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "not found" in run.stderr and "skipping" in run.stderr
    assert run.stdout == ""


def test_corpora_without_secrets_or_pii_exit_zero(tmp_path, capsys):
    (tmp_path / "benign").mkdir()
    assert content.main(["--corpora", str(tmp_path)]) == 0
    assert "nothing to evaluate" in capsys.readouterr().err


def test_help_names_the_command_and_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["eval", "content", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "usage: aiwatch eval content" in text
    for option in ("--corpora", "--json", "--no-detect-secrets", "-q"):
        assert option in text


def test_bench_script_is_a_wrapper_of_the_command(root):
    run = subprocess.run([sys.executable, "bench/eval_content.py", "--corpora", str(root), "-q", "--no-phone-formats",
                          "--no-detect-secrets"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "| formats aiwatch covered before reading the cases | 2 / 2 | 1.00 / 1.00 / 1.00 |" in run.stdout
