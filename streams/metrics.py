"""Prometheus counters of the worker: every event received is accounted for as valid or invalid,
every valid one as written or already stored, every failed write as an error (DESIGN §4 Accounting)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)

received = Counter("aiwatch_events_received", "messages consumed from the events topic", registry=REGISTRY)
valid = Counter("aiwatch_events_valid", "messages that are valid Event v1", registry=REGISTRY)
invalid = Counter("aiwatch_events_invalid", "messages refused and dead-lettered", ["reason"], registry=REGISTRY)
written = Counter("aiwatch_events_written", "events inserted into ClickHouse", registry=REGISTRY)
duplicates = Counter(
    "aiwatch_events_duplicate", "redelivered events already stored (not written twice)", registry=REGISTRY
)
dlq_published = Counter("aiwatch_dlq_published", "messages published to the dead-letter topic", registry=REGISTRY)
dlq_written = Counter("aiwatch_dlq_written", "dead-letter records inserted into ClickHouse", registry=REGISTRY)
write_errors = Counter("aiwatch_write_errors", "failed ClickHouse inserts (retried)", ["table"], registry=REGISTRY)
findings = Counter("aiwatch_findings", "findings stored", ["category", "mode", "severity"], registry=REGISTRY)
findings_written = Counter("aiwatch_findings_written", "findings inserted into ClickHouse", registry=REGISTRY)
redacted = Counter("aiwatch_redacted_values", "secret (and PII, if configured) values replaced before storage",
                   registry=REGISTRY)
redaction_errors = Counter("aiwatch_redaction_errors", "events whose redaction failed (stored without texts)",
                           registry=REGISTRY)
alerts = Counter("aiwatch_alerts", "OCSF alerts published to the SOC feed", ["category"], registry=REGISTRY)
alerts_throttled = Counter("aiwatch_alerts_throttled", "alert-mode findings held back by dedup/throttle "
                           "(stored, tagged throttled, counted in the next rollup)", registry=REGISTRY)
alert_rollups = Counter("aiwatch_alert_rollups", "rollup alerts sent for throttled windows", registry=REGISTRY)
suppressed = Counter(
    "aiwatch_findings_suppressed", "findings matched by an active exception (stored, not paged)", registry=REGISTRY
)
held_back = Counter(
    "aiwatch_findings_held_back", "content findings of apps in learn mode (counted, not stored)", registry=REGISTRY
)
detect_errors = Counter("aiwatch_detect_errors", "events whose detection raised (event still stored)", registry=REGISTRY)
behavior_restarts = Counter("aiwatch_behavior_restarts", "behavioural processes restarted after dying (state from "
                            "the last save, the events since replayed)", registry=REGISTRY)
behavior_skipped = Counter("aiwatch_behavior_skipped_events", "events the behavioural layer skips because its "
                           "process died on them twice (still stored and content-checked)", registry=REGISTRY)
baseline_rows = Counter("aiwatch_baseline_rows", "baseline snapshot rows written", registry=REGISTRY)
batch_seconds = Histogram(
    "aiwatch_batch_seconds", "time to process one batch", registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class StatsCollector:
    """Exposes a live ``stats()`` mapping (e.g. the behavioural layer's counters: open sessions,
    evictions, capacity limits reached) as one labelled gauge family, read at scrape time."""

    def __init__(self, name: str, doc: str, stats: Callable[[], Mapping[str, float]]) -> None:
        self._name, self._doc, self._stats = name, doc, stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, self._doc, labels=["stat"])
        for key, value in sorted(self._stats().items()):
            family.add_metric([key], float(value))
        yield family


def expose_stats(name: str, doc: str, stats: Callable[[], Mapping[str, float]]) -> None:
    REGISTRY.register(StatsCollector(name, doc, stats))


def render() -> bytes:
    return generate_latest(REGISTRY)


def snapshot() -> dict[str, float]:
    """Flat name → value view of the counters (``/health`` and the CLI print it)."""
    out: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") or metric.type == "gauge":
                label = ",".join(f"{k}={v}" for k, v in sample.labels.items())
                out[sample.name + (f"{{{label}}}" if label else "")] = sample.value
    return out
