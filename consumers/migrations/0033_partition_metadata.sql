-- The latest value of each numeric metadata label of each partition of an asset, for plots by partition
-- (consumers.catalog.series, x=partition). They read it from asset_events before, the newest event of each
-- partition out of every event of the asset: with ASSETPIPE_RETENTION_DAYS a partition whose newest event had
-- expired was left out of the plot. A view fills this table as events are inserted, and a TTL delete is a merge,
-- which no view sees: it keeps every partition whatever the retention (consumers.retention sets no TTL on it), and a
-- plot reads one row per partition, a primary-key range of (asset, label). Numbers as asset_metadata_points reads
-- them (0017): int, float, timestamp (epoch seconds), bool (1 or 0), of materializations and observations.

-- One row per (asset, label, partition): the newest value (the engine's version is the event's time, so an event
-- written twice, or an older one written later, changes nothing). Until parts merge a key may have several rows:
-- read it with argMax(..., timestamp) or FINAL.
CREATE TABLE IF NOT EXISTS {db}.asset_partition_metadata
(
    asset_key LowCardinality(String),
    label     LowCardinality(String),
    partition String,
    timestamp DateTime64(6, 'UTC'),
    value     Float64,
    event_id  UUID
)
ENGINE = ReplacingMergeTree(timestamp)
ORDER BY (asset_key, label, partition)
SETTINGS non_replicated_deduplication_window = 10000;

-- Created before the backfill below: events ingested meanwhile may reach the table both ways, which the engine's
-- version makes harmless.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_partition_metadata_mv TO {db}.asset_partition_metadata AS
SELECT
    p.asset_key            AS asset_key,
    p.label                AS label,
    p.partition            AS partition,
    p.timestamp            AS timestamp,
    assumeNotNull(p.value) AS value,
    p.event_id             AS event_id
FROM
(
    SELECT
        e.asset_key AS asset_key,
        toLowCardinality(entry.1) AS label,
        e.partition AS partition,
        e.timestamp AS timestamp,
        if(entry.2 = 'bool', toFloat64(e.metadata[entry.1] = 'true'), toFloat64OrNull(e.metadata[entry.1])) AS value,
        e.event_id AS event_id
    FROM {db}.asset_events AS e
    ARRAY JOIN mapFilter((k, t) -> t IN ('int', 'float', 'bool', 'timestamp'), e.metadata_types) AS entry
    WHERE e.event_type IN ('materialization', 'observation') AND e.partition != ''
) AS p
WHERE isNotNull(p.value);

-- Warehouses upgraded to this version: the newest value of each key among the events stored before (those still
-- within the retention window, if one is set: older ones are gone from asset_events). Value and event id are
-- taken from one event, also where two share a time.
INSERT INTO {db}.asset_partition_metadata (asset_key, label, partition, timestamp, value, event_id)
SELECT
    n.asset_key,
    n.key,
    n.partition,
    max(n.timestamp),
    tupleElement(argMax((n.value, n.event_id), n.timestamp), 1),
    tupleElement(argMax((n.value, n.event_id), n.timestamp), 2)
FROM {db}.asset_metadata_numeric AS n
WHERE n.event_type IN ('materialization', 'observation') AND n.partition != ''
GROUP BY n.asset_key, n.key, n.partition;
