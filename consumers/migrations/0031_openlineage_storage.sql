-- Storage of OpenLineage events (bench/bench_openlineage.py's event: 3 outputs, a 30-column schema and column
-- lineage, ~10 KB of JSON).
--
-- Their materializations carry a dataset's column schema and column lineage as metadata (docs/openlineage.md): the
-- same text again in each run of the dataset, ~14.5 KB of metadata text per event. LZ4 (0007) codes a repeat of
-- several KB in tens of bytes, ZSTD in a few: the map took 141 bytes an event with LZ4 and takes 47 with ZSTD(1),
-- for ~15 µs more of CPU per event on insert; a map of a few small entries changes by a byte or two. Run ids are
-- mostly UUID text, which ZSTD's entropy coding halves and LZ4 cannot. Codec changes only: existing parts keep
-- their encoding until merged, nothing is rewritten.
ALTER TABLE {db}.asset_events MODIFY COLUMN metadata Map(String, String) CODEC(ZSTD(1));
ALTER TABLE {db}.asset_events MODIFY COLUMN run_id String CODEC(ZSTD(1));

-- The events as they came, sorted by job and time: the runs of one job send nearly the same JSON, which ZSTD then
-- finds side by side (173 bytes an event sorted by id, 68 so). An event sent again has the same id, job and time,
-- so the engine still keeps one row of it. Ids (hex SHA-1) and run ids are text of 16 symbols: ZSTD halves them.
-- The table holds ASSETPIPE_OPENLINEAGE_RAW_TTL_DAYS of events: they are copied once into the new order.
CREATE TABLE IF NOT EXISTS {db}.openlineage_events_by_job
(
    event_id    FixedString(40) CODEC(ZSTD(1)),
    kind        LowCardinality(String),
    event_type  LowCardinality(String),
    event_time  DateTime64(6, 'UTC'),
    received_at DateTime64(6, 'UTC'),
    expires_at  DateTime('UTC'),
    run_id      String CODEC(ZSTD(1)),
    job         String,
    assets      Array(String),
    event       String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(expires_at)
ORDER BY (job, event_time, event_id)
TTL expires_at DELETE
SETTINGS non_replicated_deduplication_window = 10000, ttl_only_drop_parts = 1;

INSERT INTO {db}.openlineage_events_by_job
SELECT event_id, kind, event_type, event_time, received_at, expires_at, run_id, job, assets, event
FROM {db}.openlineage_events;

DROP TABLE IF EXISTS {db}.openlineage_events SETTINGS max_table_size_to_drop = 0;

RENAME TABLE {db}.openlineage_events_by_job TO {db}.openlineage_events;
