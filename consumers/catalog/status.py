"""Each asset's status as the catalog shows it: staleness (``MISSING``, ``FRESH``, ``STALE`` and why, from the
registry's ``asset_staleness``, read whole into a snapshot), its checks (the latest result of each, summed up by
severity) and its failed materializations (a partition, or the asset unpartitioned, whose latest attempt to
materialize failed: a failure of type FAILED after its latest materialization): for the assets of a page, and as
filters of the list.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from assetpipe.consumers.catalog.rows import Query

Statuses = Callable[[Sequence[str]], dict[str, dict[str, Any]]]  # keys -> {key: {"status", "causes"}}
STALENESS = ("FRESH", "STALE", "MISSING")
FAILED_CHECK = "FAILED_CHECK"
FAILED = "FAILED"  # a failed materialization
FILTERS = (*STALENESS, FAILED_CHECK, FAILED)
_CAUSE_FIELDS = ("category", "dependency", "reason")

_STALENESS = (
    "SELECT s.asset_key, toString(s.status), s.causes FROM asset_staleness AS s "
    "WHERE s.asset_key IN {keys:Array(String)}"
)
_EVERY_STALENESS = "SELECT s.asset_key, toString(s.status), s.causes FROM asset_staleness AS s"
# SQL conditions on an asset key ``a.key`` for the list's ``status`` filter.
STALENESS_FILTER = "a.key IN (SELECT f.asset_key FROM asset_staleness AS f WHERE toString(f.status) = {status:String})"
FAILED_CHECK_FILTER = (
    "a.key IN (SELECT f.asset_key FROM ("
    "SELECT p.asset_key AS asset_key, argMax(p.check_passed, p.timestamp) AS passed FROM asset_partition_state AS p "
    "WHERE p.event_type = 'check_evaluation' GROUP BY p.asset_key, p.check_name"
    ") AS f WHERE NOT f.passed)"
)
# Per asset and partition, the outcome of its latest attempt to materialize: the event type of the newer of its
# latest materialization and its latest failure, the materialization at the same time (asset_partition_state keeps
# only failures of type FAILED).
_OUTCOMES = (
    "SELECT p.asset_key AS asset_key, p.partition AS partition, "
    "argMax(p.event_type, (p.timestamp, p.event_type = 'materialization')) AS outcome "
    "FROM asset_partition_state AS p WHERE p.event_type IN ('materialization', 'materialization_failure'){where} "
    "GROUP BY p.asset_key, p.partition"
)
# Only a partition with a failure can have failed: the outcomes are those of the partitions a failure names (an asset
# of 100,000 partitions and no failure costs a read of its event types, not 100,000 groups).
_FAILED_PARTITIONS = (
    " AND (p.asset_key, p.partition) IN (SELECT x.asset_key, x.partition FROM asset_partition_state AS x "
    "WHERE x.event_type = 'materialization_failure'{where})"
)
FAILED_FILTER = (
    f"a.key IN (SELECT f.asset_key FROM ({_OUTCOMES.format(where=_FAILED_PARTITIONS.format(where=''))}) AS f "
    "WHERE f.outcome = 'materialization_failure')"
)
_FAILURES = (
    "SELECT f.asset_key, countIf(f.partition != '') FROM ("
    + _OUTCOMES.format(
        where=" AND p.asset_key IN {keys:Array(String)}"
        + _FAILED_PARTITIONS.format(where=" AND x.asset_key IN {keys:Array(String)}")
    )
    + ") AS f WHERE f.outcome = 'materialization_failure' GROUP BY f.asset_key"
)
# Of one asset, the partitions whose latest evaluation of some check failed.
_FAILED_CHECKS = (
    "SELECT uniqExactIf(c.partition, NOT c.passed) FROM (SELECT s.partition AS partition, "
    "argMax(s.check_passed, s.timestamp) AS passed FROM asset_partition_state AS s WHERE s.asset_key = {key:String} "
    "AND s.event_type = 'check_evaluation' AND s.partition != '' GROUP BY s.partition, s.check_name) AS c"
)


def failures(query: Query, keys: Sequence[str]) -> dict[str, int]:
    """Key -> its partitions whose latest attempt to materialize failed (0: the asset is unpartitioned and failed), for
    those of ``keys`` that have one; a key not in the answer is not failed."""
    if not keys:
        return {}
    return {str(key): int(partitions) for key, partitions in query(_FAILURES, {"keys": list(keys)}).rows}


def failed_check_partitions(query: Query, key: str) -> int:
    """The partitions of ``key`` whose latest evaluation of some check failed."""
    return int(query(_FAILED_CHECKS, {"key": key}).rows[0][0])


def cause(value: Any) -> dict[str, str]:
    """A cause tuple: a dict from clickhouse-connect (its elements are named), a list through JSON."""
    if isinstance(value, Mapping):
        return {name: str(value[name]) for name in _CAUSE_FIELDS}
    return dict(zip(_CAUSE_FIELDS, map(str, value), strict=True))


def staleness(query: Query, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Key -> ``{"status", "causes"}`` of those of ``keys`` defined or reported."""
    if not keys:
        return {}
    rows = query(_STALENESS, {"keys": list(keys)}).rows
    return {str(key): {"status": status, "causes": [cause(c) for c in causes]} for key, status, causes in rows}


