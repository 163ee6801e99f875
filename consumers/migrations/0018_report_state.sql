-- When each identity was reported. An event with a data version is stored once per (event type, asset key,
-- partition, data version), the identity its dedup_key hashes (check_name is not part of it). A later report
-- of the same identity is a duplicate: not stored in asset_events, its metadata dropped, but its time and
-- event id count here, so freshness can use "last reported" and the catalog can say "unchanged since 10:02,
-- last seen 10:58".
--
-- The stored event reaches the table through the view below, with the insert into asset_events (and its
-- deduplication token); the ingest worker inserts the repeats itself (consumers.ingest.sql,
-- repeats_sql), only in batches that have some. Events without a data version have no row: their identity
-- is their event id, so each is one report, stored whole in asset_events (asset_partition_state holds the
-- latest of each asset and partition), and a row for each would cost an insert and add nothing.
--
-- Until parts merge an identity may have several rows: read it with FINAL (finalizeAggregation(last_repeat_id)),
-- or GROUP BY the four identity columns with min(first_reported_at), max(last_reported_at), sum(repeats),
-- max(last_repeat_at), argMaxMerge(last_repeat_id), max(stored_event_id). An identity was reported
-- 1 + repeats times; its latest report is the last repeat when last_repeat_at = last_reported_at, else the
-- stored event. last_repeat_id is an aggregate state because no plain column can follow another one's
-- maximum, and a tuple's elements read as subcolumns are read before FINAL merges the rows.
--
-- Exactly once: every column but repeats is a min, a max or a latest, so an event written twice changes
-- nothing. repeats counts reports of the DUPLICATE verdict only; the worker's insert carries its batch's
-- deduplication token (with non_replicated_deduplication_window below), so a batch written again after a
-- crash counts none twice, and an event that is itself the stored one (REDELIVERED) is no repeat.
CREATE TABLE IF NOT EXISTS {db}.asset_report_state
(
    asset_key         LowCardinality(String),
    event_type        Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3),
    partition         String,
    data_version      String CODEC(ZSTD(3)),
    first_reported_at SimpleAggregateFunction(min, DateTime64(6, 'UTC')) CODEC(ZSTD(3)),
    last_reported_at  SimpleAggregateFunction(max, DateTime64(6, 'UTC')) CODEC(ZSTD(3)),
    repeats           SimpleAggregateFunction(sum, UInt64),
    last_repeat_at    SimpleAggregateFunction(max, Nullable(DateTime64(6, 'UTC'))) CODEC(ZSTD(3)),
    last_repeat_id    AggregateFunction(argMax, UUID, DateTime64(6, 'UTC')) CODEC(ZSTD(3)),
    stored_event_id   SimpleAggregateFunction(max, UUID) CODEC(ZSTD(3))
)
ENGINE = AggregatingMergeTree
ORDER BY (asset_key, event_type, partition, data_version)
SETTINGS non_replicated_deduplication_window = 10000;

-- The stored events: no repeat (last_repeat_at NULL and last_repeat_id empty, the columns' defaults). Created
-- before the backfill below: events ingested meanwhile may reach the table both ways, which the min and
-- max make harmless.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_report_state_mv TO {db}.asset_report_state AS
SELECT
    e.asset_key    AS asset_key,
    e.event_type   AS event_type,
    e.partition    AS partition,
    e.data_version AS data_version,
    e.timestamp    AS first_reported_at,
    e.timestamp    AS last_reported_at,
    toUInt64(0)    AS repeats,
    e.event_id     AS stored_event_id
FROM {db}.asset_events AS e
WHERE e.data_version != '';

-- Warehouses upgraded to this version: the identities stored before, each reported once as far as anyone
-- knows (the repeats dropped before this version were not counted).
INSERT INTO {db}.asset_report_state
    (asset_key, event_type, partition, data_version, first_reported_at, last_reported_at, repeats, stored_event_id)
SELECT
    e.asset_key,
    e.event_type,
    e.partition,
    e.data_version,
    min(e.timestamp),
    max(e.timestamp),
    0,
    max(e.event_id)
FROM {db}.asset_events AS e
WHERE e.data_version != ''
GROUP BY e.asset_key, e.event_type, e.partition, e.data_version;
