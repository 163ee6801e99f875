-- The asset registry: every version of every asset definition (consumers.registry writes it), the latest
-- state of every asset (fed by the events), and staleness computed from both.
-- Views name columns by their table's alias: a read-only client cannot set prefer_column_name_to_alias
-- (see 0009), and without it an alias equal to a column's name would shadow the column.

-- One row per asset and definition version, per (code_location, source). A row is written only when the
-- definition's hash differs from the latest row of its (code_location, source), or when the asset left
-- its code location (removed = true, the hash of the definition removed, other columns empty).
CREATE TABLE IF NOT EXISTS {db}.asset_definitions
(
    asset_key            String,
    asset_key_path       Array(String),
    code_location        LowCardinality(String),
    source               Enum8('code' = 1, 'http' = 2, 'file' = 3),
    definition_hash      String,
    registered_at        DateTime64(6, 'UTC'),
    removed              Bool,
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
    metadata_types       Map(String, LowCardinality(String))
)
ENGINE = MergeTree
ORDER BY (asset_key, code_location, source, registered_at)
SETTINGS non_replicated_deduplication_window = 10000;

-- Each version once: consecutive rows of a (code_location, source) with the same hash and removed flag
-- are one version (two replicas registering the same change may both write it). `version` counts the
-- versions of that (asset, code_location, source) so far; a removal keeps the number of what it removed.
CREATE VIEW IF NOT EXISTS {db}.asset_definition_versions AS
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
    c.metadata_types       AS metadata_types
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

-- The current definition of each asset: the latest version of each (code_location, source) that was not
-- removed, and of those a code location's over one registered over HTTP or from a file, then the latest.
-- `shadowed` names the others ('code:<location>', 'http', 'file:<location>').
CREATE VIEW IF NOT EXISTS {db}.latest_asset_definitions AS
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
    arraySort(arrayFilter(x -> x != w.label, w.labels)) AS shadowed
FROM
(
    SELECT
        l.*,
        row_number() OVER (PARTITION BY l.asset_key ORDER BY l.source = 'code' DESC, l.registered_at DESC) AS rank,
        groupArray(l.label) OVER (PARTITION BY l.asset_key) AS labels
    FROM
    (
        SELECT
            v.*,
            concat(toString(v.source), if(v.code_location = '', '', concat(':', v.code_location))) AS label
        FROM {db}.asset_definition_versions AS v
        ORDER BY v.registered_at DESC
        LIMIT 1 BY v.asset_key, v.code_location, v.source
    ) AS l
    WHERE NOT l.removed
) AS w
WHERE w.rank = 1;

