-- Aggregates keep the column names analysts filter on, so names resolve to columns, not aliases.

-- Latest materialization per (asset, partition).
CREATE VIEW IF NOT EXISTS {db}.latest_materializations AS
SELECT
    asset_key,
    partition,
    argMax(event_id, timestamp)     AS event_id,
    max(timestamp)                  AS timestamp,
    argMax(data_version, timestamp) AS data_version,
    argMax(metadata, timestamp)     AS metadata,
    argMax(tags, timestamp)         AS tags,
    uniqExact(dedup_key)            AS materializations
FROM {db}.asset_events
WHERE event_type = 'materialization'
GROUP BY asset_key, partition
SETTINGS prefer_column_name_to_alias = 1;

-- Latest result per (asset, check).
CREATE VIEW IF NOT EXISTS {db}.latest_check_results AS
SELECT
    asset_key,
    check_name,
    argMax(event_id, timestamp)       AS event_id,
    max(timestamp)                    AS timestamp,
    argMax(partition, timestamp)      AS partition,
    argMax(check_passed, timestamp)   AS passed,
    argMax(check_severity, timestamp) AS severity,
    argMax(metadata, timestamp)       AS metadata,
    uniqExact(dedup_key)              AS evaluations
FROM {db}.asset_events
WHERE event_type = 'check_evaluation'
GROUP BY asset_key, check_name
SETTINGS prefer_column_name_to_alias = 1;

-- Latest data version per asset, from materializations and observations (Dagster's "current" version).
CREATE VIEW IF NOT EXISTS {db}.latest_data_versions AS
SELECT
    asset_key,
    argMax(data_version, timestamp) AS data_version,
    argMax(event_type, timestamp)   AS event_type,
    argMax(partition, timestamp)    AS partition,
    max(timestamp)                  AS timestamp
FROM {db}.asset_events
WHERE data_version != '' AND event_type IN ('materialization', 'observation')
GROUP BY asset_key
SETTINGS prefer_column_name_to_alias = 1;
