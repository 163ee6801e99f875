"""``KeyFilter``: no false negatives, few false positives, and full once past its capacity."""

from __future__ import annotations

import numpy as np

from assetpipe.consumers.ingest.key_filter import KeyFilter


def _keys(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)


def test_every_key_added_is_found() -> None:
    keys = _keys(200_000, 1)
    found = KeyFilter(200_000, 16)
    found.add(keys[:150_000])
    found.add(keys[150_000:])
    assert found.may_contain(keys).all()
    assert found.count == 200_000


def test_keys_that_share_a_word_are_all_kept() -> None:
    crowded = KeyFilter(1, 16)  # the smallest filter: many keys to each word
    keys = _keys(50_000, 2)
    crowded.add(np.concatenate([keys, keys[:1000]]))
    assert crowded.may_contain(keys).all()


def test_few_keys_never_added_are_reported() -> None:
    seen = KeyFilter(500_000, 16)
    seen.add(_keys(500_000, 3))
    rate = seen.may_contain(_keys(200_000, 4)).mean()
    assert 0 < rate < 0.005


def test_past_its_capacity_the_filter_is_full() -> None:
    small = KeyFilter(1000, 16)
    small.add(_keys(small.capacity, 5))
    assert not small.full
    small.add(_keys(1, 6))
    assert small.full
    assert small.nbytes == small.capacity * 16 // 8


def test_a_filter_within_a_byte_budget_holds_more_keys_than_it_was_sized_for_with_more_false_positives() -> None:
    budget = 1 << 20
    bounded = KeyFilter(10_000_000, 16, max_bytes=budget)
    assert bounded.nbytes == budget  # 20 MB asked for: 1 MB given, the power of two within the budget
    assert KeyFilter(10_000_000, 16, max_bytes=budget + budget // 2).nbytes == budget
    assert KeyFilter(100_000, 16, max_bytes=budget).nbytes < budget  # a small filter keeps its size
    keys = _keys(4 * bounded.capacity, 7)
    bounded.add(keys)
    assert bounded.full
    assert bounded.may_contain(keys).all()  # past its capacity: no key added is missed
    rate = bounded.may_contain(_keys(100_000, 8)).mean()
    assert 0.05 < rate < 1  # keys never added are reported more often: they are looked up
