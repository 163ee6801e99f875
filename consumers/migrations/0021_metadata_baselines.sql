-- The baselines of the volume anomaly checks (build_metadata_anomaly_checks, registered in
-- asset_monitors): for each monitored (asset, label), the median and the median absolute deviation of its
-- values over the check's trailing `lookback_days`, for every day (weekday 0) and for each weekday (1 is
-- Monday, in UTC), recomputed by a refreshable materialized view every 10 minutes from
-- asset_metadata_points. The check worker reads the table (whole: a few rows per monitored label) and
-- judges each new value against it; it uses the weekday's baseline when the weekday medians differ by more
-- than the values scatter (a weekly pattern). `SYSTEM REFRESH VIEW asset_metadata_baselines_mv` recomputes
-- it at once.
CREATE TABLE IF NOT EXISTS {db}.asset_metadata_baselines
(
    asset_key   String,
    label       String,
    weekday     UInt8,
    values      UInt64,
    days        UInt64,
    median      Float64,
    mad         Float64,
    first_at    DateTime64(6, 'UTC'),
    last_at     DateTime64(6, 'UTC'),
    computed_at DateTime64(6, 'UTC')
)
ENGINE = MergeTree
ORDER BY (asset_key, label, weekday);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_metadata_baselines_mv
REFRESH EVERY 10 MINUTE
TO {db}.asset_metadata_baselines AS
SELECT
    g.asset_key                                               AS asset_key,
    g.label                                                   AS label,
    g.weekday                                                 AS weekday,
    length(g.vs)                                              AS values,
    g.days                                                    AS days,
    arrayReduce('median', g.vs)                               AS median,
    arrayReduce('median', arrayMap(x -> abs(x - median), g.vs)) AS mad,
    g.first_at                                                AS first_at,
    g.last_at                                                 AS last_at,
    now64(6, 'UTC')                                           AS computed_at
FROM
(
    SELECT
        p.asset_key                  AS asset_key,
        p.label                      AS label,
        toUInt8(if(grouping(toDayOfWeek(p.timestamp)) = 1, 0, toDayOfWeek(p.timestamp))) AS weekday,
        groupArray(p.value)          AS vs,
        uniqExact(toDate(p.timestamp)) AS days,
        min(p.timestamp)             AS first_at,
        max(p.timestamp)             AS last_at
    FROM {db}.asset_metadata_points AS p
    INNER JOIN
    (
        SELECT
            c.asset_key                                       AS asset_key,
            JSONExtractString(c.params, 'metadata_key')       AS label,
            max(JSONExtractUInt(c.params, 'lookback_days'))   AS lookback_days
        FROM {db}.current_asset_monitors AS c
        WHERE c.kind = 'anomaly'
        GROUP BY c.asset_key, label
    ) AS m ON m.asset_key = p.asset_key AND m.label = p.label
    WHERE (p.asset_key, p.label) IN
        (
            SELECT c.asset_key, JSONExtractString(c.params, 'metadata_key')
            FROM {db}.current_asset_monitors AS c
            WHERE c.kind = 'anomaly'
        )
        AND p.timestamp >= now64(6, 'UTC') - toIntervalDay(m.lookback_days)
    GROUP BY GROUPING SETS ((p.asset_key, p.label), (p.asset_key, p.label, toDayOfWeek(p.timestamp)))
) AS g;
