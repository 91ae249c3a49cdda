"""Parsers of HTTP proxy / egress logs into one neutral :class:`Request` record.

Formats (``--format``; ``auto`` looks at the first lines):

``squid``
    Squid's native ``access.log``: ``time elapsed client code/status bytes method URL user
    hierarchy/peer type`` (``CONNECT host:443`` for tunnels, absolute URLs otherwise).
``nginx``
    nginx access logs written as JSON (``log_format ... escape=json '{...}'``). Key names are the
    nginx variable names, as people write them: ``time_iso8601``/``time_local``/``msec``,
    ``remote_addr``, ``remote_user``, ``request`` or ``request_method`` + ``request_uri``,
    ``status``, ``body_bytes_sent``, ``request_length``, ``request_time``, ``http_user_agent``
    and for the host any of ``upstream_host``, ``proxy_host``, ``host``, ``http_host``,
    ``server_name``, ``ssl_server_name``, ``ssl_preread_server_name`` (all are tried).
``zeek``
    Zeek ``http.log`` and ``ssl.log``, TSV with ``#fields`` header (headers may repeat, as in
    concatenated rotated logs) or JSON lines (``LogAscii::use_json``; ``ts`` as epoch or ISO 8601).
    ``ssl.log`` describes TLS *connections* (by SNI), not requests: ``Request.unit = "connection"``.

JSON lines are classified one by one (a Zeek record has ``uid`` and ``id.orig_h``), so a file
mixing Zeek and nginx JSON records still parses. A line that cannot be read raises
:class:`Malformed` with a short reason; the reader counts it and goes on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

FORMATS = ("auto", "squid", "nginx", "zeek")


class Malformed(ValueError):
    """A line of the log that is not a record of its format; ``str(exc)`` is the reason."""


class UnknownFormat(ValueError):
    """Auto-detection found no known format in the first lines."""


@dataclass
class Request:
    """One outbound HTTP request (or TLS connection) as a proxy or sensor logged it."""

    ts: float | None                       # epoch seconds; None when the log has no time
    hosts: tuple[str, ...]                 # candidate destination hosts, most specific first
    convention: str                        # squid-native, nginx-json, zeek-http, zeek-ssl
    client_ip: str | None = None
    user: str | None = None
    method: str | None = None
    port: int | None = None
    path: str | None = None                # without query string or fragment (they carry API keys)
    status: str | None = None
    bytes_in: int | None = None            # response bytes (to the client)
    bytes_out: int | None = None           # request bytes (from the client)
    duration_ms: float | None = None
    user_agent: str | None = None
    unit: str = "request"                  # or "connection" (TLS logs)
    extra: dict[str, str] = field(default_factory=dict)


# -- squid ----------------------------------------------------------------------------------------

class SquidNative:
    """``%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un %Sh/%<a %mt``"""

    convention = "squid-native"

    @staticmethod
    def looks_like(line: str) -> bool:
        parts = line.split()
        return len(parts) >= 7 and _is_float(parts[0]) and parts[1].lstrip("-").isdigit() and "/" in parts[3]

    def parse(self, line: str) -> Request | None:
        parts = line.split()
        if len(parts) < 7:
            raise Malformed(f"squid: {len(parts)} fields, expected at least 7")
        if not _is_float(parts[0]):
            raise Malformed("squid: the first field is not an epoch timestamp")
        code, _, status = parts[3].partition("/")
        method, url = parts[5], parts[6]
        user = parts[7] if len(parts) > 7 and parts[7] != "-" else None
        host, port, path = _split_target(url, connect=method.upper() == "CONNECT")
        req = Request(ts=float(parts[0]), hosts=(host,) if host else (), convention=self.convention,
                      client_ip=parts[2], user=user, method=method, port=port, path=path, status=status or None,
                      bytes_in=_int(parts[4]), duration_ms=_float(parts[1]),
                      unit="connection" if method.upper() == "CONNECT" else "request")
        req.extra["egress.squid_code"] = code
        if len(parts) > 8 and parts[8] != "-":
            req.extra["egress.hierarchy"] = parts[8].split("/", 1)[0]
        return req


# -- JSON lines: nginx and Zeek -------------------------------------------------------------------

_NGINX_HOST_KEYS = ("upstream_host", "proxy_host", "host", "http_host", "server_name", "ssl_server_name",
                    "ssl_preread_server_name", "upstream_addr")
_NGINX_TIME_KEYS = ("time_iso8601", "@timestamp", "timestamp", "time", "msec", "time_local", "ts")


class JsonLines:
    """One JSON object per line: a Zeek http/ssl record or an nginx access record, decided per line."""

    def parse(self, line: str) -> Request | None:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise Malformed(f"not JSON ({str(exc).split(':')[0]})") from None
        if not isinstance(obj, dict):
            raise Malformed("a JSON log record must be an object")
        if "uid" in obj and "id.orig_h" in obj:
            return zeek_record(obj, ts=_zeek_time(obj.get("ts")))
        return nginx_record(obj)


def nginx_record(obj: Mapping[str, Any]) -> Request:
    method = _text(obj.get("request_method"))
    target = _text(obj.get("request_uri")) or _text(obj.get("uri"))
    request_line = _text(obj.get("request"))
    hosts: list[str] = []
    if request_line:
        parts = request_line.split()
        if len(parts) >= 2:
            method = method or parts[0]
            target = target or parts[1]
    for key in _NGINX_HOST_KEYS:
        value = _text(obj.get(key))
        if value and value != "-":
            hosts.append(value.split(",")[0].strip())  # upstream_addr may list several
    host, port, path = _split_target(target, connect=(method or "").upper() == "CONNECT") if target else (None, None, None)
    if host:
        hosts.insert(0, host)  # a forward proxy logs the absolute URL: the most specific host
    if not hosts:
        raise Malformed("nginx: no host field (host, http_host, upstream_host, server_name, ...)")
    ts = None
    for key in _NGINX_TIME_KEYS:
        if obj.get(key) not in (None, "", "-"):
            ts = _any_time(obj[key])
            if ts is not None:
                break
    duration = _float(obj.get("request_time"))
    client = _text(obj.get("remote_addr")) or _text(obj.get("client_ip"))
    forwarded = _text(obj.get("http_x_forwarded_for"))
    connect = (method or "").upper() == "CONNECT"
    req = Request(ts=ts, hosts=tuple(dict.fromkeys(hosts)), convention="nginx-json", client_ip=client,
                  unit="connection" if connect else "request",
                  user=_user(obj.get("remote_user")), method=method, port=port or _int(obj.get("server_port")),
                  path=path, status=_text(obj.get("status")),
                  bytes_in=_int(obj.get("body_bytes_sent")) if obj.get("body_bytes_sent") is not None
                  else _int(obj.get("bytes_sent")),
                  bytes_out=_int(obj.get("request_length")),
                  duration_ms=duration * 1000.0 if duration is not None else None,
                  user_agent=_text(obj.get("http_user_agent")))
    if forwarded and forwarded != "-":
        req.extra["egress.forwarded_for"] = forwarded[:256]
    return req


def zeek_record(obj: Mapping[str, Any], *, ts: float | None, path_hint: str | None = None) -> Request:
    """A Zeek http.log or ssl.log record (``path_hint`` is the TSV ``#path``)."""
    kind = path_hint or ""
    if "ssl" in kind or (not kind and ("server_name" in obj or "cipher" in obj) and "uri" not in obj):
        return _zeek_ssl(obj, ts)
    if "http" in kind or "host" in obj or "uri" in obj:
        return _zeek_http(obj, ts)
    raise Malformed(f"zeek: not an http or ssl record (#path {kind or 'unknown'})")


def _zeek_http(obj: Mapping[str, Any], ts: float | None) -> Request:
    host = _text(obj.get("host"))
    uri = _text(obj.get("uri"))
    method = _text(obj.get("method"))
    uri_host, port, path = _split_target(uri, connect=(method or "").upper() == "CONNECT") if uri else (None, None, None)
    hosts = tuple(h for h in (host, uri_host) if h)  # none: a valid record nobody can attribute (not AI)
    req = Request(ts=ts, hosts=hosts, convention="zeek-http", client_ip=_text(obj.get("id.orig_h")),
                  unit="connection" if (method or "").upper() == "CONNECT" else "request",
                  user=_user(obj.get("username")), method=method, port=port or _int(obj.get("id.resp_p")),
                  path=path, status=_text(obj.get("status_code")), bytes_in=_int(obj.get("response_body_len")),
                  bytes_out=_int(obj.get("request_body_len")), user_agent=_text(obj.get("user_agent")))
    _zeek_ids(req, obj)
    return req


def _zeek_ssl(obj: Mapping[str, Any], ts: float | None) -> Request:
    sni = _text(obj.get("server_name"))  # none (no SNI): a valid record nobody can attribute (not AI)
    req = Request(ts=ts, hosts=(sni,) if sni else (), convention="zeek-ssl", client_ip=_text(obj.get("id.orig_h")),
                  port=_int(obj.get("id.resp_p")), unit="connection")
    for key, label in (("version", "egress.tls_version"), ("established", "egress.established"),
                       ("next_protocol", "egress.alpn"), ("ja3", "egress.ja3")):
        value = obj.get(key)
        if value not in (None, "", "-"):
            req.extra[label] = _ZEEK_BOOL.get(value, str(value)) if isinstance(value, (bool, str)) else str(value)
    _zeek_ids(req, obj)
    return req


_ZEEK_BOOL: dict[Any, str] = {True: "true", False: "false", "T": "true", "F": "false"}


def _zeek_ids(req: Request, obj: Mapping[str, Any]) -> None:
    for key, label in (("uid", "egress.zeek_uid"), ("id.resp_h", "egress.server_ip")):
        value = _text(obj.get(key))
        if value:
            req.extra[label] = value


class ZeekTsv:
    """Zeek's TSV logs: ``#separator``/``#fields``/``#path`` headers (repeatable), then records."""

    def __init__(self) -> None:
        self.separator = "\t"
        self.unset = "-"
        self.empty = "(empty)"
        self.fields: list[str] | None = None
        self.path: str | None = None

    def parse(self, line: str) -> Request | None:
        if line.startswith("#"):
            self._header(line)
            return None
        if self.fields is None:
            raise Malformed("zeek: a record before any #fields header")
        values = line.split(self.separator)
        if len(values) != len(self.fields):
            raise Malformed(f"zeek: {len(values)} values for {len(self.fields)} #fields")
        obj = {name: self._value(v) for name, v in zip(self.fields, values)}
        ts = _float(obj.get("ts"))
        if ts is None:
            raise Malformed("zeek: ts is not an epoch timestamp")
        return zeek_record(obj, ts=ts, path_hint=self.path)

    def _header(self, line: str) -> None:
        if line.startswith("#separator"):
            sep = line[len("#separator"):].strip()
            self.separator = _unescape(sep) if sep else "\t"
            return
        name, _, rest = line[1:].partition(self.separator)
        if name == "fields":
            self.fields = rest.split(self.separator)
        elif name == "path":
            self.path = rest.strip()
        elif name == "unset_field":
            self.unset = rest
        elif name == "empty_field":
            self.empty = rest

    def _value(self, raw: str) -> str | None:
        if raw == self.unset:
            return None
        if raw == self.empty:
            return ""
        return _unescape(raw) if "\\x" in raw else raw


# -- detection --------------------------------------------------------------------------------------

def detect(lines: Sequence[str]) -> str:
    """The format of a log from its first non-blank lines: ``squid``, ``nginx`` (JSON lines) or ``zeek``."""
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.startswith("#separator") or text.startswith("#fields") or text.startswith("#path"):
            return "zeek"
        if text.startswith("{"):
            return "json"
        if SquidNative.looks_like(text):
            return "squid"
    raise UnknownFormat("no squid, nginx JSON or Zeek record in the first lines; give --format")


def parser_for(fmt: str) -> Any:
    if fmt == "squid":
        return SquidNative()
    if fmt in ("nginx", "json"):
        return JsonLines()
    if fmt == "zeek":
        return _ZeekAny()
    raise ValueError(f"unknown egress log format {fmt!r}; one of {', '.join(FORMATS)}")


class _ZeekAny:
    """Zeek in either form: TSV when headers appear, JSON lines otherwise."""

    def __init__(self) -> None:
        self._tsv = ZeekTsv()
        self._json = JsonLines()

    def parse(self, line: str) -> Request | None:
        if line.lstrip().startswith("{"):
            return self._json.parse(line)
        return self._tsv.parse(line)


# -- helpers ------------------------------------------------------------------------------------------

def _split_target(target: str, *, connect: bool) -> tuple[str | None, int | None, str | None]:
    """(host, port, path without query) of a request target: ``host:443``, an absolute URL, or ``/path``."""
    if connect or ("://" not in target and not target.startswith("/")):
        host, _, port = target.rpartition(":") if target.count(":") == 1 else (target, "", "")
        return (host or None), _int(port), None
    if target.startswith("/"):
        return None, None, target.split("?", 1)[0].split("#", 1)[0] or "/"
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        raise Malformed("unparsable URL") from None
    return parts.hostname, port, parts.path or "/"


_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_TIME_LOCAL = re.compile(r"^(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})$")


def _any_time(value: Any) -> float | None:
    """Epoch seconds (number or string), ISO 8601, or nginx ``$time_local`` (``01/May/2024:12:00:00 +0000``)."""
    number = _float(value)
    if number is not None:
        return number / 1000.0 if number > 1e11 else number  # epoch milliseconds
    if not isinstance(value, str):
        return None
    match = _TIME_LOCAL.match(value)
    if match:
        day, mon, year, hh, mm, ss, sign, oh, om = match.groups()
        offset = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
        moment = datetime(int(year), _MONTHS.get(mon, 1), int(day), int(hh), int(mm), int(ss), tzinfo=timezone.utc)
        return moment.timestamp() - offset
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _zeek_time(value: Any) -> float | None:
    ts = _any_time(value)
    if ts is None:
        raise Malformed("zeek: ts is neither epoch nor ISO 8601")
    return ts


def _unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and number >= 0 else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text or None


def _user(value: Any) -> str | None:
    text = _text(value)
    return text if text and text != "-" else None
