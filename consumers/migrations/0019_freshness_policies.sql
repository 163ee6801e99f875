-- Freshness policies and monitor checks (docs/assets.md#freshness-and-checks).
--
-- Each definition stores its freshness policy as the canonical JSON of FreshnessPolicy.to_json ('' for none):
-- a changed policy is a new version, as any changed field is. The column goes last in every table and view,
-- so that asset_definitions_ranked's SELECT * fills asset_definitions_current column by column, and what
-- read these views before reads the same columns in the same order. Definitions stored before have ''.
ALTER TABLE {db}.asset_definitions ADD COLUMN IF NOT EXISTS freshness_policy String DEFAULT '' CODEC(ZSTD(3));

ALTER TABLE {db}.asset_definitions_current ADD COLUMN IF NOT EXISTS freshness_policy String DEFAULT '' CODEC(ZSTD(3));

-- 0010's view, with the policy.
CREATE OR REPLACE VIEW {db}.asset_definition_versions AS
SELECT
    c.asset_key            AS asset_key,
    c.asset_key_path       AS asset_key_path,
    c.code_location        AS code_location,
    c.source               AS source,
    c.definition_hash      AS definition_hash,
    c.registered_at        AS registered_at,
    c.removed              AS removed,
    sum(NOT c.removed) OVER (
        PARTITION BY c.asset_key, c.code_location, c.source ORDER BY c.registered_at
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )                      AS version,
    c.description          AS description,
    c.owners               AS owners,
    c.tags                 AS tags,
    c.kinds                AS kinds,
    c.group_name           AS group_name,
    c.deps                 AS deps,
    c.code_version         AS code_version,
    c.execution_type       AS execution_type,
    c.partitions           AS partitions,
    c.automation_condition AS automation_condition,
    c.metadata             AS metadata,
    c.metadata_types       AS metadata_types,
    c.freshness_policy     AS freshness_policy
FROM
(
    SELECT
        a.*,
        (a.definition_hash, a.removed) != lagInFrame((a.definition_hash, a.removed), 1, ('', true)) OVER (
            PARTITION BY a.asset_key, a.code_location, a.source ORDER BY a.registered_at
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS changed
    FROM {db}.asset_definitions AS a
) AS c
WHERE c.changed;

-- 0016's view, with the policy after `revision`, where asset_definitions_current has it.
CREATE OR REPLACE VIEW {db}.asset_definitions_ranked AS
SELECT
    w.asset_key            AS asset_key,
    w.asset_key_path       AS asset_key_path,
    w.code_location        AS code_location,
    w.source               AS source,
    w.definition_hash      AS definition_hash,
    w.registered_at        AS registered_at,
    w.version              AS version,
    w.description          AS description,
    w.owners               AS owners,
    w.tags                 AS tags,
    w.kinds                AS kinds,
    w.group_name           AS group_name,
    w.deps                 AS deps,
    w.code_version         AS code_version,
    w.execution_type       AS execution_type,
    w.partitions           AS partitions,
    w.automation_condition AS automation_condition,
    w.metadata             AS metadata,
    w.metadata_types       AS metadata_types,
    arraySort(arrayFilter(x -> x != w.label, w.labels)) AS shadowed,
    toUInt32(w.versions)   AS versions,
    NOT w.removed          AS defined,
    toUInt64(w.revision)   AS revision,
    w.freshness_policy     AS freshness_policy
FROM
(
    SELECT
        l.*,
        row_number() OVER (
            PARTITION BY l.asset_key ORDER BY l.removed ASC, l.source = 'code' DESC, l.registered_at DESC
        ) AS rank,
        groupArrayIf(l.label, NOT l.removed) OVER (PARTITION BY l.asset_key) AS labels
    FROM
    (
        SELECT
            v.*,
            concat(toString(v.source), if(v.code_location = '', '', concat(':', v.code_location))) AS label,
            row_number() OVER (
                PARTITION BY v.asset_key, v.code_location, v.source ORDER BY v.registered_at DESC
            ) AS newest,
            sum(NOT v.removed) OVER (PARTITION BY v.asset_key) AS versions,
            count() OVER (PARTITION BY v.asset_key) AS revision
        FROM {db}.asset_definition_versions AS v
    ) AS l
    WHERE l.newest = 1
) AS w
WHERE w.rank = 1;

-- 0016's view, with the policy.
CREATE OR REPLACE VIEW {db}.latest_asset_definitions AS
SELECT
    c.asset_key            AS asset_key,
    c.asset_key_path       AS asset_key_path,
    c.code_location        AS code_location,
    c.source               AS source,
    c.definition_hash      AS definition_hash,
    c.registered_at        AS registered_at,
    c.version              AS version,
    c.description          AS description,
    c.owners               AS owners,
    c.tags                 AS tags,
    c.kinds                AS kinds,
    c.group_name           AS group_name,
    c.deps                 AS deps,
    c.code_version         AS code_version,
    c.execution_type       AS execution_type,
    c.partitions           AS partitions,
    c.automation_condition AS automation_condition,
    c.metadata             AS metadata,
    c.metadata_types       AS metadata_types,
    c.shadowed             AS shadowed,
    c.versions             AS versions,
    c.freshness_policy     AS freshness_policy
FROM {db}.asset_definitions_current AS c FINAL
WHERE c.defined;

-- The monitor checks of each code location (Definitions(asset_checks=[...]): build_last_update_freshness_checks,
-- build_metadata_bounds_checks, build_metadata_anomaly_checks), registered with its assets and as they are:
-- the location's whole set. A row is written only for a check that is new or whose kind, severity or params
-- changed, and for a check the location no longer has (removed = true, with what was removed). `params` is
-- the kind's JSON object, keys sorted (MonitorSpec.params_json).
CREATE TABLE IF NOT EXISTS {db}.asset_monitors
(
    code_location LowCardinality(String),
    asset_key     String,
    check_name    String,
    kind          Enum8('last_update' = 1, 'bounds' = 2, 'anomaly' = 3),
    severity      Enum8('WARN' = 1, 'ERROR' = 2),
    params        String CODEC(ZSTD(3)),
    registered_at DateTime64(6, 'UTC'),
    removed       Bool
)
ENGINE = MergeTree
ORDER BY (code_location, asset_key, check_name, registered_at)
SETTINGS non_replicated_deduplication_window = 10000;

-- Each check a code location has now: its latest row, unless that row removed it.
CREATE VIEW IF NOT EXISTS {db}.current_asset_monitors AS
SELECT
    m.code_location                                          AS code_location,
    m.asset_key                                              AS asset_key,
    m.check_name                                             AS check_name,
    argMax(m.kind, m.registered_at)                          AS kind,
    argMax(m.severity, m.registered_at)                      AS severity,
    argMax(m.params, m.registered_at)                        AS params,
    max(m.registered_at)                                     AS registered_at
FROM {db}.asset_monitors AS m
GROUP BY m.code_location, m.asset_key, m.check_name
HAVING NOT argMax(m.removed, m.registered_at)
