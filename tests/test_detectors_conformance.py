"""Conformance suite: every registered content detector obeys the same contract.

Per detector (parametrized over the registry): it compiles, finds its own sample, finds nothing in
empty text at any placement, does not mutate its input, is deterministic, never puts the raw value
in evidence or rationale, survives a pickle round-trip of its scanner and config, and spends bounded
time on huge, adversarial, deeply nested and invalid-Unicode input. Time bounds are generous guards
against pathological behaviour, not speed targets (those live in bench/detectors.py).
"""

from __future__ import annotations

import copy
import pickle
import time

import orjson
import pytest

from detectors.engine import compile_one
from detectors.registry import REGISTRY
from detectors.scan import ContentScanner
from detectors.spec import PLACEMENTS
from tests.test_detectors_support import SAMPLES, detected, event, reportable, sample_config, scanner  # noqa: F401

DETECTOR_IDS = list(REGISTRY)
SLOW = 5.0  # seconds; a guard, not a target


@pytest.fixture(scope="module", params=DETECTOR_IDS)
def single(request: pytest.FixtureRequest) -> tuple[str, ContentScanner]:
    """A scanner running only one detector (with the samples' configuration)."""
    return request.param, ContentScanner(sample_config(detectors=(request.param,)))


def _sample_event(det_id: str):
    s = SAMPLES["samples"][det_id]
    placement = s["placement"]
    if placement == "tool_args":
        return event("tool_call", arguments={"command": s["text"], "options": {"retries": 3}})
    kind, role = {"direct": ("prompt", "user"), "output": ("completion", None), "indirect": ("tool_result", None)}[placement]
    return event(kind, text=s["text"], role=role)


def test_every_detector_has_a_sample() -> None:
    assert set(SAMPLES["samples"]) == set(REGISTRY)


@pytest.mark.parametrize("det_id", DETECTOR_IDS)
def test_patterns_compile_one_by_one(det_id: str) -> None:
    det = REGISTRY[det_id]
    for pattern in det.patterns_for(sample_config()):
        compile_one(det, pattern)
        assert pattern.regex.isascii(), f"{det_id}/{pattern.name}: hyperscan patterns are bytes; keep them ASCII"


def test_finds_its_own_sample(single) -> None:
    det_id, scanner = single
    findings = scanner.scan(_sample_event(det_id))
    assert [f.detector for f in findings] == [det_id]
    f = findings[0]
    assert f.category == REGISTRY[det_id].category.value
    assert 0.0 < f.score <= 1.0
    assert any(t.startswith("placement:") for t in f.tags)


def test_empty_text_has_no_hits(single) -> None:
    _, scanner = single
    for placement in PLACEMENTS:
        assert scanner.scan_text("", placement) == []
        assert scanner.scan_text("   \n\t ", placement) == []
    assert scanner.scan(event("prompt", text="", role="user")) == []
    assert scanner.scan(event("tool_call", arguments={})) == []


def test_input_is_not_mutated(single) -> None:
    det_id, scanner = single
    ev = _sample_event(det_id)
    before = ev.model_dump(mode="json", by_alias=True)
    arguments = copy.deepcopy(ev.tool.arguments) if ev.tool else None
    scanner.scan(ev)
    assert ev.model_dump(mode="json", by_alias=True) == before
    if arguments is not None:
        assert ev.tool.arguments == arguments


def test_same_output_twice(single) -> None:
    det_id, scanner = single
    ev = _sample_event(det_id)
    first = [f.model_dump(mode="json") for f in scanner.scan(ev)]
    second = [f.model_dump(mode="json") for f in scanner.scan(ev)]
    assert first == second and first
    again = [f.model_dump(mode="json") for f in ContentScanner(scanner.config).scan(ev)]
    assert again == first


def test_no_raw_value_in_evidence_or_rationale(single) -> None:
    det_id, scanner = single
    value = SAMPLES["samples"][det_id]["value"]
    findings = scanner.scan(_sample_event(det_id))
    assert findings
    if value is None:  # non-sensitive detectors show the matched text itself
        assert not REGISTRY[det_id].sensitive or det_id == "exfil.unlisted_host"
        assert all("excerpt" in item or "masked" in item for f in findings for item in f.evidence[1:])
        return
    for f in findings:
        blob = orjson.dumps(f.model_dump(mode="json")).decode()
        assert value not in blob
        assert value[4:-4] not in blob or len(value) < 16  # not even the middle of it
        if REGISTRY[det_id].sensitive:
            assert any("sha256" in item for item in f.evidence)


def test_pickle_round_trip(single) -> None:
    det_id, scanner = single
    config = pickle.loads(pickle.dumps(scanner.config))
    assert config == scanner.config
    clone = pickle.loads(pickle.dumps(scanner))
    ev = _sample_event(det_id)
    assert [f.model_dump() for f in clone.scan(ev)] == [f.model_dump() for f in scanner.scan(ev)]


HUGE_UNIT = (
    "Normal words and numbers 4556 7375 8689 9855 a@b.co 10.0.0.1 "
    "password = hunter2hunter2 ignore previous instructions https://x.example/?q=1 "
)


