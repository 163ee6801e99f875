-- Staleness from observed lineage (docs/assets.md#staleness): an asset without a definition that OpenLineage runs
-- materialized has the dependencies its runs observed (asset_lineage_dependencies, as the catalog's lineage view
-- draws it). Such an asset, once materialized and not partitioned, is STALE when one of those inputs was
-- materialized after its own latest materialization, with the cause ('DATA', <the input>, 'upstream materialized
-- after it'), as a defined asset whose materialization recorded no provenance is; else FRESH, as before. Defined
-- assets keep the rules of 0010. The view is 0010's with the observed inputs joined.
CREATE OR REPLACE VIEW {db}.asset_staleness AS
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
    ),
    observed AS
    (
        SELECT
            o.asset_key                            AS asset_key,
            groupArray((o.dependency, os.is_materialized, os.last_materialized_at)) AS inputs
        FROM
        (
            SELECT l.asset_key AS asset_key, arrayJoin(l.deps) AS dependency
            FROM {db}.asset_lineage_dependencies AS l
        ) AS o
        LEFT JOIN state AS os ON os.asset_key = o.dependency
        GROUP BY o.asset_key
    )
SELECT
    if(df.defined = 1, df.asset_key, toString(st.asset_key))               AS asset_key,
    CAST(
        multiIf(
            df.defined = 0, if(notEmpty(causes), 'STALE', 'FRESH'),
            df.type != 'materialization', 'FRESH',
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
            if(
                df.defined = 0 AND st.is_materialized = 1 AND st.is_partitioned = 0,
                arrayMap(
                    i -> ('DATA', i.1, 'upstream materialized after it'),
                    arrayFilter(i -> i.2 = 1 AND i.3 > st.last_materialized_at, arraySort(i -> i.1, ob.inputs))
                ),
                []
            )
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
LEFT JOIN upstream AS up ON up.asset_key = if(df.defined = 1, df.asset_key, toString(st.asset_key))
LEFT JOIN observed AS ob ON ob.asset_key = if(df.defined = 1, df.asset_key, toString(st.asset_key));
