"""``aiwatch mcp-proxy -- <server command>``: watch an MCP stdio server without touching its traffic.

The MCP client starts the proxy instead of the server; the proxy starts the server as its child
and copies bytes both ways, unchanged (MCP stdio transport: newline-delimited JSON-RPC 2.0 on
stdin/stdout; the child's stderr is the proxy's stderr, untouched)::

    client ──stdin──► proxy ──► server          (client → server pump thread)
    client ◄─stdout── proxy ◄── server          (server → client pump thread)
                        │ copies of the chunks (bounded deque; dropped and counted when full)
                        ▼
                 analyser thread ── Observer (JSON-RPC → Event v1) ── Publisher.offer (non-blocking)

Why threads and raw ``os.read``/``os.write``: the forwarding path is a read and a write of the
same bytes, whatever arrives, in whatever chunks — no decoding, no re-framing, no Python-level
buffering — so the proxy cannot alter a message and adds only two thread hand-offs per message.
Understanding the messages happens on another thread, after the bytes were forwarded; publishing
happens on the publisher's thread (``collectors.publisher``: queue, Kafka, disk spool). A slow or
absent Kafka therefore never delays the MCP traffic, and a line the analyser cannot parse is
still forwarded as it came (and counted).

Lifecycle follows the MCP stdio transport: the client closing our stdin closes the server's
stdin; the server's stdout ending closes ours; SIGTERM/SIGHUP are passed on to the server (an
MCP client's own shutdown SIGTERMs the whole process group anyway). The exit code is the
server's (128 + signal when it was killed), 127 when it could not be started. Pending events
are delivered for up to ``flush_timeout`` seconds, then spooled to disk for the next run.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from schemas.settings import Settings

from collectors.mcp.inventory import Inventory
from collectors.mcp.observer import CLIENT, SERVER, Observer, ServerIdentity

log = logging.getLogger("aiwatch.mcp")

CHUNK = 65_536
MAX_LINE_BYTES = 32 * 1024 * 1024      # longer lines are forwarded but not parsed (their size is reported)
MAX_QUEUED_BYTES = 64 * 1024 * 1024    # copies waiting for the analyser; beyond, copies are dropped (counted)
_HEAD = 4_096                          # bytes of an oversized line kept to find its JSON-RPC id
POLL = 0.005                           # analyser polling period while traffic flows
IDLE = 1.0                             # quiet seconds before the analyser sleeps until woken

Sink = Callable[[dict[str, Any]], Any]


@dataclass
class ProxyOptions:
    """Who the events are attributed to, and how the proxy behaves (all optional)."""

    app: str | None = None                 # default "mcp:<server label>"
    name: str | None = None                # the server's name in the inventory (default: from the command)
    env: str | None = None
    tenant: str | None = None
    session_id: str | None = None          # default: one per proxy run (or the server's, if it states one)
    user_id: str | None = None             # default: the OS user running the proxy
    labels: Mapping[str, str] = field(default_factory=dict)
    inventory: bool = True                 # keep <home>/mcp-inventory.json and report definition changes
    flush_timeout: float = 1.5             # at exit; MCP clients SIGTERM 2 s after closing stdin
    max_line_bytes: int = MAX_LINE_BYTES
    max_queued_bytes: int = MAX_QUEUED_BYTES
    quiet: bool = False                    # no summary line on stderr at exit


def run_proxy(
    command: Sequence[str],
    settings: Settings | None = None,
    *,
    app: str | None = None,
    name: str | None = None,
    options: ProxyOptions | None = None,
    sink: Sink | None = None,
    stdin: int = 0,
    stdout: int = 1,
) -> int:
    """Run ``command`` as an MCP stdio server behind the proxy until it exits; return its exit code.

    ``app`` and ``name`` override the same fields of ``options``. Events go to a background
    :class:`collectors.publisher.Publisher` on ``settings.topic_events``, or to ``sink`` when given
    (tests, embedding). ``stdin``/``stdout`` are the client side's file descriptors.
    """
    opts = options or ProxyOptions()
    overrides = {k: v for k, v in (("app", app), ("name", name)) if v is not None}
    if overrides:
        opts = dataclasses.replace(opts, **overrides)
    return McpProxy(list(command), settings or Settings(), opts, sink=sink, stdin=stdin, stdout=stdout).run()


class McpProxy:
    """One proxy run. ``run()`` once; ``counts`` and ``observer.counts`` tell what happened."""

    def __init__(self, command: list[str], settings: Settings, options: ProxyOptions, *,
                 sink: Sink | None = None, stdin: int = 0, stdout: int = 1) -> None:
        if not command:
            raise ValueError("mcp-proxy needs the server command after '--'")
        self.command = command
        self.settings = settings
        self.options = options
        self.server = ServerIdentity.of(command, options.name)
        self.observer = Observer(
            self.server, app=options.app, env=options.env, tenant=options.tenant, session_id=options.session_id,
            user_id=options.user_id, labels=options.labels,
            inventory=Inventory.at_home(settings.home) if options.inventory else None)
        self._sink = sink
        self._publisher: Any = None
        self._in, self._out = stdin, stdout
        self._copies: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._idle = False
        self._stopping = False
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._dropping = {CLIENT: False, SERVER: False}
        self.counts: dict[str, int] = {"bytes_from_client": 0, "bytes_from_server": 0, "copies_dropped_bytes": 0,
                                       "events": 0, "events_refused": 0}
        self._signalled: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- run ------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        except OSError as exc:
            print(f"aiwatch mcp-proxy: cannot start {self.command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
            return 127
        self._proc = proc
        self._start_publisher()
        restore = self._install_signals()
        analyser = threading.Thread(target=self._analyse, name="mcp-proxy-analyser", daemon=True)
        analyser.start()
        up = threading.Thread(target=self._pump, name="mcp-proxy-client-to-server", daemon=True,
                              args=(self._in, proc.stdin.fileno(), CLIENT, self._client_gone))  # type: ignore[union-attr]
        down = threading.Thread(target=self._pump, name="mcp-proxy-server-to-client", daemon=True,
                                args=(proc.stdout.fileno(), self._out, SERVER, self._server_gone))  # type: ignore[union-attr]
        up.start()
        down.start()
        try:
            code = proc.wait()
            down.join(timeout=2.0)  # what the server wrote before exiting still goes to the client
        finally:
            self._restore_signals(restore)
            self._stopping = True
            self._wake.set()
            analyser.join(timeout=5.0)
            self._close_publisher()
        if not self.options.quiet:
            print(self.summary(), file=sys.stderr)
        return 128 - code if code < 0 else code

    # -- forwarding -----------------------------------------------------------------------

    def _pump(self, src: int, dst: int, origin: str, on_end: Callable[[bool], None]) -> None:
        """Copy ``src`` to ``dst`` chunk by chunk, then hand a copy of each chunk to the analyser."""
        counter = "bytes_from_client" if origin == CLIENT else "bytes_from_server"
        broken = False
        try:
            while True:
                try:
                    data = os.read(src, CHUNK)
                except OSError:
                    break
                if not data:
                    break
                try:
                    _write_all(dst, data)
                except OSError:
                    broken = True   # the reader went away; the writer will see it as it would without us
                    break
                self.counts[counter] += len(data)
                self._tap(origin, data)
        finally:
            on_end(broken)

    def _tap(self, origin: str, data: bytes) -> None:
        size = len(data)
        with self._queued_lock:
            if self._queued + size > self.options.max_queued_bytes:
                self.counts["copies_dropped_bytes"] += size
                if not self._dropping[origin]:
                    self._dropping[origin] = True
                    self._copies.append((origin, None))  # the analyser resynchronises at the next newline
                return
            self._queued += size
            self._dropping[origin] = False
        self._copies.append((origin, data))
        if self._idle:  # the analyser sleeps until woken after a quiet period; otherwise it polls
            self._idle = False
            self._wake.set()

    def _client_gone(self, broken: bool) -> None:
        """The client closed our stdin: close the server's stdin (MCP shutdown, step 1)."""
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def _server_gone(self, broken: bool) -> None:
        """The server closed its stdout (or the client stopped reading ours): pass the end on."""
        if broken:  # the client stopped reading: the server gets EPIPE on its next write, as without us
            proc = self._proc
            if proc is not None and proc.stdout is not None:
                try:
                    proc.stdout.close()
                except OSError:
                    pass
            return
        try:  # EOF for the client now, while fd ``stdout`` stays valid for the rest of the process
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self._out)
            finally:
                os.close(devnull)
        except OSError:
            pass

    # -- analysis -------------------------------------------------------------------------

    def _analyse(self) -> None:
        """Parse the copies in batches: polling every ``POLL`` seconds while traffic flows (no wake-up
        per message on the forwarding threads), sleeping until woken after ``IDLE`` quiet seconds."""
        lines = {CLIENT: _LineBuffer(self.options.max_line_bytes), SERVER: _LineBuffer(self.options.max_line_bytes)}
        observer, copies = self.observer, self._copies
        active = time.monotonic()
        while True:
            if copies:
                while copies:
                    origin, data = copies.popleft()
                    buffer = lines[origin]
                    if data is None:
                        buffer.resync()
                        continue
                    with self._queued_lock:
                        self._queued -= len(data)
                    for line, size, oversized in buffer.feed(data):
                        self._emit(observer.oversized(origin, line, size) if oversized else observer.line(origin, line))
                active = time.monotonic()
            elif self._stopping:
                break
            elif time.monotonic() - active < IDLE:
                time.sleep(POLL)
            else:
                self._wake.clear()
                self._idle = True
                if not copies and not self._stopping:
                    self._wake.wait(1.0)
                self._idle = False
        for origin, buffer in lines.items():  # a last message without its newline
            tail = buffer.tail()
            if tail is not None:
                line, size, oversized = tail
                self._emit(observer.oversized(origin, line, size) if oversized else observer.line(origin, line))
        self._emit(observer.finish())

    def _emit(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            try:
                accepted = self._sink(event) if self._sink is not None else self._publisher.offer(event)
            except Exception:  # noqa: BLE001 - a failing sink must not stop the analysis
                accepted = False
                log.debug("aiwatch mcp: sink failed", exc_info=True)
            if accepted is False:
                self.counts["events_refused"] += 1
            else:
                self.counts["events"] += 1

    # -- publisher ------------------------------------------------------------------------

    def _start_publisher(self) -> None:
        if self._sink is not None:
            return
        from collectors.encode import encode_event
        from collectors.publisher import Publisher

        self._publisher = Publisher(self.settings, partial(encode_event, max_bytes=self.settings.max_event_bytes),
                                    client_id="aiwatch-mcp-proxy")

    def _close_publisher(self) -> None:
        if self._publisher is not None:
            self._publisher.close(timeout=self.options.flush_timeout)

    def publisher_stats(self) -> dict[str, int]:
        return self._publisher.stats() if self._publisher is not None else {}

    def summary(self) -> str:
        c = self.observer.counts
        changes = c["definitions_changed"] + c["definitions_added"] + c["definitions_removed"]
        text = (f"aiwatch mcp-proxy [{self.server.key}] session {self.observer.session_id}: "
                f"{c['tool_calls']} tool call(s) ({c['tool_errors']} error(s)), {c['tool_listings']} tool listing(s), "
                f"{changes} tool definition change(s)")
        if c["unparsed"] or c["oversized"] or self.counts["copies_dropped_bytes"]:
            text += (f"; not analysed: {c['unparsed']} unparsable line(s), {c['oversized']} oversized, "
                     f"{self.counts['copies_dropped_bytes']} byte(s) dropped from analysis")
        stats = self.publisher_stats()
        if stats:
            text += (f"; events: {self.counts['events']} recorded, {stats['sent']} sent, "
                     f"{stats['spooled']} spooled, {stats['dropped']} dropped")
        else:
            text += f"; events: {self.counts['events']} recorded"
        return text

    # -- signals --------------------------------------------------------------------------

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                previous[sig] = signal.signal(sig, self._forward_signal)
            except (OSError, ValueError):
                pass
        return previous

    def _forward_signal(self, signum: int, frame: Any) -> None:
        self._signalled = signum
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signum)
            except OSError:
                pass

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            try:
                signal.signal(sig, handler)
            except (OSError, ValueError):
                pass


