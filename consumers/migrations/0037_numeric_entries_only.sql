-- The numeric metadata views (0017's points, 0033's partition values) took each numeric entry by an ARRAY JOIN of
-- the kinds, then looked its text up in the event's whole metadata map, which the join copied once per numeric
-- entry: an OpenLineage materialization's ~4.8 KB of column schema and lineage, twice for a row count and a size.
-- It cost ~50-80 µs of an OpenLineage event's ~580 on ingest (bench/bench_openlineage.py's events, batches of 500).
-- They now join only the numeric entries' own texts (the metadata's entries whose kind is numeric): the same rows.
ALTER TABLE {db}.asset_metadata_points_mv MODIFY QUERY
SELECT p.asset_key AS asset_key, p.label AS label, p.timestamp AS timestamp, assumeNotNull(p.value) AS value
FROM
(
    SELECT
        e.asset_key AS asset_key,
        toLowCardinality(entry.1) AS label,
        e.timestamp AS timestamp,
        if(e.metadata_types[entry.1] = 'bool', toFloat64(entry.2 = 'true'), toFloat64OrNull(entry.2)) AS value
    FROM {db}.asset_events AS e
    ARRAY JOIN mapFilter(
        (k, v) -> has(mapKeys(mapFilter((n, t) -> t IN ('int', 'float', 'bool', 'timestamp'), e.metadata_types)), k),
        e.metadata) AS entry
    WHERE e.event_type IN ('materialization', 'observation')
) AS p
WHERE isNotNull(p.value);

ALTER TABLE {db}.asset_partition_metadata_mv MODIFY QUERY
SELECT
    p.asset_key            AS asset_key,
    p.label                AS label,
    p.partition            AS partition,
    p.timestamp            AS timestamp,
    assumeNotNull(p.value) AS value,
    p.event_id             AS event_id
FROM
(
    SELECT
        e.asset_key AS asset_key,
        toLowCardinality(entry.1) AS label,
        e.partition AS partition,
        e.timestamp AS timestamp,
        if(e.metadata_types[entry.1] = 'bool', toFloat64(entry.2 = 'true'), toFloat64OrNull(entry.2)) AS value,
        e.event_id AS event_id
    FROM {db}.asset_events AS e
    ARRAY JOIN mapFilter(
        (k, v) -> has(mapKeys(mapFilter((n, t) -> t IN ('int', 'float', 'bool', 'timestamp'), e.metadata_types)), k),
        e.metadata) AS entry
    WHERE e.event_type IN ('materialization', 'observation') AND e.partition != ''
) AS p
WHERE isNotNull(p.value);
