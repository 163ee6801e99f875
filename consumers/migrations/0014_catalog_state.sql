-- The asset catalog's latest state (consumers.catalog): per asset and partition, the latest
-- materialization, the latest observation and the latest result of each check, kept by a materialized
-- view as events are ingested, so that "latest" costs the number of (asset, partition) keys, not of events.
-- The catalog's list, an asset's page and its partitions read it; history reads asset_events by its
-- primary key.

-- One row per (asset, partition, event type, check name): the newest event of that key (the engine's
-- version is the event's time, so an event written twice, or an older one written later, changes
-- nothing). Until parts merge a key may have several rows: read it with argMax(..., timestamp) or FINAL.
-- The view copies each event's few columns as they are (no GROUP BY, no aggregate states): an insert costs
-- a narrow sort of the batch's rows, and merges keep one row per key.
CREATE TABLE IF NOT EXISTS {db}.asset_partition_state
(
    asset_key      LowCardinality(String),
    partition      String,
    event_type     Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3),
    check_name     LowCardinality(String),
    timestamp      DateTime64(6, 'UTC'),
    event_id       UUID,
    data_version   String,
    run_id         String,
    check_passed   Nullable(Bool),
    check_severity Nullable(Enum8('WARN' = 1, 'ERROR' = 2))
)
ENGINE = ReplacingMergeTree(timestamp)
ORDER BY (asset_key, partition, event_type, check_name)
SETTINGS non_replicated_deduplication_window = 10000;

-- Created before the backfill below: events ingested meanwhile may reach the table both ways, which the
-- engine's version makes harmless.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_partition_state_mv TO {db}.asset_partition_state AS
SELECT
    e.asset_key      AS asset_key,
    e.partition      AS partition,
    e.event_type     AS event_type,
    e.check_name     AS check_name,
    e.timestamp      AS timestamp,
    e.event_id       AS event_id,
    e.data_version   AS data_version,
    e.run_id         AS run_id,
    e.check_passed   AS check_passed,
    e.check_severity AS check_severity
FROM {db}.asset_events AS e;

-- Warehouses upgraded to this version: the state of the events stored before (the newest of each key).
INSERT INTO {db}.asset_partition_state
SELECT
    e.asset_key,
    e.partition,
    e.event_type,
    e.check_name,
    max(e.timestamp),
    argMax(e.event_id, e.timestamp),
    argMax(e.data_version, e.timestamp),
    argMax(e.run_id, e.timestamp),
    argMax(e.check_passed, e.timestamp),
    argMax(e.check_severity, e.timestamp)
FROM {db}.asset_events AS e
GROUP BY e.asset_key, e.partition, e.event_type, e.check_name;
