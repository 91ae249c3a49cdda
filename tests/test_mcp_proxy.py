"""The MCP stdio proxy with the real MCP SDK (server and client) and a real Kafka broker.

What must hold: a client sees exactly what it sees without the proxy; the bytes pass unchanged;
tool calls, results and tool-definition changes (rug pulls) arrive in Kafka as valid Event v1;
a broker that is down changes nothing for the client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from collectors.mcp.proxy import ProxyOptions, run_proxy
from schemas.settings import Settings
from tests.brokers import free_port
from tests.harness import consume_events, create_topic

pytestmark = pytest.mark.timeout(120)

SERVER = Path(__file__).parent / "fixtures" / "mcp" / "server.py"
PY = sys.executable


# -- helpers ----------------------------------------------------------------------------------

# every event of a topic, parsed by the worker's parser; waits for ``expected``, then 0.5 s more
consume = partial(consume_events, settle=0.5)


def proxy_env(home: Path, bootstrap: str, topic: str, **extra: str) -> dict[str, str]:
    return {"AIWATCH_HOME": str(home), "AIWATCH_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "AIWATCH_TOPIC_EVENTS": topic,
            **extra}


def server_params(*, proxied: bool, env: dict[str, str] | None = None, name: str = "fixture") -> StdioServerParameters:
    if proxied:
        return StdioServerParameters(command=PY, args=["-m", "collectors.mcp", "--name", name, "--", PY, str(SERVER)],
                                     env=env)
    return StdioServerParameters(command=PY, args=[str(SERVER)], env=env)


def session(params: StdioServerParameters, errlog: Any) -> list[Any]:
    """A client session with the SDK's stdio client; returns what the client saw, in a comparable form."""

    async def run() -> list[Any]:
        seen: list[Any] = []
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as client:
                init = await client.initialize()
                seen.append(("initialize", init.protocol_version, init.server_info.name,
                             init.capabilities.model_dump()))
                seen.append(("tools", (await client.list_tools()).model_dump()))
                for name, args in [("add", {"a": 2, "b": 40}), ("echo", {"text": "héllo\nwörld ✓"}),
                                   ("fail", {"reason": "not allowed"}), ("lookup", {"customer_id": "c-7"}),
                                   ("no_such_tool", {})]:
                    try:
                        seen.append((name, (await client.call_tool(name, args)).model_dump()))
                    except Exception as exc:  # noqa: BLE001 - an error is an outcome to compare too
                        seen.append((name, type(exc).__name__, str(exc)))
        return seen

    return anyio.run(run)


@pytest.fixture
def errlog(tmp_path: Path) -> Any:
    with open(tmp_path / "stderr.log", "w+") as handle:
        yield handle


# -- transparency ---------------------------------------------------------------------------------

def test_bytes_pass_unchanged_both_ways(tmp_path: Path) -> None:
    """Whatever the client writes reaches the server unchanged and vice versa: invalid UTF-8, no final
    newline, a 2 MB line, chunks split anywhere; the events never alter it."""
    payload = (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{}}}\n'
               b"\xff\xfe not json at all\r\n"
               + b'{"big":"' + b"x" * 2_000_000 + b'"}\n'
               + b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n  \n'
               + b"trailing without newline")
    # the "server" echoes its stdin to stdout in odd-sized chunks, then exits with code 3
    echo = ("import os,sys\n"
            "while True:\n"
            "    d = os.read(0, 777)\n"
            "    if not d: break\n"
            "    os.write(1, d)\n"
            "sys.exit(3)\n")
    c_read, c_write = os.pipe()      # client -> proxy stdin
    p_read, p_write = os.pipe()      # proxy stdout -> client
    events: list[dict[str, Any]] = []
    result: list[int] = []
    settings = Settings(home=tmp_path / "home")
    opts = ProxyOptions(name="echo", quiet=True)
    thread = threading.Thread(target=lambda: result.append(run_proxy(
        [PY, "-c", echo], settings, options=opts, sink=events.append, stdin=c_read, stdout=p_write)))
    thread.start()
    received = bytearray()
    reader = threading.Thread(target=lambda: _read_all(p_read, received))
    reader.start()
    for i in range(0, len(payload), 4093):
        os.write(c_write, payload[i:i + 4093])
    os.close(c_write)
    thread.join(30)
    reader.join(30)
    for fd in (c_read, p_write):
        os.close(fd)
    os.close(p_read)
    assert bytes(received) == payload
    assert result == [3]
    # the echoed request shows up as a tool call, its echo (same id) as the server's answer
    kinds = [e["kind"] for e in events]
    assert kinds == ["tool_call", "tool_result"]


