"""OTLP request bodies (protobuf or JSON) → :class:`SpanView` / :class:`LogView`.

A body that cannot be read at all raises :class:`DecodeError` (HTTP 400). A single span or log
record that is malformed (bad ids, wrong types) is *rejected* — counted and described — while the
rest of the request goes on (OTLP ``partial_success``).

JSON follows the OTLP/JSON encoding: lowerCamelCase keys (snake_case accepted too), trace and span
ids in hex (base64, as some exporters send, accepted too), int64 as strings or numbers, enums as
integers (names accepted too).
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError as _PbDecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.otlp.model import LogView, Resource, SpanView

MAX_ANY_DEPTH = 32           # nesting of AnyValue arrays/maps kept; deeper becomes a marker string
MAX_ERRORS_REPORTED = 5      # distinct rejection reasons named in error_message


class DecodeError(ValueError):
    """The body is not an OTLP request of the expected type."""


@dataclass(slots=True)
class Decoded:
    """Views decoded from one request, plus what was rejected and why."""

    items: list[Any] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_ERRORS_REPORTED and reason not in self.reasons:
            self.reasons.append(reason)


# -- ids --------------------------------------------------------------------------------------

_HEXCHARS = frozenset("0123456789abcdefABCDEF")


def id_from_bytes(raw: bytes, size: int) -> str | None:
    """Protobuf id bytes → lowercase hex; empty or all-zero → None; wrong size → ValueError."""
    if not raw:
        return None
    if len(raw) != size:
        raise ValueError(f"id must be {size} bytes, got {len(raw)}")
    if not any(raw):
        return None
    return raw.hex()


def id_from_text(text: Any, size: int) -> str | None:
    """JSON id: hex (the OTLP/JSON rule) or base64 (what protobuf-JSON mappers emit)."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise ValueError(f"id must be a string, got {type(text).__name__}")
    if len(text) == size * 2 and _HEXCHARS.issuperset(text):
        raw = bytes.fromhex(text)
    else:
        try:
            raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ValueError(f"id {text[:40]!r} is neither {size * 2} hex digits nor base64 of {size} bytes") from None
    return id_from_bytes(raw, size)


# -- protobuf ---------------------------------------------------------------------------------

