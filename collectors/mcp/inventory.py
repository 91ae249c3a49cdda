"""Inventory of the tools each MCP server offers, kept across sessions to catch tool poisoning.

Why: an MCP server describes its tools to the model (``tools/list``): the description and input
schema are instructions the model reads and trusts. A server that changes them after it was
approved — a "rug pull", MITRE ATLAS AML.T0110 AI Agent Tool Poisoning — turns a vetted tool into
a hidden prompt injection. The proxy compares every ``tools/list`` answer with what the same
server offered before and reports each tool that changed, appeared or disappeared.

The inventory is one JSON file (``<AIWATCH_HOME>/mcp-inventory.json``), keyed by the *operator's*
name for the server (``--name``, else derived from the command line), never by what the server
says about itself: a malicious server could rename itself to escape the comparison. Writers take
an exclusive ``flock`` on a side lock file and replace the file atomically, so concurrent proxies
of the same server never lose each other's updates.

A change is reported once: the inventory then records the new definition as current and keeps
the previous ones in a bounded ``history`` (hash, when it was current, and which session saw it).

File format (``"version": "aiwatch.mcp-inventory/1"``)::

    {"version": "aiwatch.mcp-inventory/1",
     "servers": {"<key>": {"label": ..., "command_sha256": ..., "first_seen": ..., "last_seen": ...,
                           "server_info": {...},
                           "tools": {"<tool>": {"sha256": ..., "fields": {"description": "<sha256>", ...},
                                                "definition": {...}, "first_seen": ..., "changed_at": ...,
                                                "session_id": ..., "history": [...]}}}}}
"""

from __future__ import annotations

import difflib
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("aiwatch.mcp")

INVENTORY_VERSION = "aiwatch.mcp-inventory/1"
INVENTORY_FILE = "mcp-inventory.json"
IGNORED_FIELDS = frozenset({"_meta"})   # free-form metadata a server may vary per call
MAX_STORED_DEFINITION = 65_536          # bytes of one definition kept for later diffs
MAX_HISTORY = 20
MAX_DIFF_CHARS = 2_000


