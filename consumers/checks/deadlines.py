"""Deadlines by key: when each timed check of each asset must be evaluated next, and which are due.

A heap ordered by time with one live entry per key: setting a key again supersedes its entry (the stale
one is skipped when it surfaces), so arming, re-arming and cancelling are O(log n) and memory stays one
entry per key plus the superseded ones not yet popped. Not thread-safe: the worker holds its lock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Deadlines(Generic[K]):
    def __init__(self) -> None:
        self._at: dict[K, int] = {}
        self._heap: list[tuple[int, int, K]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._at)

    def set(self, key: K, at_us: int | None) -> None:
        """Evaluate ``key`` at ``at_us`` (microseconds since the epoch); None: never."""
        if at_us is None:
            self._at.pop(key, None)
            return
        if self._at.get(key) == at_us:
            return
        self._at[key] = at_us
        heapq.heappush(self._heap, (at_us, next(self._order), key))
        if len(self._heap) > 2 * len(self._at) + 1024:  # mostly superseded entries: rebuild
            self._heap = [(at, next(self._order), k) for k, at in self._at.items()]
            heapq.heapify(self._heap)

    def cancel(self, key: K) -> None:
        self._at.pop(key, None)

    def get(self, key: K) -> int | None:
        return self._at.get(key)

    def next_at(self) -> int | None:
        """The earliest deadline set, or None."""
        heap = self._heap
        while heap and self._at.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now_us: int) -> list[tuple[K, int]]:
        """The keys whose deadline is at or before ``now_us``, earliest first, each with its deadline; they are
        no longer set."""
        due: list[tuple[K, int]] = []
        heap = self._heap
        while heap and heap[0][0] <= now_us:
            at, _, key = heapq.heappop(heap)
            if self._at.get(key) == at:
                del self._at[key]
                due.append((key, at))
        return due
