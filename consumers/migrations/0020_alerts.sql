-- Alerts (consumers.alerts): one row per delivery of an alert, that is per (alert, channel, recipient), as the
-- alert worker sent it or failed to. An alert is one decision of one policy: a check of an asset became
-- failing (triggered) or passing again (resolved), a run failed, a sensor or schedule tick failed. Its id is
-- derived (uuid5 over policy, asset, subject, transition and the event's id), so deciding it again after a
-- restart, or on another replica, gives the same rows: the worker looks the delivery up before sending, and
-- a row written twice is one row once parts merge (read with FINAL, or argMax(..., updated_at)).
--
-- The state of each (policy, asset, check) is the transition of its latest alert by (event_time, event_id):
-- the alert worker rebuilds it from here when it starts, or gains an asset's partition.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id    UUID,
    delivery_id UUID,
    policy      LowCardinality(String),
    asset_key   String,
    check_name  LowCardinality(String),
    subject     String,
    kind        Enum8('freshness' = 1, 'check' = 2, 'anomaly' = 3, 'run' = 4, 'sensor_tick' = 5,
                      'schedule_tick' = 6),
    transition  Enum8('triggered' = 1, 'resolved' = 2),
    severity    LowCardinality(String),
    state       LowCardinality(String),
    message     String CODEC(ZSTD(3)),
    channel     LowCardinality(String),
    channel_kind Enum8('webhook' = 1, 'slack' = 2, 'email' = 3),
    recipient   String,
    owners      Array(String),
    partition   String,
    link        String,
    status      Enum8('sent' = 1, 'failed' = 2),
    attempts    UInt16,
    error       String CODEC(ZSTD(3)),
    event_id    String,
    event_time  DateTime64(6, 'UTC'),
    created_at  DateTime64(6, 'UTC'),
    sent_at     Nullable(DateTime64(6, 'UTC')),
    updated_at  DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (asset_key, alert_id, channel, recipient)
SETTINGS non_replicated_deduplication_window = 10000;
