-- Baselines split by event fields inside an app (BaselineConfig.partition_by: env, tenant) snapshot the
-- same entity once per partition: the partition label ("env=prod"; empty for the whole app, the type's
-- default: a DEFAULT expression may not join a sorting key) joins the key.
ALTER TABLE baselines
    ADD COLUMN IF NOT EXISTS partition LowCardinality(String) AFTER app,
    MODIFY ORDER BY (app, entity_kind, entity, detector, field, snapshot_ts, partition);
