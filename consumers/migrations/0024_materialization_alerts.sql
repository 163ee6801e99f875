-- Alerts on materialization failures (policy transition `materialization_failed`): an asset (partition) that
-- failed to materialize triggers an alert of kind 'materialization', and its next materialization resolves it.
ALTER TABLE {db}.alerts MODIFY COLUMN kind Enum8('freshness' = 1, 'check' = 2, 'anomaly' = 3, 'run' = 4,
    'sensor_tick' = 5, 'schedule_tick' = 6, 'materialization' = 7);
