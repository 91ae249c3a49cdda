"""Shadow AI from egress logs: provider hosts, the four log forms, events, robustness, publishing to Kafka."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from collectors.egress import (
    PROVIDERS, EgressOptions, EgressReport, UnknownFormat, build_registry, load_providers, read_egress, run_egress,
)
from collectors.encode import encode_event
from schemas.event import Event
from schemas.parse import parse_event
from schemas.settings import Settings
from tests.brokers import free_port
from tests.harness import consume_events, create_topic

FIXTURES = Path(__file__).parent / "fixtures" / "egress"
SQUID, NGINX = FIXTURES / "squid_access.log", FIXTURES / "nginx_egress.jsonl"
ZEEK_HTTP, ZEEK_SSL, ZEEK_JSON = FIXTURES / "zeek_http.log", FIXTURES / "zeek_ssl.log", FIXTURES / "zeek_mixed.json"


def read(source: Any, fmt: str = "auto", **options: Any) -> tuple[list[Event], EgressReport]:
    report = EgressReport()
    events = [parse_event(encode_event(e)[1]) for e in read_egress(source, fmt, options=EgressOptions(**options),
                                                                    report=report)]
    return events, report


def accounted(report: EgressReport) -> bool:
    """Every line is blank, a header, malformed, or a record (AI or not)."""
    return (report.lines == report.blank + report.headers + report.malformed + report.records
            and report.records == report.ai_calls + report.not_ai)


# -- providers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("host, provider, surface", [
    ("api.openai.com", "openai", "api"),
    ("API.OPENAI.COM:443", "openai", "api"),
    ("api.openai.com.", "openai", "api"),
    ("chatgpt.com", "openai", "app"),
    ("api.anthropic.com", "anthropic", "api"),
    ("claude.ai", "anthropic", "app"),
    ("generativelanguage.googleapis.com", "gcp.gemini", "api"),
    ("europe-west4-aiplatform.googleapis.com", "gcp.vertex_ai", "api"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai", "api"),
    ("contoso-prod.openai.azure.com", "azure.ai.openai", "api"),
    ("bedrock-runtime.us-east-1.amazonaws.com", "aws.bedrock", "api"),
    ("bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "aws.bedrock", "api"),
    ("bedrock-agent-runtime.eu-central-1.amazonaws.com", "aws.bedrock", "api"),
    ("api.mistral.ai", "mistral_ai", "api"),
    ("api.cohere.com", "cohere", "api"),
    ("api.groq.com", "groq", "api"),
    ("api.together.xyz", "together_ai", "api"),
    ("api.fireworks.ai", "fireworks_ai", "api"),
    ("api.perplexity.ai", "perplexity", "api"),
    ("api.deepseek.com", "deepseek", "api"),
    ("api.x.ai", "x_ai", "api"),
    ("openrouter.ai", "openrouter", "api"),
    ("router.huggingface.co", "huggingface", "api"),
    ("xyz123.us-east-1.aws.endpoints.huggingface.cloud", "huggingface", "api"),
    ("api.replicate.com", "replicate", "api"),
    ("[2001:db8::1]:443", None, None),
    ("example.com", None, None),
    ("api.openai.com.evil.example", None, None),
    ("notapi.openai.com", None, None),
    ("openai.azure.com.attacker.io", None, None),
    ("bedrock.us-east-1.amazonaws.com", None, None),   # control plane, not model invocation
    ("s3.amazonaws.com", None, None),
    ("", None, None),
])
def test_provider_hosts(host: str, provider: str | None, surface: str | None) -> None:
    match = build_registry().match(host)
    assert (match.provider.id if match else None, match.surface if match else None) == (provider, surface)


@pytest.mark.parametrize("host, path, model", [
    ("bedrock-runtime.us-east-1.amazonaws.com", "/model/meta.llama3-70b-instruct-v1%3A0/converse", "meta.llama3-70b-instruct-v1:0"),
    ("us-central1-aiplatform.googleapis.com",
     "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-flash:streamGenerateContent", "gemini-1.5-flash"),
    ("generativelanguage.googleapis.com", "/v1beta/models/gemini-2.0-flash:generateContent", "gemini-2.0-flash"),
    ("x.openai.azure.com", "/openai/deployments/gpt4o-eu/chat/completions", "gpt4o-eu"),
    ("router.huggingface.co", "/hf-inference/models/Qwen/Qwen2.5-7B/v1/chat/completions", "Qwen/Qwen2.5-7B"),
    ("api.openai.com", "/v1/chat/completions", None),
])
def test_model_from_url_path(host: str, path: str, model: str | None) -> None:
    assert build_registry().match(host).model_from_path(path) == model


def test_provider_ids_are_unique_and_extensible(tmp_path: Path) -> None:
    assert len({p.id for p in PROVIDERS}) == len(PROVIDERS)
    with pytest.raises(ValueError, match="defined twice"):
        build_registry(PROVIDERS + PROVIDERS[:1])
    extra = tmp_path / "providers.yml"
    extra.write_text("providers:\n"
                     "  - id: corp.llm_gateway\n    name: Corporate LLM gateway\n    api_hosts: [llm.corp.example]\n"
                     "  - id: openai\n    api_hosts: [api.openai.com, openai.egress.corp.example]\n")
    registry = build_registry(load_providers(extra))
    assert registry.match("llm.corp.example").provider.name == "Corporate LLM gateway"
    assert registry.match("openai.egress.corp.example").provider.id == "openai"
    bad = tmp_path / "bad.yml"
    bad.write_text("providers:\n  - id: x\n    api_patterns: ['(unclosed']\n")
    with pytest.raises(Exception, match="unterminated|missing"):
        load_providers(bad)
    bad.write_text("providers:\n  - id: x\n    api_host: [typo.example]\n")
    with pytest.raises(ValueError, match="unknown keys: api_host"):
        load_providers(bad)


# -- formats ----------------------------------------------------------------------------------------

def test_squid_native() -> None:
    events, report = read(SQUID)
    assert report.format == "squid" and accounted(report)
    assert (report.ai_calls, report.not_ai, report.malformed, report.blank) == (7, 2, 1, 1)
    assert report.malformed_examples == [(5, "squid: the first field is not an epoch timestamp")]
    first = events[0]
    assert first.kind == "prompt" and first.content is None
    assert first.ts == datetime.fromtimestamp(1717243200.123, timezone.utc)
    assert (first.model.provider, first.model.endpoint, first.actor.user_id, first.app) == \
        ("openai", "api.openai.com", "alice", "egress:alice")
    assert first.source.collector == "egress" and first.source.convention == "squid-native"
    assert first.labels["egress.method"] == "CONNECT" and first.labels["egress.unit"] == "connection"
    assert (first.labels["egress.status"], first.labels["egress.bytes"], first.labels["egress.squid_code"]) == \
        ("200", "48211", "TCP_TUNNEL")
    bedrock = events[1]
    assert bedrock.model.name == "anthropic.claude-3-5-sonnet-20240620-v1:0" and bedrock.actor.user_id == "10.1.2.31"
    assert bedrock.labels["egress.unit"] == "request" and bedrock.labels["egress.model_source"] == "url_path"
    assert events[2].model.endpoint == "api.anthropic.com"                       # host normalised
    assert events[3].labels["egress.surface"] == "app"                           # chatgpt.com in a browser
    assert events[4].labels["egress.status"] == "403"                            # denied attempts count too
    duplicate_ids = [e.event_id for e in events[5:]]
    assert len(set(duplicate_ids)) == 2 and duplicate_ids[1] == duplicate_ids[0] + "-1"


def test_nginx_json() -> None:
    events, report = read(NGINX)
    assert accounted(report) and (report.ai_calls, report.not_ai, report.malformed) == (4, 1, 2)
    gemini, azure, groq, mistral = events
    assert gemini.model.name == "gemini-1.5-pro" and gemini.labels["egress.duration_ms"] == "1532"
    assert gemini.labels["egress.path"] == "/v1beta/models/gemini-1.5-pro:generateContent"
    assert gemini.labels["egress.user_agent"].startswith("google-genai-sdk")
    assert (azure.model.provider, azure.model.name, azure.actor.user_id, azure.labels["egress.status"]) == \
        ("azure.ai.openai", "gpt-4o-prod", "dave", "429")
    assert groq.model.endpoint == "api.groq.com"            # upstream host behind an internal gateway name
    assert groq.ts == datetime.fromtimestamp(1717243203.5, timezone.utc)
    assert mistral.labels["egress.unit"] == "connection" and mistral.labels["egress.bytes"] == "7000"


def test_secrets_in_query_strings_never_leave() -> None:
    events, _ = read(NGINX)
    blob = b"".join(encode_event(e.model_dump(by_alias=True, exclude_none=True))[1] for e in events)
    assert b"AIzaSy" not in blob and b"key=" not in blob and b"api-version" not in blob


def test_zeek_tsv_http_and_ssl() -> None:
    events, report = read(ZEEK_HTTP)
    assert report.format == "zeek" and accounted(report) and report.headers == 9
    assert (report.ai_calls, report.not_ai, report.malformed) == (2, 1, 1)
    hf, rep = events
    assert (hf.model.provider, hf.model.name, hf.labels["egress.zeek_uid"]) == \
        ("huggingface", "meta-llama/Llama-3.1-8B-Instruct", "CHhAvVGS1DHFjwGM9")
    assert rep.actor.user_id == "erin" and rep.labels["egress.user_agent"] == "replicate-python/0.34\ttab"
    events, report = read(ZEEK_SSL)
    assert accounted(report) and (report.ai_calls, report.not_ai, report.malformed) == (2, 2, 0)
    assert [e.model.provider for e in events] == ["openai", "gcp.vertex_ai"]
    assert events[0].labels["egress.unit"] == "connection" and events[0].labels["egress.tls_version"] == "TLSv13"
    assert events[0].labels["egress.established"] == "true" and events[0].source.convention == "zeek-ssl"


def test_zeek_json_mixed_http_and_ssl() -> None:
    events, report = read(ZEEK_JSON)
    assert accounted(report) and (report.ai_calls, report.not_ai, report.malformed) == (2, 1, 1)
    xai, openrouter = events
    assert xai.source.convention == "zeek-ssl" and xai.model.provider == "x_ai"
    assert openrouter.source.convention == "zeek-http" and openrouter.ts.isoformat().startswith("2024-06-01T12:03:21.5")


@pytest.mark.parametrize("path, fmt", [(SQUID, "squid"), (NGINX, "nginx"), (ZEEK_HTTP, "zeek"), (ZEEK_JSON, "zeek")])
def test_explicit_format_equals_detection(path: Path, fmt: str) -> None:
    assert read(path, fmt)[0] == read(path)[0]


def test_nginx_time_local_with_offset() -> None:
    line = orjson.dumps({"time_local": "01/Jun/2024:14:00:02 +0200", "remote_addr": "10.0.0.1",
                         "request": "POST /v1/messages HTTP/1.1", "host": "api.anthropic.com"}).decode()
    (event,), _ = read([line])
    assert event.ts == datetime(2024, 6, 1, 12, 0, 2, tzinfo=timezone.utc)


def test_wrong_format_is_counted_not_fatal_and_unknown_is_refused() -> None:
    events, report = read(NGINX, "squid")
    assert events == [] and report.malformed == report.lines and accounted(report)
    with pytest.raises(UnknownFormat, match="give --format"):
        list(read_egress(["hello world", "nothing to see"]))
    with pytest.raises(ValueError, match="unknown egress log format"):
        list(read_egress(SQUID, "apache"))


def test_garbage_never_crashes() -> None:
    rng = random.Random(5)
    good = SQUID.read_bytes().splitlines()
    lines = []
    for i in range(2_000):
        if i % 3 == 0:
            lines.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 120))).replace(b"\n", b"").replace(b"\r", b""))
        else:
            line = bytearray(rng.choice(good))
            if line and i % 2:
                line[rng.randrange(len(line))] = rng.choice([b for b in range(256) if b not in b"\r\n"])
            lines.append(bytes(line))
    events, report = read(io.BytesIO(b"\n".join(lines)), "squid")
    assert accounted(report) and report.lines == len(lines) and report.ai_calls == len(events) > 0
    # and the JSON side
    events, report = read(["{", "[]", "null", '{"host": 5}', '{"host": "api.x.ai", "msec": "nan"}',
                           '{"host": "api.x.ai", "msec": 1e300}', '{"request": 7, "host": "api.x.ai"}'], "nginx")
    assert accounted(report) and report.ai_calls == len(events)


def test_same_log_same_event_ids() -> None:
    first, _ = read(SQUID)
    again, _ = read(SQUID.read_text().splitlines(keepends=True))
    assert [e.event_id for e in first] == [e.event_id for e in again]


def test_attribution_options() -> None:
    events, _ = read(SQUID, app="shadow-ai/{provider}", env="prod", tenant="acme", labels={"site": "hq"})
    assert events[0].app == "shadow-ai/openai" and events[0].env == "prod" and events[0].tenant == "acme"
    assert events[0].labels["site"] == "hq"
    events, _ = read(SQUID, app="{nonsense}")
    assert events[0].app == "egress:alice"
    events, report = read(SQUID, include_apps=False)
    assert "chatgpt.com" not in {e.model.endpoint for e in events} and report.not_ai == 3


def test_stdin_stream(tmp_path: Path) -> None:
    events, _ = read(io.BytesIO(SQUID.read_bytes()))
    assert len(events) == 7


# -- publishing -------------------------------------------------------------------------------------

@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_run_egress_publishes_to_kafka(tmp_path: Path, kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = create_topic(kafka_bootstrap, f"{topic_prefix}.events", partitions=2)
    settings = Settings(home=tmp_path / "home", kafka_bootstrap_servers=kafka_bootstrap, topic_events=topic)
    report = run_egress(SQUID, settings, progress=False, flush_timeout=20)
    assert report.ai_calls == 7 and report.published["sent"] == 7 and report.published["dropped"] == 0
    again = run_egress(SQUID, settings, progress=False, flush_timeout=20)   # a re-read: same ids
    assert again.published["sent"] == 7
    events = consume_events(kafka_bootstrap, topic, expected=14, settle=0.3, poll_ms=300)  # then one quiet poll
    assert len(events) == 14 and len({e.event_id for e in events}) == 7
    assert {e.model.provider for e in events} == {"openai", "aws.bedrock", "anthropic", "deepseek"}
    assert all(e.kind == "prompt" and e.source.collector == "egress" for e in events)


@pytest.mark.timeout(120)
def test_cli_reads_stdin_and_spools_while_kafka_is_down(tmp_path: Path) -> None:
    env = {**os.environ, "AIWATCH_HOME": str(tmp_path / "home"),
           "AIWATCH_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    proc = subprocess.run([sys.executable, "-m", "collectors.egress", "-", "--quiet", "--flush-timeout", "3"],
                          input=NGINX.read_bytes(), capture_output=True, env=env, timeout=90)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert "4 AI call(s)" in err and "2 malformed" in err and "0 sent, 4 spooled, 0 dropped" in err
    assert any((tmp_path / "home" / "spool").rglob("*.seg"))
    proc = subprocess.run([sys.executable, "-m", "collectors.egress", str(tmp_path / "missing.log")],
                          capture_output=True, env=env, timeout=60)
    assert proc.returncode == 2 and b"cannot read" in proc.stderr
