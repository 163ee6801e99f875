-- Schedules and their ticks. A tick's run requests become run_requests and runs (queued) rows in the
-- insert that records the tick, as a sensor tick's do.

-- Every schedule of every code location, as its scheduler last registered it. registered_at is when the
-- schedule was first seen (kept on re-registration), running_since when it last began to run (a new
-- schedule, or a stopped one switched on, starts from then: it has no missed ticks before it).
CREATE TABLE IF NOT EXISTS {db}.schedules
(
    code_location      LowCardinality(String),
    schedule_name      String,
    cron_schedules     Array(String),
    interval_seconds   Nullable(Float64),
    execution_timezone String,
    job_name           String,
    status             Enum8('running' = 1, 'stopped' = 2),
    tags               Map(String, String),
    description        String,
    registered_at      DateTime64(6, 'UTC'),
    running_since      Nullable(DateTime64(6, 'UTC')),
    updated_at         DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (code_location, schedule_name);

-- One row per scheduled time a schedule was evaluated (tick). The sort key is the scheduled time: two
-- scheduler replicas firing the same tick write one row (at once with the tick id as the insert's
-- deduplication token, else when parts merge: read with FINAL).
CREATE TABLE IF NOT EXISTS {db}.schedule_ticks
(
    tick_id            UUID,
    code_location      LowCardinality(String),
    schedule_name      LowCardinality(String),
    status             Enum8('success' = 1, 'skipped' = 2, 'failure' = 3),
    scheduled_at       DateTime64(6, 'UTC'),
    execution_timezone LowCardinality(String),
    catch_up           Bool,
    run_ids            Array(UUID),
    run_keys           Array(String),
    job_names          Array(String),
    run_configs        Array(String) CODEC(ZSTD(3)),
    run_tags           Array(Map(String, String)) CODEC(ZSTD(3)),
    partition_keys     Array(String),
    skip_reason        String,
    error              String CODEC(ZSTD(3)),
    traceback          String CODEC(ZSTD(3)),
    worker_id          String,
    evaluated_at       DateTime64(6, 'UTC') CODEC(Delta, ZSTD(3)),
    duration_ms        Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(scheduled_at)
ORDER BY (code_location, schedule_name, scheduled_at)
SETTINGS non_replicated_deduplication_window = 10000;

-- A schedule's run requests join the sensors' in run_requests (sensor_name empty, the schedule in the
-- tags dagster/schedule_name and dagster/scheduled_execution_time), and runs_queued_mv queues the runs.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.schedule_run_requests_mv TO {db}.run_requests AS
SELECT
    run_id,
    code_location,
    ''                 AS sensor_name,
    run_key,
    job_name,
    run_config,
    tags,
    partition_key,
    toString(tick_id)  AS tick_id,
    ''                 AS trigger_event_id,
    ''                 AS trigger_event_type,
    ''                 AS trigger_asset_key,
    ''                 AS trigger_partition,
    ''                 AS trigger_data_version,
    scheduled_at       AS trigger_timestamp,
    evaluated_at       AS requested_at
FROM {db}.schedule_ticks
ARRAY JOIN
    run_ids        AS run_id,
    run_keys       AS run_key,
    job_names      AS job_name,
    run_configs    AS run_config,
    run_tags       AS tags,
    partition_keys AS partition_key;
