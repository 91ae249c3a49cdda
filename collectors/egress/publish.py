"""``aiwatch collect egress FILE|-``: publish the AI calls found in an egress log to the events topic.

Events go through the SDK's background :class:`collectors.publisher.Publisher` (idempotent
``acks=all`` producer, disk spool while Kafka is away), so a broker outage loses nothing: what
could not be delivered before ``flush_timeout`` waits in the spool and is sent by the next run.
The reader slows down instead of overrunning the publisher's queue. Because event ids are derived
from the log lines, re-reading a log (e.g. after an interrupted run) stores nothing twice.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from schemas.settings import Settings

from collectors.egress.formats import FORMATS, UnknownFormat
from collectors.egress.providers import PROVIDERS, load_providers
from collectors.egress.reader import DEFAULT_APP, EgressOptions, EgressReport, read_egress

_CHECK_EVERY = 256          # events between looks at the publisher's backlog


class EgressError(RuntimeError):
    """The log could not be read at all (missing file, unknown format)."""


def run_egress(
    path: str | Path,
    settings: Settings | None = None,
    *,
    fmt: str = "auto",
    options: EgressOptions | None = None,
    progress: bool = True,
    flush_timeout: float = 30.0,
    topic: str | None = None,
) -> EgressReport:
    """Read ``path`` (``"-"`` = stdin) and publish its AI calls; returns the report (with ``published``)."""
    from collectors.encode import encode_event
    from collectors.publisher import Publisher

    settings = settings or Settings()
    report = EgressReport()
    publisher = Publisher(settings, partial(encode_event, max_bytes=settings.max_event_bytes), topic=topic,
                          client_id="aiwatch-egress")
    high_water = max(settings.sdk_queue_size // 2, 1)
    try:
        with _source(path, progress, report) as lines:
            for n, event in enumerate(read_egress(lines, fmt, options=options, report=report), 1):
                while not publisher.offer(event):  # closed (never here) or full: wait for room
                    time.sleep(0.01)
                if n % _CHECK_EVERY == 0:
                    while publisher.stats().get("queued", 0) > high_water:
                        time.sleep(0.005)
    except UnknownFormat as exc:
        raise EgressError(f"{path}: {exc}") from None
    except OSError as exc:
        raise EgressError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        publisher.close(timeout=flush_timeout)
        report.published = publisher.stats()
    return report


@contextmanager
def _source(path: str | Path, progress: bool, report: EgressReport) -> Iterator[Iterator[bytes]]:
    from tqdm import tqdm

    if str(path) == "-":
        stream: Any = sys.stdin.buffer
        total = None
    else:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
        total = Path(path).stat().st_size
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"egress {path}", disable=not progress,
               file=sys.stderr, mininterval=0.5)

    def lines() -> Iterator[bytes]:
        pending = 0
        for line in stream:
            pending += len(line)
            if pending >= 1 << 20:
                bar.update(pending)
                bar.set_postfix(ai=report.ai_calls, malformed=report.malformed, refresh=False)
                pending = 0
            yield line
        bar.update(pending)
        bar.set_postfix(ai=report.ai_calls, malformed=report.malformed, refresh=False)

    try:
        yield lines()
    finally:
        bar.close()
        if stream is not sys.stdin.buffer:
            stream.close()


# -- command line ---------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``aiwatch collect egress``."""
    parser.add_argument("file", help="egress / proxy log; - reads stdin (e.g. tail -F access.log | ...)")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="auto",
                        help="squid (native access.log), nginx (JSON lines), zeek (http.log/ssl.log, TSV or JSON); "
                             "default: detected from the first lines")
    parser.add_argument("--app", default=DEFAULT_APP,
                        help="app name of the events; {client}, {user}, {client_ip}, {provider}, {host} are "
                             f"replaced (default {DEFAULT_APP!r})")
    parser.add_argument("--env")
    parser.add_argument("--tenant")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="extra label (repeatable)")
    parser.add_argument("--providers", metavar="FILE", help="YAML/JSON file of extra or replaced AI provider hosts")
    parser.add_argument("--api-only", action="store_true", help="ignore browser use of chat apps (chatgpt.com, ...)")
    parser.add_argument("--flush-timeout", type=float, default=30.0,
                        help="seconds to deliver the events at the end before leaving the rest in the spool")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def options_from(args: argparse.Namespace) -> EgressOptions:
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"aiwatch collect egress: --label wants KEY=VALUE, got {item!r}")
        labels[key] = value
    try:
        providers = load_providers(args.providers) if args.providers else PROVIDERS
    except (OSError, ValueError) as exc:
        raise SystemExit(f"aiwatch collect egress: --providers: {exc}") from None
    return EgressOptions(app=args.app, env=args.env, tenant=args.tenant, labels=labels, providers=providers,
                         include_apps=not args.api_only)


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """``python -m collectors.egress FILE`` (what ``aiwatch collect egress`` runs). Exit 0 when every AI
    call was sent or spooled, 1 when some were dropped, 2 when the log could not be read."""
    parser = argparse.ArgumentParser(prog="aiwatch collect egress", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv), settings or Settings())


def run_from_args(args: argparse.Namespace, settings: Settings) -> int:
    """Run with parsed ``add_arguments`` options (shared by ``main`` and the aiwatch CLI)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        report = run_egress(args.file, settings, fmt=args.fmt, options=options_from(args),
                            progress=not args.quiet, flush_timeout=args.flush_timeout)
    except EgressError as exc:
        print(f"aiwatch collect egress: {exc}", file=sys.stderr)
        return 2
    print(report.summary(), file=sys.stderr)
    return 1 if report.published.get("dropped") else 0


__all__ = ["EgressError", "add_arguments", "main", "options_from", "run_egress", "run_from_args"]
