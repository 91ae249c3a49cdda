"""System-prompt leakage (category ``system_prompt_leak``): canaries and reproduced prompt text.

Both detectors take their patterns from the scanner configuration, so they cost nothing until
configured and then run inside the same hyperscan pass as everything else:

- ``leak.canary``: literal canary tokens planted in system prompts; any sighting outside the system
  prompt means the prompt left its box.
- ``leak.system_prompt``: each known system prompt (per app, or per ``session:<id>``) becomes word
  shingles of ``prompt_ngram`` words (stride ``ngram // 2``); an output reproducing at least
  ``prompt_min_coverage`` of a prompt's shingles is a leak. Shingles of other apps' prompts are ignored.
"""

from __future__ import annotations

import re

from detectors.config import ScannerConfig
from detectors.hits import Hit
from detectors.spec import Detector, Pattern
from schemas.finding import Category, Severity

TAGS = ("owasp-llm:LLM07", "atlas:AML.T0056")
PLACEMENTS = {"output": 1.0, "tool_args": 1.0, "indirect": 0.8}
_WORD = re.compile(r"\w+")


def _hex(value: str) -> str:
    """A literal as a hyperscan expression: every byte escaped (no metacharacter surprises)."""
    return "".join(f"\\x{b:02x}" for b in value.encode("utf-8"))


def _canary_patterns(config: ScannerConfig) -> tuple[Pattern, ...]:
    return tuple(Pattern(f"canary{i}", _hex(c), 1.0) for i, c in enumerate(config.canaries))


def shingles(prompt: str, n: int) -> list[list[str]]:
    """Word n-grams of a prompt, stride n // 2 (the last one always reaches the end)."""
    words = _WORD.findall(prompt.lower())
    if len(words) < n:
        return [words] if len(words) >= 3 else []
    step = max(1, n // 2)
    starts = list(range(0, len(words) - n + 1, step))
    if starts[-1] != len(words) - n:
        starts.append(len(words) - n)
    return [words[i:i + n] for i in starts]


def _shingle_regex(words: list[str]) -> str:
    inner = r"\W+".join(_hex(w) for w in words)
    lead = r"\b" if words[0][0].isascii() else ""
    trail = r"\b" if words[-1][-1].isascii() else ""
    return lead + inner + trail


def _prompt_patterns(config: ScannerConfig) -> tuple[Pattern, ...]:
    """Pattern name ``<scope>#<prompt>/<total>:<shingle>`` carries what coverage needs."""
    out = []
    for scope in sorted(config.system_prompts):
        for j, prompt in enumerate(config.system_prompts[scope]):
            grams = shingles(prompt, config.prompt_ngram)
            for k, words in enumerate(grams):
                out.append(Pattern(f"{scope}#{j}/{len(grams)}:{k}", _shingle_regex(words), 0.9, caseless=True))
    return tuple(out)


def coverage(hits: list[Hit], scope: frozenset[str], config: ScannerConfig) -> tuple[float, list[Hit]]:
    """Best share of one in-scope prompt's shingles reproduced by this field."""
    seen: dict[str, set[str]] = {}
    totals: dict[str, int] = {}
    members: dict[str, list[Hit]] = {}
    for hit in hits:
        prompt, _, shingle = hit.pattern.rpartition(":")
        key, _, total = prompt.rpartition("/")
        if key.rpartition("#")[0] not in scope:
            continue
        seen.setdefault(key, set()).add(shingle)
        totals[key] = int(total)
        members.setdefault(key, []).append(hit)
    best, shown = 0.0, []
    for key, found in seen.items():
        share = len(found) / totals[key]
        if share >= config.prompt_min_coverage and len(found) >= min(2, totals[key]) and share > best:
            best, shown = share, members[key]
    if not best:
        return 0.0, []
    return min(1.0, 0.7 + 0.3 * best), shown


def _mask_canary(value: str) -> str:
    return value[:2] + "*" * max(len(value) - 2, 0)


def _mask_prompt_text(value: str) -> str:
    words = value.split()
    return " ".join(words[:2]) + f" … [{len(words)} words of the system prompt]"


CANARY = Detector(
    id="leak.canary", category=Category.system_prompt_leak, severity=Severity.critical,
    title="Canary token from the system prompt",
    description="A configured canary string seen outside the system prompt.",
    patterns=(), dynamic=_canary_patterns, tags=TAGS, placements={**PLACEMENTS, "direct": 0.8},
    mask=_mask_canary, priority=50,
)

SYSTEM_PROMPT = Detector(
    id="leak.system_prompt", category=Category.system_prompt_leak, severity=Severity.high,
    title="System prompt reproduced",
    description="Output reproduces a known system prompt (word-shingle coverage).",
    patterns=(), dynamic=_prompt_patterns, tags=TAGS, placements=PLACEMENTS, combine=coverage,
    mask=_mask_prompt_text, resolve_overlaps=False, validation="",
)

DETECTORS = (CANARY, SYSTEM_PROMPT)
