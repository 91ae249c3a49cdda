"""ClickHouse connection and the idempotent migration behind ``aiwatch init-db``.

Migrations are the numbered ``.sql`` files in ``infra/clickhouse/migrations``; each applied one is
recorded (version, name, sha256) in ``schema_migrations``. Re-running applies nothing new but always
re-asserts the retention TTL, so changing ``AIWATCH_RETENTION_DAYS`` takes effect on the next run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from schemas.settings import MIN_RETENTION_DAYS

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "infra" / "clickhouse" / "migrations"
RETAINED_TABLES = {"events": "ts", "findings": "ts", "dlq": "received_at", "alerts": "ts", "baselines": "snapshot_ts",
                   "evidence_chain": "created_at"}


def sql_string(value: str) -> str:
    """``value`` as a ClickHouse string literal, for the few statements built as text (the read-only
    ``/sql`` path takes no parameters, and binding 2,000 ids costs more than quoting them)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def connect(dsn: str) -> Client:
    """A clickhouse-connect client for ``chdb:///path`` (embedded engine) or ``http(s)://...`` (server)."""
    if dsn.startswith("chdb:"):
        path = dsn[len("chdb://"):]
        if path.startswith("/"):
            Path(path).mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=dsn)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = re.match(r"^(\d+)_(.+)\.sql$", path.name)
        if not match:
            raise ValueError(f"migration file name must be NNNN_name.sql: {path}")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text(encoding="utf-8")))
    return found


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def migrate(client: Client, retention_days: int) -> list[str]:
    """Apply pending migrations and the retention TTL; returns what was done, in words."""
    if retention_days < MIN_RETENTION_DAYS:
        raise ValueError(
            f"retention of {retention_days} days refused: events must be kept at least {MIN_RETENTION_DAYS} days"
        )
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, sha256 String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    done = []
    for migration in load_migrations():
        if migration.version in applied:
            continue
        for statement in _statements(migration.sql.replace("{retention_days}", str(int(retention_days)))):
            client.command(statement)
        client.insert(
            "schema_migrations",
            [(migration.version, migration.name, migration.sha256)],
            column_names=["version", "name", "sha256"],
        )
        done.append(f"applied {migration.version:04d}_{migration.name}")
    engines = dict(
        client.query("SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()").result_rows
    )
    for table, column in RETAINED_TABLES.items():
        if f"toIntervalDay({int(retention_days)})" in engines.get(table, ""):
            continue  # unchanged: MODIFY TTL would rewrite parts for nothing
        client.command(f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + INTERVAL {int(retention_days)} DAY")
        done.append(f"retention of {table} set to {int(retention_days)} days")
    return done
