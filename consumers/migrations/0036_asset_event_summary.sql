-- Each asset's latest event of each type (each check's latest evaluation, apart) and how many partitions have one,
-- for an asset's page (consumers.catalog.assets). It read them from asset_partition_state, every partition's rows
-- of the asset: ~20 ms for an asset with 100,000 partitions. Here an asset has a row per (event type, check name)
-- once parts merge, whatever its partitions: the latest event's fields as one argMax, the partitions as a
-- uniqExact state, and the latest partitioned event's partition. Failures of type FAILED only, as in
-- asset_partition_state (0022). No TTL: it keeps every asset whatever ASSETPIPE_RETENTION_DAYS (retention.md).
-- Small granules: a read decodes the partition states of its granule's every row, not only its asset's.
CREATE TABLE IF NOT EXISTS {db}.asset_event_summary
(
    asset_key        LowCardinality(String),
    event_type       Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3,
                           'materialization_failure' = 4),
    check_name       LowCardinality(String),
    timestamp        SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    -- (partition, event_id, data_version, run_id, check_passed, check_severity, failure_reason) of the newest
    latest           AggregateFunction(argMax, Tuple(String, UUID, String, String, Nullable(Bool),
                         Nullable(Enum8('WARN' = 1, 'ERROR' = 2)), Nullable(Enum8('FAILED_TO_MATERIALIZE' = 1,
                         'UPSTREAM_FAILED_TO_MATERIALIZE' = 2, 'RUN_TERMINATED' = 3, 'UNKNOWN' = 4))),
                         DateTime64(6, 'UTC')),
    partitions       AggregateFunction(uniqExact, String),
    latest_partition AggregateFunction(argMax, String, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (asset_key, event_type, check_name)
SETTINGS index_granularity = 64, non_replicated_deduplication_window = 10000;

-- Created before the backfill below: events ingested meanwhile may reach the table both ways, which its functions
-- (the newest wins, a partition counts once) make harmless.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_event_summary_mv TO {db}.asset_event_summary AS
SELECT
    e.asset_key                                                        AS asset_key,
    e.event_type                                                       AS event_type,
    e.check_name                                                       AS check_name,
    max(e.timestamp)                                                   AS timestamp,
    argMaxState((e.partition, e.event_id, e.data_version, e.run_id, e.check_passed, e.check_severity,
        e.failure_reason), e.timestamp)                            AS latest,
    uniqExactStateIf(e.partition, e.partition != '')                  AS partitions,
    argMaxStateIf(e.partition, e.timestamp, e.partition != '')        AS latest_partition
FROM {db}.asset_events AS e
WHERE e.event_type != 'materialization_failure' OR e.failure_type = 'FAILED'
GROUP BY e.asset_key, e.event_type, e.check_name;

-- Warehouses upgraded to this version: from asset_partition_state, which holds the latest event of every partition
-- of every asset whatever the retention.
INSERT INTO {db}.asset_event_summary
SELECT
    s.asset_key,
    s.event_type,
    s.check_name,
    max(s.timestamp),
    argMaxState((s.partition, s.event_id, s.data_version, s.run_id, s.check_passed, s.check_severity,
        s.failure_reason), s.timestamp),
    uniqExactStateIf(s.partition, s.partition != ''),
    argMaxStateIf(s.partition, s.timestamp, s.partition != '')
FROM {db}.asset_partition_state AS s
GROUP BY s.asset_key, s.event_type, s.check_name
