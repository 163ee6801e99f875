"""``assetpipe backfill``: files of events (JSON Lines, CSV, Parquet, Avro) read, checked, and published
in parallel, with checkpoints, rejects and progress."""
