"""The explicit registry of content detectors: a dict built from imports, failing on duplicate ids.

No discovery by magic: a detector exists when its module lists it in ``DETECTORS`` and that module is
imported below. ``check_detector`` enforces what the rest of the code relies on, with messages that
name the detector.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from detectors import code_exec, exfiltration, injection, pii, prompt_leak, secret_keyed, secret_leak, secret_template
from detectors.spec import PLACEMENTS, Detector

ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
TAG = re.compile(r"^(?:atlas:AML\.T\d{4}(?:\.\d{3})?|owasp-llm:LLM(?:0[1-9]|10)|owasp-asi:ASI(?:0[1-9]|10))$")


def check_detector(det: Detector) -> list[str]:
    """Problems with one declaration (empty when it is sound)."""
    problems = []
    if not ID.match(det.id):
        problems.append(f"{det.id}: id must look like 'family.name' (lower case)")
    if not det.patterns and det.dynamic is None:
        problems.append(f"{det.id}: declares no patterns")
    names = [p.name for p in det.patterns]
    if len(names) != len(set(names)):
        problems.append(f"{det.id}: pattern names are not unique")
    for p in det.patterns:
        if not 0.0 < p.score <= 1.0:
            problems.append(f"{det.id}/{p.name}: score {p.score} is not in (0, 1]")
    for tag in det.tags + tuple(t for ts in det.placement_tags.values() for t in ts):
        if not TAG.match(tag):
            problems.append(f"{det.id}: tag {tag!r} is not atlas:AML.Txxxx[.yyy], owasp-llm:LLMxx or owasp-asi:ASIxx")
    for placement in list(det.placements) + list(det.placement_tags):
        if placement not in PLACEMENTS:
            problems.append(f"{det.id}: unknown placement {placement!r}")
    if det.sensitive and det.mask is None:
        problems.append(f"{det.id}: sensitive detectors need a mask")
    return problems


def build_registry(*groups: Iterable[Detector]) -> dict[str, Detector]:
    """``{id: detector}`` in declaration order; raises ValueError on duplicates or unsound declarations."""
    registry: dict[str, Detector] = {}
    problems: list[str] = []
    for group in groups:
        for det in group:
            if det.id in registry:
                problems.append(f"duplicate detector id {det.id!r}")
                continue
            problems.extend(check_detector(det))
            registry[det.id] = det
    if problems:
        raise ValueError("invalid detector registry: " + "; ".join(problems))
    return registry


REGISTRY: Mapping[str, Detector] = build_registry(
    secret_leak.DETECTORS,
    secret_keyed.DETECTORS,
    secret_template.DETECTORS,
    pii.DETECTORS,
    injection.DETECTORS,
    exfiltration.DETECTORS,
    code_exec.DETECTORS,
    prompt_leak.DETECTORS,
)


def select(registry: Mapping[str, Detector], include: tuple[str, ...] | None, exclude: tuple[str, ...]) -> tuple[Detector, ...]:
    """Detectors chosen by id (``None`` = all), minus ``exclude``; unknown ids are an error."""
    for i in (include or ()) + exclude:
        if i not in registry:
            close = difflib.get_close_matches(i, list(registry), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown detector id {i!r}{hint}")
    chosen = registry if include is None else {i: registry[i] for i in include}
    return tuple(d for i, d in chosen.items() if i not in exclude)
