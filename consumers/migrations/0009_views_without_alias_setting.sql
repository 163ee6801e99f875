-- The latest_* views read the columns of asset_events by their qualified names. They relied on the
-- query setting prefer_column_name_to_alias, which a read-only client (readonly=1: `assetpipe sql`, or an
-- analyst's read-only ClickHouse user) cannot apply: there `timestamp` inside argMax named the alias
-- max(timestamp), and every query on these views failed (ILLEGAL_AGGREGATION).

CREATE OR REPLACE VIEW {db}.latest_materializations AS
SELECT
    e.asset_key                         AS asset_key,
    e.partition                         AS partition,
    argMax(e.event_id, e.timestamp)     AS event_id,
    max(e.timestamp)                    AS timestamp,
    argMax(e.data_version, e.timestamp) AS data_version,
    argMax(e.metadata, e.timestamp)     AS metadata,
    argMax(e.tags, e.timestamp)         AS tags,
    uniqExact(e.dedup_key)              AS materializations
FROM {db}.asset_events AS e
WHERE e.event_type = 'materialization'
GROUP BY e.asset_key, e.partition;

CREATE OR REPLACE VIEW {db}.latest_check_results AS
SELECT
    e.asset_key                           AS asset_key,
    e.check_name                          AS check_name,
    argMax(e.event_id, e.timestamp)       AS event_id,
    max(e.timestamp)                      AS timestamp,
    argMax(e.partition, e.timestamp)      AS partition,
    argMax(e.check_passed, e.timestamp)   AS passed,
    argMax(e.check_severity, e.timestamp) AS severity,
    argMax(e.metadata, e.timestamp)       AS metadata,
    uniqExact(e.dedup_key)                AS evaluations
FROM {db}.asset_events AS e
WHERE e.event_type = 'check_evaluation'
GROUP BY e.asset_key, e.check_name;

CREATE OR REPLACE VIEW {db}.latest_data_versions AS
SELECT
    e.asset_key                         AS asset_key,
    argMax(e.data_version, e.timestamp) AS data_version,
    argMax(e.event_type, e.timestamp)   AS event_type,
    argMax(e.partition, e.timestamp)    AS partition,
    max(e.timestamp)                    AS timestamp
FROM {db}.asset_events AS e
WHERE e.data_version != '' AND e.event_type IN ('materialization', 'observation')
GROUP BY e.asset_key;
