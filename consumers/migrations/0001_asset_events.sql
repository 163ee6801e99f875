-- Every accepted asset event, one row each: the table analysts count and filter.
CREATE TABLE IF NOT EXISTS {db}.asset_events
(
    event_id        UUID,
    event_type      Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3),
    asset_key       String,
    asset_key_path  Array(String),
    partition       String,
    data_version    String,
    description     String CODEC(ZSTD(3)),
    metadata        Map(String, String) CODEC(ZSTD(3)),
    metadata_types  Map(String, LowCardinality(String)) CODEC(ZSTD(3)),
    tags            Map(String, String) CODEC(ZSTD(3)),
    check_name      LowCardinality(String),
    check_passed    Nullable(Bool),
    check_severity  Nullable(Enum8('WARN' = 1, 'ERROR' = 2)),
    timestamp       DateTime64(6, 'UTC') CODEC(Delta, ZSTD(3)),
    source          Enum8('sdk' = 1, 'http' = 2, 'backfill' = 3, 'run' = 4),
    producer_host   LowCardinality(String),
    run_id          String,
    dedup_key       UInt64,
    kafka_partition UInt32 CODEC(ZSTD(3)),
    kafka_offset    UInt64 CODEC(Delta, ZSTD(3)),
    ingested_at     DateTime64(6, 'UTC') DEFAULT now64(6) CODEC(Delta, ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (asset_key, event_type, partition, dedup_key)
SETTINGS non_replicated_deduplication_window = 10000;

-- The dedup keys already ingested, for the ingest worker's lookup (fed by the events table).
CREATE TABLE IF NOT EXISTS {db}.asset_event_keys
(
    dedup_key UInt64,
    event_id  UUID
)
ENGINE = ReplacingMergeTree
ORDER BY dedup_key
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_event_keys_mv TO {db}.asset_event_keys AS
SELECT dedup_key, event_id FROM {db}.asset_events;

-- Every numeric metadata entry (int, float, bool, timestamp) as a time series.
CREATE TABLE IF NOT EXISTS {db}.asset_metadata_numeric
(
    asset_key  String,
    partition  String,
    event_type Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3),
    event_id   UUID,
    key        String,
    value      Float64,
    timestamp  DateTime64(6, 'UTC') CODEC(Delta, ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (asset_key, key, partition, timestamp, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_metadata_numeric_mv TO {db}.asset_metadata_numeric AS
SELECT
    asset_key,
    partition,
    event_type,
    event_id,
    entry.1 AS key,
    if(entry.2 = 'bool', toFloat64(metadata[entry.1] = 'true'), toFloat64OrZero(metadata[entry.1])) AS value,
    timestamp
FROM {db}.asset_events
ARRAY JOIN mapFilter((k, t) -> t IN ('int', 'float', 'bool', 'timestamp'), metadata_types) AS entry;
