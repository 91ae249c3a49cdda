"""What the MCP proxy sees, as Event v1: JSON-RPC lines in, event dicts out (no I/O but the inventory).

The proxy hands every complete line of each direction to :meth:`Observer.line`; the observer
correlates requests with responses and returns the events to publish:

``tool_call``  (client → server ``tools/call``)
    ``tool.name``, ``tool.arguments``, ``tool.call_id``, ``tool.destination`` = ``mcp://<server>``.
``tool_result`` (server → client answer to a ``tools/call``)
    ``tool.status`` ``ok``/``error`` (``error`` for a JSON-RPC error *and* for ``isError: true``),
    ``tool.error`` (JSON-RPC ``code: message``, or the tool's own error text), ``tool.result_bytes``
    (size of the JSON-RPC response on the wire), ``content.text`` (the text the tool returned, for the
    content detectors: indirect prompt injection arrives this way), ``usage.latency_ms``.
    A call the client cancels, or that is still unanswered when the server exits, is closed with a
    ``tool_result`` of status ``error`` and ``labels["mcp.outcome"]`` = ``cancelled`` / ``unanswered``.
``tool_result`` for ``tools/list`` (the *inventory event*, one per complete listing)
    ``tool.name`` = ``tools/list``; ``content.text`` = every tool's name, description and parameter
    descriptions (what the model will read: poisoning hidden there reaches the detectors even the
    first time a server is seen); labels ``mcp.inventory`` = ``baseline`` (server never seen before),
    ``unchanged`` or ``changed``, ``mcp.tools.count``, ``mcp.tools.sha256``, and the names in
    ``mcp.tools.added`` / ``mcp.tools.changed`` / ``mcp.tools.removed``.
``tool_result`` per tool whose definition changed between sessions (or within one)
    ``tool.name`` = the tool; ``content.text`` = its new definition as text (absent when removed);
    labels ``mcp.tool_definition`` = ``changed`` / ``added`` / ``removed``, and for ``changed`` also
    ``mcp.tool_definition_changed`` = ``true`` (the label rules match for ATLAS AML.T0110, OWASP
    ASI04/LLM03), ``mcp.definition.old_sha256``, ``mcp.definition.new_sha256``,
    ``mcp.definition.changed_fields`` (``description,inputSchema``), ``mcp.definition.diff`` (which
    JSON paths changed, with removed ``[-…]`` and added ``[+…]`` words), ``mcp.definition.previous_seen``
    and ``mcp.definition.previous_session``.

Every event carries ``session_id`` (one per proxy run, or the server's session id when it sends
one), ``source.collector = "mcp"``, ``source.convention = "mcp-<protocol version>"`` and labels
``mcp.server`` (the inventory key), ``mcp.transport = "stdio"``, ``mcp.proxy_run``, and once known
``mcp.server_info`` / ``mcp.client`` (``name/version`` from ``initialize``), ``mcp.request_id``.
``agent`` is the client's name (the agent host, e.g. ``claude-code``).

Nothing here may raise into the proxy: :meth:`Observer.line` counts what it cannot understand.
"""

from __future__ import annotations

import collections
import getpass
import hashlib
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from schemas import limits
from schemas.event import EVENT_SCHEMA

from collectors.mcp.inventory import Comparison, Inventory, ToolChange

log = logging.getLogger("aiwatch.mcp")

CLIENT, SERVER = "client", "server"          # who wrote the line
MAX_PENDING = 10_000                          # requests awaiting an answer that we track
MAX_ERROR_CHARS = 1_000
_SESSION_KEYS = ("mcp-session-id", "sessionid", "session_id", "io.modelcontextprotocol/sessionid")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")
_ID_PREFIX = re.compile(rb'"id"\s*:\s*("(?:[^"\\]|\\.){0,200}"|-?\d{1,20})')


@dataclass(frozen=True)
class ServerIdentity:
    """How the operator names the proxied server (the inventory key), never what the server claims."""

    key: str
    label: str
    command_sha256: str

    @classmethod
    def of(cls, command: list[str], name: str | None = None) -> "ServerIdentity":
        digest = hashlib.sha256("\0".join(command).encode("utf-8", "surrogateescape")).hexdigest()
        label = name or _command_label(command)
        key = name or f"{label}#{digest[:12]}"
        return cls(key=key[: limits.MAX_NAME_CHARS], label=label[: limits.MAX_NAME_CHARS], command_sha256=digest)


