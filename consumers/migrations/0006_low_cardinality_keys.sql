-- Asset keys and metadata keys repeat across millions of rows: as LowCardinality their sort (the
-- largest part of an insert into these tables, and they lead both sort keys) compares dictionary
-- positions instead of strings, which roughly halves the cost of writing the numeric time series.
-- A type change of existing data is a mutation: old parts are rewritten in the background.
ALTER TABLE {db}.asset_events MODIFY COLUMN asset_key LowCardinality(String);
ALTER TABLE {db}.asset_metadata_numeric MODIFY COLUMN asset_key LowCardinality(String);
ALTER TABLE {db}.asset_metadata_numeric MODIFY COLUMN key LowCardinality(String);
