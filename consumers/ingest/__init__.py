"""The ingest worker: ``asset_events`` validated, deduplicated and written to ClickHouse exactly once,
staged in SQL (``handler``, ``staging``, ``sql``, ``key_filter``, ``rows``) by consumers of one group
(``worker``)."""
