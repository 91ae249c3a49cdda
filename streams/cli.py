"""``aiwatch`` command line: run the worker, prepare storage and topics, send and query events."""

from __future__ import annotations

import argparse
import functools
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from schemas.settings import Settings

EPILOG = """\
Configuration comes from the environment (AIWATCH_*; also KAFKA_BOOTSTRAP_SERVERS and CLICKHOUSE_DSN).
Run `aiwatch config` to see every setting and its current value.
"""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise SystemExit("aiwatch: invalid configuration:\n" + "\n".join(lines)) from None


def _tune_gc() -> None:
    """Stream processing allocates many short-lived objects per event; with CPython's default gen-0
    threshold (700) the collector runs every few events and re-scans every live batch. Measured on
    parse_event: 44 µs/event by default, 17 µs with this threshold. Long-lived start-up objects
    (rule pack, compiled detectors) are frozen out of the collector's scans."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the stream worker in the foreground (Ctrl-C or SIGTERM stops it cleanly)."""
    settings = _settings()
    if args.web_port:
        settings.web_port = args.web_port
    spawned = None
    if settings.detect and settings.behavior and settings.ingest_mode == "batch":
        from streams.behavior_process import BehaviorProcess

        spawned = BehaviorProcess()  # imports on the other core while this one starts the worker

    import faust

    from detectors.rules import RuleLoadError
    from streams.app import build_detection, create_app
    from streams.db import connect, migrate
    from streams.topics import ensure_topics

    detection = None
    if settings.detect:
        try:
            detection = build_detection(settings)
        except RuleLoadError as exc:
            print(f"aiwatch worker: refusing to start, the rule pack has errors:\n{exc}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"aiwatch worker: refusing to start, AIWATCH_DETECTORS_EXCLUDE: {exc}", file=sys.stderr)
            return 2
        print(f"rules: {len(detection.rules.pack.rules) if detection.rules else 0} rules, policy "
              f"{detection.policy_version}; {len(detection.scanner.detectors)} content detectors", file=sys.stderr)
    client = connect(settings.dsn)
    for line in migrate(client, settings.retention_days):
        print(f"init-db: {line}", file=sys.stderr)
    if detection is not None and detection.rules is not None:
        from streams.policy import record_policy

        change = record_policy(client, detection.rules.pack.manifest(), settings.policy_changed_by,
                               settings.policy_change_reason)
        if change:
            print(f"policy: {change}", file=sys.stderr)
    client.close()
    created = asyncio.run(ensure_topics(settings))
    if created:
        print(f"init-kafka: created {', '.join(created)}", file=sys.stderr)
    app = create_app(settings, detection, behavior=spawned)
    _tune_gc()
    print(
        f"aiwatch worker: {settings.kafka_bootstrap_servers} → {settings.dsn} "
        f"(web http://{settings.web_host}:{settings.web_port}/health)",
        file=sys.stderr,
    )
    worker = faust.Worker(app, loglevel=settings.worker_log_level, quiet=True)
    worker.execute_from_commandline()
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    """Create or upgrade the ClickHouse tables (idempotent); applies the retention setting."""
    from streams.db import connect, migrate

    settings = _settings()
    try:
        client = connect(settings.dsn)
        done = migrate(client, settings.retention_days)
    except Exception as exc:  # noqa: BLE001 - a clear message instead of a traceback
        print(f"aiwatch init-db: {settings.dsn}: {exc}", file=sys.stderr)
        return 1
    for line in done:
        print(line)
    print(f"ClickHouse schema up to date at {settings.dsn}")
    return 0


def cmd_init_kafka(args: argparse.Namespace) -> int:
    """Create the aiwatch topics that are missing, with their partitions and retention."""
    from streams.topics import ensure_topics, topic_specs

    settings = _settings()
    try:
        created = asyncio.run(ensure_topics(settings))
    except Exception as exc:  # noqa: BLE001
        print(f"aiwatch init-kafka: cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}", file=sys.stderr)
        return 1
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name:24} {state:8} partitions={spec.partitions} retention={spec.retention_hours}h  {spec.why}")
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Publish the events of a JSONL file (or - for stdin) to the events topic."""
    from collectors.send import SendError, send_file

    settings = _settings()
    try:
        report = send_file(args.file, settings, progress=not args.quiet)
    except SendError as exc:
        print(f"aiwatch send: {exc}", file=sys.stderr)
        return 1
    print(
        f"{report.lines} lines: {report.sent} sent, {report.failed} failed, {report.unparsed} not JSON objects "
        f"(sent; the worker dead-letters them), {report.skipped} blank, {report.bytes:,} bytes → {settings.topic_events}"
    )
    return 1 if report.failed else 0


def _worker_sql(settings: Settings, sql: str) -> dict:
    url = f"http://{settings.web_host}:{settings.web_port}/sql"
    request = urllib.request.Request(url, data=sql.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}") or {"error": str(exc)}
    except urllib.error.URLError as exc:
        raise SystemExit(
            f"aiwatch query: the embedded store is owned by the worker, which does not answer at {url} ({exc.reason}). "
            "Start it with `aiwatch worker`, or set CLICKHOUSE_DSN to a ClickHouse server."
        ) from None


def run_query(settings: Settings, sql: str) -> dict:
    """Read-only SQL: through the worker in embedded mode, directly against a server otherwise."""
    if settings.embedded:
        return _worker_sql(settings, sql)
    from streams.db import connect
    from streams.web import run_readonly

    try:
        return run_readonly(connect(settings.dsn), sql)
    except Exception as exc:  # noqa: BLE001
        return {"error": str(exc)}


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 60) -> None:
    cells = [[str(c) for c in columns]] + [[str(v)[:max_width] for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def cmd_query(args: argparse.Namespace) -> int:
    """Run read-only SQL against the event store."""
    result = run_query(_settings(), args.sql)
    if "error" in result:
        print(f"aiwatch query: {result['error']}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result["columns"], result["rows"])
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show the worker's health and counters."""
    settings = _settings()
    url = f"http://{settings.web_host}:{settings.web_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        print(f"aiwatch status: no worker at {url} ({exc})", file=sys.stderr)
        return 1
    print(f"worker {body['app']}: {body['status']}")
    for name, value in sorted(body["counters"].items()):
        print(f"  {name:48} {value:>12,.0f}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """Print every setting, its environment variable and its current value (secrets masked)."""
    from pydantic import BaseModel

    def rows(model: BaseModel, prefix: str) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                out += rows(value, f"{prefix}{name.upper()}_")
                continue
            if value and any(word in name for word in ("password", "token")):
                value = "****"
            out.append((f"{prefix}{name.upper()}", value))
        return out

    settings = _settings()
    for env, value in rows(settings, "AIWATCH_"):
        print(f"{env:40} = {value}")
    print(f"{'(effective ClickHouse DSN)':40} = {settings.dsn}")
    return 0


def cmd_detectors(args: argparse.Namespace) -> int:
    """List the content detectors: id, category, severity, patterns and what each finds (for
    AIWATCH_DETECTORS_EXCLUDE, rule conditions on `detector`, and reading findings)."""
    from detectors.registry import REGISTRY

    excluded = set(_settings().detectors_exclude)
    rows = [{"id": d.id, "category": d.category.value, "severity": d.severity.value, "patterns": len(d.patterns),
             "title": d.title, "description": d.description, "excluded": d.id in excluded}
            for d in REGISTRY.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        mark = "  (excluded by AIWATCH_DETECTORS_EXCLUDE)" if r["excluded"] else ""
        print(f"{r['id']:34} {r['category']:22} {r['severity']:8} {r['patterns']:>3}  {r['title']}{mark}")
        if args.verbose:
            print(f"{'':34} {r['description']}")
    print(f"{len(rows)} detectors, {sum(r['patterns'] for r in rows)} patterns (plus those built from canaries and "
          f"system prompts); {len(excluded)} excluded", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Start a local broker and worker, send a stream of demo events, and show what was stored."""
    from streams.demo import run_demo

    return run_demo(_settings(), sessions=args.sessions, keep_running=args.keep_running)


def _detection(rule_paths: list[str] | None, behavior: bool = False, classifier: str | None = None):  # noqa: ANN202 - Detection, lazily
    from detectors.rules import RuleLoadError
    from streams.app import build_detection

    settings = _settings()
    if classifier:
        settings.classifier = classifier
    if rule_paths:
        settings.rules_paths = [Path(p) for p in rule_paths]
    try:
        detection = build_detection(settings)
    except RuleLoadError as exc:
        raise SystemExit(f"aiwatch: the rule pack has errors:\n{exc}") from None
    except ValueError as exc:
        raise SystemExit(f"aiwatch: AIWATCH_DETECTORS_EXCLUDE: {exc}") from None
    if behavior:
        from detectors.behavior.pipeline import BehaviorPipeline

        detection.behavior = BehaviorPipeline.split_by(settings.baseline_partition_by)
    return detection


def cmd_replay(args: argparse.Namespace) -> int:
    """Run the worker's detectors and rules over a JSONL file of events, offline (backtesting)."""
    from streams.replay import replay

    if not Path(args.events).exists():
        print(f"aiwatch replay: no such file: {args.events}", file=sys.stderr)
        return 1
    detection = _detection(args.rules, behavior=not args.no_behavior, classifier=args.classifier)
    _tune_gc()
    report = replay(args.events, detection, out=args.out,
                    progress=not args.quiet,
                    include_learn=args.include_learn)
    print(report.summary(), file=sys.stderr)
    return 0


def cmd_rules_lint(args: argparse.Namespace) -> int:
    """Check rule files: every error and warning at once, with file:line:column."""
    from detectors.rules import lint

    issues = lint(args.paths or [str(p) for p in _settings().rules_paths])
    for issue in issues:
        print(issue.format())
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    print(f"{errors} error(s), {warnings} warning(s)", file=sys.stderr)
    return 1 if errors or (args.strict and warnings) else 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    """Run the positive and negative test events every rule embeds."""
    from detectors.rules import run_rule_tests

    report = run_rule_tests(args.paths or [str(p) for p in _settings().rules_paths])
    for failure in report.failures:
        print(failure)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_collect_otlp(args: argparse.Namespace) -> int:
    """Receive OTLP/HTTP traces and logs (GenAI conventions) and publish them as events."""
    from collectors.otlp.server import serve

    settings = _settings()
    serve(settings, host=args.host, port=args.port, otlp=settings.otlp)
    return 0


def cmd_collect_egress(args: argparse.Namespace) -> int:
    """Turn proxy / egress logs (squid, nginx JSON, Zeek) into events for AI provider calls: shadow AI."""
    from collectors.egress.publish import run_from_args

    return run_from_args(args, _settings())


def cmd_mcp_proxy(args: argparse.Namespace) -> int:
    """Proxy an MCP stdio server unchanged and record its tool calls, results and tool definitions."""
    from collectors.mcp.proxy import run_from_args

    return run_from_args(args, _settings())


def cmd_baseline_suggest(args: argparse.Namespace) -> int:
    """Propose thresholds and allow-lists for an app from its observed behaviour, as a reviewable YAML diff."""
    from detectors.behavior.pipeline import BehaviorPipeline
    from detectors.behavior.suggest import suggest
    from schemas import InvalidEvent, parse_event

    current = Path(args.current).read_text(encoding="utf-8") if args.current else None
    if args.events:
        pipeline = BehaviorPipeline.split_by(_settings().baseline_partition_by)
        seen = 0
        with open(args.events, "rb") as handle:
            for line in handle:
                try:
                    event = parse_event(line.strip())
                except InvalidEvent:
                    continue
                seen += event.app == args.app
                pipeline.process(event)
        pipeline.flush(close_all=True)
        if not seen:
            print(f"aiwatch baseline suggest: no events of app {args.app!r} in {args.events}", file=sys.stderr)
            return 1
        rows = pipeline.snapshot()
    else:
        rows = latest_baselines(_settings(), args.app)
        if not rows:
            print(f"aiwatch baseline suggest: the baselines table has no snapshot of app {args.app!r} yet. The worker "
                  "writes one every AIWATCH_BASELINE_SNAPSHOT_SECONDS (default 3600) once it has seen the app's "
                  "traffic; or pass --events FILE to learn from an export.", file=sys.stderr)
            return 1
        print(f"from the baselines snapshot of {rows[0]['snapshot']} ({len(rows)} rows)", file=sys.stderr)
    try:
        suggestion = suggest(rows, args.app, current=current, partition=args.partition)
    except ValueError as exc:
        print(f"aiwatch baseline suggest: {exc}", file=sys.stderr)
        return 2
    print(suggestion.diff(current) if args.diff else suggestion.to_yaml())
    return 0


SNAPSHOT_SQL = """
SELECT toString(snapshot_ts) AS snapshot, app, partition, entity_kind, entity, detector, function, field, over, warm,
       observations, mean, std, p50, p99, max, distinct_values, top_values
FROM baselines
WHERE app = {app} AND snapshot_ts = (SELECT max(snapshot_ts) FROM baselines WHERE app = {app})
"""


def latest_baselines(settings: Settings, app: str) -> list[dict]:
    """The newest baseline snapshot rows of ``app`` in the store (through the worker when embedded)."""
    from streams.db import sql_string

    result = run_query(settings, SNAPSHOT_SQL.format(app=sql_string(app)))
    if "error" in result:
        raise SystemExit(f"aiwatch baseline suggest: {result['error']}")
    return [dict(zip(result["columns"], row)) for row in result["rows"]]


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    """Check that stored events were not edited, deleted or added since they were stored (hash chain)."""
    from tqdm import tqdm

    from streams import evidence

    if args.bundle:
        if not (Path(args.bundle) / "manifest.json").exists():
            print(f"aiwatch evidence verify: {args.bundle} is not an evidence bundle (no manifest.json)", file=sys.stderr)
            return 2
        report = evidence.verify_bundle(Path(args.bundle))
    else:
        settings = _settings()
        query = functools.partial(run_query, settings)
        report = evidence.verify_store(query, progress=lambda it: tqdm(it, unit=" rows", desc="verify",
                                                                       disable=args.quiet, file=sys.stderr),
                                       since=args.since)
    print(json.dumps({"ok": report.ok, "rows": report.rows, "blocks": report.blocks, "chains": report.chains,
                      "problems": report.problems, "notes": report.notes}) if args.json else report.summary())
    return 0 if report.ok else 1


def cmd_evidence_export(args: argparse.Namespace) -> int:
    """Write an evidence bundle (events, chain blocks, manifest with file hashes and chain heads)."""
    from tqdm import tqdm

    from streams import evidence

    settings = _settings()
    query = functools.partial(run_query, settings)
    manifest = evidence.export_bundle(query, Path(args.out), app=args.app, since=args.since, until=args.until,
                                      progress=lambda it: tqdm(it, unit=" rows", desc="export",
                                                               disable=args.quiet, file=sys.stderr))
    counts = manifest["counts"]
    print(f"wrote {args.out}: {counts['events']} events in {counts['blocks_selected']} blocks "
          f"({counts['withheld_events']} events of other apps withheld, proven by hash); check it any time with "
          f"`aiwatch evidence verify --bundle {args.out}`", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure detection quality on the public corpora, or the findings to expect on your own documents.

    injection / behavior: recall at fixed false-positive rates; content: precision / recall / F1;
    documents: the share of document chunks each detector would flag."""
    if args.suite == "content":
        from streams.evaluation.content import main as run
    elif args.suite == "documents":
        from streams.evaluation.documents import main as run
    elif args.suite == "injection":
        from streams.evaluation.run import main as run
    else:
        from streams.evaluation.behavior import main as run
    return int(run(list(args.rest), prog=f"aiwatch eval {args.suite}") or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aiwatch",
        description="aiwatch: out-of-band runtime security monitor for LLM applications and AI agents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], **kw: object) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().splitlines()[0], description=fn.__doc__, **kw)
        p.set_defaults(fn=fn)
        return p

    p = add("worker", cmd_worker)
    p.add_argument("--web-port", type=int, help="port of /health, /metrics and /sql (default AIWATCH_WEB_PORT=6066)")
    add("init-db", cmd_init_db)
    add("init-kafka", cmd_init_kafka)
    p = add("send", cmd_send)
    p.add_argument("file", help="JSONL file of Event v1 objects, one per line; - reads stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p = add("query", cmd_query)
    p.add_argument("sql", help="read-only SQL, e.g. \"SELECT kind, count() FROM events GROUP BY kind\"")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add("status", cmd_status)
    add("config", cmd_config)
    p = add("detectors", cmd_detectors)
    p.add_argument("--json", action="store_true", help="print JSON (with descriptions) instead of a table")
    p.add_argument("-v", "--verbose", action="store_true", help="also print what each detector finds")
    p = add("replay", cmd_replay)
    p.add_argument("events", help="JSONL file of Event v1")
    p.add_argument("--rules", action="append", metavar="PATH", help="rule file or directory (repeatable; default: the configured pack)")
    p.add_argument("--out", help="write findings here (default: stdout)")
    p.add_argument("--include-learn", action="store_true", help="also output findings of apps/rules in learn mode")
    p.add_argument("--no-behavior", action="store_true",
                   help="content detectors and rules only (no sessions, baselines, drift)")
    p.add_argument("--classifier", choices=("off", "untrusted", "all"),
                   help="where the trained injection classifier runs (default: AIWATCH_CLASSIFIER=untrusted)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    rules = sub.add_parser("rules", help="lint and test policy-as-code rules", description="Policy-as-code rules.")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    for name, fn in (("lint", cmd_rules_lint), ("test", cmd_rules_test)):
        rp = rules_sub.add_parser(name, help=(fn.__doc__ or "").strip(), description=fn.__doc__)
        rp.add_argument("paths", nargs="*", help="rule files or directories (default: AIWATCH_RULES_PATHS)")
        rp.set_defaults(fn=fn)
        if name == "lint":
            rp.add_argument("--strict", action="store_true", help="warnings fail too")

    collect = sub.add_parser("collect", help="run a collector", description="Collectors that turn telemetry into events.")
    collect_sub = collect.add_subparsers(dest="collector", metavar="SOURCE", required=True)
    cp = collect_sub.add_parser("otlp", help=cmd_collect_otlp.__doc__, description=cmd_collect_otlp.__doc__)
    cp.add_argument("--host", help="listen address (default AIWATCH_OTLP_HOST=127.0.0.1)")
    cp.add_argument("--port", type=int, help="listen port (default AIWATCH_OTLP_PORT=4318)")
    cp.set_defaults(fn=cmd_collect_otlp)
    from collectors.egress.publish import add_arguments as egress_arguments
    from collectors.mcp.proxy import add_arguments as mcp_arguments

    ep = collect_sub.add_parser("egress", help=cmd_collect_egress.__doc__, description=cmd_collect_egress.__doc__)
    egress_arguments(ep)
    ep.set_defaults(fn=cmd_collect_egress)
    mp = add("mcp-proxy", cmd_mcp_proxy, usage="aiwatch mcp-proxy [options] -- <server command> [args...]")
    mcp_arguments(mp)

    ev = sub.add_parser("evidence", help="tamper-evident evidence: verify the hash chain, export bundles",
                        description="Tamper-evident evidence of what the AI did (hash chain over stored events).")
    ev_sub = ev.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    vp = ev_sub.add_parser("verify", help=cmd_evidence_verify.__doc__, description=cmd_evidence_verify.__doc__ +
                           " Exit code 0: intact; 1: problems found (listed); 2: bad input.")
    vp.set_defaults(fn=cmd_evidence_verify)
    vp.add_argument("--bundle", metavar="DIR", help="verify an exported bundle offline instead of the store")
    vp.add_argument("--since", metavar="ISO8601", help="check the rows of blocks stored since then only "
                    "(chain links are always checked whole)")
    vp.add_argument("--json", action="store_true", help="print the report as JSON")
    vp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    xp = ev_sub.add_parser("export", help=cmd_evidence_export.__doc__, description=cmd_evidence_export.__doc__)
    xp.set_defaults(fn=cmd_evidence_export)
    xp.add_argument("--out", required=True, metavar="DIR", help="directory to write the bundle into")
    xp.add_argument("--app", help="only this app's events (other apps' events in the same blocks are kept as hashes)")
    xp.add_argument("--since", metavar="ISO8601", help="blocks stored at or after this time")
    xp.add_argument("--until", metavar="ISO8601", help="blocks stored before this time")
    xp.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    baseline = sub.add_parser("baseline", help="behavioural baselines", description="Behavioural baselines.")
    baseline_sub = baseline.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    bp = baseline_sub.add_parser("suggest", help=cmd_baseline_suggest.__doc__, description=cmd_baseline_suggest.__doc__)
    bp.add_argument("--app", required=True, help="the application to propose a policy for")
    bp.add_argument("--events", help="learn from this JSONL file of events instead of the store's latest baselines snapshot")
    bp.add_argument("--current", help="the app's current policy YAML, to show a diff against")
    bp.add_argument("--diff", action="store_true", help="print a unified diff against --current instead of the YAML")
    bp.add_argument("--partition", help="the baseline partition to use when the app's baselines are split "
                                        "(AIWATCH_BASELINE_PARTITION_BY), e.g. env=prod")
    bp.set_defaults(fn=cmd_baseline_suggest)

    p = add("eval", cmd_eval)
    p.add_argument("suite", choices=["injection", "behavior", "content", "documents"],
                   help="injection: heuristics + classifier on texts; behavior: session-level agent hijacks; "
                        "content: secrets and PII detectors (precision/recall/F1, beside detect-secrets); "
                        "documents: what the detectors would report on your own documents (expected false positives)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of the suite (e.g. --corpora DIR; --help)")

    p = add("demo", cmd_demo)
    p.add_argument("--sessions", type=int, default=20, help="demo agent sessions to send (default 20)")
    p.add_argument("--keep-running", action="store_true", help="leave the broker and worker running afterwards")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except BrokenPipeError:  # `aiwatch detectors | head`: the reader left; no traceback, as other CLIs
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
