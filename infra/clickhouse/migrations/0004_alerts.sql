-- Alerts sent to the SOC feed (OCSF Detection Finding JSON), one row per alert (= finding) id.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id     String,
    ts           DateTime64(6, 'UTC'),
    severity_id  UInt8,
    category     LowCardinality(String),
    app          LowCardinality(String),
    session_id   String,
    title        String,
    ocsf         String CODEC(ZSTD(3)),
    ingested_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, toDate(ts), alert_id)
TTL toDateTime(ts) + INTERVAL {retention_days} DAY;
