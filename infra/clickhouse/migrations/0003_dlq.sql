-- Messages refused by the ingest stage. The full original bytes stay on the Kafka DLQ topic;
-- here the first max_payload bytes, their size and sha256, and the reason, keyed by the
-- message's topic/partition/offset so a redelivered message is stored once.
CREATE TABLE IF NOT EXISTS dlq
(
    dlq_id          String,
    received_at     DateTime64(3, 'UTC'),
    topic           LowCardinality(String),
    partition       UInt32,
    offset          UInt64,
    reason          LowCardinality(String),
    detail          String,
    size_bytes      UInt64,
    payload_sha256  String,
    payload         String CODEC(ZSTD(3)),
    payload_truncated Bool
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (dlq_id)
TTL toDateTime(received_at) + INTERVAL {retention_days} DAY;
