-- Numeric metadata rolled up per hour and per day (docs/retention.md): for each (asset, label, bucket) the number
-- of values, their sum (the average is sum / values), min, max, the first time and the last value with its time.
-- They keep every bucket for good, also once ASSETPIPE_RETENTION_DAYS has dropped the raw points and events, so a
-- plot of any range reads them at a coarser grain (consumers.catalog.series). Every column is a plain value
-- aggregated by the engine when parts merge: read them with GROUP BY (sum(values), sum(total), min(low),
-- max(high), min(first_at), max(last)); `last` is the tuple (at, value) of the newest point, so its max is the
-- latest value (argMax by time). Delta on the tuple, whose times advance by about a bucket a row; plain ZSTD on the
-- floats, which packs them smaller than Gorilla does (docs/benchmarks.md#retention).
CREATE TABLE IF NOT EXISTS {db}.asset_metadata_hourly
(
    asset_key LowCardinality(String),
    label     LowCardinality(String),
    bucket    DateTime('UTC') CODEC(Delta, ZSTD(1)),
    values    SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    total     SimpleAggregateFunction(sum, Float64) CODEC(ZSTD(1)),
    low       SimpleAggregateFunction(min, Float64) CODEC(ZSTD(1)),
    high      SimpleAggregateFunction(max, Float64) CODEC(ZSTD(1)),
    first_at  SimpleAggregateFunction(min, DateTime64(6, 'UTC')) CODEC(Delta, ZSTD(1)),
    last      SimpleAggregateFunction(max, Tuple(at DateTime64(6, 'UTC'), value Float64)) CODEC(Delta, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (asset_key, label, bucket)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS {db}.asset_metadata_daily
(
    asset_key LowCardinality(String),
    label     LowCardinality(String),
    bucket    DateTime('UTC') CODEC(Delta, ZSTD(1)),
    values    SimpleAggregateFunction(sum, UInt64) CODEC(T64, ZSTD(1)),
    total     SimpleAggregateFunction(sum, Float64) CODEC(ZSTD(1)),
    low       SimpleAggregateFunction(min, Float64) CODEC(ZSTD(1)),
    high      SimpleAggregateFunction(max, Float64) CODEC(ZSTD(1)),
    first_at  SimpleAggregateFunction(min, DateTime64(6, 'UTC')) CODEC(Delta, ZSTD(1)),
    last      SimpleAggregateFunction(max, Tuple(at DateTime64(6, 'UTC'), value Float64)) CODEC(Delta, ZSTD(1))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (asset_key, label, bucket)
SETTINGS non_replicated_deduplication_window = 10000;

-- Warehouses upgraded to this version: the buckets of the points stored before, read in the points' order (the
-- buckets of one series are consecutive, so memory holds one series' at a time, not the whole history's). A value
-- counted twice would be averaged and counted twice for good, so the views are created after the backfill: as
-- for 0017, upgrade with the ingest workers stopped (compose runs `migrate` before the workers start).
INSERT INTO {db}.asset_metadata_hourly (asset_key, label, bucket, values, total, low, high, first_at, last)
SELECT
    p.asset_key,
    p.label,
    toStartOfHour(p.timestamp) AS hour,
    count(),
    sum(p.value),
    min(p.value),
    max(p.value),
    min(p.timestamp),
    (max(p.timestamp), argMax(p.value, p.timestamp))
FROM {db}.asset_metadata_points AS p
GROUP BY p.asset_key, p.label, hour
SETTINGS optimize_aggregation_in_order = 1;

INSERT INTO {db}.asset_metadata_daily (asset_key, label, bucket, values, total, low, high, first_at, last)
SELECT
    h.asset_key,
    h.label,
    toStartOfDay(h.bucket) AS day,
    sum(h.values),
    sum(h.total),
    min(h.low),
    max(h.high),
    min(h.first_at),
    (max(tupleElement(h.last, 'at')), argMax(tupleElement(h.last, 'value'), tupleElement(h.last, 'at')))
FROM {db}.asset_metadata_hourly AS h
GROUP BY h.asset_key, h.label, day
SETTINGS optimize_aggregation_in_order = 1;

-- The days from the hours: a block of points becomes a block of hours, and that block a block of days (the last
-- value as max(time) and argMax(value, time): the max of a tuple costs several times more to aggregate). Each insert
-- into asset_events carries the ingest batch's deduplication token, which reaches both tables through the views
-- (deduplicate_blocks_in_dependent_materialized_views); the day view is created first, so no hour reaches the
-- hourly table without reaching the daily one.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_metadata_daily_mv TO {db}.asset_metadata_daily AS
SELECT
    h.asset_key              AS asset_key,
    h.label                  AS label,
    toStartOfDay(h.bucket)   AS bucket,
    sum(h.values)            AS values,
    sum(h.total)             AS total,
    min(h.low)               AS low,
    max(h.high)              AS high,
    min(h.first_at)          AS first_at,
    (max(tupleElement(h.last, 'at')), argMax(tupleElement(h.last, 'value'), tupleElement(h.last, 'at'))) AS last
FROM {db}.asset_metadata_hourly AS h
GROUP BY h.asset_key, h.label, bucket;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_metadata_hourly_mv TO {db}.asset_metadata_hourly AS
SELECT
    p.asset_key                 AS asset_key,
    p.label                     AS label,
    toStartOfHour(p.timestamp)  AS bucket,
    count()                     AS values,
    sum(p.value)                AS total,
    min(p.value)                AS low,
    max(p.value)                AS high,
    min(p.timestamp)            AS first_at,
    (max(p.timestamp), argMax(p.value, p.timestamp)) AS last
FROM {db}.asset_metadata_points AS p
GROUP BY p.asset_key, p.label, bucket;
