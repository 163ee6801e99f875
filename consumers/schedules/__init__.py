"""The schedule worker: a timer over a code location's schedules; ticks recorded in ClickHouse, their run
requests published to ``run_requests``."""
