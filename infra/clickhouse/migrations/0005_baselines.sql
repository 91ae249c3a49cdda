-- Snapshots of the behavioural baselines (entity baselines, app session profiles, drift monitors),
-- written periodically by the worker (AIWATCH_BASELINE_SNAPSHOT_SECONDS) for long-term drift analysis
-- in SQL. Columns: detectors.behavior.baseline.SNAPSHOT_COLUMNS.
CREATE TABLE IF NOT EXISTS baselines
(
    schema_version   LowCardinality(String),
    snapshot_ts      DateTime64(3, 'UTC'),
    app              LowCardinality(String),
    entity_kind      LowCardinality(String),
    entity           String,
    detector         LowCardinality(String),
    function         LowCardinality(String),
    field            LowCardinality(String),
    over             UInt8,
    warm             UInt8,
    observations     UInt64,
    first_seen       DateTime64(3, 'UTC'),
    last_seen        DateTime64(3, 'UTC'),
    mean             Nullable(Float64),
    std              Nullable(Float64),
    p50              Nullable(Float64),
    p99              Nullable(Float64),
    max              Nullable(Float64),
    distinct_values  UInt32,
    top_values       Array(Tuple(String, UInt64)),
    evicted          UInt64,
    extra            String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(snapshot_ts)
ORDER BY (app, entity_kind, entity, detector, field, snapshot_ts)
TTL toDateTime(snapshot_ts) + INTERVAL {retention_days} DAY;
