"""Idempotent batched writes to ClickHouse.

At-least-once delivery means a batch can come twice (a crash after the insert, before the offset
commit). Before inserting, the sink asks ClickHouse which ids of the batch are already stored and
writes only the others, so a redelivered event never becomes a second row. The tables are
ReplacingMergeTree on the same key as a second line of defence.
"""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from streams.db import sql_string
from streams.evidence import BLOCK_COLUMNS, GENESIS, EvidenceChain
from streams.sinks.rows import ALERT_COLUMNS, BLOCK, DLQ_COLUMNS, EVENT_COLUMNS, FINDING_COLUMNS, ROW_HASH

TABLES = {"events": EVENT_COLUMNS, "findings": FINDING_COLUMNS, "dlq": DLQ_COLUMNS, "alerts": ALERT_COLUMNS}


class ClickHouseSink:
    """Writes row tuples whose first column is the table's idempotency key."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._chain: EvidenceChain | None = None  # created at the first insert: links to the newest block

    def existing(self, table: str, ids: Sequence[str]) -> set[str]:
        key = TABLES[table][0]
        # ids are quoted here rather than bound: the driver's binding escapes character by character,
        # which measured ~4% of the worker's time at 2,000 ids per batch
        listed = ",".join(map(sql_string, ids))
        result = self._client.query(f"SELECT {key} FROM {table} WHERE {key} IN ({listed})")
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

    def write_events(self, rows: Sequence[list]) -> int:
        """``write`` for event rows, sealing the rows it inserts in one evidence-chain block, written
        before them (``streams.evidence``)."""
        if not rows:
            return 0
        unique: dict[str, tuple] = {}
        for row in rows:
            unique.setdefault(row[0], row)
        stored = self.existing("events", list(unique))
        fresh = [row for key, row in unique.items() if key not in stored]
        if not fresh:
            return 0
        if self._chain is None:
            self._chain = EvidenceChain(prev_hash=self._newest_block())
        block = self._chain.block([row[ROW_HASH] for row in fresh])
        self._client.insert("evidence_chain", [[block[c] for c in BLOCK_COLUMNS]], column_names=list(BLOCK_COLUMNS))
        block_id = block["block_id"]
        for row in fresh:
            row[BLOCK] = block_id
        self._client.insert("events", fresh, column_names=EVENT_COLUMNS)
        return len(fresh)

    def _newest_block(self) -> str:
        rows = self._client.query("SELECT hash FROM evidence_chain ORDER BY created_at DESC, seq DESC LIMIT 1").result_rows
        return str(rows[0][0]) if rows else GENESIS

    def insert_dicts(self, table: str, rows: Sequence[dict]) -> None:
        """Plain insert of dict rows (snapshots: no idempotency key, the snapshot time is part of the key)."""
        columns = list(rows[0])
        self._client.insert(table, [[row[c] for c in columns] for row in rows], column_names=columns)

    def close(self) -> None:
        self._client.close()
