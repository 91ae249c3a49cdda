"""Egress log lines → Event v1 dicts for the calls that went to an AI provider ("shadow AI").

Each request (or TLS connection) to a host in :mod:`collectors.egress.providers` becomes one event:

- ``kind = "prompt"`` with **no content** (a proxy log never shows it), ``ts`` = the log's time;
- ``model.provider`` = provider id (OTel ``gen_ai.provider.name`` where one exists), ``model.endpoint``
  = the host, ``model.name`` when the URL path names the model (Bedrock, Vertex, Gemini, Azure
  deployment, Hugging Face, Replicate; label ``egress.model_source = "url_path"``);
- ``actor.user_id`` = the user the proxy authenticated, else the client IP;
- ``app`` = ``EgressOptions.app`` formatted with ``{client}``, ``{user}``, ``{client_ip}``,
  ``{provider}``, ``{host}`` (default ``egress:{client}``);
- ``source`` = ``{"collector": "egress", "convention": "squid-native" | "nginx-json" | "zeek-http" | "zeek-ssl"}``;
- labels (all strings): ``egress.provider`` (display name), ``egress.surface`` (``api`` = programmatic
  use, ``app`` = a person in a chat app), ``egress.unit`` (``request`` or ``connection`` for TLS/CONNECT
  logs), ``egress.method``, ``egress.status``, ``egress.bytes`` (response), ``egress.request_bytes``,
  ``egress.duration_ms``, ``egress.client_ip``, ``egress.user``, ``egress.port``, ``egress.path``
  (never the query string: API keys travel there), ``egress.user_agent``, and format specifics
  (``egress.squid_code``, ``egress.tls_version``, ``egress.zeek_uid``, ...).

``event_id`` is derived from the line itself (``egress-`` + BLAKE2b of format and line, and an
occurrence number for identical lines), so reading the same log twice yields the same ids and the
worker, idempotent on ``event_id``, stores each call once.

Malformed lines never stop the reading: they are counted by reason in :class:`EgressReport`,
with the line numbers of the first few.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from schemas import limits
from schemas.event import EVENT_SCHEMA

from collectors.egress.formats import FORMATS, Malformed, Request, UnknownFormat, detect, parser_for
from collectors.egress.providers import PROVIDERS, Match, Provider, Registry, build_registry

DEFAULT_APP = "egress:{client}"
MAX_EXAMPLES = 5
_LOOKAHEAD = 50                       # lines read to detect the format
_RECENT = 4_096                       # identical lines remembered for occurrence numbers
_MIN_TS, _MAX_TS = 946_684_800, 4_102_444_800   # 2000-01-01 .. 2100-01-01


@dataclass
class EgressOptions:
    """How egress events are attributed (all optional)."""

    app: str = DEFAULT_APP
    env: str | None = None
    tenant: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    providers: tuple[Provider, ...] = PROVIDERS
    include_apps: bool = True              # also report browser use of chat apps (surface "app")


@dataclass
class EgressReport:
    """What became of every line: each non-blank line is a header, malformed, not AI, or an AI call."""

    format: str = ""
    lines: int = 0
    blank: int = 0
    headers: int = 0                       # comments / Zeek headers
    records: int = 0                       # lines that parsed as a request or connection
    ai_calls: int = 0                      # events produced
    not_ai: int = 0
    malformed: int = 0
    malformed_reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    malformed_examples: list[tuple[int, str]] = field(default_factory=list)
    providers: collections.Counter[str] = field(default_factory=collections.Counter)
    clients: set[str] = field(default_factory=set)
    published: dict[str, int] = field(default_factory=dict)   # publisher counters after run_egress

    def malformed_line(self, number: int, reason: str) -> None:
        self.malformed += 1
        self.malformed_reasons[reason] += 1
        if len(self.malformed_examples) < MAX_EXAMPLES:
            self.malformed_examples.append((number, reason))

    def summary(self) -> str:
        out = [f"egress ({self.format or 'unknown format'}): {self.lines} lines, {self.records} records, "
               f"{self.ai_calls} AI call(s) from {len(self.clients)} client(s), {self.not_ai} not AI, "
               f"{self.malformed} malformed, {self.headers} header/comment, {self.blank} blank"]
        if self.providers:
            out.append("  by provider: " + ", ".join(f"{p} {n}" for p, n in self.providers.most_common()))
        if self.malformed:
            out.append("  malformed: " + "; ".join(f"{r} ({n})" for r, n in self.malformed_reasons.most_common(5)))
            out.append("  first malformed lines: " + ", ".join(f"#{n} {r}" for n, r in self.malformed_examples))
        if self.published:
            p = self.published
            out.append(f"  published: {p.get('sent', 0)} sent, {p.get('spooled', 0)} spooled, "
                       f"{p.get('dropped', 0)} dropped")
        return "\n".join(out)


def read_egress(
    source: str | Path | IO[Any] | Iterable[str],
    fmt: str = "auto",
    *,
    options: EgressOptions | None = None,
    report: EgressReport | None = None,
) -> Iterator[dict[str, Any]]:
    """Events of the AI calls in an egress log: ``source`` is a path, ``"-"`` (stdin), a stream or lines.

    Lazy (a ``tail -F`` pipe streams); pass ``report`` to get the counters. Raises
    :class:`UnknownFormat` only when ``fmt="auto"`` and the first lines match no known format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown egress log format {fmt!r}; one of {', '.join(FORMATS)}")
    options = options or EgressOptions()
    report = report if report is not None else EgressReport()
    registry = build_registry(options.providers)
    with _lines(source) as lines:
        head: list[str] = []
        if fmt == "auto":
            for line in lines:
                head.append(line)
                if len(head) >= _LOOKAHEAD or (line.strip() and _decisive(line)):
                    break
            fmt = detect(head) if any(h.strip() for h in head) else "squid"
        parser = parser_for(fmt)
        report.format = fmt if fmt != "json" else "nginx/zeek json"
        recent: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        number = 0
        for line in _chain(head, lines):
            number += 1
            report.lines += 1
            text = line.rstrip("\r\n")
            if not text.strip():
                report.blank += 1
                continue
            try:
                request = parser.parse(text)
            except Malformed as exc:
                report.malformed_line(number, str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - a parser bug must not stop the reading
                report.malformed_line(number, f"unreadable ({type(exc).__name__})")
                continue
            if request is None:
                report.headers += 1
                continue
            event = _event(request, text, registry, options, recent)
            if isinstance(event, str):
                report.malformed_line(number, event)
                continue
            report.records += 1
            if event is None:
                report.not_ai += 1
                continue
            report.ai_calls += 1
            report.providers[event["model"]["provider"]] += 1
            report.clients.add(event["actor"]["user_id"])
            yield event


def _decisive(line: str) -> bool:
    text = line.strip()
    return text.startswith("{") or text.startswith("#fields") or text[:1].isdigit()


def _event(request: Request, line: str, registry: Registry, options: EgressOptions,
           recent: collections.OrderedDict[bytes, int]) -> dict[str, Any] | str | None:
    match: Match | None = None
    for host in request.hosts:
        match = registry.match(host)
        if match is not None:
            break
    if match is None or (match.surface == "app" and not options.include_apps):
        return None
    ts = request.ts
    labels: dict[str, str] = dict(options.labels)
    if ts is None:
        ts = time.time()
        labels["egress.time"] = "ingested"  # the log line had no usable time
    elif not (math.isfinite(ts) and _MIN_TS <= ts <= _MAX_TS):
        return "timestamp out of range"
    client = request.user or request.client_ip or "unknown"
    provider = match.provider
    fields = {"client": client, "user": request.user or "", "client_ip": request.client_ip or "",
              "provider": provider.id, "host": match.host}
    try:
        app = options.app.format_map(fields)
    except (KeyError, ValueError, IndexError, AttributeError):
        app = DEFAULT_APP.format_map(fields)
    model: dict[str, Any] = {"provider": provider.id, "endpoint": match.host}
    name = match.model_from_path(request.path)
    if name:
        model["name"] = name
        labels["egress.model_source"] = "url_path"
    labels.update({"egress.provider": provider.name, "egress.surface": match.surface, "egress.unit": request.unit})
    for key, value in (("egress.method", request.method), ("egress.status", request.status),
                       ("egress.bytes", request.bytes_in), ("egress.request_bytes", request.bytes_out),
                       ("egress.duration_ms", _ms(request.duration_ms)), ("egress.client_ip", request.client_ip),
                       ("egress.user", request.user), ("egress.port", request.port),
                       ("egress.path", request.path), ("egress.user_agent", request.user_agent)):
        if value is not None and value != "":
            labels[key] = str(value)[:512]
    labels.update(request.extra)
    event: dict[str, Any] = {
        "schema": EVENT_SCHEMA,
        "event_id": _event_id(request.convention, line, recent),
        "ts": ts,
        "kind": "prompt",
        "app": app[: limits.MAX_NAME_CHARS] or "egress",
        "actor": {"user_id": client[: limits.MAX_NAME_CHARS]},
        "model": model,
        "labels": labels,
        "source": {"collector": "egress", "convention": request.convention},
    }
    if options.env:
        event["env"] = options.env
    if options.tenant:
        event["tenant"] = options.tenant
    return event


def _event_id(convention: str, line: str, recent: collections.OrderedDict[bytes, int]) -> str:
    digest = hashlib.blake2b(f"{convention}\n{line}".encode("utf-8", "surrogateescape"), digest_size=16).digest()
    seen = recent.get(digest, 0)
    recent[digest] = seen + 1
    recent.move_to_end(digest)
    if len(recent) > _RECENT:
        recent.popitem(last=False)
    return f"egress-{digest.hex()}" + (f"-{seen}" if seen else "")


def _ms(value: float | None) -> str | None:
    return None if value is None else f"{value:.3f}".rstrip("0").rstrip(".")


def _chain(head: list[str], rest: Iterable[str]) -> Iterator[str]:
    yield from head
    yield from rest


@contextmanager
def _lines(source: str | Path | IO[Any] | Iterable[str]) -> Iterator[Iterator[str]]:
    """Text lines of a path, ``-`` (stdin), a binary or text stream, or an iterable of lines.
    Bytes are decoded as UTF-8 with replacement: a log with garbage in it is still read."""
    if isinstance(source, (str, Path)) and str(source) != "-":
        with open(source, encoding="utf-8", errors="replace", newline="") as handle:
            yield handle
        return
    binary = sys.stdin.buffer if isinstance(source, (str, Path)) else source
    if isinstance(binary, (io.BufferedIOBase, io.RawIOBase)) or "b" in str(getattr(binary, "mode", "")):
        wrapper = io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")  # type: ignore[arg-type]
        try:
            yield wrapper
        finally:
            wrapper.detach()  # the caller's stream (or stdin) stays open
        return
    yield (line.decode("utf-8", "replace") if isinstance(line, bytes) else line for line in source)  # type: ignore[union-attr]


__all__ = ["EgressOptions", "EgressReport", "UnknownFormat", "read_egress"]
