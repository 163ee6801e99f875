-- OpenLineage in (docs/openlineage.md): each event as it came, for a while, and the lineage its runs and jobs
-- observed, for good. The OpenLineage worker writes both from the receiver's topic.

-- Each OpenLineage event as it came (its JSON text), kept until `expires_at` (received + the setting
-- ASSETPIPE_OPENLINEAGE_RAW_TTL_DAYS when it was written). An event sent again has the same `event_id` (a hash
-- of its run id, type and time, or of its dataset or job and time): one row once merged.
CREATE TABLE IF NOT EXISTS {db}.openlineage_events
(
    event_id    FixedString(40),
    kind        LowCardinality(String),
    event_type  LowCardinality(String),
    event_time  DateTime64(6, 'UTC'),
    received_at DateTime64(6, 'UTC'),
    expires_at  DateTime('UTC'),
    run_id      String,
    job         String,
    assets      Array(String),
    event       String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(expires_at)
ORDER BY (event_id)
TTL expires_at DELETE
SETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1;

-- Lineage observed by OpenLineage runs and jobs: an edge from each input of a run (or job) to each of its
-- outputs, with the first and last time it was seen and the last run. The catalog's lineage view and
-- staleness read them for assets that have no code definition (asset_lineage_dependencies).
CREATE TABLE IF NOT EXISTS {db}.asset_lineage_edges
(
    downstream  String,
    upstream    String,
    first_seen  SimpleAggregateFunction(min, DateTime64(6, 'UTC')),
    last_seen   SimpleAggregateFunction(max, DateTime64(6, 'UTC')),
    last_run_id AggregateFunction(argMax, String, DateTime64(6, 'UTC')),
    last_job    AggregateFunction(argMax, String, DateTime64(6, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (downstream, upstream)
SETTINGS non_replicated_deduplication_window = 10000;

-- What the worker inserts: one row an edge seen; the view below aggregates it into asset_lineage_edges.
CREATE TABLE IF NOT EXISTS {db}.asset_lineage_edges_in
(
    downstream String,
    upstream   String,
    seen       DateTime64(6, 'UTC'),
    run_id     String,
    job        String
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.asset_lineage_edges_mv TO {db}.asset_lineage_edges AS
SELECT
    i.downstream                     AS downstream,
    i.upstream                       AS upstream,
    min(i.seen)                      AS first_seen,
    max(i.seen)                      AS last_seen,
    argMaxState(i.run_id, i.seen)    AS last_run_id,
    argMaxState(i.job, i.seen)       AS last_job
FROM {db}.asset_lineage_edges_in AS i
GROUP BY i.downstream, i.upstream;

-- Each asset's dependencies as runs observed them, one row an asset.
CREATE VIEW IF NOT EXISTS {db}.asset_lineage_dependencies AS
SELECT
    e.downstream                  AS asset_key,
    arraySort(groupUniqArray(e.upstream)) AS deps,
    max(e.last_seen)              AS last_seen
FROM {db}.asset_lineage_edges AS e
GROUP BY e.downstream;
