-- The dedup keys by the day each event was ingested (UTC), partitioned by week, so that the ingest worker reads
-- only the keys of its dedup window (ASSETPIPE_DEDUP_WINDOW_DAYS): its key filter loads them at start, and its
-- lookups find them, in the window's partitions alone, however long the history. asset_crc (CRC32 of the asset
-- key: librdkafka's default partitioner sends an event to asset_crc % partitions) and kafka_partition (the
-- partition it came through) tell which partitions' filters hold a key, as asset_events told before. Sorted by
-- the key, both come in random order: an asset's CRC repeats only at ZSTD's higher levels' reach (at level 3 it
-- stays 4 bytes), and T64 keeps only a partition number's few significant bits.
--
-- The table is built again from asset_events: a warehouse upgraded to this version spends about the time of
-- an INSERT ... SELECT of its events here, once. Each event's key is taken both as stored with it and as
-- consumers.ingest.sql.dedup_key_expr computes it today (rows written before 0005 keep an older hash in
-- asset_events.dedup_key, which 0005 recomputed into the table this one replaces).
DROP VIEW IF EXISTS {db}.asset_event_keys_mv;
DROP TABLE IF EXISTS {db}.asset_event_keys;

CREATE TABLE IF NOT EXISTS {db}.asset_event_keys
(
    dedup_key       UInt64,
    event_id        UUID CODEC(ZSTD(3)),
    asset_crc       UInt32 CODEC(ZSTD(9)),
    kafka_partition UInt32 CODEC(T64, ZSTD(3)),
    ingested_on     Date
)
ENGINE = ReplacingMergeTree
PARTITION BY toMonday(ingested_on)
ORDER BY dedup_key
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_event_keys_mv TO {db}.asset_event_keys AS
SELECT dedup_key, event_id, CRC32(asset_key) AS asset_crc, kafka_partition, toDate(ingested_at) AS ingested_on
FROM {db}.asset_events;

INSERT INTO {db}.asset_event_keys (dedup_key, event_id, asset_crc, kafka_partition, ingested_on)
SELECT
    arrayJoin(arrayDistinct([dedup_key, multiIf(data_version != '',
        xxh3(concat('v', char(0), toString(event_type), char(0), asset_key, char(0), partition, char(0), data_version)),
        toString(event_type) = 'materialization_failure' AND run_id != '',
        xxh3(concat('r', char(0), toString(event_type), char(0), asset_key, char(0), partition, char(0), run_id)),
        xxh3(concat('e', char(0), lower(toString(event_id)))))])),
    event_id,
    CRC32(asset_key),
    kafka_partition,
    toDate(ingested_at)
FROM {db}.asset_events
SETTINGS throw_on_max_partitions_per_insert_block = 0
