"""An asset's partitions, in key order, a page at a time: each one's latest materialization, latest observation,
latest failure to materialize and the latest result of each of its checks, from ``asset_partition_state`` (one
row per partition, event type and check, whatever the number of events), so a page costs the same at partition
100,000 as at the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assetpipe.consumers.catalog import cursor
from assetpipe.consumers.catalog.rows import Query, iso

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_PAGE = (
    "SELECT p.partition, toString(p.event_type), toString(p.check_name), toUnixTimestamp64Micro(max(p.timestamp)), "
    "toString(argMax(p.event_id, p.timestamp)), argMax(p.data_version, p.timestamp), argMax(p.run_id, p.timestamp), "
    "argMax(p.check_passed, p.timestamp), toString(argMax(p.check_severity, p.timestamp)), "
    "toString(argMax(p.failure_reason, p.timestamp)) "
    "FROM asset_partition_state AS p WHERE p.asset_key = {key:String} AND p.partition IN ("
    "SELECT DISTINCT q.partition FROM asset_partition_state AS q WHERE q.asset_key = {key:String} "
    "AND q.partition > {after:String} ORDER BY q.partition LIMIT {limit:UInt32}) "
    "GROUP BY p.partition, p.event_type, p.check_name ORDER BY p.partition, p.event_type, p.check_name"
)


def _status(partition: Mapping[str, Any], failed: bool) -> str:
    if failed:
        return "FAILED"
    if partition["materialization"] is not None:
        return "MATERIALIZED"
    if partition["observation"] is not None:
        return "OBSERVED"
    return "MISSING"


def _failed(latest: Mapping[str, int]) -> bool:
    """The latest attempt to materialize failed: a failure and no materialization since."""
    failure = latest.get("materialization_failure")
    return failure is not None and failure > latest.get("materialization", failure - 1)


def partitions(query: Query, asset_key: str, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of the asset's partitions (``{"items", "next_cursor"}``; ``params``: ``cursor``, ``limit``). Each
    item: ``partition``, ``status`` (``FAILED`` when its latest failure to materialize is newer than its latest
    materialization, else ``MATERIALIZED``, ``OBSERVED``, or ``MISSING`` when it only has check results),
    ``materialization`` and ``observation`` (time, id, data version, run id), ``failure`` (time, id, run id,
    ``reason``), ``checks`` (the latest result of each), ``failed_checks``."""
    size = cursor.limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    position = cursor.decode(params.get("cursor"), "partitions", (str,))
    values = {"key": asset_key, "after": position[0] if position else "", "limit": size + 1}
    found: dict[str, dict[str, Any]] = {}
    attempts: dict[str, dict[str, int]] = {}  # partition -> event type -> the time of its latest, in microseconds
    for partition, kind, check, at, event_id, version, run_id, passed, severity, reason in query(_PAGE, values).rows:
        item = found.setdefault(
            partition,
            {"partition": partition, "materialization": None, "observation": None, "failure": None, "checks": [],
             "failed_checks": 0},
        )  # fmt: skip
        latest = {"timestamp": iso(at), "event_id": event_id, "data_version": version or None, "run_id": run_id or None}
        if kind == "check_evaluation":
            item["checks"].append(
                {"check_name": check, "passed": bool(passed), "severity": severity or None, "timestamp": iso(at),
                 "event_id": event_id}
            )  # fmt: skip
            item["failed_checks"] += not passed
        elif kind == "materialization_failure":
            item["failure"] = {"timestamp": iso(at), "event_id": event_id, "run_id": run_id or None, "reason": reason}
            attempts.setdefault(partition, {})[kind] = at
        else:
            item[kind] = latest
            attempts.setdefault(partition, {})[kind] = at
    items = [{**item, "status": _status(item, _failed(attempts.get(item["partition"], {})))} for item in found.values()]
    return cursor.page(items, [cursor.encode("partitions", item["partition"]) for item in items], size)
