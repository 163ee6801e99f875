-- Writing and merging asset_events costs most in its two metadata maps. A metadata kind is one of a
-- fixed set (the Avro enum MetadataKind): as an Enum8 it is one plain byte, where LowCardinality kept
-- a dictionary per granule that every merge rebuilt (the map's merges cost about half as much now).
-- Each kind's value is its position in MetadataKind, as in the rows the ingest worker stages, so the
-- insert copies it as it is. A kind added to MetadataKind needs a later migration that adds it here
-- (a unit test checks that the two agree).
-- Metadata text is compressed with LZ4: ZSTD(3) saved ~6 bytes an event and cost a third of the
-- map's write and merge.
ALTER TABLE {db}.asset_events MODIFY COLUMN metadata_types Map(String, Enum8('text' = 0, 'url' = 1, 'path' = 2, 'notebook_path' = 3, 'json' = 4, 'md' = 5, 'int' = 6, 'float' = 7, 'bool' = 8, 'timestamp' = 9, 'null' = 10, 'asset' = 11, 'table' = 12, 'table_schema' = 13, 'column_lineage' = 14, 'code_references' = 15));
ALTER TABLE {db}.asset_events MODIFY COLUMN metadata Map(String, String) CODEC(LZ4);
