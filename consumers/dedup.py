"""Deduplication of asset events by business key.

An event with a data version is identified by (event type, asset key, partition, data version); one
without by its event id. ``dedup_key`` hashes that identity to a UInt64 stored with the row. The
``Deduplicator`` decides per event: NEW (write it), DUPLICATE (another event already holds the key:
count, don't write), or REDELIVERED (this very event was written before a crash: don't write again, but
still publish it downstream, since the crash may have come before that).
"""

from __future__ import annotations

import array
import enum
import hashlib
import sys
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from consumers.warehouse import Warehouse

_LOOKUP_CHUNK = 50_000


class Verdict(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REDELIVERED = "redelivered"


def dedup_key(event_type: str, record: Mapping[str, Any]) -> int:
    data_version = record.get("data_version")
    if data_version:
        identity = "\x00".join(
            ("v", event_type, "/".join(record["asset_key"]), record.get("partition") or "", data_version)
        )
    else:
        identity = "e\x00" + record["event_id"]
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=8).digest(), "little")


class Deduplicator:
    """Classifies events against what is already in ClickHouse, with a bounded cache of recent keys."""

    def __init__(self, warehouse: Warehouse, cache_size: int = 200_000) -> None:
        self._warehouse = warehouse
        self._cache: OrderedDict[int, str] = OrderedDict()
        self._cache_size = cache_size

    def classify(self, keys: Sequence[int], event_ids: Sequence[str]) -> list[Verdict]:
        known: dict[int, str] = {}
        misses = []
        for key in keys:
            owner = self._cache.get(key)
            if owner is None:
                misses.append(key)
            else:
                known[key] = owner
        known.update(self._lookup(misses))
        verdicts = []
        for key, event_id in zip(keys, event_ids, strict=True):
            owner = known.get(key)
            if owner is None:
                known[key] = event_id  # first in this batch wins; later copies are duplicates
                verdicts.append(Verdict.NEW)
            elif owner == event_id:
                verdicts.append(Verdict.REDELIVERED)
            else:
                verdicts.append(Verdict.DUPLICATE)
        return verdicts

    def remember(self, keys: Sequence[int], event_ids: Sequence[str]) -> None:
        """Record keys that ClickHouse now holds."""
        if not self._cache_size:
            return
        cache = self._cache
        for key, event_id in zip(keys, event_ids, strict=True):
            cache[key] = event_id
        while len(cache) > self._cache_size:
            cache.popitem(last=False)

    def _lookup(self, keys: Sequence[int]) -> dict[int, str]:
        # The keys travel as one hex literal of little-endian UInt64s: ClickHouse parses a string
        # literal far faster than tens of thousands of number literals (and the client scans the SQL).
        found: dict[int, str] = {}
        table = f"{self._warehouse.database}.asset_event_keys"
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            packed = array.array("Q", keys[start : start + _LOOKUP_CHUNK])
            if sys.byteorder == "big":
                packed.byteswap()
            sql = (
                f"SELECT dedup_key, toString(any(event_id)) FROM {table} WHERE dedup_key IN "
                f"(SELECT arrayJoin(reinterpret(unhex('{packed.tobytes().hex()}'), 'Array(UInt64)'))) "
                "GROUP BY dedup_key"
            )
            result = self._warehouse.query(sql, settings={"max_query_size": len(sql) + 1024})
            found.update((int(k), str(e)) for k, e in result.rows)
        return found