def _pb_value(value: Any, depth: int = 0) -> Any:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if depth >= MAX_ANY_DEPTH:
        return "[aiwatch: nested too deep]"
    if which == "array_value":
        return [_pb_value(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return binascii.b2a_base64(value.bytes_value, newline=False).decode("ascii")
    return None


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def _pb_resource(resource: Any, scope: Any, schema_url: str) -> Resource:
    return Resource(_pb_attrs(resource.attributes), scope.name, scope.version, schema_url)


def decode_traces_pb(body: bytes) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (_PbDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a protobuf ExportTraceServiceRequest: {exc}") from None
    out = Decoded()
    for rs in request.resource_spans:
        res_attrs = _pb_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            resource = Resource(res_attrs, ss.scope.name, ss.scope.version, ss.schema_url or rs.schema_url)
            for sp in ss.spans:
                try:
                    trace_id = id_from_bytes(sp.trace_id, 16)
                    span_id = id_from_bytes(sp.span_id, 8)
                    parent = id_from_bytes(sp.parent_span_id, 8)
                except ValueError as exc:
                    out.reject(f"span {sp.name[:60]!r}: {exc}")
                    continue
                if trace_id is None or span_id is None:
                    out.reject(f"span {sp.name[:60]!r}: trace_id and span_id are required")
                    continue
                out.items.append(SpanView(
                    resource, trace_id, span_id, parent, sp.name, sp.kind,
                    sp.start_time_unix_nano, sp.end_time_unix_nano, _pb_attrs(sp.attributes),
                    sp.status.code, sp.status.message,
                    [(e.name, e.time_unix_nano, _pb_attrs(e.attributes)) for e in sp.events] if sp.events else [],
                ))
    return out


def decode_logs_pb(body: bytes) -> Decoded:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except (_PbDecodeError, RuntimeError, ValueError) as exc:
        raise DecodeError(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None
    out = Decoded()
    for rl in request.resource_logs:
        res_attrs = _pb_attrs(rl.resource.attributes)
        for sl in rl.scope_logs:
            resource = Resource(res_attrs, sl.scope.name, sl.scope.version, sl.schema_url or rl.schema_url)
            for lr in sl.log_records:
                try:
                    trace_id = id_from_bytes(lr.trace_id, 16)
                    span_id = id_from_bytes(lr.span_id, 8)
                except ValueError as exc:
                    out.reject(f"log record: {exc}")
                    continue
                attrs = _pb_attrs(lr.attributes)
                name = lr.event_name or attrs.get("event.name") or ""
                body_value = _pb_value(lr.body) if lr.HasField("body") else None
                out.items.append(LogView(resource, lr.time_unix_nano or lr.observed_time_unix_nano, trace_id,
                                         span_id, str(name), body_value, attrs, lr.severity_text))
    return out


# -- JSON -------------------------------------------------------------------------------------

def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _int(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{what} {value[:40]!r} is not an integer") from None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"{what} must be an integer, got {type(value).__name__}")


_SPAN_KINDS = {"SPAN_KIND_UNSPECIFIED": 0, "SPAN_KIND_INTERNAL": 1, "SPAN_KIND_SERVER": 2, "SPAN_KIND_CLIENT": 3,
               "SPAN_KIND_PRODUCER": 4, "SPAN_KIND_CONSUMER": 5}
_STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _enum(value: Any, names: dict[str, int], what: str) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    return _int(value, what)


def _json_value(value: Any, depth: int = 0) -> Any:
    if not isinstance(value, dict):
        if value is None:
            return None
        raise ValueError(f"attribute value must be an AnyValue object, got {type(value).__name__}")
    for key, item in value.items():
        if key == "stringValue" or key == "string_value":
            return item if isinstance(item, str) else str(item)
        if key == "intValue" or key == "int_value":
            return _int(item, "intValue")
        if key == "boolValue" or key == "bool_value":
            return bool(item)
        if key == "doubleValue" or key == "double_value":
            return float(item)
        if depth >= MAX_ANY_DEPTH:
            return "[aiwatch: nested too deep]"
        if key == "arrayValue" or key == "array_value":
            values = (item or {}).get("values") or []
            return [_json_value(v, depth + 1) for v in _list(values, "arrayValue.values")]
        if key == "kvlistValue" or key == "kvlist_value":
            return _json_attrs((item or {}).get("values") or [], depth + 1)
        if key == "bytesValue" or key == "bytes_value":
            return item if isinstance(item, str) else str(item)
    return None


def _json_attrs(kvs: Any, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in _list(kvs, "attributes"):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise ValueError("attribute must be an object with a string 'key'")
        out[kv["key"]] = _json_value(kv.get("value"), depth)
    return out


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"'{what}' must be a list, got {type(value).__name__}")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"'{what}' must be an object, got {type(value).__name__}")
    return value


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DecodeError(f"body must be a JSON object, got {type(data).__name__}")
    return data


def _json_scopes(data: dict[str, Any], outer: tuple[str, str], inner: tuple[str, str]) -> Iterator[tuple[Resource, list[Any]]]:
    """(resource, records) per scope; structural errors above the record level fail the request."""
    try:
        for rs in _list(_get(data, *outer), outer[0]):
            rs = _object(rs, outer[0])
            resource = _object(rs.get("resource"), "resource")
            res_attrs = _json_attrs(resource.get("attributes"))
            schema = _get(rs, "schemaUrl", "schema_url") or ""
            for ss in _list(_get(rs, *inner), inner[0]):
                ss = _object(ss, inner[0])
                scope = _object(ss.get("scope"), "scope")
                yield (Resource(res_attrs, str(scope.get("name") or ""), str(scope.get("version") or ""),
                                str(_get(ss, "schemaUrl", "schema_url") or schema)),
                       _list(ss.get("spans") if "spans" in ss else _get(ss, "logRecords", "log_records"), "records"))
    except ValueError as exc:
        raise DecodeError(f"malformed OTLP/JSON request: {exc}") from None


def decode_traces_json(body: bytes) -> Decoded:
    data = _json_body(body)
    out = Decoded()
    for resource, spans in _json_scopes(data, ("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans")):
        for index, sp in enumerate(spans):
            try:
                if not isinstance(sp, dict):
                    raise ValueError("a span must be an object")
                trace_id = id_from_text(_get(sp, "traceId", "trace_id"), 16)
                span_id = id_from_text(_get(sp, "spanId", "span_id"), 8)
                parent = id_from_text(_get(sp, "parentSpanId", "parent_span_id"), 8)
                if trace_id is None or span_id is None:
                    raise ValueError("traceId and spanId are required")
                status = _object(sp.get("status"), "status")
                events = []
                for ev in _list(sp.get("events"), "events"):
                    ev = _object(ev, "events")
                    events.append((str(ev.get("name") or ""), _int(_get(ev, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
                                   _json_attrs(ev.get("attributes"))))
                out.items.append(SpanView(
                    resource, trace_id, span_id, parent, str(sp.get("name") or ""),
                    _enum(sp.get("kind"), _SPAN_KINDS, "kind"),
                    _int(_get(sp, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"),
                    _int(_get(sp, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano"),
                    _json_attrs(sp.get("attributes")),
                    _enum(status.get("code"), _STATUS_CODES, "status.code"), str(status.get("message") or ""),
                    events,
                ))
            except (ValueError, TypeError) as exc:
                name = sp.get("name") if isinstance(sp, dict) else None
                label = f"span {str(name)[:60]!r}" if name else f"span #{index}"
                out.reject(f"{label}: {exc}")
    return out


def decode_logs_json(body: bytes) -> Decoded:
    data = _json_body(body)
    out = Decoded()
    for resource, records in _json_scopes(data, ("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs")):
        for index, lr in enumerate(records):
            try:
                if not isinstance(lr, dict):
                    raise ValueError("a log record must be an object")
                attrs = _json_attrs(lr.get("attributes"))
                body_value = _json_value(lr.get("body")) if lr.get("body") is not None else None
                name = _get(lr, "eventName", "event_name") or attrs.get("event.name") or ""
                time_ns = _int(_get(lr, "timeUnixNano", "time_unix_nano"), "timeUnixNano") or \
                    _int(_get(lr, "observedTimeUnixNano", "observed_time_unix_nano"), "observedTimeUnixNano")
                out.items.append(LogView(resource, time_ns, id_from_text(_get(lr, "traceId", "trace_id"), 16),
                                         id_from_text(_get(lr, "spanId", "span_id"), 8), str(name), body_value, attrs,
                                         str(_get(lr, "severityText", "severity_text") or "")))
            except (ValueError, TypeError) as exc:
                out.reject(f"log record #{index}: {exc}")
    return out


DECODERS = {
    ("traces", "protobuf"): decode_traces_pb,
    ("traces", "json"): decode_traces_json,
    ("logs", "protobuf"): decode_logs_pb,
    ("logs", "json"): decode_logs_json,
}
