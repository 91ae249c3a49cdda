-- Detector and rule findings (Finding v1), one row per finding_id.
CREATE TABLE IF NOT EXISTS findings
(
    finding_id      String,
    ts              DateTime64(6, 'UTC'),
    detector        LowCardinality(String),
    rule_id         LowCardinality(String),
    category        LowCardinality(String),
    severity        LowCardinality(String),
    score           Float32,
    event_id        String,
    session_id      String,
    app             LowCardinality(String),
    agent           LowCardinality(String),
    user_id         String,
    title           String,
    rationale       String CODEC(ZSTD(3)),
    evidence        String CODEC(ZSTD(3)),
    tags            Array(LowCardinality(String)),
    mode            LowCardinality(String),
    policy_version  LowCardinality(String),
    ingested_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_finding_id finding_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_event_id event_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (app, toDate(ts), category, finding_id)
TTL toDateTime(ts) + INTERVAL {retention_days} DAY;
