"""Benchmark of the behavioural layer in replay: throughput per stage on one core, memory per open
session and per tracked entity.

Not a test. Usage: python bench/behavior.py [--events 200000] [--entities 5000] [--sessions 20000]

1. throughput: ~1 KB synthetic agent events (``collectors.synthetic``), parsed once beforehand (parsing
   is the ingest stage's cost, reported apart); each stage (sessions, baselines, drift, all three
   together) replays the same events on one core (the process is pinned to one CPU when possible);
2. memory per open session: ``tracemalloc`` growth while holding N open sessions of the synthetic
   shape (prompt, retrieval, tool call, tool result, completion), and the pickled size (what a Faust
   changelog stores per session);
3. memory per entity: baselines of N identities (several events each, all default specs) and of N
   agents (which also carry a HalfSpaceTrees model), tracemalloc growth and pickled size per entity.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import platform
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collectors.synthetic import synthetic_events  # noqa: E402
from detectors.behavior import BaselineConfig, BaselineStore, BehaviorPipeline, DriftTracker, SessionTracker  # noqa: E402
from detectors.behavior.session import SessionConfig  # noqa: E402
from schemas.event import Event  # noqa: E402


def pin_one_core() -> str:
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def rate(stage, events: list[Event], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        obj = stage()
        gc.collect()
        t = time.perf_counter()
        for e in events:
            obj.process(e)
        best = max(best, len(events) / (time.perf_counter() - t))
    return best


def grown(build) -> tuple[int, object]:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    obj = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, obj


def session_events(n_sessions: int) -> list[Event]:
    return [Event.model_validate(e) for e in synthetic_events(n_sessions * 5, seed=11)]


def entity_events(n: int, kind: str, per_entity: int = 6) -> list[Event]:
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        for k in range(per_entity):
            base = {"schema": "aiwatch.event/1", "event_id": f"{kind}{i}-{k}", "app": "bench",
                    "ts": t0 + timedelta(seconds=i * 0.5 + k * 700), "session_id": f"s{i}-{k}"}
            who = {"actor": {"user_id": f"user{i}"}, "agent": "bench-agent"} if kind == "identity" else \
                  {"actor": {"user_id": "svc"}, "agent": f"agent{i}"}
            if k % 3 == 0:
                part = {"kind": "tool_call", "tool": {"name": ("search", "read", "send_email")[k % 3 + (i % 2)],
                                                      "call_id": "c", "arguments": {"q": k}}}
            elif k % 3 == 1:
                part = {"kind": "tool_result", "tool": {"name": "search", "call_id": "c", "status": "ok",
                                                        "result_bytes": 800 + k}, "content": {"role": "tool", "text": "r"}}
            else:
                part = {"kind": "completion", "content": {"role": "assistant", "text": "ok"},
                        "model": {"name": "gpt-x", "endpoint": "api.example"},
                        "usage": {"input_tokens": 900 + k, "output_tokens": 90, "cost_usd": 0.002, "latency_ms": 700},
                        "labels": {"data_class": "internal"}}
            out.append(Event.model_validate({**base, **who, **part}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--sessions", type=int, default=20_000)
    ap.add_argument("--entities", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--memory-only", action="store_true", help="skip the throughput part")
    args = ap.parse_args()
    pinned = pin_one_core()
    print(f"# behavioural layer benchmark — Python {platform.python_version()}, {platform.machine()}, {pinned}\n")

    if not args.memory_only:
        throughput(args)
    memory(args)
    return 0


def throughput(args: argparse.Namespace) -> None:
    t = time.perf_counter()
    raw = list(synthetic_events(args.events, seed=7))
    events = [Event.model_validate(e) for e in raw]
    parse = len(events) / (time.perf_counter() - t)
    avg = sum(len(str(e.get("content", {}).get("text", ""))) + sum(len(d.get("text", "")) for d in
              e.get("retrieval", {}).get("documents", [])) for e in raw) / len(raw)
    print(f"{len(events)} synthetic events, {avg:.0f} characters of text per event on average\n")
    print("| stage (one core, replay) | events/s |")
    print("|---|---|")
    print(f"| (parse JSON dict → Event, not part of the stages) | {parse:,.0f} |")
    for name, stage in (("sessions (SessionTracker)", SessionTracker), ("baselines (BaselineStore, 15 specs)", BaselineStore),
                        ("drift (DriftTracker)", DriftTracker), ("all three (BehaviorPipeline)", BehaviorPipeline)):
        print(f"| {name} | {rate(stage, events, args.repeat):,.0f} |")


def memory(args: argparse.Namespace) -> None:
    print("\n| memory | tracemalloc per item | pickled per item |")
    print("|---|---|---|")
    sev = session_events(args.sessions)

    def open_sessions():
        tr = SessionTracker(SessionConfig(max_sessions=10 * args.sessions, session_ttl_s=1e9))
        for e in sev:
            tr.process(e)
        return tr

    size, tr = grown(open_sessions)
    n_open = len(tr.sessions)
    pick = sum(len(pickle.dumps(s)) for s in list(tr.sessions.values())[:2000]) / min(2000, n_open)
    print(f"| open session (5 events: prompt, retrieval, tool call + result, completion; {n_open} open) | "
          f"{size / n_open / 1024:.2f} KiB | {pick / 1024:.2f} KiB |")
    for kind in ("identity", "agent"):
        # agents carry a HalfSpaceTrees model, at most max_hst_models per app: measure within that cap
        count = args.entities if kind == "identity" else min(args.entities, BaselineConfig().max_hst_models)
        evs = entity_events(count, kind)

        def baselines():
            st = BaselineStore()
            for e in evs:
                st.process(e)
            return st

        size, store = grown(baselines)
        state = store.states["bench"]
        n = len(state.entities[kind])
        whole = len(pickle.dumps(state))
        label = ("identity (8 per-identity specs: rare data class and tool, counts, distinct tools, cost, hours)"
                 if kind == "identity" else
                 f"agent (rare tool/destination, tokens, HalfSpaceTrees {BaselineConfig().hst_trees} trees of height "
                 f"{BaselineConfig().hst_height}; {state.counters['hst_models:hst_by_agent']} models)")
        print(f"| {label}; {n} entities | {size / n / 1024:.2f} KiB | {whole / n / 1024:.2f} KiB |")
    print("\nPer-entity figures include that entity's share of app-level state (population counts, app models).")


if __name__ == "__main__":
    sys.exit(main())
