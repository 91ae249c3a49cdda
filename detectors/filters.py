"""Named false-positive filters and the context-word boost, shared by detectors.

They live outside detector declarations (style notes: "context boosts and false-positive filters live
outside detectors, as named, counted components"): a detector lists the filters it wants by object,
and the scanner counts each firing under ``filtered:<name>``.
"""

from __future__ import annotations

from detectors.checks import is_periodic
from detectors.spec import Filter

PLACEHOLDER_MARKERS = (
    "example", "sample", "dummy", "placeholder", "fake", "xxxx", "your_", "your-", "yourkey", "<",
    ">", "${", "{{", "%s", "changeme", "redacted", "replace_me", "replaceme", "****", "....", "1234567890",
    "abcdefgh", "0000000000", "insert_", "insert-", "_here", "-here",
)


def _placeholder(text: str, start: int, end: int) -> bool:
    value = text[start:end].lower()
    return any(marker in value for marker in PLACEHOLDER_MARKERS)


def _low_diversity(text: str, start: int, end: int) -> bool:
    value = text[start:end]
    return len(value) >= 8 and len(set(value)) <= max(3, len(value) // 10)


def _repeated_unit(text: str, start: int, end: int) -> bool:
    """The value, or its body after a key prefix of up to 4 characters (AKIA, ghp_, AP6), is one unit repeated."""
    value = text[start:end]
    return any(len(value) - k >= 8 and is_periodic(value[k:]) for k in range(5))


META_WORDS = (
    "prompt injection", "jailbreak", "detect", "prevent", "defend", "defense", "defence", "mitigat",
    "protect against", "classif", "example of", "examples of", "what is", "what are", "explain",
    "research", "paper", "benchmark", "dataset", "red team", "red-team", "security training",
    "guardrail", "filter out", "recogni", "flag ", "phrase like", "phrases like", "such as",
)


def _meta_discussion(text: str, start: int, end: int) -> bool:
    """The phrase is being talked about (security question, docs, quotes), not addressed to the AI."""
    before = text[max(0, start - 2): start]
    after = text[end: end + 2]
    if any(q in before for q in "\"'“‘`«") and any(q in after for q in "\"'”’`»"):
        return True
    # the words around the phrase, not the phrase itself: a request that opens with "what is" or
    # "explain" is not discussing anything
    window = (text[max(0, start - 160): start] + "\x00" + text[end: end + 160]).lower()
    return any(word in window for word in META_WORDS)


PLACEHOLDER = Filter("placeholder", _placeholder, 0.0, template=True)
"""Values that announce themselves as fake: EXAMPLE, xxxx, <your-key>, ${VAR}, {{var}} ..."""

LOW_DIVERSITY = Filter("low_diversity", _low_diversity, 0.0, template=True)
"""Values made of very few distinct characters (``aaaaaaaa``, ``12121212``)."""

REPEATED_UNIT = Filter("repeated_unit", _repeated_unit, 0.0, template=True)
"""Values that are one short unit written again and again (``abcd1234abcd1234...``, ``AKIA`` + ``AB12AB12...``):
no key is."""

META_DISCUSSION = Filter("meta_discussion", _meta_discussion, 0.5)
"""Text that quotes or discusses an attack phrase rather than using it: halves the score."""


def context_word(text: str, start: int, end: int, words: tuple[str, ...], window: int) -> str | None:
    """The first context word found in the ``window`` characters before the match (or just after)."""
    if not words:
        return None
    near = text[max(0, start - window): start].lower() + " " + text[end: end + 16].lower()
    for word in words:
        if word in near:
            return word
    return None
