-- Materialization failures (Dagster's AssetMaterializationFailure: an asset was to be materialized and was
-- not) and the event source openlineage. Every Enum8 that holds an event type or a source gains the new
-- value: a change of metadata alone (the stored values keep their codes), allowed on sort-key columns.
ALTER TABLE {db}.asset_events MODIFY COLUMN event_type
    Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3, 'materialization_failure' = 4);
ALTER TABLE {db}.asset_events MODIFY COLUMN source
    Enum8('sdk' = 1, 'http' = 2, 'backfill' = 3, 'run' = 4, 'openlineage' = 5);

-- A failure's type and reason (the Avro enums MaterializationFailureType and MaterializationFailureReason);
-- NULL on every other event, as check_passed and check_severity are on events that are not checks.
ALTER TABLE {db}.asset_events
    ADD COLUMN IF NOT EXISTS failure_type Nullable(Enum8('FAILED' = 1, 'SKIPPED' = 2)) AFTER check_severity,
    ADD COLUMN IF NOT EXISTS failure_reason Nullable(Enum8('FAILED_TO_MATERIALIZE' = 1,
        'UPSTREAM_FAILED_TO_MATERIALIZE' = 2, 'RUN_TERMINATED' = 3, 'UNKNOWN' = 4)) AFTER failure_type;

ALTER TABLE {db}.asset_report_state MODIFY COLUMN event_type
    Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3, 'materialization_failure' = 4);
ALTER TABLE {db}.sensors MODIFY COLUMN event_type
    Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3, 'materialization_failure' = 4);
ALTER TABLE {db}.sensor_ticks MODIFY COLUMN trigger_event_type
    Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3, 'materialization_failure' = 4);
ALTER TABLE {db}.run_events MODIFY COLUMN event_type
    Enum8('run_started' = 1, 'step_output' = 2, 'asset_materialization' = 3, 'asset_observation' = 4,
          'asset_check_evaluation' = 5, 'expectation_result' = 6, 'log' = 7, 'step_retry' = 8, 'step_success' = 9,
          'step_failure' = 10, 'run_success' = 11, 'run_failure' = 12, 'run_launched' = 13,
          'asset_materialization_failure' = 14);

-- The latest state of each (asset, partition): the newest failure is a key of its own (event type
-- materialization_failure), so "last materialized" never moves for one. A partition whose newest failure is
-- newer than its newest materialization is failed. Only failures of type FAILED count: a SKIPPED one (an
-- optional asset not produced, a run stopped on purpose) was expected and leaves the state as it was, as in
-- Dagster. The view's query changes in place (no moment without it) to carry the reason.
ALTER TABLE {db}.asset_partition_state
    MODIFY COLUMN event_type
        Enum8('materialization' = 1, 'observation' = 2, 'check_evaluation' = 3, 'materialization_failure' = 4),
    ADD COLUMN IF NOT EXISTS failure_reason Nullable(Enum8('FAILED_TO_MATERIALIZE' = 1,
        'UPSTREAM_FAILED_TO_MATERIALIZE' = 2, 'RUN_TERMINATED' = 3, 'UNKNOWN' = 4));

ALTER TABLE {db}.asset_partition_state_mv MODIFY QUERY
SELECT
    e.asset_key      AS asset_key,
    e.partition      AS partition,
    e.event_type     AS event_type,
    e.check_name     AS check_name,
    e.timestamp      AS timestamp,
    e.event_id       AS event_id,
    e.data_version   AS data_version,
    e.run_id         AS run_id,
    e.check_passed   AS check_passed,
    e.check_severity AS check_severity,
    e.failure_reason AS failure_reason
FROM {db}.asset_events AS e
WHERE e.event_type != 'materialization_failure' OR e.failure_type = 'FAILED';
