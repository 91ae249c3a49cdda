"""All configuration of aiwatch in one typed object, overridable from the environment.

Every field reads ``AIWATCH_<FIELD>``; the two connection settings also read the conventional
``KAFKA_BOOTSTRAP_SERVERS`` and ``CLICKHOUSE_DSN``. Defaults are the embedded setup: a local broker
started by ``infra/kafka/start.sh`` and an embedded ClickHouse (chDB) under ``AIWATCH_HOME``.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_RETENTION_DAYS = 183  # EU AI Act runtime logs: at least six months


class OtlpSettings(BaseSettings):
    """The OTLP/HTTP receiver (``aiwatch collect otlp``), read from ``AIWATCH_OTLP_*``; part of Settings."""

    model_config = SettingsConfigDict(env_prefix="AIWATCH_OTLP_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address to listen on (0.0.0.0 for every interface)")
    port: int = Field(default=4318, ge=0, le=65535)
    tokens: dict[str, str] = Field(
        default_factory=dict,
        description='bearer token → app, as JSON: {"<token>": "billing-bot"}; empty = unauthenticated (warned)')
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="largest request body as sent (413 beyond)")
    max_decompressed_bytes: int = Field(default=32 * 1024 * 1024, ge=1024,
                                        description="largest request body after gzip/deflate (413 beyond)")
    queue_size: int = Field(default=100_000, ge=1, description="events waiting for the Kafka publisher (503 beyond)")
    join_seconds: float = Field(
        default=6.0, ge=0,
        description="how long the metadata of a model call (span) and its content (log events) wait for each other")
    join_max: int = Field(default=20_000, ge=1, description="model calls waiting to be joined at most")
    max_sessions: int = Field(default=20_000, ge=1, description="sessions whose published message keys are remembered")
    max_keys_per_session: int = Field(default=2_048, ge=1)
    max_links: int = Field(default=100_000, ge=1, description="conversation threads remembered to link later turns")


def _default_home() -> Path:
    return Path(os.environ.get("AIWATCH_HOME", ".aiwatch")).resolve()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIWATCH_", extra="ignore", populate_by_name=True)

    home: Path = Field(default_factory=_default_home, description="state directory (spool, embedded ClickHouse, worker tables)")

    # Kafka
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("AIWATCH_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = None
    topic_events: str = "aiwatch.events"
    topic_dlq: str = "aiwatch.events.dlq"
    topic_findings: str = "aiwatch.findings"
    topic_alerts: str = "aiwatch.alerts"
    topic_state: str = "aiwatch.state"
    events_partitions: int = Field(default=3, ge=1, description="partitions of aiwatch.events (parallelism ceiling)")
    topic_retention_hours: int = Field(default=168, ge=1, description="Kafka retention of the event topics")
    dlq_retention_hours: int = Field(default=720, ge=1, description="Kafka retention of the dead-letter topic")
    max_event_bytes: int = Field(default=1_048_576, ge=1024, description="largest event accepted; larger goes to the DLQ")
    max_message_bytes: int = Field(default=16_777_216, description="largest Kafka message the worker can fetch and dead-letter")

    # ClickHouse
    clickhouse_dsn: str = Field(
        default="",
        validation_alias=AliasChoices("AIWATCH_CLICKHOUSE_DSN", "CLICKHOUSE_DSN"),
        description="chdb:///path (embedded, default under home) or http(s)://user:pass@host:8123/db",
    )
    retention_days: int = Field(default=400, description="TTL of stored events; at least 183 days")

    # Detection
    rules_paths: list[Path] = Field(
        default_factory=lambda: [Path(__file__).resolve().parents[1] / "infra" / "rules"],
        description="rule files or directories (JSON list in the environment); bad files stop the worker",
    )
    detect: bool = Field(default=True, description="run content detectors and rules in the worker")
    behavior: bool = Field(default=True, description="run sessions, baselines and drift in the worker "
                                                     "(batch mode; in a child process of its own)")
    redact: Literal["secrets", "secrets+pii", "off"] = Field(
        default="secrets",
        description="values replaced (by detector id + sha256 prefix) in the stored copy of each event: secrets, "
                    "secrets and PII, or nothing; detectors always see the original",
    )
    alert_throttle_seconds: float = Field(
        default=300.0, ge=0,
        description="alerts of one rule, app and session (or user) within this window after the first are sent "
                    "as one rollup with a count; an escalation in severity goes out at once; 0 sends every alert",
    )
    classifier: Literal["off", "untrusted", "all"] = Field(
        default="off",
        description="trained injection classifier: off, untrusted (tool results, retrieved documents, agent messages) "
                    "or all (user turns too); ~0.5 ms per KB of text, about a third of the worker's throughput",
    )
    classifier_max_chars: int = Field(
        default=4096, ge=256, le=65536,
        description="characters of one text the classifier reads (head and tail of longer ones)",
    )
    behavior_restarts: int = Field(
        default=3, ge=0, description="times per 10 minutes a dead behavioural process is restarted from its saved "
                                     "state before the worker gives up and exits"
    )
    behavior_failpoint: str = Field(
        default="", max_length=256,
        description="fault injection for tests: the behavioural process exits hard on an event whose bytes "
                    "contain this text (empty: off)",
    )
    state_save_seconds: float = Field(
        default=30.0, gt=0, description="how often the worker saves behavioural state with its offsets (local store)"
    )
    state_changelog_seconds: float = Field(
        default=300.0, gt=0,
        description="how often a saved state snapshot is also published to the changelog topic (disaster recovery)",
    )
    baseline_partition_by: list[Literal["env", "tenant"]] = Field(
        default_factory=list,
        description="event fields that split each app's baselines (JSON list, e.g. [\"env\"]): staging does not "
                    "teach production what is normal, nor one tenant another; empty: one baseline per app",
    )
    baseline_snapshot_seconds: float = Field(
        default=3600.0, gt=0, description="how often baseline snapshots are written to the baselines table"
    )
    policy_changed_by: str = Field(
        default_factory=lambda: os.environ.get("USER", "unknown"),
        description="who is recorded in policy_changes when the worker puts a new rule pack in force",
    )
    policy_change_reason: str = Field(default="rule pack loaded at worker start",
                                      description="why, as recorded in policy_changes (a ticket, a summary)")
    url_allowlist: list[str] = Field(default_factory=list, description="hosts links may point to (exfiltration)")
    canaries: list[str] = Field(default_factory=list, description="strings planted in system prompts")
    detectors_exclude: list[str] = Field(
        default_factory=list,
        description="content detector ids the worker and replay do not run (JSON list, e.g. [\"secret.template\"]); "
                    "`aiwatch detectors` lists them",
    )

    # Collectors
    otlp: OtlpSettings = Field(default_factory=OtlpSettings, description="OTLP receiver (AIWATCH_OTLP_*)")

    # Worker
    app_id: str = "aiwatch"
    ingest_mode: Literal["batch", "faust"] = Field(
        default="batch",
        description="batch: getmany + explicit commits inside the Faust worker (fast); faust: a take_events agent",
    )
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    batch_size: int = Field(default=2000, ge=1, description="rows per ClickHouse insert at most")
    batch_seconds: float = Field(default=0.5, gt=0, le=1.0, description="a partial batch is written after this long")
    worker_log_level: str = "WARNING"
    kafka_session_timeout_s: float = Field(
        default=10.0, gt=0, description="a crashed worker's partitions move to a live one after this long"
    )

    # SDK
    sdk_queue_size: int = Field(default=10_000, ge=1)
    sdk_spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    sdk_linger_ms: int = Field(default=20, ge=0)

    @field_validator("retention_days")
    @classmethod
    def _retention_floor(cls, value: int) -> int:
        if value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"retention_days={value} is below the legal minimum of {MIN_RETENTION_DAYS} days "
                "(EU AI Act: runtime logs are kept at least six months); set AIWATCH_RETENTION_DAYS >= 183"
            )
        return value

    @cached_property
    def dsn(self) -> str:
        """The ClickHouse DSN in force: the configured one, or the embedded store under ``home``."""
        return self.clickhouse_dsn or f"chdb://{(self.home / 'clickhouse').resolve()}"

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    def kafka_client_options(self) -> dict[str, object]:
        """Security options shared by every aiokafka client we create."""
        opts: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            opts.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password,
            )
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            import ssl

            opts["ssl_context"] = ssl.create_default_context(cafile=self.kafka_ssl_cafile)
        return opts
