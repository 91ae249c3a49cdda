"""Hosts of AI providers, for spotting AI use in egress logs ("shadow AI").

One :class:`Provider` per service: an id (the OpenTelemetry ``gen_ai.provider.name`` value where
one exists, so egress events line up with instrumented ones), the hosts it answers on — exact
names, domain suffixes, or a regular expression for region-templated names — whether a host is
an **api** (programmatic use: SDKs, agents, scripts) or an **app** (a person in a browser or
desktop client), and optionally how to read the model from a URL path (Bedrock, Vertex, Gemini,
Azure deployments, Hugging Face, Replicate carry it there; OpenAI-style APIs carry it in the body,
which a proxy log does not show).

Maintaining the list: add a ``Provider`` below (hosts lower-case, no port; suffixes start with a
dot) and a line to ``tests/test_egress.py``'s host table. Sites add their own — an internal LLM
gateway, a new vendor — without a code change through ``--providers FILE`` (YAML or JSON, see
:func:`load_providers`). Ids must be unique; :func:`build_registry` refuses duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Provider:
    id: str                                         # e.g. "openai", "aws.bedrock" (OTel gen_ai.provider.name)
    name: str                                       # display name
    api_hosts: tuple[str, ...] = ()                 # exact host names of the programmatic API
    app_hosts: tuple[str, ...] = ()                 # exact host names of the consumer/chat apps
    api_suffixes: tuple[str, ...] = ()              # ".openai.azure.com": any host under it is the API
    api_patterns: tuple[str, ...] = ()              # full-match regexes for region-templated hosts
    model_paths: tuple[str, ...] = ()               # regexes over the URL path with a group "model"


@dataclass(frozen=True)
class Match:
    provider: Provider
    host: str
    surface: str                                    # "api" or "app"
    model_paths: tuple[re.Pattern[str], ...] = ()

    def model_from_path(self, path: str | None) -> str | None:
        """The model (or deployment) a URL path names, if this provider puts it there."""
        if not path:
            return None
        for pattern in self.model_paths:
            found = pattern.search(path)
            if found:
                return unquote(found.group("model"))[:256] or None
        return None


PROVIDERS: tuple[Provider, ...] = (
    Provider("openai", "OpenAI", api_hosts=("api.openai.com",),
             app_hosts=("chatgpt.com", "chat.openai.com", "ab.chatgpt.com", "sora.chatgpt.com")),
    Provider("anthropic", "Anthropic", api_hosts=("api.anthropic.com",), app_hosts=("claude.ai",)),
    Provider("gcp.gemini", "Google Gemini API", api_hosts=("generativelanguage.googleapis.com",),
             app_hosts=("gemini.google.com", "aistudio.google.com", "notebooklm.google.com"),
             model_paths=(r"/models/(?P<model>[^/:]+)(?::|/|$)",)),
    Provider("gcp.vertex_ai", "Google Vertex AI", api_hosts=("aiplatform.googleapis.com",),
             api_patterns=(r"[a-z0-9-]+-aiplatform\.googleapis\.com",),
             model_paths=(r"/publishers/[^/]+/models/(?P<model>[^/:]+)", r"/endpoints/(?P<model>[^/:]+)")),
    Provider("azure.ai.openai", "Azure OpenAI", api_suffixes=(".openai.azure.com",),
             model_paths=(r"/openai/deployments/(?P<model>[^/]+)",)),
    Provider("azure.ai.inference", "Azure AI Foundry / GitHub Models",
             api_hosts=("models.inference.ai.azure.com", "models.github.ai"),
             api_suffixes=(".services.ai.azure.com", ".inference.ai.azure.com", ".models.ai.azure.com"),
             model_paths=(r"/openai/deployments/(?P<model>[^/]+)",)),
    Provider("aws.bedrock", "AWS Bedrock",
             api_patterns=(r"bedrock-(?:agent-)?runtime(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?",),
             model_paths=(r"/model/(?P<model>[^/]+)/(?:invoke|converse)",)),
    Provider("mistral_ai", "Mistral AI", api_hosts=("api.mistral.ai", "codestral.mistral.ai"),
             app_hosts=("chat.mistral.ai",)),
    Provider("cohere", "Cohere", api_hosts=("api.cohere.com", "api.cohere.ai"), app_hosts=("coral.cohere.com",)),
    Provider("groq", "Groq", api_hosts=("api.groq.com",)),
    Provider("together_ai", "Together AI", api_hosts=("api.together.xyz", "api.together.ai")),
    Provider("fireworks_ai", "Fireworks AI", api_hosts=("api.fireworks.ai",)),
    Provider("perplexity", "Perplexity", api_hosts=("api.perplexity.ai",),
             app_hosts=("perplexity.ai", "www.perplexity.ai")),
    Provider("deepseek", "DeepSeek", api_hosts=("api.deepseek.com",), app_hosts=("chat.deepseek.com",)),
    Provider("x_ai", "xAI", api_hosts=("api.x.ai",), app_hosts=("grok.com",)),
    Provider("openrouter", "OpenRouter", api_hosts=("openrouter.ai",)),
    Provider("huggingface", "Hugging Face Inference",
             api_hosts=("api-inference.huggingface.co", "router.huggingface.co"),
             api_suffixes=(".endpoints.huggingface.cloud",),
             model_paths=(r"/models/(?P<model>[^/]+/[^/]+)",)),
    Provider("replicate", "Replicate", api_hosts=("api.replicate.com",),
             model_paths=(r"/v1/(?:models|deployments)/(?P<model>[^/]+/[^/]+)/predictions",)),
    Provider("ai21", "AI21 Labs", api_hosts=("api.ai21.com",)),
    Provider("cerebras", "Cerebras", api_hosts=("api.cerebras.ai",)),
    Provider("sambanova", "SambaNova", api_hosts=("api.sambanova.ai",)),
    Provider("nvidia_nim", "NVIDIA NIM", api_hosts=("integrate.api.nvidia.com",)),
    Provider("ibm.watsonx.ai", "IBM watsonx.ai", api_patterns=(r"[a-z]{2}-[a-z]+\.ml\.cloud\.ibm\.com",)),
    Provider("alibaba.dashscope", "Alibaba Cloud Model Studio (Qwen)",
             api_hosts=("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com"), app_hosts=("chat.qwen.ai",)),
    Provider("moonshot", "Moonshot AI (Kimi)", api_hosts=("api.moonshot.ai", "api.moonshot.cn"),
             app_hosts=("kimi.com", "www.kimi.com")),
    Provider("zhipu", "Zhipu AI (GLM)", api_hosts=("open.bigmodel.cn", "api.z.ai"), app_hosts=("chat.z.ai",)),
    Provider("voyage_ai", "Voyage AI", api_hosts=("api.voyageai.com",)),
    Provider("jina_ai", "Jina AI", api_hosts=("api.jina.ai",)),
    Provider("github_copilot", "GitHub Copilot",
             api_hosts=("api.githubcopilot.com", "copilot-proxy.githubusercontent.com"),
             api_suffixes=(".githubcopilot.com",)),
    Provider("microsoft_copilot", "Microsoft Copilot", app_hosts=("copilot.microsoft.com",)),
    Provider("meta_ai", "Meta AI", app_hosts=("meta.ai", "www.meta.ai")),
    Provider("poe", "Poe", app_hosts=("poe.com",)),
)


@dataclass
class Registry:
    """Host → provider lookup: exact names first, then suffixes (label by label), then patterns."""

    providers: tuple[Provider, ...]
    _exact: dict[str, tuple[Provider, str]] = field(default_factory=dict)
    _suffix: dict[str, Provider] = field(default_factory=dict)
    _patterns: list[tuple[re.Pattern[str], Provider]] = field(default_factory=list)
    _paths: dict[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)

    def match(self, host: str | None) -> Match | None:
        host = normalize_host(host)
        if not host:
            return None
        hit = self._exact.get(host)
        if hit is not None:
            return self._match(hit[0], host, hit[1])
        dot = host.find(".")
        while dot >= 0:
            provider = self._suffix.get(host[dot:])
            if provider is not None:
                return self._match(provider, host, "api")
            dot = host.find(".", dot + 1)
        for pattern, provider in self._patterns:
            if pattern.fullmatch(host):
                return self._match(provider, host, "api")
        return None

    def _match(self, provider: Provider, host: str, surface: str) -> Match:
        return Match(provider, host, surface, self._paths.get(provider.id, ()))


def build_registry(providers: Iterable[Provider] = PROVIDERS) -> Registry:
    providers = tuple(providers)
    registry = Registry(providers)
    seen: set[str] = set()
    for provider in providers:
        if provider.id in seen:
            raise ValueError(f"provider id {provider.id!r} is defined twice")
        seen.add(provider.id)
        for host in provider.api_hosts:
            registry._exact[host.lower()] = (provider, "api")
        for host in provider.app_hosts:
            registry._exact[host.lower()] = (provider, "app")
        for suffix in provider.api_suffixes:
            registry._suffix["." + suffix.lower().lstrip(".")] = provider
        for pattern in provider.api_patterns:
            registry._patterns.append((re.compile(pattern, re.IGNORECASE), provider))
        registry._paths[provider.id] = tuple(re.compile(p) for p in provider.model_paths)
    return registry


def load_providers(path: str | Path, base: Iterable[Provider] = PROVIDERS) -> tuple[Provider, ...]:
    """The built-in providers plus (or, for an existing id, replaced by) those in a YAML/JSON file::

        providers:
          - id: corp.llm_gateway
            name: Corporate LLM gateway
            api_hosts: [llm.corp.example]
          - id: openai               # extends/replaces the built-in entry
            api_hosts: [api.openai.com, openai.proxy.corp.example]
    """
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    items = data.get("providers") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list under 'providers'")
    by_id = {p.id: p for p in base}
    fields = {f for f in Provider.__dataclass_fields__ if f not in ("id", "name")}
    for n, item in enumerate(items, 1):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise ValueError(f"{path}: provider #{n} needs an 'id'")
        unknown = set(item) - fields - {"id", "name"}
        if unknown:
            raise ValueError(f"{path}: provider {item['id']!r} has unknown keys: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {k: tuple(str(v) for v in _as_list(item[k])) for k in fields if k in item}
        for pattern in values.get("api_patterns", ()) + values.get("model_paths", ()):
            re.compile(pattern)  # fail at load time, naming the file, not per log line
        by_id[item["id"]] = Provider(id=item["id"], name=str(item.get("name") or item["id"]), **values)
    return tuple(by_id.values())


def normalize_host(host: str | None) -> str:
    """``API.OpenAI.com:443.`` → ``api.openai.com``; IPv6 brackets and credentials removed."""
    if not host:
        return ""
    host = host.strip().lower()
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]

