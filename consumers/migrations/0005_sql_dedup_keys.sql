-- The ingest worker judges duplicates in ClickHouse, so an event's dedup key is now a hash ClickHouse
-- computes: xxh3 of its identity (consumers.ingest_sql.dedup_key_expr). The lookup table is rebuilt
-- with the new keys from the events themselves. Rows written before keep their old value in
-- asset_events.dedup_key, which is part of that table's sort key and cannot be updated in place.
TRUNCATE TABLE {db}.asset_event_keys;
INSERT INTO {db}.asset_event_keys (dedup_key, event_id)
SELECT
    if(data_version != '', xxh3(concat('v', char(0), toString(event_type), char(0), asset_key, char(0), partition, char(0), data_version)), xxh3(concat('e', char(0), lower(toString(event_id))))),
    event_id
FROM {db}.asset_events;
