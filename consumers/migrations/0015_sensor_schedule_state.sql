-- Sensors and schedules switched on or off by hand (the web pages, POST /api/sensors/{name}/start|stop and
-- /api/schedules/...): the newest row of a (code location, kind, name) wins over the definition's
-- default_status. The sensor worker and the scheduler read it while they run (read with FINAL).
CREATE TABLE IF NOT EXISTS {db}.instigator_states
(
    code_location LowCardinality(String),
    kind          Enum8('sensor' = 1, 'schedule' = 2),
    name          String,
    status        Enum8('running' = 1, 'stopped' = 2),
    updated_by    String,
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (code_location, kind, name);
