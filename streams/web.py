"""Worker HTTP views: ``/health``, ``/metrics`` (Prometheus) and ``/sql`` (read-only queries).

In embedded mode the worker process owns the chDB store, so the CLI and tests read through ``/sql``;
queries run with ``readonly=2`` (reads only; settings may change but never ``readonly`` itself),
so a request can never modify evidence.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import faust
from clickhouse_connect.driver.client import Client

from schemas.settings import Settings
from streams import metrics

MAX_ROWS = 10_000


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def run_readonly(client: Client, sql: str) -> dict[str, Any]:
    result = client.query(sql, settings={"readonly": 2, "max_result_rows": MAX_ROWS, "result_overflow_mode": "break"})
    return {"columns": list(result.column_names), "rows": [[_plain(v) for v in row] for row in result.result_rows]}


def register_views(app: faust.App, *, settings: Settings, read_client: Client, executor: Executor) -> None:
    @app.page("/health")
    async def health(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "ok", "app": settings.app_id, "counters": metrics.snapshot()})

    @app.page("/metrics")
    async def prometheus(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return web.bytes(metrics.render(), content_type="text/plain; version=0.0.4")

    @app.page("/sql")
    class ReadOnlySQL(faust.web.View):
        async def get(self, request: faust.web.Request) -> faust.web.Response:
            return await self._answer(request.query.get("q", ""))

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            return await self._answer(await request.text())

        async def _answer(self, query: str) -> faust.web.Response:
            if not query.strip():
                return self.json({"error": "give the SQL as ?q= or as the POST body"}, status=400)
            loop = asyncio.get_running_loop()
            try:
                body = await loop.run_in_executor(executor, run_readonly, read_client, query)
            except Exception as exc:  # noqa: BLE001 - the error is the answer
                return self.json({"error": str(exc)[:2000]}, status=400)
            return self.json(body)