class _LineBuffer:
    """Reassembles newline-delimited messages of one direction from arbitrary chunks, with a size bound."""

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._parts: list[bytes] = []
        self._size = 0
        self._head = b""
        self._oversized = False
        self._skip = False          # after dropped copies: discard up to the next newline

    def feed(self, data: bytes) -> list[tuple[bytes, int, bool]]:
        """Complete lines in ``data`` (with what was buffered): (line or head of it, size, oversized)."""
        out = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._add(data[start:] if start else data)
                return out
            self._add(data[start:nl])
            done = self._take()
            if done is not None:
                out.append(done)
            start = nl + 1

    def tail(self) -> tuple[bytes, int, bool] | None:
        return self._take() if self._size else None

    def resync(self) -> None:
        self._reset()
        self._skip = True

    def _add(self, part: bytes) -> None:
        if not part or self._skip:
            return
        self._size += len(part)
        if self._oversized:
            return
        if self._size > self.max_line:
            self._head = b"".join(self._parts + [part])[:_HEAD]
            self._parts = []
            self._oversized = True
            return
        self._parts.append(part)

    def _take(self) -> tuple[bytes, int, bool] | None:
        if self._skip:
            self._skip = False
            self._reset()
            return None
        if self._oversized:
            done = (self._head, self._size, True)
        else:
            line = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            done = (line, self._size, False)
        self._reset()
        return done if done[1] else None

    def _reset(self) -> None:
        self._parts = []
        self._size = 0
        self._head = b""
        self._oversized = False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