def definition_of(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a tool object that defines it to the model: everything but ``_meta``."""
    return {k: v for k, v in tool.items() if k not in IGNORED_FIELDS}


def sha256_json(value: Any) -> str:
    """Hash of a JSON value independent of key order and whitespace."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def field_hashes(definition: Mapping[str, Any]) -> dict[str, str]:
    return {name: sha256_json(value) for name, value in sorted(definition.items())}


@dataclass(frozen=True)
class ToolChange:
    """One tool whose definition differs from the inventory: ``change`` is added, changed or removed."""

    tool: str
    change: str
    old_sha256: str | None
    new_sha256: str | None
    changed_fields: tuple[str, ...] = ()
    diff: str = ""
    previous_seen: str | None = None        # when the old definition was recorded
    previous_session: str | None = None     # which session recorded it
    definition: Mapping[str, Any] | None = None  # the new definition (None when removed)


@dataclass
class Comparison:
    """Outcome of comparing one ``tools/list`` answer with the inventory."""

    known_server: bool                      # the server had an inventory before (else: baseline taken)
    changes: list[ToolChange] = field(default_factory=list)
    tools: int = 0
    listing_sha256: str = ""

    @property
    def status(self) -> str:
        if not self.known_server:
            return "baseline"
        return "changed" if self.changes else "unchanged"


class Inventory:
    """The inventory file; every method re-reads it under the lock, so several proxies can share it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def at_home(cls, home: Path) -> "Inventory":
        return cls(Path(home) / INVENTORY_FILE)

    def load(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return _empty()
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("aiwatch mcp: inventory %s is unreadable (%s); starting a new one", self.path, exc)
            return _empty()
        if not isinstance(data, dict) or not isinstance(data.get("servers"), dict):
            return _empty()
        return data

    def compare_and_update(
        self,
        key: str,
        tools: Iterable[Mapping[str, Any]],
        *,
        complete: bool,
        session_id: str,
        label: str = "",
        command_sha256: str = "",
        server_info: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Comparison:
        """Compare ``tools`` with the inventory of server ``key`` and record them as current.

        ``complete`` says the list is the server's whole tool set (the last page of a listing):
        only then are tools missing from it reported as removed.
        """
        stamp = _iso(now or datetime.now(timezone.utc))
        listed = {}
        for tool in tools:
            name = tool.get("name")
            if isinstance(name, str):
                listed[name] = definition_of(tool)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_name(self.path.name + ".lock")):
            data = self.load()
            servers = data["servers"]
            entry = servers.get(key)
            known = isinstance(entry, dict) and isinstance(entry.get("tools"), dict)
            if not known:
                entry = {"label": label, "command_sha256": command_sha256, "first_seen": stamp, "tools": {}}
                servers[key] = entry
            entry["last_seen"] = stamp
            if server_info:
                entry["server_info"] = dict(server_info)
            comparison = Comparison(known_server=known, tools=len(listed),
                                    listing_sha256=sha256_json(sorted(listed.items())))
            stored: dict[str, Any] = entry["tools"]
            for name, definition in listed.items():
                change = _compare_one(name, stored.get(name), definition)
                if change is not None and known:
                    comparison.changes.append(change)
                if change is not None or name not in stored:
                    stored[name] = _record(stored.get(name), definition, stamp, session_id)
            if complete and known:
                for name in sorted(set(stored) - set(listed)):
                    old = stored.pop(name)
                    comparison.changes.append(ToolChange(
                        tool=name, change="removed", old_sha256=old.get("sha256"), new_sha256=None,
                        previous_seen=old.get("changed_at") or old.get("first_seen"),
                        previous_session=old.get("session_id")))
            self._write(data)
        return comparison

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        os.replace(tmp, self.path)


def _compare_one(name: str, old: Any, definition: dict[str, Any]) -> ToolChange | None:
    new_sha = sha256_json(definition)
    if not isinstance(old, dict):
        return ToolChange(tool=name, change="added", old_sha256=None, new_sha256=new_sha, definition=definition)
    if old.get("sha256") == new_sha:
        return None
    old_fields: dict[str, str] = old.get("fields") or {}
    new_fields = field_hashes(definition)
    changed = tuple(sorted(k for k in set(old_fields) | set(new_fields) if old_fields.get(k) != new_fields.get(k)))
    old_def = old.get("definition")
    diff = describe_diff(old_def, definition) if isinstance(old_def, dict) else \
        "changed fields: " + ", ".join(changed) + " (previous definition too large to keep for a diff)"
    return ToolChange(tool=name, change="changed", old_sha256=old.get("sha256"), new_sha256=new_sha,
                      changed_fields=changed, diff=diff,
                      previous_seen=old.get("changed_at") or old.get("first_seen"),
                      previous_session=old.get("session_id"), definition=definition)


def _record(old: Any, definition: dict[str, Any], stamp: str, session_id: str) -> dict[str, Any]:
    raw = orjson.dumps(definition)
    entry: dict[str, Any] = {
        "sha256": sha256_json(definition),
        "fields": field_hashes(definition),
        "definition": definition if len(raw) <= MAX_STORED_DEFINITION else None,
        "first_seen": stamp,
        "changed_at": stamp,
        "session_id": session_id,
        "history": [],
    }
    if isinstance(old, dict):
        entry["first_seen"] = old.get("first_seen", stamp)
        history = list(old.get("history") or [])
        history.append({"sha256": old.get("sha256"), "from": old.get("changed_at") or old.get("first_seen"),
                        "until": stamp, "session_id": old.get("session_id")})
        entry["history"] = history[-MAX_HISTORY:]
    return entry


# -- diff ------------------------------------------------------------------------------------

def describe_diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = MAX_DIFF_CHARS) -> str:
    """A short human-readable account of what changed between two tool definitions.

    Paths name the changed JSON values (``inputSchema.properties.note.description``); texts show
    the removed (``-``) and added (``+``) words around the change, so the poisoned sentence is
    visible in the alert itself.
    """
    lines: list[str] = []
    for path, before, after in _json_changes(old, new, ""):
        if before is _MISSING:
            lines.append(f"{path}: added {_short(after)}")
        elif after is _MISSING:
            lines.append(f"{path}: removed {_short(before)}")
        elif isinstance(before, str) and isinstance(after, str):
            lines.append(f"{path}: {_text_diff(before, after)}")
        else:
            lines.append(f"{path}: {_short(before)} -> {_short(after)}")
    text = "; ".join(lines)
    return text if len(text) <= limit else text[: limit - 15] + " …[truncated]"


_MISSING = object()


def _json_changes(old: Any, new: Any, path: str) -> Iterable[tuple[str, Any, Any]]:
    stack = [(path, old, new)]
    out = []
    while stack:
        here, a, b = stack.pop()
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), reverse=True):
                sub = f"{here}.{key}" if here else str(key)
                stack.append((sub, a.get(key, _MISSING), b.get(key, _MISSING)))
        elif a != b or type(a) is not type(b):
            out.append((here or "(definition)", a, b))
    return out


def _text_diff(before: str, after: str) -> str:
    a, b = before.split(), after.split()
    parts: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            parts.append("-" + _clip(" ".join(a[i1:i2]), 300))
        if j2 > j1:
            parts.append("+" + _clip(" ".join(b[j1:j2]), 600))
    return " ".join(f"[{p}]" for p in parts) if parts else "(whitespace only)"


def _short(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    return _clip(orjson.dumps(value).decode(), 300)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


# -- helpers ---------------------------------------------------------------------------------

def _empty() -> dict[str, Any]:
    return {"version": INVENTORY_VERSION, "servers": {}}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _locked:
    """Exclusive ``flock`` on a side file for the read-modify-write of the inventory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
