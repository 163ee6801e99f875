-- Every numeric metadata entry of materializations and observations as a point of its asset's and
-- label's series, sorted by (asset, label, time): a plot of a label over any range reads a primary-key
-- range of two narrow columns, not the metadata map of every event of the asset (the catalog's series,
-- consumers.catalog.series). asset_metadata_numeric stays the view analysts read with every column.
-- Numbers as that view reads them: int, float, timestamp (epoch seconds), bool (1 or 0).
CREATE TABLE IF NOT EXISTS {db}.asset_metadata_points
(
    asset_key LowCardinality(String),
    label     LowCardinality(String),
    timestamp DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    value     Float64 CODEC(Gorilla, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (asset_key, label, timestamp)
SETTINGS non_replicated_deduplication_window = 10000;

-- A point written twice would be plotted twice: the view is created after the backfill below, so an event
-- ingested by a worker of the previous version while this migration runs, between the two statements, has
-- no points (it stays in asset_events). Compose runs `migrate` before the workers start; elsewhere,
-- upgrade with the ingest workers stopped.
INSERT INTO {db}.asset_metadata_points
SELECT n.asset_key, n.key, n.timestamp, n.value
FROM {db}.asset_metadata_numeric AS n
WHERE n.event_type IN ('materialization', 'observation');

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_metadata_points_mv TO {db}.asset_metadata_points AS
SELECT p.asset_key AS asset_key, p.label AS label, p.timestamp AS timestamp, assumeNotNull(p.value) AS value
FROM
(
    SELECT
        e.asset_key AS asset_key,
        toLowCardinality(entry.1) AS label,
        e.timestamp AS timestamp,
        if(entry.2 = 'bool', toFloat64(e.metadata[entry.1] = 'true'), toFloat64OrNull(e.metadata[entry.1])) AS value
    FROM {db}.asset_events AS e
    ARRAY JOIN mapFilter((k, t) -> t IN ('int', 'float', 'bool', 'timestamp'), e.metadata_types) AS entry
    WHERE e.event_type IN ('materialization', 'observation')
) AS p
WHERE isNotNull(p.value);
