"""Shared helpers of the detector tests (fixtures, sample loading, event building). Holds no tests."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from detectors.config import ScannerConfig
from detectors.hits import Hit
from detectors.scan import ContentScanner
from schemas.event import Event

FIXTURES = Path(__file__).parent / "fixtures" / "detectors"
MARKER = "⟨⟩"  # splits secret-shaped strings in fixture files so repository secret scanners stay quiet


def _unmark(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(MARKER, "")
    if isinstance(value, dict):
        return {k: _unmark(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unmark(v) for v in value]
    return value


def load_samples() -> dict[str, Any]:
    return _unmark(json.loads((FIXTURES / "samples.json").read_text(encoding="utf-8")))


SAMPLES = load_samples()


def sample_config(**overrides: Any) -> ScannerConfig:
    c = SAMPLES["config"]
    kwargs: dict[str, Any] = dict(
        url_allowlist=tuple(c["url_allowlist"]),
        canaries=tuple(c["canaries"]),
        system_prompts={k: tuple(v) for k, v in c["system_prompts"].items()},
    )
    kwargs.update(overrides)
    return ScannerConfig(**kwargs)


@pytest.fixture(scope="session")
def scanner() -> ContentScanner:
    """Every registered detector, configured with the samples' allow-list, canary and system prompt."""
    return ContentScanner(sample_config())


def reportable(scanner: ContentScanner, hits: list[Hit]) -> set[str]:
    """Detector ids whose hits reach their threshold (what would become findings for max-combine)."""
    out = set()
    for h in hits:
        det = scanner.detectors[h.detector]
        if h.score >= scanner.config.thresholds.get(h.detector, det.min_score):
            out.add(h.detector)
    return out


def detected(scanner: ContentScanner, text: str, placement: str) -> set[str]:
    """Detector ids that would report on ``text`` at ``placement`` (via a one-field event's findings)."""
    kind, role = {
        "direct": ("prompt", "user"), "system": ("prompt", "system"), "output": ("completion", None),
        "indirect": ("tool_result", None), "tool_args": ("tool_call", None),
    }[placement]
    if placement == "tool_args":
        ev = event(kind, arguments={"input": text})
    else:
        ev = event(kind, text=text, role=role)
    return {f.detector for f in scanner.scan(ev)}


def event(kind: str, *, text: str | None = None, role: str | None = None, arguments: dict | None = None,
          documents: list[str] | None = None, event_id: str = "evt-1", app: str = "billing-bot",
          session_id: str | None = "sess-1", tool_error: str | None = None, construct: bool = False) -> Event:
    """An Event v1 of ``kind`` (``construct=True`` skips validation, to feed out-of-contract input)."""
    data: dict[str, Any] = {
        "schema": "aiwatch.event/1", "event_id": event_id, "kind": kind, "app": app,
        "ts": datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc), "session_id": session_id,
        "actor": {"user_id": "u-42"}, "agent": "billing-agent",
    }
    if text is not None:
        data["content"] = {"role": role, "text": text}
    if arguments is not None or tool_error is not None or kind in ("tool_call", "tool_result"):
        data["tool"] = {"name": "shell", "call_id": "c1", "arguments": arguments, "error": tool_error}
    if documents is not None or kind == "retrieval":
        data["retrieval"] = {"source": "kb", "documents": [{"id": str(i), "text": t} for i, t in enumerate(documents or [])]}
    if construct:
        from schemas.event import Content, Retrieval, Tool

        parts = dict(data)
        parts.pop("schema")
        parts["schema_"] = "aiwatch.event/1"
        parts["actor"] = None
        if "content" in parts:
            parts["content"] = Content.model_construct(role=role, text=text, truncated=False)
        if "tool" in parts:
            parts["tool"] = Tool.model_construct(name="shell", call_id="c1", arguments=arguments, error=tool_error)
        if "retrieval" in parts:
            parts["retrieval"] = Retrieval.model_construct(source="kb", documents=[])
        return Event.model_construct(**parts)
    return Event.model_validate(data)
