"""The sensor worker: the accepted stream evaluated against the sensors of a code location; ticks,
cursors and run requests recorded in ClickHouse and published to ``run_requests``."""
