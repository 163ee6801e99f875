"""The ingest worker's key filter (``consumers.key_filter``) on the real broker and engine: the
partitioning it relies on, the keys it loads, and that the keys it leaves out of the lookup never let a
duplicate in."""

from __future__ import annotations

import uuid
import zlib
from datetime import date, timedelta

import numpy as np
from confluent_kafka import Producer

from assetpipe import Reporter
from assetpipe.consumers.ingest.key_filter import OwnedKeys
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import read_topic, running_worker, wait_until

PROBE = np.dtype([("dk", "<u8"), ("crc", "<u4"), ("kafka_partition", "<u4")])


def test_the_producers_partitioner_sends_an_asset_key_to_its_crc32_modulo_the_partitions(
    settings: Settings, warehouse: Warehouse
) -> None:
    producer = Producer(settings.producer_config())
    keys = [f"sales/table_{i}".encode() for i in range(200)]
    for key in keys:
        producer.produce(settings.topics.events, b"x", key)
    assert producer.flush(30) == 0
    messages = read_topic(settings, settings.topics.events, len(keys))
    expected = {(key, zlib.crc32(key) % settings.topic_partitions) for key in keys}
    assert {(m.key(), m.partition()) for m in messages} == expected
    rows = warehouse.query(
        "SELECT k, CRC32(k) FROM (SELECT arrayJoin(%(keys)s) AS k)", parameters={"keys": [k.decode() for k in keys]}
    ).rows
    assert {k.encode(): crc for k, crc in rows} == {key: zlib.crc32(key) for key in keys}


def _asset_mapping_to(partition: int, count: int) -> str:
    """A fresh asset key that librdkafka's default partitioner sends to ``partition``."""
    assets = (f"kf/{uuid.uuid4().hex[:8]}" for _ in range(1000))
    return next(a for a in assets if zlib.crc32(a.encode()) % count == partition)


def test_a_partitions_filter_holds_the_keys_that_came_through_it_and_of_the_assets_that_map_to_it(
    settings: Settings, warehouse: Warehouse
) -> None:
    topic, db, count = settings.topics.events, settings.clickhouse_database, 4
    mapped_here, mapped_elsewhere = _asset_mapping_to(1, count), _asset_mapping_to(2, count)
    rng = np.random.default_rng()
    came_elsewhere, came_here, neither, fresh = (int(k) for k in rng.integers(1, 2**63, 4))
    stored = [  # (asset key, partition it came through, dedup key)
        (mapped_here, 3, came_elsewhere),  # maps to 1, came through 3 (another partitioner)
        (mapped_elsewhere, 1, came_here),  # maps to 2, came through 1
        (mapped_elsewhere, 2, neither),  # partition 2's alone
    ]
    for asset, partition, key in stored:
        warehouse.command(
            f"INSERT INTO {db}.asset_events (event_id, event_type, asset_key, asset_key_path, dedup_key, "
            f"kafka_partition, timestamp) VALUES (generateUUIDv4(), 'materialization', '{asset}', "
            f"['{asset}'], {key}, {partition}, now64(6))"
        )
    owned = OwnedKeys(warehouse, 16, lookup_share=1.0)
    here, elsewhere = zlib.crc32(mapped_here.encode()), zlib.crc32(mapped_elsewhere.encode())
    probe = np.array([(came_elsewhere, here, 1), (neither, here, 1), (fresh, here, 1)], dtype=PROBE)

    assert owned.candidates(probe) is None  # nothing assigned yet: every key is looked up
    owned.assigned([(topic, 1)], {topic: count})
    picked = owned.candidates(probe)
    assert picked is not None and set(picked.tolist()) == {came_elsewhere}
    # a row whose asset key maps elsewhere (it came through another partitioner) is always looked up
    unpinned = np.array([(fresh + 1, elsewhere, 1)], dtype=PROBE)
    assert set(owned.candidates(unpinned).tolist()) == {fresh + 1}
    # the keys of the batches it saw are in the filter from then on
    assert set(owned.candidates(probe).tolist()) == {came_elsewhere, neither, fresh}
    # a partition not owned: its keys are all looked up
    assert owned.candidates(np.array([(fresh, here, 2)], dtype=PROBE)) is None
    owned.revoked([(topic, 1)])
    assert owned.candidates(probe) is None


def test_a_restarted_worker_loads_the_stored_keys_and_adds_no_duplicate(
    settings: Settings, warehouse: Warehouse
) -> None:
    run, n = uuid.uuid4().hex[:8], 3000
    where = f"{settings.clickhouse_database}.asset_events WHERE data_version LIKE '{run}-%'"

    def publish() -> None:
        with Reporter(settings=settings) as reporter:
            for i in range(n):
                reporter.report_materialization(f"kf/table_{i % 40}", partition=f"p{i % 7}", data_version=f"{run}-{i}")

    publish()
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= n, 60, "first publication ingested")
        assert worker.status()["looked_up"] < n // 10  # new keys: ruled out by the filter
    assert warehouse.query(f"SELECT count() FROM {where}").rows == [(n,)]

    publish()  # the same data versions again, new event ids, to a worker with a new, empty filter
    with running_worker(settings, warehouse) as worker:
        wait_until(lambda: worker.status()["consumed"] >= n, 60, "second publication consumed")
        status = worker.status()
    assert warehouse.query(f"SELECT count() FROM {where}").rows == [(n,)]
    assert status["duplicates"] == n and status["ingested"] == 0
    assert status["looked_up"] >= n  # the filter loaded from ClickHouse knew every key


def test_a_filter_at_its_budget_saturates_into_lookups_and_sheds_the_keys_past_the_window_a_day_later(
    settings: Settings,
) -> None:
    topic, day = settings.topics.events, [date(2030, 1, 1)]
    # a database of its own: the session's holds whatever keys the other tests stored in the window
    own = Warehouse(settings.clickhouse_dsn, f"kf_{uuid.uuid4().hex[:8]}")
    own.migrate()
    try:
        _saturate_and_shed(own, topic, day)
    finally:
        own.command(f"DROP DATABASE IF EXISTS {own.database}")


def _saturate_and_shed(warehouse: Warehouse, topic: str, day: list[date]) -> None:
    owned = OwnedKeys(warehouse, 16, window_days=30, max_bytes=1 << 17, today=lambda: day[0])
    owned.assigned([(topic, p) for p in range(4)], {topic: 4})
    rng = np.random.default_rng()

    def probe(n: int) -> np.ndarray:
        keys = rng.integers(1, 2**63, n, dtype=np.uint64)
        crcs = rng.integers(0, 2**32, n, dtype=np.uint32)
        return np.array(list(zip(keys, crcs, crcs % 4, strict=True)), dtype=PROBE)

    # keys of batches that were never stored (say, rejected): the filter holds them, ClickHouse does not
    assert owned.candidates(probe(600_000)) is not None  # a fresh filter rules them out
    assert owned.nbytes == 1 << 17  # its budget: 65,536 keys at 16 bits a key
    assert owned.candidates(probe(5000)) is None  # full: most new keys may be stored, all are looked up
    assert owned.nbytes == 1 << 17  # and it does not grow past the budget
    day[0] += timedelta(days=1)  # built again from the window, without the keys ClickHouse does not hold
    picked = owned.candidates(probe(5000))
    assert picked is not None and len(picked) < 500
