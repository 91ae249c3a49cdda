"""Change control of the rule pack: record in ClickHouse every pack that goes into force (DESIGN §4)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

COLUMNS = ["change_id", "changed_at", "policy_version", "previous_version", "digest", "changed_by", "reason",
           "manifest"]


def current_policy(client: Client) -> str | None:
    rows = client.query("SELECT policy_version FROM policy_changes ORDER BY changed_at DESC LIMIT 1").result_rows
    return rows[0][0] if rows else None


def record_policy(client: Client, manifest: dict[str, Any], changed_by: str, reason: str,
                  now: datetime | None = None) -> str | None:
    """Insert a change row when the pack in force differs from the last recorded one; returns a
    sentence saying what was recorded, or None when nothing changed."""
    version = manifest["policy_version"]
    previous = current_policy(client)
    if previous == version:
        return None
    changed_at = now or datetime.now(timezone.utc)
    change_id = hashlib.sha256(f"{previous}\x1f{version}\x1f{changed_at.isoformat()}".encode()).hexdigest()[:32]
    client.insert("policy_changes", [[change_id, changed_at, version, previous or "", manifest["digest"], changed_by,
                                      reason, orjson.dumps(manifest, default=str).decode()]], column_names=COLUMNS)
    return f"policy {version} in force (was {previous or 'none'}), recorded as change {change_id} by {changed_by}"
