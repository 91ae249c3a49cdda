-- Change control of the rule pack: one row each time a different pack (content hash) goes into force,
-- with who, when, why and the per-file hashes. Never expires: the policy history explains old findings.
CREATE TABLE IF NOT EXISTS policy_changes
(
    change_id         String,
    changed_at        DateTime64(3, 'UTC'),
    policy_version    String,
    previous_version  String,
    digest            String,
    changed_by        String,
    reason            String,
    manifest          String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
ORDER BY (changed_at, change_id);
