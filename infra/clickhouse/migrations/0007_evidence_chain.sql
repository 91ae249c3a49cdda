-- Tamper-evident evidence (DESIGN §4): every stored event carries the sha256 of its canonical content
-- (row_sha256) and the chain block it was stored in (evidence_block). Each block commits to the set of
-- its rows (a multiset hash: sum of the row hashes mod 2^256, and the count) and to the previous block
-- (prev_hash), so editing, deleting or adding a row, or editing, deleting or reordering a block, breaks
-- `aiwatch evidence verify`. One chain per worker process run; its first block links to the newest
-- block stored before it started. Append-only: the worker never updates or deletes a block.
ALTER TABLE events ADD COLUMN IF NOT EXISTS row_sha256 String DEFAULT '';
ALTER TABLE events ADD COLUMN IF NOT EXISTS evidence_block String DEFAULT '';

CREATE TABLE IF NOT EXISTS evidence_chain
(
    block_id     String,
    chain_id     String,
    seq          UInt64,
    created_at   DateTime64(6, 'UTC'),
    events       UInt32,
    digest       String,
    prev_hash    String,
    hash         String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (chain_id, seq)
TTL toDateTime(created_at) + INTERVAL {retention_days} DAY;
