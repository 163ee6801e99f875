"""``KeyFilter``: a Bloom filter of dedup keys, so the ingest worker looks up in ClickHouse only the
keys that may be stored already; ``OwnedKeys``: the filter of the partitions one consumer owns, holding
the keys of the dedup window (``ASSETPIPE_DEDUP_WINDOW_DAYS``) in at most a set number of bytes.

``asset_event_keys`` is sorted by the key, a hash: a batch of random keys falls on nearly every granule,
so an exact lookup of a whole batch reads the whole table, and its cost grows with the history. With a
filter of the keys already stored, a key the filter has never seen is new for certain; only the others
(the keys of events written before, and about one in three hundred of the rest) are looked up, and a
batch's lookup costs what its own keys cost.

The dedup keys are xxh3 hashes, uniform already, so the filter is a blocked one: a key picks one 64-bit
word with its top bits and sets ``PROBES`` bits of it, chosen by the top bits of the key times a
Fibonacci constant. One memory access a key, vectorized with numpy over a batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt

from assetpipe.consumers.ingest import sql as ingest_sql
from assetpipe.consumers.warehouse import Warehouse

log = logging.getLogger(__name__)

Keys = npt.NDArray[np.uint64]

PROBES = 7  # bits set per key: the fewest false positives at 16-32 bits a key
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIN_WORDS = 1 << 14
_CHUNK = 8192  # keys a numpy pass: its temporaries stay in the CPU's cache (8x faster than whole arrays)


class KeyFilter:
    """Keys in, "maybe seen" out: no false negatives; false positives about 0.35% at 16 bits a key
    (0.03% at 32: the size is rounded up to a power of two). ``max_bytes``: the size is rounded down to
    a power of two within it (at least 128 KiB), and holds fewer keys at the chosen rate; past them the
    false positives grow, never the false negatives."""

    def __init__(self, capacity: int, bits_per_key: int, max_bytes: int | None = None) -> None:
        wanted = max(_MIN_WORDS, -(-max(capacity, 1) * bits_per_key // 64))
        log_words = (wanted - 1).bit_length()
        if max_bytes is not None:
            log_words = min(log_words, max(_MIN_WORDS.bit_length() - 1, (max_bytes // 8).bit_length() - 1))
        self._shift = np.uint64(64 - log_words)
        self._words: npt.NDArray[np.uint64] = np.zeros(1 << log_words, dtype=np.uint64)
        self.capacity = (1 << log_words) * 64 // bits_per_key  # keys it holds at the chosen rate
        self.count = 0  # keys added (a key added twice counts twice)

    @property
    def full(self) -> bool:
        return self.count > self.capacity

    @property
    def nbytes(self) -> int:
        return int(self._words.nbytes)

    def _locate(self, keys: Keys) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """Each key's word and the mask of its bits in it."""
        words = keys >> self._shift
        mixed = keys * _MIX
        masks = np.zeros(len(keys), dtype=np.uint64)
        one, six = np.uint64(1), np.uint64(63)
        for probe in range(PROBES):
            masks |= one << ((mixed >> np.uint64(58 - 6 * probe)) & six)
        return words, masks

    def add(self, keys: Keys) -> None:
        table = self._words
        for start in range(0, len(keys), _CHUNK):
            words, masks = self._locate(keys[start : start + _CHUNK])
            # a fancy-indexed |= keeps one of several keys that share a word: set the rest round by round
            while len(words):
                table[words] |= masks
                missing = (table[words] & masks) != masks
                words, masks = words[missing], masks[missing]
        self.count += len(keys)

    def may_contain(self, keys: Keys) -> npt.NDArray[np.bool_]:
        found = np.empty(len(keys), dtype=np.bool_)
        for start in range(0, len(keys), _CHUNK):
            words, masks = self._locate(keys[start : start + _CHUNK])
            found[start : start + _CHUNK] = (self._words[words] & masks) == masks
        return found


def _utc_today() -> date:
    return datetime.now(UTC).date()


