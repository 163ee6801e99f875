-- The current definition of each asset as a table, kept by the registry (consumers.registry), so that
-- reading it costs the number of assets, not two window functions over every version ever registered.
-- latest_asset_definitions becomes a view of this table: the catalog, asset_staleness and analysts read
-- it as before.

-- Each asset's current definition by the rule of 0010 (the latest version of each (code_location, source)
-- that was not removed; of those a code location's over one registered over HTTP or from a file, then the
-- latest), one row for every asset ever defined: an asset whose every definition was removed gets a row
-- with defined = false. `versions` counts the asset's versions (not removals) in all its code locations
-- and sources; `revision` counts the rows of asset_definition_versions read (versions and removals), which
-- only grows. Filters on asset_key reach the table's primary key through the window functions, so
-- refreshing a few assets reads only theirs.
CREATE VIEW IF NOT EXISTS {db}.asset_definitions_ranked AS
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
    toUInt64(w.revision)   AS revision
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

-- One row per asset once merged: the registry inserts the ranked rows of the assets with more rows in
-- asset_definition_versions than their row here read (after each registration, so a registration
-- interrupted before it is caught up by the next), and the engine keeps the row that read the most. Two
-- registries refreshing at once write rows of the same revision only if they read the same versions. The
-- times registered never decide, so registries with skewed clocks cannot leave an old row current.
CREATE TABLE IF NOT EXISTS {db}.asset_definitions_current
(
    asset_key            String,
    asset_key_path       Array(String),
    code_location        LowCardinality(String),
    source               Enum8('code' = 1, 'http' = 2, 'file' = 3),
    definition_hash      String,
    registered_at        DateTime64(6, 'UTC'),
    version              UInt64,
    description          String CODEC(ZSTD(3)),
    owners               Array(String),
    tags                 Map(String, String),
    kinds                Array(String),
    group_name           String,
    deps                 Array(String),
    code_version         String,
    execution_type       Enum8('materialization' = 1, 'observation' = 2, 'external' = 3),
    partitions           String CODEC(ZSTD(3)),
    automation_condition String,
    metadata             Map(String, String) CODEC(ZSTD(3)),
    metadata_types       Map(String, LowCardinality(String)),
    shadowed             Array(String),
    versions             UInt32,
    defined              Bool,
    revision             UInt64
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY asset_key
-- An asset's page reads one row by key: small granules, so it decompresses a few rows' maps, not 8,192.
SETTINGS index_granularity = 128;

INSERT INTO {db}.asset_definitions_current SELECT * FROM {db}.asset_definitions_ranked;

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
    c.versions             AS versions
FROM {db}.asset_definitions_current AS c FINAL
WHERE c.defined;
