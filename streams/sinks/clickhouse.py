"""Idempotent batched writes to ClickHouse.

At-least-once delivery means a batch can come twice (a crash after the insert, before the offset
commit). Before inserting, the sink asks ClickHouse which ids of the batch are already stored and
writes only the others, so a redelivered event never becomes a second row. The tables are
ReplacingMergeTree on the same key as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from streams.sinks.rows import ALERT_COLUMNS, DLQ_COLUMNS, EVENT_COLUMNS, FINDING_COLUMNS

TABLES = {"events": EVENT_COLUMNS, "findings": FINDING_COLUMNS, "dlq": DLQ_COLUMNS, "alerts": ALERT_COLUMNS}


class ClickHouseSink:
    """Writes row tuples whose first column is the table's idempotency key."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def existing(self, table: str, ids: Sequence[str]) -> set[str]:
        key = TABLES[table][0]
        result = self._client.query(
            f"SELECT {key} FROM {table} WHERE {key} IN {{ids:Array(String)}}", parameters={"ids": list(ids)}
        )
        return {row[0] for row in result.result_rows}

    def write(self, table: str, rows: Sequence[tuple]) -> int:
        """Insert the rows not stored yet; returns how many were new."""
        if not rows:
            return 0
        unique: dict[str, tuple] = {}
        for row in rows:
            unique.setdefault(row[0], row)
        stored = self.existing(table, list(unique))
        fresh = [row for key, row in unique.items() if key not in stored]
        if fresh:
            self._client.insert(table, fresh, column_names=TABLES[table])
        return len(fresh)

    def insert_dicts(self, table: str, rows: Sequence[dict]) -> None:
        """Plain insert of dict rows (snapshots: no idempotency key, the snapshot time is part of the key)."""
        columns = list(rows[0])
        self._client.insert(table, [[row[c] for c in columns] for row in rows], column_names=columns)

    def close(self) -> None:
        self._client.close()
