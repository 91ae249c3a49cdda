"""Event dict → (key, JSON bytes), bounded to ``schemas.limits`` so what the SDK emits validates.

Runs on the publisher thread, never on the application thread: the SDK hands over a plain dict
(``ts`` as epoch seconds, user values as given) and everything costly happens here — coercing
user-supplied values to the JSON types of Event v1, clipping names and ids, bounding tool
arguments (depth, values, string lengths), truncating texts with ``truncated``/``sha256``, and
shrinking an event that would exceed the event byte limit. Nested user objects are never mutated:
bounded copies replace them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

from schemas import limits
from schemas.event import text_sha256

CONTENT_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
TOOL_STATUSES = frozenset({"ok", "error"})
USAGE_NUMBERS = ("input_tokens", "output_tokens", "cost_usd", "latency_ms")
_HEX = re.compile(r"^[0-9a-fA-F]{1,64}$")
_URL_CHARS = 2048
_DOC_ID_CHARS = 1024
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
_ELLIPSIS = "…[truncated]"


def encode_event(event: dict[str, Any], max_bytes: int = limits.MAX_EVENT_BYTES) -> tuple[bytes, bytes]:
    """Bound ``event`` in place (top level only) and serialize it; key = session_id or event_id."""
    bound_event(event)
    value = _dumps(event)
    if len(value) > max_bytes:
        value = _shrink(event, max_bytes)
    key = event.get("session_id") or event["event_id"]
    return key.encode("utf-8", "replace"), value


def bound_event(ev: dict[str, Any]) -> None:
    """Make every field of Event v1 type-correct and within limits (copies nested parts it changes)."""
    ts = ev.get("ts")
    if isinstance(ts, (int, float)):
        ev["ts"] = datetime.fromtimestamp(ts, timezone.utc)
    for name in ("app", "env", "tenant", "agent"):
        _clip_field(ev, name, limits.MAX_NAME_CHARS)
    for name in ("event_id", "session_id"):
        _clip_field(ev, name, limits.MAX_ID_CHARS)
    labels = _labels(ev.get("labels"))
    for name in ("trace_id", "span_id", "parent_span_id"):
        value = ev.get(name)
        if value is not None and not (isinstance(value, str) and _HEX.match(value)):
            del ev[name]
            labels[name] = _clip(str(value), limits.MAX_LABEL_VALUE_CHARS)
    if "actor" in ev:
        ev["actor"] = _actor(ev["actor"])
    if "model" in ev:
        ev["model"] = _model(ev["model"])
    if "content" in ev:
        ev["content"] = _content(ev["content"], labels)
    if "tool" in ev:
        ev["tool"] = _tool(ev["tool"], ev.get("content") if ev.get("kind") == "tool_result" else None)
    if "retrieval" in ev:
        ev["retrieval"] = _retrieval(ev["retrieval"])
    if "usage" in ev:
        ev["usage"] = _usage(ev["usage"])
    if labels:
        ev["labels"] = labels
    else:
        ev.pop("labels", None)


# -- parts -----------------------------------------------------------------------------------

def _actor(actor: Any) -> dict[str, Any]:
    out = _mapping(actor)
    for name in ("user_id", "on_behalf_of", "service_account"):
        _clip_field(out, name, limits.MAX_NAME_CHARS)
    roles = out.get("roles")
    if roles is not None:
        if isinstance(roles, str):
            roles = [roles]
        out["roles"] = [_clip(str(r), limits.MAX_NAME_CHARS) for r in list(roles)[:limits.MAX_ROLES]]
    return out


def _model(model: Any) -> dict[str, Any]:
    out = {"name": model} if isinstance(model, str) else _mapping(model)
    for name in ("provider", "name", "served"):
        _clip_field(out, name, limits.MAX_NAME_CHARS)
    _clip_field(out, "endpoint", _URL_CHARS)
    return out


def _content(content: Any, labels: dict[str, str]) -> dict[str, Any]:
    out = _mapping(content)
    role = out.get("role")
    if role is not None and role not in CONTENT_ROLES:
        labels["content_role"] = _clip(str(role), limits.MAX_LABEL_VALUE_CHARS)
        del out["role"]
    _bound_text(out)
    return out


def _tool(tool: Any, result: dict[str, Any] | None) -> dict[str, Any]:
    """Tool part; ``result`` is the content of a tool_result, whose size fills ``result_bytes``."""
    out = _mapping(tool)
    _clip_field(out, "name", limits.MAX_NAME_CHARS)
    _clip_field(out, "call_id", limits.MAX_ID_CHARS)
    _clip_field(out, "error", limits.MAX_LABEL_VALUE_CHARS)
    _clip_field(out, "destination", _URL_CHARS)
    if out.get("status") is not None and out["status"] not in TOOL_STATUSES:
        out["status"] = "error"
    if "arguments" in out:
        args = out["arguments"]
        if args is None:
            del out["arguments"]
        else:
            out["arguments"] = bound_arguments(args if isinstance(args, Mapping) else {"value": args})
    if out.get("result_bytes") is None and result and isinstance(result.get("text"), str) \
            and not result.get("truncated"):
        out["result_bytes"] = len(result["text"].encode("utf-8", "surrogatepass"))
    rb = out.get("result_bytes")
    if rb is not None and not (isinstance(rb, int) and rb >= 0):
        del out["result_bytes"]
    return out


def _retrieval(retrieval: Any) -> dict[str, Any]:
    out = _mapping(retrieval)
    _clip_field(out, "source", _URL_CHARS)
    docs = out.get("documents") or []
    if isinstance(docs, (str, bytes, Mapping)):
        docs = [docs]
    out["documents"] = [_document(d) for d in list(docs)[:limits.MAX_DOCUMENTS]]
    return out


def _document(doc: Any) -> dict[str, Any]:
    out = {"text": doc} if isinstance(doc, (str, bytes)) else _mapping(doc)
    if out.get("id") is not None:
        out["id"] = _clip(str(out["id"]), _DOC_ID_CHARS)
    _clip_field(out, "classification", limits.MAX_NAME_CHARS)
    score = out.get("score")
    if score is not None and not _is_number(score):
        del out["score"]
    _bound_text(out)
    return out


def _usage(usage: Any) -> dict[str, Any]:
    out = _mapping(usage)
    for name in USAGE_NUMBERS:
        value = out.get(name)
        if value is None:
            continue
        if not _is_number(value) or value < 0:
            del out[name]
        elif name.endswith("_tokens") and not isinstance(value, int):
            out[name] = int(value)
    return out


def _labels(labels: Any) -> dict[str, str]:
    if not labels:
        return {}
    out: dict[str, str] = {}
    for key, value in _mapping(labels).items():
        if len(out) >= limits.MAX_LABELS:
            break
        if value is None:
            continue
        out[_clip(str(key), limits.MAX_NAME_CHARS)] = _clip(
            value if isinstance(value, str) else str(value), limits.MAX_LABEL_VALUE_CHARS)
    return out


def _bound_text(part: dict[str, Any]) -> None:
    """Text of a content part or document: a str of at most MAX_TEXT_CHARS, with truncated/sha256."""
    text = part.get("text")
    if text is None:
        return
    if not isinstance(text, str):
        text = _as_text(text)
    if len(text) > limits.MAX_TEXT_CHARS:
        part["sha256"] = text_sha256(text)
        part["truncated"] = True
        text = text[:limits.MAX_TEXT_CHARS]
    part["text"] = text
    sha = part.get("sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64 and _HEX.match(sha) and sha.islower()):
        del part["sha256"]


# -- tool arguments --------------------------------------------------------------------------

def bound_arguments(arguments: Mapping[Any, Any]) -> dict[str, Any]:
    """A JSON-plain copy of tool arguments within depth, value-count and string limits.

    Iterative (no recursion: hostile nesting cannot blow the stack). Values beyond the limits are
    replaced by a marker string rather than dropping the whole argument set.
    """
    budget = limits.MAX_ARGUMENT_NODES - 2  # the root, and one marker when values are omitted
    root: dict[str, Any] = {}
    stack: list[tuple[Any, Any, int]] = [(arguments, root, 2)]
    while stack:
        source, target, depth = stack.pop()
        items = source.items() if isinstance(target, dict) else enumerate(source)
        for key, value in items:
            if budget <= 0:
                _put(target, key, "[aiwatch: more values omitted]")
                stack.clear()
                break
            budget -= 1
            if isinstance(value, Mapping) or isinstance(value, (list, tuple, set, frozenset)):
                if depth >= limits.MAX_ARGUMENT_DEPTH:
                    _put(target, key, "[aiwatch: nested too deep]")
                    continue
                child: Any = {} if isinstance(value, Mapping) else []
                _put(target, key, child)
                stack.append((value if not isinstance(value, (set, frozenset)) else list(value), child, depth + 1))
            else:
                _put(target, key, _scalar(value))
    return root


def _put(target: Any, key: Any, value: Any) -> None:
    if isinstance(target, dict):
        target[key if isinstance(key, str) else str(key)] = value
    else:
        target.append(value)


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            return str(value)
        return value
    text = value if isinstance(value, str) else _as_text(value)
    return _clip(text, limits.MAX_TEXT_CHARS)


# -- size ------------------------------------------------------------------------------------

def _shrink(ev: dict[str, Any], max_bytes: int) -> bytes:
    """Halve the longest texts (then drop arguments, then documents) until the event fits."""
    for _ in range(64):
        holders = _text_holders(ev)
        if not holders:
            break
        part = max(holders, key=lambda p: len(p["text"]))
        text = part["text"]
        if len(text) < 64:
            break
        if not part.get("truncated"):
            part["sha256"] = text_sha256(text)
            part["truncated"] = True
        part["text"] = text[: len(text) // 2]
        value = _dumps(ev)
        if len(value) <= max_bytes:
            return value
    tool = ev.get("tool")
    if isinstance(tool, dict) and tool.get("arguments"):
        raw = _dumps(tool["arguments"])
        tool["arguments"] = {"_aiwatch_omitted": f"arguments of {len(raw)} bytes exceed the event size limit",
                             "_sha256": text_sha256(raw.decode("utf-8"))}
    value = _dumps(ev)
    retrieval = ev.get("retrieval")
    while len(value) > max_bytes and isinstance(retrieval, dict) and retrieval.get("documents"):
        retrieval["documents"] = retrieval["documents"][: len(retrieval["documents"]) // 2]
        ev.setdefault("labels", {})["documents_omitted"] = "true"
        value = _dumps(ev)
    return value


def _text_holders(ev: dict[str, Any]) -> list[dict[str, Any]]:
    holders = []
    content = ev.get("content")
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        holders.append(content)
    retrieval = ev.get("retrieval")
    if isinstance(retrieval, dict):
        holders.extend(d for d in retrieval.get("documents", ()) if isinstance(d.get("text"), str))
    return holders


# -- helpers ---------------------------------------------------------------------------------

def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_fallback, option=_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):  # lone surrogates, >64-bit ints, deep user objects
        return orjson.dumps(_plain(value, 0), default=_fallback, option=_OPTIONS)


def _plain(value: Any, depth: int) -> Any:
    """A JSON-safe copy: valid UTF-8 strings, 64-bit ints, bounded nesting (the slow, rare path)."""
    if depth > 64:
        return "[aiwatch: nested too deep]"
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool) or value is None or isinstance(value, (float, datetime)):
        return value
    if isinstance(value, int):
        return value if -2**63 <= value < 2**64 else str(value)
    if isinstance(value, Mapping):
        return {_plain(_as_text(k), depth + 1): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in value]
    return _plain(_fallback(value), depth + 1)


def _mapping(value: Any) -> dict[str, Any]:
    """A fresh dict with str keys (never the caller's object, which we must not mutate)."""
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): v for k, v in value.items()}
    return {"value": _as_text(value)} if value is not None else {}


def _clip_field(part: dict[str, Any], name: str, size: int) -> None:
    value = part.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        value = _as_text(value)
    part[name] = _clip(value, size)


def _clip(text: str, size: int) -> str:
    if len(text) <= size:
        return text
    return text[: size - len(_ELLIPSIS)] + _ELLIPSIS


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a hostile __str__ must not lose the event
        return f"<unprintable {type(value).__name__}>"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _fallback(value: Any) -> Any:
    """orjson ``default``: anything not JSON-native becomes bounded text (or a list for sets/tuples)."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return _clip(_as_text(value), limits.MAX_LABEL_VALUE_CHARS)
