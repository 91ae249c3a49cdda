"""Readable validation errors: an analyst reading the DLQ should see what was wrong in one line."""

from __future__ import annotations

from pydantic import ValidationError


def describe(error: ValidationError, limit: int = 5) -> str:
    """``field.path: message; ...`` for the first ``limit`` problems of a ValidationError."""
    parts = []
    for item in error.errors(include_url=False)[:limit]:
        where = ".".join(str(p) for p in item.get("loc", ())) or "event"
        msg = item.get("msg", "invalid")
        if item.get("type") == "missing":
            msg = "required field is missing"
        parts.append(f"{where}: {msg}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)