def _command_label(command: list[str]) -> str:
    """A readable name for a server command without its arguments (which may hold tokens):
    the script or module run by an interpreter, else the executable."""
    if not command:
        return "mcp-server"
    exe = os.path.basename(command[0])
    rest = command[1:]
    if re.match(r"^(python[0-9.]*|node|deno|bun|uv|uvx|npx|pnpm|ruby|java)$", exe):
        for i, arg in enumerate(rest):
            if arg in ("-m", "--from", "run", "x", "exec", "dlx") and i + 1 < len(rest):
                if arg in ("run", "x", "exec", "dlx") and rest[i + 1].startswith("-"):
                    continue
                return f"{exe}:{rest[i + 1]}"
            if not arg.startswith("-"):
                return f"{exe}:{arg if arg.startswith('@') else os.path.basename(arg)}"  # npm scopes kept
    return exe


@dataclass
class _Pending:
    method: str
    tool: str | None
    call_id: str
    started: float
    request_id: str
    cursor: bool = False


class Observer:
    """Turns the JSON-RPC traffic of one proxy run into Event v1 dicts (ready for ``Publisher.offer``)."""

    def __init__(
        self,
        server: ServerIdentity,
        *,
        app: str | None = None,
        env: str | None = None,
        tenant: str | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        inventory: Inventory | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.server = server
        self.inventory = inventory
        self.run_id = uuid.uuid4().hex
        self.session_id = session_id or self.run_id
        self._session_source = "given" if session_id else "proxy"
        self._labels: dict[str, str] = {"mcp.server": server.key, "mcp.transport": "stdio",
                                        "mcp.proxy_run": self.run_id, **(labels or {})}
        self._base: dict[str, Any] = {"schema": EVENT_SCHEMA, "app": app or f"mcp:{server.label}",
                                      "source": {"collector": "mcp", "convention": "mcp"}}
        if env:
            self._base["env"] = env
        if tenant:
            self._base["tenant"] = tenant
        user = user_id or _os_user()
        if user:
            self._base["actor"] = {"user_id": user}
        self._server_info: dict[str, Any] | None = None
        self._calls: dict[Any, _Pending] = {}            # client request id -> pending tools/call, tools/list
        self._listing: list[dict[str, Any]] = []          # tools of a paginated tools/list so far
        self.counts: collections.Counter[str] = collections.Counter()

    # -- input ----------------------------------------------------------------------------

    def line(self, origin: str, raw: bytes) -> list[dict[str, Any]]:
        """One newline-delimited message from ``origin`` (CLIENT or SERVER); returns events to publish."""
        self.counts["lines"] += 1
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if raw.strip():
                self.counts["unparsed"] += 1
            return []
        out: list[dict[str, Any]] = []
        try:
            for item in message if isinstance(message, list) else [message]:  # JSON-RPC batches (2025-03-26)
                if isinstance(item, dict):
                    self.counts["messages"] += 1
                    self._message(origin, item, len(raw), out)
        except Exception:  # noqa: BLE001 - one odd message must not stop the monitoring
            self.counts["errors"] += 1
            log.debug("aiwatch mcp: could not interpret a message", exc_info=True)
        return out

    def oversized(self, origin: str, head: bytes, size: int) -> list[dict[str, Any]]:
        """A line too large to parse: close a pending tool call it answers (found by its id) without content."""
        self.counts["oversized"] += 1
        if origin != SERVER:
            return []
        match = _ID_PREFIX.search(head)
        if not match:
            return []
        try:
            rid = orjson.loads(match.group(1))
        except orjson.JSONDecodeError:
            return []
        pending = self._calls.pop(_rid(rid), None)
        if pending is None or pending.method != "tools/call":
            return []
        event = self._event("tool_result", {"tool": {"name": pending.tool, "call_id": pending.call_id,
                                                     "result_bytes": size}},
                            {"mcp.request_id": pending.request_id, "mcp.outcome": "oversized"})
        event["usage"] = {"latency_ms": _ms(pending.started)}
        return [event]

    def finish(self) -> list[dict[str, Any]]:
        """At the end of the run: close every tool call that never got an answer."""
        out = []
        for pending in self._calls.values():
            if pending.method == "tools/call":
                out.append(self._closed(pending, "unanswered", "no response before the server or client exited"))
        self._calls.clear()
        return out

    # -- messages -------------------------------------------------------------------------

    def _message(self, origin: str, msg: dict[str, Any], size: int, out: list[dict[str, Any]]) -> None:
        method = msg.get("method")
        if origin == CLIENT:
            if isinstance(method, str):
                if "id" in msg:
                    self._client_request(method, msg, out)
                elif method == "notifications/cancelled":
                    self._cancelled(msg, out)
            return
        if method is None and "id" in msg:
            self._server_response(msg, size, out)

    def _client_request(self, method: str, msg: dict[str, Any], out: list[dict[str, Any]]) -> None:
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        rid = _rid(msg["id"])
        if method == "initialize":
            self._initialize_request(params)
            self._track(rid, _Pending(method, None, "", time.monotonic(), str(msg["id"])))
        elif method == "tools/call":
            self.counts["tool_calls"] += 1
            name = params.get("name")
            name = name if isinstance(name, str) else str(name)
            call_id = f"{self.session_id}:{msg['id']}"[: limits.MAX_ID_CHARS]
            self._track(rid, _Pending(method, name, call_id, time.monotonic(), str(msg["id"])))
            arguments = params.get("arguments")
            tool: dict[str, Any] = {"name": name, "call_id": call_id,
                                    "arguments": arguments if isinstance(arguments, dict)
                                    else ({} if arguments is None else {"value": arguments}),
                                    "destination": f"mcp://{self.server.key}"}
            event = self._event("tool_call", {"tool": tool}, {"mcp.request_id": str(msg["id"])})
            _trace(event, params)
            out.append(event)
        elif method == "tools/list":
            cursor = params.get("cursor") is not None
            if not cursor:
                self._listing = []
            self._track(rid, _Pending(method, None, "", time.monotonic(), str(msg["id"]), cursor))
        self._adopt_session(params.get("_meta"))

    def _server_response(self, msg: dict[str, Any], size: int, out: list[dict[str, Any]]) -> None:
        pending = self._calls.pop(_rid(msg["id"]), None)
        if pending is None:
            return
        result = msg.get("result")
        if pending.method == "initialize":
            if isinstance(result, dict):
                self._initialize_result(result)
        elif pending.method == "tools/call":
            out.append(self._tool_result(pending, msg, size))
        elif pending.method == "tools/list" and isinstance(result, dict):
            self._tools_listed(pending, result, out)

    def _tool_result(self, pending: _Pending, msg: dict[str, Any], size: int) -> dict[str, Any]:
        tool: dict[str, Any] = {"name": pending.tool, "call_id": pending.call_id, "result_bytes": size}
        labels = {"mcp.request_id": pending.request_id}
        fields: dict[str, Any] = {"tool": tool, "usage": {"latency_ms": _ms(pending.started)}}
        error = msg.get("error")
        result = msg.get("result")
        if isinstance(error, dict) or result is None:
            self.counts["tool_errors"] += 1
            err = error if isinstance(error, dict) else {}
            tool["status"] = "error"
            tool["error"] = _clip(f"{err.get('code', '')}: {err.get('message', '')}".strip(": "), MAX_ERROR_CHARS) \
                or "JSON-RPC error"
            labels["mcp.outcome"] = "rpc_error"
            if "code" in err:
                labels["mcp.error_code"] = str(err["code"])
            if err.get("data") is not None:
                fields["content"] = {"role": "tool", "text": _as_text(err["data"])}
        else:
            text = result_text(result) if isinstance(result, dict) else _as_text(result)
            if isinstance(result, dict) and result.get("isError") is True:
                self.counts["tool_errors"] += 1
                tool["status"] = "error"
                tool["error"] = _clip(text, MAX_ERROR_CHARS) or "tool reported isError"
                labels["mcp.outcome"] = "tool_error"
            else:
                tool["status"] = "ok"
                labels["mcp.outcome"] = "ok"
            if text:
                fields["content"] = {"role": "tool", "text": text}
        return self._event("tool_result", fields, labels)

    def _tools_listed(self, pending: _Pending, result: dict[str, Any], out: list[dict[str, Any]]) -> None:
        tools = [t for t in result.get("tools") or [] if isinstance(t, dict)]
        if not pending.cursor:
            self._listing = []
        self._listing.extend(tools)
        if result.get("nextCursor") is not None or self.inventory is None:
            return  # a paginated listing is compared once its last page arrived
        listing, self._listing = self._listing, []
        comparison = self._compare(listing, complete=True)
        if comparison is None:
            return
        self.counts["tool_listings"] += 1
        by_change: dict[str, list[str]] = collections.defaultdict(list)
        for change in comparison.changes:
            by_change[change.change].append(change.tool)
            out.append(self._definition_event(change, pending))
        labels = {"mcp.request_id": pending.request_id, "mcp.method": "tools/list",
                  "mcp.inventory": comparison.status, "mcp.tools.count": str(comparison.tools),
                  "mcp.tools.sha256": comparison.listing_sha256}
        for kind, names in by_change.items():
            labels[f"mcp.tools.{kind}"] = _clip(",".join(sorted(names)), limits.MAX_LABEL_VALUE_CHARS)
        fields: dict[str, Any] = {"tool": {"name": "tools/list", "status": "ok"}}
        text = "\n\n".join(definition_text(t) for t in listing)
        if text:
            fields["content"] = {"role": "tool", "text": text}
        out.append(self._event("tool_result", fields, labels))

    def _compare(self, tools: list[dict[str, Any]], *, complete: bool) -> Comparison | None:
        try:
            return self.inventory.compare_and_update(  # type: ignore[union-attr]
                self.server.key, tools, complete=complete, session_id=self.session_id, label=self.server.label,
                command_sha256=self.server.command_sha256, server_info=self._server_info)
        except OSError as exc:
            self.counts["inventory_errors"] += 1
            log.warning("aiwatch mcp: cannot update the tool inventory %s: %s", self.inventory.path, exc)  # type: ignore[union-attr]
            return None

    def _definition_event(self, change: ToolChange, pending: _Pending) -> dict[str, Any]:
        self.counts[f"definitions_{change.change}"] += 1
        labels = {"mcp.method": "tools/list", "mcp.request_id": pending.request_id,
                  "mcp.tool_definition": change.change}
        if change.change == "changed":
            labels["mcp.tool_definition_changed"] = "true"
            labels["mcp.definition.changed_fields"] = ",".join(change.changed_fields)
            labels["mcp.definition.diff"] = change.diff
        for key, value in (("old_sha256", change.old_sha256), ("new_sha256", change.new_sha256),
                           ("previous_seen", change.previous_seen), ("previous_session", change.previous_session)):
            if value:
                labels[f"mcp.definition.{key}"] = value
        fields: dict[str, Any] = {"tool": {"name": change.tool, "status": "ok"}}
        if change.definition is not None:
            fields["content"] = {"role": "tool", "text": definition_text(change.definition)}
        return self._event("tool_result", fields, labels)

    def _cancelled(self, msg: dict[str, Any], out: list[dict[str, Any]]) -> None:
        params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
        pending = self._calls.pop(_rid(params.get("requestId")), None)
        if pending is not None and pending.method == "tools/call":
            reason = params.get("reason")
            out.append(self._closed(pending, "cancelled", f"cancelled by the client{': ' + str(reason) if reason else ''}"))

    def _closed(self, pending: _Pending, outcome: str, why: str) -> dict[str, Any]:
        self.counts[f"calls_{outcome}"] += 1
        tool = {"name": pending.tool, "call_id": pending.call_id, "status": "error", "error": _clip(why, MAX_ERROR_CHARS)}
        event = self._event("tool_result", {"tool": tool}, {"mcp.request_id": pending.request_id, "mcp.outcome": outcome})
        event["usage"] = {"latency_ms": _ms(pending.started)}
        return event

    # -- session --------------------------------------------------------------------------

    def _initialize_request(self, params: dict[str, Any]) -> None:
        info = params.get("clientInfo")
        if isinstance(info, dict) and info.get("name"):
            self._labels["mcp.client"] = _name_version(info)
            self._base["agent"] = str(info["name"])[: limits.MAX_NAME_CHARS]
        version = params.get("protocolVersion")
        if isinstance(version, str):
            self._base["source"] = {"collector": "mcp", "convention": f"mcp-{version}"[: limits.MAX_NAME_CHARS]}

    def _initialize_result(self, result: dict[str, Any]) -> None:
        info = result.get("serverInfo")
        if isinstance(info, dict):
            self._server_info = {k: info[k] for k in ("name", "version", "title") if isinstance(info.get(k), str)}
            if info.get("name"):
                self._labels["mcp.server_info"] = _name_version(info)
        version = result.get("protocolVersion")
        if isinstance(version, str):  # the version the server chose is the one in force
            self._base["source"] = {"collector": "mcp", "convention": f"mcp-{version}"[: limits.MAX_NAME_CHARS]}
        self._adopt_session(result.get("_meta"))

    def _adopt_session(self, meta: Any) -> None:
        """A session id the server (or client) states in ``_meta`` wins over the one the proxy made up."""
        if self._session_source != "proxy" or not isinstance(meta, dict):
            return
        for key, value in meta.items():
            if isinstance(key, str) and key.lower() in _SESSION_KEYS and isinstance(value, (str, int)) and str(value):
                self.session_id = str(value)[: limits.MAX_ID_CHARS]
                self._session_source = "server"
                return

    # -- building -------------------------------------------------------------------------

    def _track(self, rid: Any, pending: _Pending) -> None:
        if len(self._calls) >= MAX_PENDING:  # a client that never reads answers: forget the oldest
            self._calls.pop(next(iter(self._calls)))
            self.counts["pending_evicted"] += 1
        self._calls[rid] = pending

    def _event(self, kind: str, fields: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
        event = self._base.copy()
        event["event_id"] = os.urandom(16).hex()
        event["ts"] = time.time()
        event["kind"] = kind
        event["session_id"] = self.session_id
        event.update(fields)
        event["labels"] = {**self._labels, "mcp.session_source": self._session_source, **labels}
        self.counts[f"events_{kind}"] += 1
        return event


# -- text of results and definitions -------------------------------------------------------------

def result_text(result: Mapping[str, Any]) -> str:
    """The text a ``tools/call`` result hands to the model: text blocks, embedded text resources,
    placeholders for binary blocks, else the structured content as JSON."""
    parts: list[str] = []
    content = result.get("content")
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif kind == "resource" and isinstance(block.get("resource"), dict):
                res = block["resource"]
                if isinstance(res.get("text"), str):
                    parts.append(res["text"])
                else:
                    parts.append(f"[resource {res.get('uri', '')} {res.get('mimeType', '')}]".replace("  ", " "))
            elif kind == "resource_link":
                parts.append(f"[resource_link {block.get('uri', '')}]")
            elif kind in ("image", "audio"):
                data = block.get("data")
                size = len(data) * 3 // 4 if isinstance(data, str) else 0
                parts.append(f"[{kind} {block.get('mimeType', '')} ~{size} bytes]")
    if not parts and result.get("structuredContent") is not None:
        parts.append(orjson.dumps(result["structuredContent"]).decode())
    return "\n".join(parts)


def definition_text(tool: Mapping[str, Any]) -> str:
    """A tool definition as the model reads it: name, title, description, and each parameter's description."""
    lines = [f"tool {tool.get('name', '')}"]
    for key in ("title", "description"):
        if isinstance(tool.get(key), str) and tool[key]:
            lines.append(f"{key}: {tool[key]}")
    schema = tool.get("inputSchema")
    stack: list[tuple[str, Any]] = [("", schema)]
    seen = 0
    while stack and seen < 1_000:
        path, node = stack.pop()
        seen += 1
        if not isinstance(node, dict):
            continue
        desc = node.get("description")
        if path and isinstance(desc, str) and desc:
            lines.append(f"parameter {path}: {desc}")
        props = node.get("properties")
        if isinstance(props, dict):
            for name in sorted(props, reverse=True):
                stack.append((f"{path}.{name}" if path else str(name), props[name]))
        if isinstance(node.get("items"), dict):
            stack.append((f"{path}[]", node["items"]))
        for key in ("default", "enum", "examples"):
            if path and key in node:
                lines.append(f"parameter {path} {key}: {_clip(orjson.dumps(node[key]).decode(), 500)}")
    return "\n".join(lines)


# -- helpers -------------------------------------------------------------------------------------

def _rid(value: Any) -> Any:
    """JSON-RPC ids compare by value and type (1 and "1" are different requests)."""
    return (type(value).__name__, value) if isinstance(value, (str, int, float)) else ("other", repr(value))


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000.0, 3)


def _name_version(info: Mapping[str, Any]) -> str:
    name = str(info.get("name", ""))
    version = info.get("version")
    return _clip(f"{name}/{version}" if version else name, limits.MAX_LABEL_VALUE_CHARS)


def _trace(event: dict[str, Any], params: Mapping[str, Any]) -> None:
    """W3C trace context the client put in ``params._meta.traceparent`` (OTel MCP conventions)."""
    meta = params.get("_meta")
    if isinstance(meta, dict) and isinstance(meta.get("traceparent"), str):
        match = _TRACEPARENT.match(meta["traceparent"].strip().lower())
        if match:
            event["trace_id"], event["parent_span_id"] = match.group(1), match.group(2)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        return None


__all__ = ["CLIENT", "SERVER", "Observer", "ServerIdentity", "definition_text", "result_text"]
