-- A dedup key hashed from its event's id (an event without a data version: consumers.ingest.sql.dedup_key_expr)
-- names its event already: the same key is the same event id. Such keys are stored without the id (the zero UUID),
-- which the ingest worker's verdict reads as "held by this very event" (REDELIVERED), as it read the id before. The
-- id is random, 16 bytes no codec shrinks: a key of this kind now takes ~13 bytes, not ~29 (an OpenLineage event's
-- three outputs, 48 bytes of the ~270 its typed rows take). Keys of a data version or a failed run keep their
-- event's id, which tells a redelivery from a repeated report. Keys stored before keep theirs; nothing is rewritten.
ALTER TABLE {db}.asset_event_keys_mv MODIFY QUERY
SELECT
    dedup_key,
    if(dedup_key = xxh3(concat('e', char(0), lower(toString(event_id)))),
       toUUID('00000000-0000-0000-0000-000000000000'), event_id) AS event_id,
    CRC32(asset_key) AS asset_crc,
    kafka_partition,
    toDate(ingested_at) AS ingested_on
FROM {db}.asset_events;