def _read_all(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        into.extend(chunk)


def test_exit_codes_are_the_servers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        quiet = ProxyOptions(quiet=True, inventory=False)
        assert run_proxy([PY, "-c", "import sys; sys.exit(7)"], settings, options=quiet, sink=lambda e: True,
                         stdin=devnull, stdout=devnull) == 7
        assert run_proxy([PY, "-c", "import os,signal; os.kill(os.getpid(), signal.SIGTERM)"], settings,
                         options=quiet, sink=lambda e: True, stdin=devnull, stdout=devnull) == 128 + 15
        assert run_proxy([str(tmp_path / "no-such-server")], settings, options=quiet, sink=lambda e: True,
                         stdin=devnull, stdout=devnull) == 127
    finally:
        os.close(devnull)


@pytest.mark.kafka
def test_sdk_client_sees_the_same_and_events_arrive_in_kafka(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str,
                                                            errlog: Any) -> None:
    topic = create_topic(kafka_bootstrap, f"{topic_prefix}.events")
    direct = session(server_params(proxied=False), errlog)
    proxied = session(server_params(proxied=True, env=proxy_env(tmp_path / "home", kafka_bootstrap, topic)), errlog)
    assert proxied == direct
    assert direct[2][1]["structured_content"] == {"result": 42} and direct[4][1]["is_error"] is True

    # 5 calls + 5 results + the tools/list inventory event
    events = consume(kafka_bootstrap, topic, expected=11)
    assert sorted(e.kind for e in events) == ["tool_call"] * 5 + ["tool_result"] * 6
    assert len({e.session_id for e in events}) == 1 and len({e.event_id for e in events}) == 11
    calls = {e.tool.name: e for e in events if e.kind == "tool_call"}
    results = {e.tool.name: e for e in events if e.kind == "tool_result"}
    assert calls["add"].tool.arguments == {"a": 2, "b": 40}
    assert calls["echo"].tool.arguments == {"text": "héllo\nwörld ✓"}
    for name in calls:
        assert results[name].tool.call_id == calls[name].tool.call_id
    assert results["add"].tool.status == "ok" and results["add"].content.text == "42"
    assert results["echo"].content.text == "héllo\nwörld ✓" and results["echo"].tool.result_bytes > 0
    assert results["fail"].tool.status == "error" and results["fail"].labels["mcp.outcome"] == "tool_error"
    assert results["no_such_tool"].tool.status == "error"
    listing = results["tools/list"]
    assert listing.labels["mcp.inventory"] == "baseline" and listing.labels["mcp.tools.count"] == "4"
    assert "description: Add two numbers." in listing.content.text
    first = events[0]
    assert first.app == "mcp:fixture" and first.source.collector == "mcp" and first.agent == "mcp"
    assert first.labels["mcp.server"] == "fixture" and first.labels["mcp.server_info"].startswith("aiwatch-fixture")
    assert first.source.convention.startswith("mcp-20")
    assert (tmp_path / "home" / "mcp-inventory.json").exists()


@pytest.mark.kafka
def test_rug_pull_between_sessions_is_reported(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str,
                                               errlog: Any) -> None:
    topic = create_topic(kafka_bootstrap, f"{topic_prefix}.events")
    home = tmp_path / "home"
    honest = session(server_params(proxied=True, env=proxy_env(home, kafka_bootstrap, topic)), errlog)
    pulled = session(server_params(proxied=True, env=proxy_env(home, kafka_bootstrap, topic,
                                                                AIWATCH_FIXTURE_RUGPULL="1")), errlog)
    assert honest[1] != pulled[1]  # the client really saw another definition

    events = consume(kafka_bootstrap, topic, expected=11 + 12)
    changes = [e for e in events if e.labels.get("mcp.tool_definition_changed") == "true"]
    assert len(changes) == 1
    change = changes[0]
    assert change.kind == "tool_result" and change.tool.name == "lookup"
    assert change.labels["mcp.definition.changed_fields"] == "description,inputSchema"
    assert "~/.ssh/id_rsa" in change.labels["mcp.definition.diff"]
    assert "inputSchema.properties.note: added" in change.labels["mcp.definition.diff"]
    assert "<IMPORTANT>" in change.content.text
    sessions = {e.session_id for e in events}
    assert len(sessions) == 2 and change.labels["mcp.definition.previous_session"] in sessions - {change.session_id}
    summaries = [e.labels["mcp.inventory"] for e in events if e.tool and e.tool.name == "tools/list"]
    assert sorted(summaries) == ["baseline", "changed"]


@pytest.mark.kafka
def test_kafka_down_changes_nothing_for_the_client(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str,
                                                   errlog: Any) -> None:
    """With the broker unreachable the session is the same and ends promptly; events wait in the spool."""
    direct = session(server_params(proxied=False), errlog)
    env = proxy_env(tmp_path / "home", f"127.0.0.1:{free_port()}", f"{topic_prefix}.events")
    started = time.monotonic()
    assert session(server_params(proxied=True, env=env), errlog) == direct
    assert time.monotonic() - started < 15
    errlog.seek(0)
    assert "0 sent, 11 spooled, 0 dropped" in errlog.read()
    assert any((tmp_path / "home" / "spool").rglob("*.seg"))


def test_cli_needs_a_command() -> None:
    proc = subprocess.run([PY, "-m", "collectors.mcp", "--name", "x"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "give the server command after '--'" in proc.stderr
