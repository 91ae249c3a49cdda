"""Latency the MCP proxy adds per tool call (target: ≤ 1 ms per call).

The same ``--calls`` tool calls (``echo`` of ~``--size`` bytes, and ``add``) against the fixture
server (tests/fixtures/mcp/server.py, built with the official MCP SDK), each timed on the client
with ``perf_counter_ns``:

- ``sdk``: the MCP SDK's own client (``stdio_client`` + ``ClientSession.call_tool``) — what an agent sees;
- ``raw``: a minimal JSON-RPC client on the pipes (write a line, read a line) — the SDK's own
  per-call cost removed, so the proxy's share is measured more precisely.

Each is run directly against the server and through ``python -m collectors.mcp`` (publishing every
call and result to Kafka), alternating for ``--rounds`` rounds so machine noise hits both alike.
Kafka: ``--bootstrap`` / KAFKA_BOOTSTRAP_SERVERS, else a local broker is started for the run
(``--no-kafka`` points the proxy at a closed port instead: every event goes to the disk spool).

    python bench/mcp_proxy.py
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 python bench/mcp_proxy.py --calls 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.brokers import free_port, kafka_broker  # noqa: E402
from tests.harness import create_topic  # noqa: E402

SERVER = REPO / "tests" / "fixtures" / "mcp" / "server.py"
PY = sys.executable
PARTITIONS = 3


def server_command(proxied: bool) -> list[str]:
    direct = [PY, str(SERVER)]
    return [PY, "-m", "collectors.mcp", "--name", "bench", "--", *direct] if proxied else direct


def calls(count: int, size: int) -> list[tuple[str, dict]]:
    text = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]
    return [("echo", {"text": text}) if i % 2 == 0 else ("add", {"a": i, "b": 1}) for i in range(count)]


# -- scenarios ------------------------------------------------------------------------------------

def run_sdk(command: list[str], env: dict[str, str], work: list[tuple[str, dict]], warmup: int) -> array:
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    samples = array("q")

    async def go() -> None:
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(REPO))
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write):
                async with ClientSession(read, write) as client:
                    await client.initialize()
                    await client.list_tools()
                    for name, args in work[:warmup]:
                        await client.call_tool(name, args)
                    clock = time.perf_counter_ns
                    for name, args in work:
                        t0 = clock()
                        result = await client.call_tool(name, args)
                        samples.append(clock() - t0)
                        if result.is_error:
                            raise RuntimeError(f"tool {name} failed: {result}")

    anyio.run(go)
    return samples


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (Linux /proc), to charge the proxy's own work per call."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_raw(command: list[str], env: dict[str, str], work: list[tuple[str, dict]], warmup: int,
            cpu: list[float] | None = None) -> array:
    """``cpu`` (when given) receives the CPU seconds the first process (the proxy, when proxied) spent
    during the timed calls."""
    samples = array("q")
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env={**os.environ, **env}, cwd=str(REPO))
    out, into = proc.stdout, proc.stdin
    rid = 0

    def request(method: str, params: dict | None = None) -> dict:
        nonlocal rid
        rid += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, **({"params": params} if params else {})}
        into.write(json.dumps(msg).encode() + b"\n")  # type: ignore[union-attr]
        into.flush()  # type: ignore[union-attr]
        while True:
            reply = json.loads(out.readline())  # type: ignore[union-attr]
            if reply.get("id") == rid:
                return reply

    try:
        request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                               "clientInfo": {"name": "bench", "version": "1"}})
        into.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')  # type: ignore[union-attr]
        request("tools/list")
        for name, args in work[:warmup]:
            request("tools/call", {"name": name, "arguments": args})
        clock = time.perf_counter_ns
        cpu_before = cpu_seconds(proc.pid)
        for name, args in work:
            t0 = clock()
            reply = request("tools/call", {"name": name, "arguments": args})
            samples.append(clock() - t0)
            if "error" in reply or reply["result"].get("isError"):
                raise RuntimeError(f"tool {name} failed: {reply}")
        if cpu is not None:
            cpu.append(cpu_seconds(proc.pid) - cpu_before)
    finally:
        into.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return samples


# -- kafka ----------------------------------------------------------------------------------------

def count_events(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def count() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            ends = await consumer.end_offsets(parts)
            return sum(ends.values())
        finally:
            await consumer.stop()

    return asyncio.run(count())


# -- report ---------------------------------------------------------------------------------------

def stats_us(samples: array) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)
    return {"median": statistics.median(ordered) / 1000, "mean": statistics.fmean(ordered) / 1000,
            "p90": ordered[int(0.90 * (n - 1))] / 1000, "p99": ordered[int(0.99 * (n - 1))] / 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating direct/proxied runs per client (default 2)")
    parser.add_argument("--size", type=int, default=1024, help="bytes of text in each echo call (default 1024)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--no-kafka", action="store_true", help="proxy publishes to a closed port (spool only)")
    args = parser.parse_args()

    given = f"127.0.0.1:{free_port()}" if args.no_kafka else args.bootstrap  # --no-kafka: a closed port
    with tempfile.TemporaryDirectory(prefix="aiwatch-bench-mcp-") as tmp, \
            kafka_broker(Path(tmp) / "kafka", given) as bootstrap:
        topic = f"bench.{uuid.uuid4().hex[:8]}.events"
        if not args.no_kafka:
            create_topic(bootstrap, topic, PARTITIONS)
        env = {"AIWATCH_HOME": str(Path(tmp) / "home"), "AIWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "AIWATCH_TOPIC_EVENTS": topic, "PATH": os.environ.get("PATH", "")}
        work = calls(args.calls, args.size)
        results: dict[tuple[str, str], array] = {}
        proxy_cpu: list[float] = []
        for client, runner in (("sdk", run_sdk), ("raw", run_raw)):
            for r in range(args.rounds):
                for proxied in ((False, True) if r % 2 == 0 else (True, False)):
                    mode = "proxy" if proxied else "direct"
                    print(f"  {client} {mode} round {r + 1}/{args.rounds} ...", file=sys.stderr)
                    extra = {"cpu": proxy_cpu} if client == "raw" and proxied else {}
                    samples = runner(server_command(proxied), env, work, args.warmup, **extra)
                    results.setdefault((client, mode), array("q")).extend(samples)
        published = None if args.no_kafka else count_events(bootstrap, topic)

    proxied_runs = 2 * args.rounds
    expected = proxied_runs * (2 * (args.calls + args.warmup) + 1)
    print(f"\nMCP proxy overhead: {args.calls} tool calls per run x {args.rounds} rounds, echo of {args.size} B / add, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"Kafka {'down (spool)' if args.no_kafka else 'up'}\n")
    header = f"{'client':<6} {'path':<7} {'median µs':>10} {'mean µs':>9} {'p90 µs':>9} {'p99 µs':>9}"
    print(header + f" {'added median µs':>16} {'added mean µs':>14}")
    print("-" * (len(header) + 32))
    for client in ("sdk", "raw"):
        base = stats_us(results[(client, "direct")])
        for mode in ("direct", "proxy"):
            s = stats_us(results[(client, mode)])
            extra = "" if mode == "direct" else f" {s['median'] - base['median']:>16.0f} {s['mean'] - base['mean']:>14.0f}"
            print(f"{client:<6} {mode:<7} {s['median']:>10.0f} {s['mean']:>9.0f} {s['p90']:>9.0f} {s['p99']:>9.0f}{extra}")
    if proxy_cpu:
        per_call = sum(proxy_cpu) / (len(proxy_cpu) * args.calls) * 1e6
        print(f"\nproxy process CPU (forwarding + analysis + publishing, raw runs): {per_call:.0f} µs per call")
    print(f"machine load average during the run: {os.getloadavg()[0]:.2f} (1 min)")
    if published is not None:
        print(f"\nevents in Kafka: {published} (expected {expected}: a call and a result per tool call, "
              f"one tools/list event per proxied run)")
    print("target: ≤ 1000 µs added per call")


if __name__ == "__main__":
    main()