-- The latest state of each asset, from its events (each event is ingested once): the latest
-- materialization with its data version and provenance tags (as the text of a tuple of their keys and
-- values: a Map's argMax state costs several times more to write and to merge than a String's), the latest
-- materialization or observation
-- (its data version is Dagster's current data version), whether partitioned events exist. Read it with
-- the -Merge functions and max() GROUP BY asset_key (asset_staleness does).
CREATE TABLE IF NOT EXISTS {db}.asset_latest_state
(
    asset_key               LowCardinality(String),
    reported_at             SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    materialized            SimpleAggregateFunction(max, UInt8),
    materialized_at         SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    materialization_id      AggregateFunction(argMax, UUID, DateTime64(6, 'UTC')),
    materialization_version AggregateFunction(argMax, String, DateTime64(6, 'UTC')),
    provenance              AggregateFunction(argMax, String, DateTime64(6, 'UTC')),
    versioned               SimpleAggregateFunction(max, UInt8),
    versioned_at            SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    current_version         AggregateFunction(argMax, String, DateTime64(6, 'UTC')),
    current_event_type      AggregateFunction(argMax, String, DateTime64(6, 'UTC')),
    partitioned             SimpleAggregateFunction(max, UInt8)
)
ENGINE = AggregatingMergeTree
ORDER BY asset_key
SETTINGS non_replicated_deduplication_window = 10000;

-- Every aggregate is a latest or a max, so an event counted twice changes nothing: the view is created
-- before the backfill below, and events ingested meanwhile may reach the table both ways.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_latest_state_mv TO {db}.asset_latest_state AS
SELECT
    e.asset_key                                                                    AS asset_key,
    max(e.timestamp)                                                               AS reported_at,
    maxIf(toUInt8(1), e.event_type = 'materialization')                            AS materialized,
    max(if(e.event_type = 'materialization', e.timestamp, toDateTime64('1900-01-01 00:00:00', 6, 'UTC')))                           AS materialized_at,
    argMaxIfState(e.event_id, e.timestamp, e.event_type = 'materialization')       AS materialization_id,
    argMaxIfState(e.data_version, e.timestamp, e.event_type = 'materialization')   AS materialization_version,
    argMaxIfState(
        toString((
            mapKeys(mapFilter((k, v) -> k = 'dagster/code_version' OR startsWith(k, 'dagster/input_data_version/'), e.tags)),
            mapValues(mapFilter((k, v) -> k = 'dagster/code_version' OR startsWith(k, 'dagster/input_data_version/'), e.tags))
        )),
        e.timestamp,
        e.event_type = 'materialization'
    )                                                                              AS provenance,
    maxIf(toUInt8(1), e.event_type IN ('materialization', 'observation'))          AS versioned,
    max(if(e.event_type IN ('materialization', 'observation'), e.timestamp, toDateTime64('1900-01-01 00:00:00', 6, 'UTC')))         AS versioned_at,
    argMaxIfState(e.data_version, e.timestamp, e.event_type IN ('materialization', 'observation'))
                                                                                   AS current_version,
    argMaxIfState(toString(e.event_type), e.timestamp, e.event_type IN ('materialization', 'observation'))
                                                                                   AS current_event_type,
    maxIf(toUInt8(e.partition != ''), e.event_type IN ('materialization', 'observation')) AS partitioned
FROM {db}.asset_events AS e
GROUP BY e.asset_key;

-- Warehouses upgraded to this version: the state of the events stored before.
INSERT INTO {db}.asset_latest_state
SELECT
    e.asset_key,
    max(e.timestamp),
    maxIf(toUInt8(1), e.event_type = 'materialization'),
    max(if(e.event_type = 'materialization', e.timestamp, toDateTime64('1900-01-01 00:00:00', 6, 'UTC'))),
    argMaxIfState(e.event_id, e.timestamp, e.event_type = 'materialization'),
    argMaxIfState(e.data_version, e.timestamp, e.event_type = 'materialization'),
    argMaxIfState(
        toString((
            mapKeys(mapFilter((k, v) -> k = 'dagster/code_version' OR startsWith(k, 'dagster/input_data_version/'), e.tags)),
            mapValues(mapFilter((k, v) -> k = 'dagster/code_version' OR startsWith(k, 'dagster/input_data_version/'), e.tags))
        )),
        e.timestamp,
        e.event_type = 'materialization'
    ),
    maxIf(toUInt8(1), e.event_type IN ('materialization', 'observation')),
    max(if(e.event_type IN ('materialization', 'observation'), e.timestamp, toDateTime64('1900-01-01 00:00:00', 6, 'UTC'))),
    argMaxIfState(e.data_version, e.timestamp, e.event_type IN ('materialization', 'observation')),
    argMaxIfState(toString(e.event_type), e.timestamp, e.event_type IN ('materialization', 'observation')),
    maxIf(toUInt8(e.partition != ''), e.event_type IN ('materialization', 'observation'))
FROM {db}.asset_events AS e
GROUP BY e.asset_key;

-- Every asset defined or reported, with its status after Dagster's rules (docs/assets.md#staleness):
-- MISSING (an @asset never materialized), FRESH, or STALE with its causes. Observable source assets,
-- external assets and assets only reported are always FRESH; a partitioned asset once materialized is
-- FRESH. An asset is STALE when its definition's code version differs from its latest materialization's
-- (CODE), when a dependency's current data version differs from the one its latest materialization
-- recorded (DATA), or when its dependencies differ from those recorded (DEPENDENCIES); a materialization
-- without provenance (no dagster/code_version tag) is STALE when a dependency has a newer
-- materialization or observation (DATA).
CREATE VIEW IF NOT EXISTS {db}.asset_staleness AS
WITH
    state AS
    (
        SELECT
            s.asset_key                            AS asset_key,
            toUInt8(1)                             AS reported,
            max(s.materialized)                    AS is_materialized,
            max(s.materialized_at)                 AS last_materialized_at,
            argMaxMerge(s.provenance)              AS provenance_text,
            CAST(if(provenance_text = '', '([],[])', provenance_text), 'Tuple(Array(String), Array(String))')
                                                   AS provenance_arrays,
            mapFromArrays(provenance_arrays.1, provenance_arrays.2) AS tags,
            max(s.versioned)                       AS is_versioned,
            max(s.versioned_at)                    AS last_versioned_at,
            argMaxMerge(s.current_version)         AS last_version,
            max(s.partitioned)                     AS is_partitioned
        FROM {db}.asset_latest_state AS s
        GROUP BY s.asset_key
    ),
    definitions AS
    (
        SELECT
            d.asset_key                            AS asset_key,
            toUInt8(1)                             AS defined,
            d.code_location                        AS location,
            d.execution_type                       AS type,
            d.code_version                         AS code,
            d.deps                                 AS dependencies,
            d.partitions != ''                     AS has_partitions
        FROM {db}.latest_asset_definitions AS d
    ),
    upstream AS
    (
        SELECT
            u.asset_key                            AS asset_key,
            groupArray((u.dependency, us.is_versioned, us.last_version, us.last_versioned_at)) AS inputs
        FROM
        (
            SELECT dd.asset_key AS asset_key, arrayJoin(dd.dependencies) AS dependency
            FROM definitions AS dd
            WHERE dd.type = 'materialization'
        ) AS u
        LEFT JOIN state AS us ON us.asset_key = u.dependency
        GROUP BY u.asset_key
    )
SELECT
    if(df.defined = 1, df.asset_key, toString(st.asset_key))               AS asset_key,
    CAST(
        multiIf(
            df.defined = 0 OR df.type != 'materialization', 'FRESH',
            st.is_materialized = 0, 'MISSING',
            df.has_partitions OR st.is_partitioned = 1, 'FRESH',
            notEmpty(causes), 'STALE',
            'FRESH'
        ),
        'Enum8(\'MISSING\' = 1, \'FRESH\' = 2, \'STALE\' = 3)'
    )                                                                      AS status,
    CAST(
        if(
            df.defined = 1 AND df.type = 'materialization' AND st.is_materialized = 1 AND NOT df.has_partitions
                AND st.is_partitioned = 0,
            arrayConcat(
                if(
                    mapContains(st.tags, 'dagster/code_version') AND df.code != ''
                        AND df.code != st.tags['dagster/code_version'],
                    [('CODE', '', 'has a new code version')],
                    []
                ),
                arrayMap(
                    p -> ('DEPENDENCIES', p, concat('removed dependency on ', p)),
                    arrayFilter(
                        p -> NOT has(df.dependencies, p),
                        arraySort(arrayMap(
                            t -> substring(t, 28),
                            mapKeys(mapFilter((t, v) -> startsWith(t, 'dagster/input_data_version/'), st.tags))
                        ))
                    )
                ),
                arrayFilter(
                    c -> c.1 != '',
                    arrayMap(
                        i -> multiIf(
                            NOT mapContains(st.tags, 'dagster/code_version'),
                                if(i.2 = 1 AND i.4 > st.last_materialized_at,
                                   ('DATA', i.1, 'upstream materialized after it'), ('', '', '')),
                            NOT mapContains(st.tags, concat('dagster/input_data_version/', i.1)),
                                ('DEPENDENCIES', i.1, concat('has a new dependency on ', i.1)),
                            if(i.2 = 1, if(i.3 = '', 'INITIAL', i.3), 'NULL')
                                    != st.tags[concat('dagster/input_data_version/', i.1)]
                                AND NOT (i.2 = 0 AND st.tags[concat('dagster/input_data_version/', i.1)] = 'INITIAL'),
                                ('DATA', i.1, 'upstream data has changed'),
                            ('', '', '')
                        ),
                        arraySort(i -> i.1, up.inputs)
                    )
                )
            ),
            []
        ),
        'Array(Tuple(category String, dependency String, reason String))'
    )                                                                      AS causes,
    toBool(df.defined)                                                     AS defined,
    if(df.defined = 1, toString(df.type), 'external')                      AS execution_type,
    df.location                                                            AS code_location,
    if(st.is_materialized = 1, st.last_materialized_at, NULL)              AS materialized_at,
    multiIf(st.is_versioned = 0, 'NULL', st.last_version = '', 'INITIAL', st.last_version) AS data_version
FROM definitions AS df
FULL OUTER JOIN state AS st ON st.asset_key = df.asset_key
LEFT JOIN upstream AS up ON up.asset_key = if(df.defined = 1, df.asset_key, toString(st.asset_key));
