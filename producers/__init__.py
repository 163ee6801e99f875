"""The publishing side: the SDK (``reporter``), the one Kafka writer (``publisher``), the HTTP API
(``http``) and file backfills (``backfill``). Users import its public names from ``assetpipe``."""