# -- command line ------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``aiwatch mcp-proxy`` (the server command follows ``--``)."""
    parser.add_argument("--app", help="application name on the events (default mcp:<server>)")
    parser.add_argument("--name", help="the server's name in the tool inventory (default: derived from the command)")
    parser.add_argument("--env", help="environment label, e.g. prod")
    parser.add_argument("--tenant")
    parser.add_argument("--session-id", help="session id of the events (default: one per run, or the server's)")
    parser.add_argument("--user", dest="user_id", help="actor.user_id (default: the OS user)")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="extra label (repeatable)")
    parser.add_argument("--no-inventory", action="store_true", help="do not track tool definitions across sessions")
    parser.add_argument("--flush-timeout", type=float, default=1.5,
                        help="seconds to deliver pending events at exit before spooling them (default 1.5)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr at exit")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the MCP server command and its arguments")


def options_from(args: argparse.Namespace) -> ProxyOptions:
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"aiwatch mcp-proxy: --label wants KEY=VALUE, got {item!r}")
        labels[key] = value
    return ProxyOptions(app=args.app, name=args.name, env=args.env, tenant=args.tenant, session_id=args.session_id,
                        user_id=args.user_id, labels=labels, inventory=not args.no_inventory,
                        flush_timeout=args.flush_timeout, quiet=args.quiet)


def command_from(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise SystemExit("aiwatch mcp-proxy: give the server command after '--', e.g. "
                         "aiwatch mcp-proxy -- npx -y @modelcontextprotocol/server-filesystem /tmp")
    return command


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """``python -m collectors.mcp [options] -- command ...`` (what ``aiwatch mcp-proxy`` runs)."""
    parser = argparse.ArgumentParser(prog="aiwatch mcp-proxy", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv), settings or Settings())


def run_from_args(args: argparse.Namespace, settings: Settings) -> int:
    """Run with parsed ``add_arguments`` options (shared by ``main`` and the aiwatch CLI)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    return run_proxy(command_from(args), settings, options=options_from(args))


__all__ = ["McpProxy", "ProxyOptions", "add_arguments", "command_from", "main", "options_from", "run_from_args",
           "run_proxy"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
