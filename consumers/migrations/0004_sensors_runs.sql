-- Sensors, their ticks, the run requests they made, and runs with their events.

-- Every sensor of every code location, as its sensor worker last registered it.
CREATE TABLE IF NOT EXISTS {db}.sensors
(
    code_location LowCardinality(String),
    sensor_name   String,
    sensor_type   Enum8('asset' = 1, 'multi_asset' = 2),
    event_type    Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3),
    asset_keys    Array(String),
    job_name      String,
    status        Enum8('running' = 1, 'stopped' = 2),
    start_at      Enum8('latest' = 1, 'earliest' = 2),
    description   String,
    registered_at DateTime64(6, 'UTC'),
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (code_location, sensor_name);

-- One row per sensor evaluation (tick): the triggering event, the result, the run requests, the cursor.
CREATE TABLE IF NOT EXISTS {db}.sensor_ticks
(
    tick_id            UUID,
    code_location      LowCardinality(String),
    sensor_name        LowCardinality(String),
    status             Enum8('success' = 1, 'skipped' = 2, 'failure' = 3),
    trigger_event_id   UUID,
    trigger_event_type Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3),
    asset_key          String,
    partition          String,
    data_version       String,
    event_timestamp    DateTime64(6, 'UTC'),
    accepted_partition UInt32,
    accepted_offset    UInt64,
    run_ids            Array(UUID),
    run_keys           Array(String),
    job_names          Array(String),
    run_configs        Array(String) CODEC(ZSTD(3)),
    run_tags           Array(Map(String, String)) CODEC(ZSTD(3)),
    partition_keys     Array(String),
    skipped_run_keys   Array(String),
    skip_reason        String,
    error              String CODEC(ZSTD(3)),
    traceback          String CODEC(ZSTD(3)),
    cursor             String CODEC(ZSTD(3)),
    worker_id          String,
    evaluated_at       DateTime64(6, 'UTC') CODEC(Delta, ZSTD(3)),
    duration_ms        Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (code_location, sensor_name, tick_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Every run request a sensor made, one row each (fed by the ticks): the run-key dedup lookup.
CREATE TABLE IF NOT EXISTS {db}.run_requests
(
    run_id               UUID,
    code_location        LowCardinality(String),
    sensor_name          LowCardinality(String),
    run_key              String,
    job_name             LowCardinality(String),
    run_config           String CODEC(ZSTD(3)),
    tags                 Map(String, String) CODEC(ZSTD(3)),
    partition_key        String,
    tick_id              String,
    trigger_event_id     String,
    trigger_event_type   String,
    trigger_asset_key    String,
    trigger_partition    String,
    trigger_data_version String,
    trigger_timestamp    DateTime64(6, 'UTC'),
    requested_at         DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (code_location, sensor_name, run_key, run_id)
SETTINGS non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.run_requests_mv TO {db}.run_requests AS
SELECT
    run_id,
    code_location,
    sensor_name,
    run_key,
    job_name,
    run_config,
    tags,
    partition_key,
    toString(tick_id)            AS tick_id,
    toString(trigger_event_id)   AS trigger_event_id,
    toString(trigger_event_type) AS trigger_event_type,
    asset_key                    AS trigger_asset_key,
    partition                    AS trigger_partition,
    data_version                 AS trigger_data_version,
    event_timestamp              AS trigger_timestamp,
    evaluated_at                 AS requested_at
FROM {db}.sensor_ticks
ARRAY JOIN
    run_ids        AS run_id,
    run_keys       AS run_key,
    job_names      AS job_name,
    run_configs    AS run_config,
    run_tags       AS tags,
    partition_keys AS partition_key;

-- Runs: one row per status change; the highest version (queued < started < launched < succeeded/failed)
-- is the current one, so read with FINAL.
CREATE TABLE IF NOT EXISTS {db}.runs
(
    run_id            UUID,
    job_name          LowCardinality(String),
    code_location     LowCardinality(String),
    status            Enum8('queued' = 1, 'started' = 2, 'launched' = 3, 'succeeded' = 4, 'failed' = 5),
    run_key           String,
    run_config        String CODEC(ZSTD(3)),
    tags              Map(String, String) CODEC(ZSTD(3)),
    partition_key     String,
    sensor_name       String,
    tick_id           String,
    trigger_event_id  String,
    trigger_asset_key String,
    requested_at      DateTime64(6, 'UTC'),
    started_at        Nullable(DateTime64(6, 'UTC')),
    finished_at       Nullable(DateTime64(6, 'UTC')),
    duration_ms       Nullable(Float64),
    attempts          UInt16,
    error_type        String,
    error_message     String CODEC(ZSTD(3)),
    error_traceback   String CODEC(ZSTD(3)),
    error_metadata    Map(String, String) CODEC(ZSTD(3)),
    worker_host       LowCardinality(String),
    updated_at        DateTime64(6, 'UTC') DEFAULT now64(6),
    version           UInt8
)
ENGINE = ReplacingMergeTree(version)
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 10000;

-- A run is queued the moment its request is recorded.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.runs_queued_mv TO {db}.runs AS
SELECT
    run_id,
    job_name,
    code_location,
    'queued' AS status,
    run_key,
    run_config,
    tags,
    partition_key,
    sensor_name,
    tick_id,
    trigger_event_id,
    trigger_asset_key,
    requested_at,
    toUInt8(1) AS version
FROM {db}.run_requests;

-- What happened inside runs: outputs, asset events, expectation results, logs, retries, failures.
CREATE TABLE IF NOT EXISTS {db}.run_events
(
    run_id         UUID,
    seq            UInt32,
    timestamp      DateTime64(6, 'UTC') CODEC(Delta, ZSTD(3)),
    event_type     Enum8('run_started' = 1, 'step_output' = 2, 'asset_materialization' = 3,
                         'asset_observation' = 4, 'asset_check_evaluation' = 5, 'expectation_result' = 6,
                         'log' = 7, 'step_retry' = 8, 'step_success' = 9, 'step_failure' = 10,
                         'run_success' = 11, 'run_failure' = 12, 'run_launched' = 13),
    job_name       LowCardinality(String),
    op_name        LowCardinality(String),
    attempt        UInt16,
    level          LowCardinality(String),
    message        String CODEC(ZSTD(3)),
    output_name    String,
    asset_key      String,
    asset_event_id String,
    success        Nullable(Bool),
    label          String,
    metadata       Map(String, String) CODEC(ZSTD(3)),
    metadata_types Map(String, LowCardinality(String)) CODEC(ZSTD(3)),
    error_type     String,
    traceback      String CODEC(ZSTD(3))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (run_id, timestamp, seq);

-- The latest cursor of each sensor: the last event it evaluated (a multi-asset sensor: its last change).
CREATE VIEW IF NOT EXISTS {db}.sensor_cursors AS
SELECT
    code_location,
    sensor_name,
    argMax(cursor, evaluated_at)           AS cursor,
    argMax(trigger_event_id, evaluated_at) AS last_event_id,
    max(evaluated_at)                      AS last_evaluated_at,
    count()                                AS ticks
FROM {db}.sensor_ticks
GROUP BY code_location, sensor_name
SETTINGS prefer_column_name_to_alias = 1;

-- The cursor of each multi-asset sensor per monitored asset: the newest materialization it has seen and
-- whether it consumed it. A tick stores only the entries its evaluation changed; the newest wins.
CREATE VIEW IF NOT EXISTS {db}.multi_asset_cursors AS
SELECT
    code_location,
    sensor_name,
    entry.1                                                                                   AS asset_key,
    argMax(JSONExtractString(entry.2, 'event_id'), JSONExtractUInt(entry.2, 'updated_us'))    AS event_id,
    toBool(argMax(JSONExtractBool(entry.2, 'consumed'), JSONExtractUInt(entry.2, 'updated_us'))) AS consumed,
    fromUnixTimestamp64Micro(toInt64(max(JSONExtractUInt(entry.2, 'updated_us'))), 'UTC')    AS updated_at
FROM {db}.sensor_ticks
ARRAY JOIN JSONExtractKeysAndValuesRaw(cursor) AS entry
WHERE startsWith(entry.2, '{')
GROUP BY code_location, sensor_name, asset_key;
