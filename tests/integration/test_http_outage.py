"""The HTTP API while its broker is down: 503 with Retry-After within a bounded time, never a 200; after
the broker returns, every event that got a 200 is in ClickHouse.

The broker is this test's own embedded one (the session's is shared). It keeps everything in memory, so
after the restart the topics are new (the producer creates them again): events acknowledged before the
outage are ingested before it, as a real deployment's retained topic would have kept them anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import httpx

from assetpipe.broker import EmbeddedBroker, free_port
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.exceptions import PublishError
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import event_id, ingested, retry_until_200, serving

PUBLISH_TIMEOUT_S = 2.0
MAT = "/report_asset_materialization"


def test_outage_answers_503_and_every_200_is_stored(
    settings_factory: Callable[..., Settings], warehouse: Warehouse
) -> None:
    port = free_port()
    broker = EmbeddedBroker(port)
    broker.start()
    try:
        settings = settings_factory(
            kafka_bootstrap_servers=broker.bootstrap_servers, http_port=free_port(),
            http_publish_timeout_s=PUBLISH_TIMEOUT_S,
        )  # fmt: skip
        with serving(settings) as client:
            before = [event_id(client.post(f"{MAT}/outage/a", json={"partition": str(i)})) for i in range(10)]
            ingested(warehouse, settings, before)

            broker.kill()  # as a crash would; Tansu takes seconds to stop on SIGTERM
            # bounded: each answer comes within the publish timeout (the client gives up a little after it)
            bounded = httpx.Timeout(PUBLISH_TIMEOUT_S + 3)
            during = [client.post(f"{MAT}/outage/b", json={"partition": str(i)}, timeout=bounded) for i in range(15)]
            assert {r.status_code for r in during} == {503}, [r.text for r in during]
            assert all(r.headers["retry-after"] == "1" and r.json()["status"] == "error" for r in during)
            assert any("broker is unavailable" in r.json()["error"] for r in during)
            batch = client.post("/report_asset_events", json=[{"type": "materialization", "asset_key": ["o"]}])
            assert batch.status_code == 503 and batch.json()["results"][0]["code"] == 503
            assert client.get("/readyz").status_code == 503

            broker = EmbeddedBroker(port)
            broker.start()
            first = retry_until_200(  # the client retries with its idempotency key until the API is back
                lambda: client.post(f"{MAT}/outage/c", json={"partition": "r"}, headers={"Idempotency-Key": "r-1"})
            )
            after = [event_id(first)]
            after += [event_id(client.post(f"{MAT}/outage/c", json={"partition": str(i)})) for i in range(10)]
            batch = client.post("/report_asset_events", json=[{"type": "materialization", "asset_key": ["o", "d"]}])
            after.append(batch.json()["results"][0]["event_id"])
        found = ingested(warehouse, settings, before + after)
        assert set(found) == set(before + after)
        assert {row["asset_key"] for row in found.values()} == {"outage/a", "outage/c", "o/d"}
    finally:
        broker.kill()


def test_publisher_calls_on_settled_once_per_message() -> None:
    from assetpipe import Receipt
    from assetpipe.producers.publisher import Publisher

    settled: list[Receipt] = []
    nowhere = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    publisher = Publisher.from_settings(nowhere, {"message.timeout.ms": 300})
    receipts = [publisher.publish("t", b"k", b"v", event_id=str(i), on_settled=settled.append) for i in range(3)]
    deadline = time.monotonic() + 30
    while len(settled) < 3 and time.monotonic() < deadline:
        publisher.poll(0.1)
    assert sorted(r.event_id for r in settled) == ["0", "1", "2"]
    assert all(r.done and r.error == "Local: Message timed out" for r in receipts)
    with contextlib.suppress(PublishError):
        publisher.close(1)