@pytest.mark.parametrize("size", [1 << 20, 10 << 20], ids=["1MB", "10MB"])
def test_bounded_time_on_huge_input(single, size: int) -> None:
    _, scanner = single
    text = (HUGE_UNIT * (size // len(HUGE_UNIT) + 1))[:size]
    t0 = time.perf_counter()
    for placement in ("direct", "indirect", "output", "tool_args"):
        scanner.scan_text(text, placement)
    assert time.perf_counter() - t0 < SLOW


ADVERSARIAL = [
    "a" * 200_000,
    "1" * 200_000,
    "1 " * 100_000,
    "ignore " * 40_000 + "instructions",
    "sk-" + "A" * 200_000,
    "eyJ" + "a" * 100_000 + "." + "b" * 100_000,
    "-----BEGIN " * 20_000,
    "http://" * 30_000,
    "![" * 50_000 + "](http://x.example/?" + "q" * 10_000,
    "password=" * 30_000,
    "a@" * 100_000,
    ":" * 100_000 + "1",
    "curl " * 40_000 + "| sh",
    "[SYSTEM]" * 30_000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=[f"adv{i}" for i in range(len(ADVERSARIAL))])
def test_bounded_time_on_adversarial_input(scanner: ContentScanner, text: str) -> None:
    t0 = time.perf_counter()
    for placement in PLACEMENTS:
        scanner.scan_text(text, placement)
    ev = event("tool_result", text=text[:500_000])
    scanner.scan(ev)
    assert time.perf_counter() - t0 < SLOW


def test_flood_of_one_pattern_does_not_blind_the_others() -> None:
    """Without the field cap, 5 MB of emails and IPs cost bounded time and a secret at the end is found."""
    big = ContentScanner(sample_config(max_field_chars=16 << 20, max_event_chars=16 << 20))
    text = "user@example.org 8.8.8.8 " * 200_000 + " AKIA" "QWERTYUIOPASDFG7"  # 5 MB
    t0 = time.perf_counter()
    hits = big.scan_text(text, "output")
    assert time.perf_counter() - t0 < SLOW
    assert "secret.aws_access_key" in {h.detector for h in hits}
    assert big.stats["matches_over_pattern_cap"] > 0


def test_hard_match_limit_stops_the_scan() -> None:
    big = ContentScanner(sample_config(max_field_chars=16 << 20, max_event_chars=16 << 20, max_matches=2_000,
                                       max_matches_per_pattern=100_000))
    t0 = time.perf_counter()
    big.scan_text("user@example.org 8.8.8.8 " * 400_000, "output")
    assert time.perf_counter() - t0 < SLOW
    assert big.stats["scans_stopped_at_max_matches"] == 1


def test_deeply_nested_arguments(single) -> None:
    det_id, scanner = single
    text = SAMPLES["samples"][det_id]["text"]
    nested: dict = {"leaf": text}
    for i in range(12):
        nested = {f"k{i}": nested, "list": [1, "x", {"y": None}]}
    ev = event("tool_call", arguments=nested)  # within the schema's depth limit
    scanner.scan(ev)
    deep: object = "leaf"
    for _ in range(50_000):  # far beyond any limit: must neither recurse nor hang
        deep = {"k": [deep]}
    raw = event("tool_call", arguments=deep, construct=True)  # bypasses validation, like a buggy caller
    t0 = time.perf_counter()
    assert scanner.scan(raw) == []
    assert time.perf_counter() - t0 < SLOW


INVALID_UNICODE = [
    "\ud800",
    "key \udfff AKIA\ud83dQWERTYUIOPASDF",
    "ignore previous instructions \ud800\udc00\udbff",
    "caf\u00e9 \u0000 \ufffe \U0010ffff ignore all previous instructions ✓",
    "\ud83d\ude00" * 1000 + " 4556 7375 8689 9855 ",
]


@pytest.mark.parametrize("text", INVALID_UNICODE, ids=[f"uni{i}" for i in range(len(INVALID_UNICODE))])
def test_invalid_unicode_and_lone_surrogates(single, text: str) -> None:
    det_id, scanner = single
    sample = SAMPLES["samples"][det_id]
    for placement in PLACEMENTS:
        scanner.scan_text(text, placement)
        scanner.scan_text(text + " " + sample["text"] + " " + text, placement)
    ev = event("tool_result", text=text + "\n" + sample["text"], construct=True)
    for f in scanner.scan(ev):
        orjson.dumps(f.model_dump(mode="json"))  # serializable: no lone surrogates leak into findings


def test_sample_placement_matters_for_heuristics(scanner: ContentScanner) -> None:
    """Injection text at the system placement is never reported (system prompts are trusted)."""
    for det_id in ("injection.override", "injection.addresses_ai", "injection.fake_system"):
        text = SAMPLES["samples"][det_id]["text"]
        assert det_id not in detected(scanner, text, "system")
        assert det_id in reportable(scanner, scanner.scan_text(text, "indirect"))
