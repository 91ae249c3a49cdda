"""Event/Finding → ClickHouse row tuples, in the column order of the DDL in infra/clickhouse."""

from __future__ import annotations

import hashlib
import operator
from typing import Any

import orjson

from schemas import Event, Finding
from streams.evidence import CANONICAL_COLUMNS, canonical_values

EVENT_COLUMNS = [
    "event_id", "ts", "kind", "app", "env", "tenant", "agent", "session_id", "trace_id", "span_id",
    "parent_span_id", "user_id", "roles", "on_behalf_of", "service_account", "model_provider",
    "model_name", "model_served", "model_endpoint", "content_role", "content_text", "content_truncated",
    "content_sha256", "tool_name", "tool_call_id", "tool_arguments", "tool_status", "tool_error",
    "tool_result_bytes", "tool_destination", "retrieval_source", "retrieval_documents", "input_tokens",
    "output_tokens", "cost_usd", "latency_ms", "labels", "source_collector", "source_convention", "extra",
    "kafka_partition", "kafka_offset", "row_sha256", "evidence_block",
]
ROW_HASH = EVENT_COLUMNS.index("row_sha256")
_canonical_of = operator.itemgetter(*(EVENT_COLUMNS.index(name) for name in CANONICAL_COLUMNS))
BLOCK = EVENT_COLUMNS.index("evidence_block")

FINDING_COLUMNS = [
    "finding_id", "ts", "detector", "rule_id", "category", "severity", "score", "event_id", "session_id",
    "app", "agent", "user_id", "title", "rationale", "evidence", "tags", "mode", "policy_version",
]

ALERT_COLUMNS = ["alert_id", "ts", "severity_id", "category", "app", "session_id", "title", "ocsf"]

DLQ_COLUMNS = [
    "dlq_id", "received_at", "topic", "partition", "offset", "reason", "detail", "size_bytes",
    "payload_sha256", "payload", "payload_truncated",
]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode() if value else ""


def _extras(part: Any) -> dict[str, Any]:
    return dict(part.__pydantic_extra__ or {}) if part is not None else {}


def event_row(event: Event, partition: int, offset: int) -> list:
    actor, model, content, tool = event.actor, event.model, event.content, event.tool
    retrieval, usage, source = event.retrieval, event.usage, event.source
    extra = event.extra
    for name, part in (("actor", actor), ("model", model), ("content", content), ("tool", tool), ("usage", usage)):
        if fields := _extras(part):
            extra[f"{name}.*"] = fields
    row = (
        event.event_id, event.ts, event.kind, event.app, event.env or "", event.tenant or "", event.agent or "",
        event.session_id or "", event.trace_id or "", event.span_id or "", event.parent_span_id or "",
        (actor.user_id or "") if actor else "", actor.roles if actor else [],
        (actor.on_behalf_of or "") if actor else "", (actor.service_account or "") if actor else "",
        (model.provider or "") if model else "", (model.name or "") if model else "",
        (model.served or "") if model else "", (model.endpoint or "") if model else "",
        (content.role or "") if content else "", (content.text or "") if content else "",
        bool(content.truncated) if content else False, (content.sha256 or "") if content else "",
        (tool.name or "") if tool else "", (tool.call_id or "") if tool else "",
        _json(tool.arguments) if tool else "", (tool.status or "") if tool else "",
        (tool.error or "") if tool else "", tool.result_bytes if tool else None,
        (tool.destination or "") if tool else "",
        (retrieval.source or "") if retrieval else "",
        _json([d.model_dump(exclude_none=True) for d in retrieval.documents]) if retrieval else "",
        usage.input_tokens if usage else None, usage.output_tokens if usage else None,
        usage.cost_usd if usage else None, usage.latency_ms if usage else None,
        event.labels, (source.collector or "") if source else "", (source.convention or "") if source else "",
        _json(extra), partition, offset,
    )
    # a list: the sink sets ``evidence_block`` in place when it seals the row (no copy of 44 columns)
    return [*row, hashlib.sha256(canonical_values(_canonical_of(row))).hexdigest(), ""]


def finding_row(finding: Finding) -> tuple:
    return (
        finding.finding_id, finding.ts, finding.detector, finding.rule_id or "", finding.category,
        finding.severity, finding.score, finding.event_id, finding.session_id or "", finding.app or "",
        finding.agent or "", finding.user_id or "", finding.title, finding.rationale, _json(finding.evidence),
        finding.tags, finding.mode, finding.policy_version or "",
    )


def alert_row(finding: Finding, ocsf: dict[str, Any], alert_id: str | None = None) -> tuple:
    return (
        alert_id or finding.finding_id, finding.ts, ocsf["severity_id"], finding.category, finding.app or "",
        finding.session_id or "", finding.title, orjson.dumps(ocsf).decode(),
    )
