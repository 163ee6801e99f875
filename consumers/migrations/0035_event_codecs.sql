-- Codecs of asset_events measured on OpenLineage's events (bench/bench_openlineage.py: 3 outputs, each with a
-- 30-column schema and column lineage that every run of the dataset sends again), bytes an event once merged:
-- - metadata: ZSTD(6) finds a repeated schema or lineage farther back than ZSTD(1): 32.6 bytes, not 46.7, for
--   ~6 µs more of CPU an event on insert and on each merge (of ~1,000 µs an event in all);
-- - tags: a few short maps, which ZSTD(9) codes in 2.1 bytes, not 4.1, at no measurable cost;
-- - kafka_offset: rows sorted by asset come in no offset order, where Delta gains nothing and T64, which drops
--   the high bits a part's offsets share, does (5.3 bytes, not 7.3).
-- Codec changes only: existing parts keep their encoding until merged, nothing is rewritten.
ALTER TABLE {db}.asset_events MODIFY COLUMN metadata Map(String, String) CODEC(ZSTD(6));
ALTER TABLE {db}.asset_events MODIFY COLUMN tags Map(String, String) CODEC(ZSTD(9));
ALTER TABLE {db}.asset_events MODIFY COLUMN kafka_offset UInt64 CODEC(T64, ZSTD(3));
