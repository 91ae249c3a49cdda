-- Every event aiwatch accepted, one row per event_id (ReplacingMergeTree keeps redeliveries from
-- becoming duplicates even if the sink's own check is bypassed). Ordered for per-app and
-- per-session questions; monthly partitions so retention drops whole parts.
CREATE TABLE IF NOT EXISTS events
(
    event_id            String,
    ts                  DateTime64(6, 'UTC'),
    kind                LowCardinality(String),
    app                 LowCardinality(String),
    env                 LowCardinality(String),
    tenant              LowCardinality(String),
    agent               LowCardinality(String),
    session_id          String,
    trace_id            String,
    span_id             String,
    parent_span_id      String,
    user_id             String,
    roles               Array(LowCardinality(String)),
    on_behalf_of        String,
    service_account     String,
    model_provider      LowCardinality(String),
    model_name          LowCardinality(String),
    model_served        LowCardinality(String),
    model_endpoint      LowCardinality(String),
    content_role        LowCardinality(String),
    content_text        String CODEC(ZSTD(3)),
    content_truncated   Bool,
    content_sha256      String,
    tool_name           LowCardinality(String),
    tool_call_id        String,
    tool_arguments      String CODEC(ZSTD(3)),
    tool_status         LowCardinality(String),
    tool_error          String CODEC(ZSTD(3)),
    tool_result_bytes   Nullable(UInt64),
    tool_destination    String,
    retrieval_source    String,
    retrieval_documents String CODEC(ZSTD(3)),
    input_tokens        Nullable(UInt64),
    output_tokens       Nullable(UInt64),
    cost_usd            Nullable(Float64),
    latency_ms          Nullable(Float64),
    labels              Map(LowCardinality(String), String),
    source_collector    LowCardinality(String),
    source_convention   LowCardinality(String),
    extra               String CODEC(ZSTD(3)),
    kafka_partition     UInt32,
    kafka_offset        UInt64,
    ingested_at         DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user user_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, toDate(ts), session_id, ts, event_id)
TTL toDateTime(ts) + INTERVAL {retention_days} DAY
SETTINGS index_granularity = 8192;