class StalenessSnapshot:
    """Every asset's status and causes, read whole from ``asset_staleness`` at most every ``max_age`` seconds.

    The view computes every asset's status (the current definitions and every asset's latest state, joined) in
    about 100 ms at 10,000 assets whatever the number of assets asked for, which is most of the time of a page of
    the list or of an asset. Read through this, a status is at most ``max_age`` seconds (and one read) old: a
    read finding the snapshot older starts the next one on a thread of its own and answers from this one; only
    the first read waits, and an asset the snapshot does not know yet (new since) is read from the view.
    ``refresh`` runs the whole read (default ``query``): a query in the background (``Warehouse.own_read_only_query``
    with ``background``) leaves the cores to the readers waiting on an answer."""

    def __init__(
        self,
        query: Query,
        max_age: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        refresh: Query | None = None,
    ) -> None:
        self._query = query
        self._refresh = refresh or query  # the whole read: best a query that leaves the cores to readers
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, dict[str, Any]] | None = None
        self._taken = 0.0
        self._refreshing = False

    def __call__(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        states = self._current()
        found = {key: states[key] for key in keys if key in states}
        missing = [key for key in keys if key not in states]
        return {**found, **staleness(self._query, missing)} if missing else found

    def _current(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            states, stale = self._states, self._clock() - self._taken > self.max_age
            start = states is not None and stale and not self._refreshing
            if start:
                self._refreshing = True
        if states is None:
            return self._read()
        if start:
            threading.Thread(target=self._read, name="catalog-staleness", daemon=True).start()
        return states

    def _read(self) -> dict[str, dict[str, Any]]:
        taken = self._clock()
        try:
            rows = self._refresh(_EVERY_STALENESS, {}).rows
            states = {str(key): {"status": state, "causes": [cause(c) for c in causes]} for key, state, causes in rows}
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            self._states, self._taken = states, taken
        return states


def check_summary(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Checks passed and failed, by severity (``{"passed": {"WARN": n, "ERROR": n}, "failed": {...}}``)."""
    summary: dict[str, dict[str, int]] = {"passed": {"WARN": 0, "ERROR": 0}, "failed": {"WARN": 0, "ERROR": 0}}
    for result in results:
        outcome = "passed" if result["passed"] else "failed"
        severity = str(result["severity"] or "ERROR")
        summary[outcome][severity] = summary[outcome].get(severity, 0) + 1
    return {"total": len(results), **summary}
