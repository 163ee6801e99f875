-- A run request may name the assets its run materializes or observes (RunRequest(asset_selection=...),
-- `assetpipe assets materialize`, eager automation): kept on the tick that requested it, on the request and
-- on the run, so a request published again after a crash runs the same assets.
ALTER TABLE {db}.sensor_ticks ADD COLUMN IF NOT EXISTS run_asset_selections Array(Array(String)) CODEC(ZSTD(3));
ALTER TABLE {db}.run_requests ADD COLUMN IF NOT EXISTS asset_selection Array(String) CODEC(ZSTD(3));
ALTER TABLE {db}.runs ADD COLUMN IF NOT EXISTS asset_selection Array(String) CODEC(ZSTD(3));

-- The views that fan a tick's requests out into rows carry the selection along. A tick written without it
-- (an older worker) has an empty array: resized to one empty selection per request.
DROP VIEW IF EXISTS {db}.run_requests_mv;
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
    asset_selection,
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
    run_ids                                                        AS run_id,
    run_keys                                                       AS run_key,
    job_names                                                      AS job_name,
    run_configs                                                    AS run_config,
    run_tags                                                       AS tags,
    partition_keys                                                 AS partition_key,
    arrayResize(run_asset_selections, length(run_ids), CAST([], 'Array(String)')) AS asset_selection;

DROP VIEW IF EXISTS {db}.runs_queued_mv;
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
    asset_selection,
    sensor_name,
    tick_id,
    trigger_event_id,
    trigger_asset_key,
    requested_at,
    toUInt8(1) AS version
FROM {db}.run_requests;
