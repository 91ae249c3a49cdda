"""The Faust application: topics, the ingest stage (batch task or agent) and the web views, built from Settings.

Built by a function rather than at import time so tests and the CLI choose the configuration, and
so no mutable state hides at module level.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import faust

from detectors.model_stage import ClassifierStage
from detectors.pipeline import Detection
from detectors.redact import Redactor
from detectors.rules import RuleEngine
from detectors.scan import ContentScanner, ScannerConfig
from schemas.settings import Settings
from streams import metrics
from streams.agents.batch_consumer import consume
from streams.agents.ingest import IngestProcessor
from streams.behavior_process import BehaviorProcess
from streams.db import connect
from streams.sinks.clickhouse import ClickHouseSink
from streams.throttle import Throttle
from streams.web import register_views


def _credentials(settings: Settings) -> object | None:
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=settings.kafka_client_options().get("ssl_context"),
        )
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(settings.kafka_client_options()["ssl_context"])
    return None


def build_detection(settings: Settings) -> Detection:
    """Content scanner and rule pack from settings; a bad rule file raises RuleLoadError (file:line:col),
    an unknown id in ``detectors_exclude`` ValueError (naming the closest id)."""
    scanner = ContentScanner(ScannerConfig(url_allowlist=tuple(settings.url_allowlist),
                                           canaries=tuple(settings.canaries),
                                           exclude=tuple(settings.detectors_exclude)))
    classifier = ClassifierStage.from_setting(settings.classifier, settings.classifier_max_chars)
    return Detection(scanner, RuleEngine.from_paths(settings.rules_paths), classifier=classifier)


def create_app(settings: Settings, detection: Detection | None = None,
               behavior: BehaviorProcess | None = None) -> faust.App:
    """The worker app; ``detection`` None runs ingestion only. ``behavior``: the behavioural process,
    spawned early so it imports while the worker starts (one is started here when it is needed and
    not given)."""
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=_credentials(settings),
        store="memory://",
        datadir=str(settings.home / "worker"),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.events_partitions,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.max_message_bytes,
        producer_max_request_size=settings.max_message_bytes,
        producer_acks=-1,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=max(settings.kafka_session_timeout_s / 4, 0.5),
        web_enabled=True,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
    )
    events_topic = app.topic(settings.topic_events, key_type=bytes, value_type=bytes)  # the `faust` feeder
    dlq_topic = app.topic(settings.topic_dlq, key_type=bytes, value_type=bytes)
    findings_topic = app.topic(settings.topic_findings, key_type=bytes, value_type=bytes)
    alerts_topic = app.topic(settings.topic_alerts, key_type=bytes, value_type=bytes)

    # One thread owns ClickHouse writes (chDB and HTTP calls block; the event loop must not).
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiwatch-ch-writer")
    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiwatch-ch-reader")
    sink = ClickHouseSink(connect(settings.dsn))
    read_client = connect(settings.dsn)

    if detection is not None and settings.behavior and settings.ingest_mode == "batch":
        behavior = BehaviorProcess.open(settings, spawned=behavior)
        metrics.expose_stats("aiwatch_behavior", "behavioural layer: open sessions, entities, evictions, "
                             "capacity limits reached", lambda: behavior.stats)
    elif behavior is not None:  # spawned, but this configuration runs without the layer
        behavior.close()
        behavior = None
    processor = IngestProcessor(settings=settings, sink=sink, dlq_topic=dlq_topic, findings_topic=findings_topic,
                                alerts_topic=alerts_topic, executor=writer, detection=detection, behavior=behavior,
                                throttle=Throttle(window_s=settings.alert_throttle_seconds),
                                redactor=Redactor.from_setting(settings.redact))
    if settings.ingest_mode == "faust":
        app.agent(events_topic, name="ingest", concurrency=1)(processor.faust_agent)
    else:
        stopping = asyncio.Event()

        @app.task
        async def ingest() -> None:
            await consume(settings, processor, stopping)

        @app.on_before_shutdown.connect
        def _stop_ingest(app: faust.App, **kwargs: object) -> None:
            stopping.set()

    register_views(app, settings=settings, read_client=read_client, executor=reader)

    @app.on_after_configured.connect
    def _quiet(app: faust.App, **kwargs: object) -> None:  # pragma: no cover - logging only
        logging.getLogger("faust").setLevel(settings.worker_log_level)

    return app