class OwnedKeys:
    """The key filter of the partitions one consumer owns, loaded from ``asset_event_keys``.

    Skipping a lookup is safe only for a key that no other consumer can have written. Producers key an
    event with its asset key, and librdkafka's default partitioner sends a key to partition
    ``CRC32(key) % partitions``, so every event of an asset arrives on the one partition its key maps
    to. The filter of a partition holds the keys of the rows that came through it and of the rows whose
    asset key maps to it. A staged row that came through another partition than its asset key maps to
    (a producer with another partitioner, or a topic given partitions since) is not pinned: its key is
    always looked up.

    Only the keys of the dedup window (``window_days``, by the day each was ingested; 0: all) are loaded,
    and the lookups read only the window too (``ingest_sql.in_window``), so what a start and a batch
    cost follows the keys of the window, not the history. A partition's keys are loaded the first time
    a batch brings it after each assignment (its previous owner may have written meanwhile); the filter
    is sized for a quarter more keys than the window holds, within ``max_bytes``, and built again once
    it holds more: twice as large while it can grow, or at its size with the keys of the window as it
    is now once a day has passed since it was loaded (the keys that left the window leave the filter).
    A filter at ``max_bytes`` that is full and was loaded today stays as it is: it rules out fewer keys,
    so more are looked up, and none wrongly. Assignments come from the consumer's thread, batches from
    the handler's: one lock keeps them apart.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        bits_per_key: int,
        *,
        window_days: int = 0,
        max_bytes: int | None = None,
        lookup_share: float = 0.5,
        today: Callable[[], date] = _utc_today,
    ) -> None:
        self._warehouse = warehouse
        self._bits_per_key = bits_per_key
        self._window_days = window_days
        self._max_bytes = max_bytes
        self._lookup_share = lookup_share  # above it, a batch's keys are all looked up: no gain in picking
        self._today = today  # when a day has passed (the window itself is ClickHouse's, in SQL)
        self._counts: dict[tuple[str, int], int] = {}  # owned partition -> its topic's partition count
        self._loaded: set[tuple[str, int]] = set()
        self._loaded_on = date.min  # the day the filter was built
        self._filter: KeyFilter | None = None
        self._lock = threading.Lock()
        self.load_seconds = 0.0  # spent loading keys, in all

    @property
    def enabled(self) -> bool:
        return self._bits_per_key > 0

    @property
    def nbytes(self) -> int:
        """Memory the filter holds."""
        return self._filter.nbytes if self._filter is not None else 0

    def assigned(self, partitions: Iterable[tuple[str, int]], counts: Mapping[str, int]) -> None:
        with self._lock:
            for topic, partition in partitions:
                self._loaded.discard((topic, partition))
                if counts.get(topic):
                    self._counts[(topic, partition)] = counts[topic]
                else:  # partition count unknown: its keys are all looked up
                    self._counts.pop((topic, partition), None)

    def revoked(self, partitions: Iterable[tuple[str, int]]) -> None:
        with self._lock:
            for owned in partitions:
                self._counts.pop(owned, None)
                self._loaded.discard(owned)

    def candidates(self, probe: npt.NDArray[np.void]) -> Keys | None:
        """The keys of a staged batch to look up, from its ``ingest_sql.probe_sql`` rows (dk, crc,
        kafka_partition); None: look them all up. Every key is in the filter afterwards."""
        if not self.enabled or not len(probe):
            return None
        with self._lock:
            return self._candidates(probe)

    def _candidates(self, probe: npt.NDArray[np.void]) -> Keys | None:
        topics = {topic for topic, _ in self._counts}
        if len(topics) != 1:
            return None
        topic = topics.pop()
        partitions = [(topic, int(p)) for p in np.unique(probe["kafka_partition"])]
        if any(p not in self._counts for p in partitions):
            return None
        keys: Keys = np.ascontiguousarray(probe["dk"])
        if self._filter is None or (self._filter.full and (self._can_grow() or self._today() > self._loaded_on)):
            self._rebuild(len(keys))
        self._load([p for p in partitions if p not in self._loaded])
        assert self._filter is not None
        count = np.uint32(self._counts[partitions[0]])
        pinned = probe["crc"] % count == probe["kafka_partition"]
        maybe = ~pinned | self._filter.may_contain(keys)
        self._filter.add(keys)
        return keys[maybe] if maybe.mean() <= self._lookup_share else None

    def _can_grow(self) -> bool:
        return self._max_bytes is None or self.nbytes * 2 <= self._max_bytes

    def _rebuild(self, batch: int) -> None:
        """A new filter for the owned partitions' share of the window's keys and a quarter more, at least
        twice the one before while the window is the same day's (all loaded again)."""
        warehouse = self._warehouse
        stored = int(
            warehouse.query(
                f"SELECT count() FROM {warehouse.database}.asset_event_keys "
                f"WHERE {ingest_sql.in_window(self._window_days)}"
            ).rows[0][0]
        )
        total = max(self._counts.values())
        share = stored * len(self._counts) // total
        today = self._today()
        grown = self._filter.capacity * 2 if self._filter is not None and today <= self._loaded_on else 0
        self._filter = KeyFilter(max(1 << 20, share * 5 // 4 + batch, grown), self._bits_per_key, self._max_bytes)
        self._loaded_on = today
        self._loaded.clear()
        self._load(list(self._counts))

    def _load(self, partitions: list[tuple[str, int]]) -> None:
        if not partitions:
            return
        assert self._filter is not None
        started = time.monotonic()
        ids = ", ".join(str(p) for _, p in partitions)
        count = self._counts[partitions[0]]
        sql = (
            f"SELECT dedup_key FROM {self._warehouse.database}.asset_event_keys "
            f"WHERE {ingest_sql.in_window(self._window_days)} "
            f"AND (kafka_partition IN ({ids}) OR asset_crc % {count} IN ({ids}))"
        )
        loaded = 0
        for block in self._warehouse.query_np_blocks(sql):
            keys = block.reshape(-1)
            self._filter.add(keys)
            loaded += len(keys)
        self._loaded.update(partitions)
        elapsed = time.monotonic() - started
        self.load_seconds += elapsed
        log.info(
            "key filter: %d keys of %d partitions in the window in %.2fs (%d MB)",
            loaded, len(partitions), elapsed, self._filter.nbytes >> 20,
        )  # fmt: skip
