"""Retention of the raw history (``ASSETPIPE_RETENTION_DAYS``, docs/retention.md): a ClickHouse TTL on the raw tables,
``asset_events`` and ``asset_metadata_points``, set, changed or removed to match the setting.

Only the raw rows expire. The latest-state tables, the check evaluations (rows of ``asset_events`` the TTL keeps)
and the numeric rollups (``asset_metadata_hourly``, ``asset_metadata_daily``) keep everything: they are filled by
materialized views as events are inserted, and a TTL delete is a merge, which no view sees. The dedup keys
(``asset_event_keys``) are the ingest worker's and keep theirs.

A raw table's TTL is aligned on its monthly partitions: the rows of a month expire together once the month's last
day is ``days`` old, so each part is rewritten (or dropped) once, not every few hours while its rows expire one by
one. A row is kept at least ``days`` days, at most a month more.
"""

from __future__ import annotations

import re

from assetpipe.consumers.cluster import LOCAL
from assetpipe.consumers.warehouse import Warehouse

# Each raw table's TTL, for a number of days
RAW_TTL = {
    "asset_events": "toStartOfMonth(timestamp) + INTERVAL 1 MONTH + INTERVAL {days} DAY DELETE "
    "WHERE event_type != 'check_evaluation'",
    "asset_metadata_points": "toStartOfMonth(timestamp) + INTERVAL 1 MONTH + INTERVAL {days} DAY DELETE",
}
_DAYS = re.compile(r"toIntervalDay\((\d+)\)")
_TABLES = (
    "SELECT t.name, t.engine_full FROM system.tables AS t "
    "WHERE t.database = {db:String} AND t.name IN {names:Array(String)}"
)
# The days of asset_metadata_points' TTL in a query of the catalog's (0: none), from the table's definition as
# ClickHouse renders it (INTERVAL n DAY as toIntervalDay(n)): what the warehouse holds, whatever a process's settings.
# In cluster mode the TTL is on each node's local table (the Distributed one has none).
POINTS_TTL_DAYS = (
    "(SELECT toUInt32OrZero(extract(t.engine_full, 'toIntervalDay[(]([0-9]+)[)]')) FROM system.tables AS t "
    f"WHERE t.database = currentDatabase() AND t.name IN ('asset_metadata_points', 'asset_metadata_points{LOCAL}') "
    "ORDER BY t.name DESC LIMIT 1)"
)


def ttl_days(engine_full: str) -> int | None:
    """The days of a raw table's TTL from its ``engine_full``: None without a TTL, 0 for a TTL not of this module."""
    if " TTL " not in engine_full:
        return None
    found = _DAYS.search(engine_full.partition(" TTL ")[2])
    return int(found.group(1)) if found else 0


def retention_days(warehouse: Warehouse) -> dict[str, int | None]:
    """Each raw table's TTL in days (None: none): in cluster mode, its local table's."""
    names = [*RAW_TTL, *(table + LOCAL for table in RAW_TTL)]
    rows = warehouse.query(_TABLES, parameters={"db": warehouse.database, "names": names}).rows
    found = {str(name): str(engine) for name, engine in rows}
    return {table: ttl_days(found.get(table + LOCAL, found.get(table, ""))) for table in RAW_TTL}


def apply_retention(warehouse: Warehouse, days: int | None) -> list[str]:
    """Set each raw table's TTL to ``days`` (None: remove it), where it differs; returns the tables changed.
    Setting or changing it rewrites the table's parts once, in the background (ClickHouse materializes a new TTL
    as a mutation), and drops what is older; rows dropped stay dropped when the TTL is removed. In cluster mode
    the statements are rewritten for the local tables, as the migrations' (``Warehouse.alter_schema``)."""
    if days is not None and days < 1:
        raise ValueError(f"retention must be at least a day, not {days}")
    changed = []
    for table, current in retention_days(warehouse).items():
        if current == days:
            continue
        if days is None:
            warehouse.alter_schema(f"ALTER TABLE {warehouse.database}.{table} REMOVE TTL")
        else:
            ttl = RAW_TTL[table].format(days=int(days))
            warehouse.alter_schema(f"ALTER TABLE {warehouse.database}.{table} MODIFY TTL {ttl}")
        changed.append(table)
    return sorted(changed)
