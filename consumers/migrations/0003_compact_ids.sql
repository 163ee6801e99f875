-- Event ids are UUIDv7 (time-ordered): their leading bytes repeat within a part, which ZSTD packs and
-- LZ4 (the default) mostly does not. Numeric metadata values compress better with ZSTD too.
-- Codec changes only: existing parts keep their encoding until merged, nothing is rewritten.
ALTER TABLE {db}.asset_events MODIFY COLUMN event_id UUID CODEC(ZSTD(3));
ALTER TABLE {db}.asset_event_keys MODIFY COLUMN event_id UUID CODEC(ZSTD(3));
ALTER TABLE {db}.asset_metadata_numeric MODIFY COLUMN event_id UUID CODEC(ZSTD(3));
ALTER TABLE {db}.asset_metadata_numeric MODIFY COLUMN value Float64 CODEC(ZSTD(3));
