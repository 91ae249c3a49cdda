"""Redaction before storage: the monitor must not become the leak (DESIGN §4, §6).

Every prompt, tool result and document an agent saw is kept for months; a key pasted into a chat would
sit in the event store, readable by every analyst. ``Redactor`` finds the values of the chosen
categories with the same detectors the worker runs (secrets by default; PII on request) and returns a
copy of the event in which each value is replaced by a marker naming the detector and the first 12 hex
digits of the value's sha256 — enough to correlate ("the same key leaked in three sessions") without
keeping the value:

    >>> from detectors.behavior.testing import ev
    >>> r = Redactor()
    >>> e = ev("completion", text="use aws_access_key_id = AKIA2E3MPLQ7TRXV4ZB6 for the build")
    >>> stored, n = r.redact(e)
    >>> n, "AKIA" in stored.content.text, stored.content.text.startswith("use aws_access_key_id = [REDACTED secret.")
    (1, False, True)
    >>> "AKIA" in e.content.text  # the original, which the detectors see, is untouched
    True

Every text field the content scanner reads is covered — ``content.text``, ``tool.error``, each
retrieved document's text and every string inside tool-call arguments — and, unlike detection, the whole
of each field is read (up to the 1 MiB event limit), not its head and tail. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from detectors.config import ScannerConfig
from detectors.hits import Hit
from detectors.registry import REGISTRY
from detectors.scan import ContentScanner
from schemas import limits
from schemas.event import Event

CATEGORY_SETS: dict[str, tuple[str, ...]] = {
    "off": (), "secrets": ("secret_leak",), "secrets+pii": ("secret_leak", "pii_exposure"),
}


def marker(hit: Hit) -> str:
    digest = (hit.sha256 or "")[:12]
    return f"[REDACTED {hit.detector} sha256:{digest}]" if digest else f"[REDACTED {hit.detector}]"


def _replace(value: str, hits: Iterable[Hit]) -> str:
    """``value`` with each hit's span replaced by its marker (overlaps: the earlier span wins)."""
    out: list[str] = []
    pos = 0
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if hit.start < pos or hit.end <= hit.start or hit.end > len(value):
            continue
        out.append(value[pos:hit.start])
        out.append(marker(hit))
        pos = hit.end
    out.append(value[pos:])
    return "".join(out)


def _argument_slots(arguments: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Path → (container, key) of every string in tool arguments, with the paths ``detectors.fields``
    gives them (``tool.arguments.a.b[0]``)."""
    slots: dict[str, tuple[Any, Any]] = {}
    stack: list[tuple[str, Any, Any, Any]] = [("tool.arguments", None, None, arguments)]
    while stack:
        path, container, key, value = stack.pop()
        if isinstance(value, str) and container is not None:
            slots[path] = (container, key)
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}", value, k, v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", value, i, v) for i, v in enumerate(value))
    return slots


class Redactor:
    """Replaces secret (and optionally PII) values in a copy of an event; see the module docstring."""

    def __init__(self, categories: tuple[str, ...] = ("secret_leak",), config: ScannerConfig | None = None) -> None:
        unknown = set(categories) - {c for cs in CATEGORY_SETS.values() for c in cs}
        if unknown:
            raise ValueError(f"cannot redact categories {sorted(unknown)}; choose from secret_leak, pii_exposure")
        # placeholders (secret.template) are not secrets: the stored copy keeps AKIAIOSFODNN7EXAMPLE readable
        templates = {d.placeholder_as.id for d in REGISTRY.values() if d.placeholder_as is not None}
        ids = tuple(d.id for d in REGISTRY.values()
                    if d.category.value in categories and d.sensitive and d.id not in templates)
        base = config or ScannerConfig()
        whole = limits.MAX_EVENT_BYTES
        self.scanner = ContentScanner(dataclasses.replace(
            base, detectors=ids, exclude=(), max_field_chars=whole, max_event_chars=whole))
        self.categories = categories

    @classmethod
    def from_setting(cls, mode: str, config: ScannerConfig | None = None) -> "Redactor | None":
        """The redactor for ``AIWATCH_REDACT`` (``off`` → None)."""
        if mode not in CATEGORY_SETS:
            raise ValueError(f"redact must be one of {', '.join(CATEGORY_SETS)}, not {mode!r}")
        return cls(CATEGORY_SETS[mode], config) if CATEGORY_SETS[mode] else None

    def redact(self, event: Event) -> tuple[Event, int]:
        """(event to store, number of values replaced); the same object when nothing was found."""
        hits = self.scanner.hits(event)
        if not hits:
            return event, 0
        by_field: dict[str, list[Hit]] = {}
        for hit in hits:
            by_field.setdefault(hit.field, []).append(hit)
        stored = event.model_copy(deep=True)
        slots = _argument_slots(stored.tool.arguments) if stored.tool is not None and stored.tool.arguments else {}
        done = 0
        for path, found in by_field.items():
            if path == "content.text" and stored.content is not None and stored.content.text:
                stored.content.text = _replace(stored.content.text, found)
            elif path == "tool.error" and stored.tool is not None and stored.tool.error:
                stored.tool.error = _replace(stored.tool.error, found)
            elif path.startswith("retrieval.documents[") and stored.retrieval is not None:
                index = int(path[len("retrieval.documents["):path.index("]")])
                doc = stored.retrieval.documents[index]
                doc.text = _replace(doc.text or "", found)
            elif path in slots:
                container, key = slots[path]
                container[key] = _replace(container[key], found)
            else:
                continue
            done += len(found)
        return stored, done


FAILED = "[REDACTION FAILED: text not stored]"


def blank_texts(event: Event) -> Event:
    """A copy of ``event`` without any of its texts (when redaction itself failed: store nothing readable)."""
    stored = event.model_copy(deep=True)
    if stored.content is not None and stored.content.text:
        stored.content.text = FAILED
    if stored.tool is not None:
        if stored.tool.error:
            stored.tool.error = FAILED
        if stored.tool.arguments:
            stored.tool.arguments = {"redaction": FAILED}
    if stored.retrieval is not None:
        for doc in stored.retrieval.documents:
            if doc.text:
                doc.text = FAILED
    return stored
