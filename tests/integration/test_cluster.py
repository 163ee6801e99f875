"""Cluster mode on a real ClickHouse cluster: ClickHouse Keeper and two shards of two replicas in containers
(the servers take compose/clickhouse/cluster.xml, as in docker-compose.cluster.yml), Kafka beside them. The
warehouse is migrated ON CLUSTER, the ingest worker writes through the Distributed tables, and a batch written
twice, or events published twice, are stored once, each asset on one shard and on both of its replicas.
Skips where no Docker engine runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assetpipe import Reporter
from assetpipe.broker import create_topics
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.warehouse import Warehouse, load_migrations
from assetpipe.schemas.model import build_record
from assetpipe.schemas.settings import Settings
from tests.integration.conftest import _docker_available
from tests.integration.helpers import running_worker, wait_until

pytestmark = pytest.mark.containers

IMAGE = "clickhouse/clickhouse-server:25.8"
CLUSTER = "assetpipe"
CONFIG = Path(__file__).resolve().parents[2] / "compose" / "clickhouse" / "cluster.xml"
SHARDS = {"clickhouse-s1-r1": "01", "clickhouse-s1-r2": "01", "clickhouse-s2-r1": "02", "clickhouse-s2-r2": "02"}
USER, PASSWORD = "assetpipe", "assetpipe"
KEEPER = """<clickhouse><keeper_server><tcp_port>9181</tcp_port><server_id>1</server_id>
<log_storage_path>/var/lib/clickhouse/coordination/log</log_storage_path>
<snapshot_storage_path>/var/lib/clickhouse/coordination/snapshots</snapshot_storage_path>
<raft_configuration><server><id>1</id><hostname>keeper</hostname><port>9234</port></server></raft_configuration>
</keeper_server></clickhouse>"""
KEEPER_CLIENT = "<clickhouse><zookeeper><node><host>keeper</host><port>9181</port></node></zookeeper></clickhouse>"


@dataclass(frozen=True)
class Cluster:
    bootstrap_servers: str
    urls: dict[str, str]  # server -> its HTTP URL from here


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    reason = _docker_available()
    if reason:
        pytest.skip(
            reason.replace("the variant on Kafka and ClickHouse containers", "the cluster of Keeper and 2x2 servers")
        )
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.wait_strategies import HttpWaitStrategy
    from testcontainers.kafka import KafkaContainer

    def server(network: Network, name: str) -> DockerContainer:
        return (
            DockerContainer(IMAGE)
            .with_network(network)
            .with_network_aliases(name)
            .with_kwargs(hostname=name)
            .with_envs(CLICKHOUSE_USER=USER, CLICKHOUSE_PASSWORD=PASSWORD, CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT="1")
            .with_exposed_ports(8123)
            .waiting_for(HttpWaitStrategy(8123, "/ping").with_startup_timeout(120))
        )

    with Network() as network, KafkaContainer().with_kraft() as kafka:
        keeper = server(network, "keeper").with_copy_into_container(
            KEEPER.encode(), "/etc/clickhouse-server/config.d/keeper.xml"
        )
        with keeper:
            nodes = [
                server(network, name)
                .with_envs(CLICKHOUSE_SHARD=shard, CLICKHOUSE_REPLICA=name)
                .with_copy_into_container(CONFIG, "/etc/clickhouse-server/config.d/cluster.xml")
                .with_copy_into_container(KEEPER_CLIENT.encode(), "/etc/clickhouse-server/config.d/keeper-client.xml")
                for name, shard in SHARDS.items()
            ]
            for node in nodes:
                node.start()
            try:
                urls = {
                    name: f"http://{USER}:{PASSWORD}@{n.get_container_host_ip()}:{n.get_exposed_port(8123)}"
                    for name, n in zip(SHARDS, nodes, strict=True)
                }
                yield Cluster(kafka.get_bootstrap_server(), urls)
            finally:
                for node in nodes:
                    node.stop()


def warehouse_on(cluster: Cluster, server: str, database: str) -> Warehouse:
    return Warehouse(cluster.urls[server], database, cluster=CLUSTER)


def test_migrate_on_cluster_then_ingest_exactly_once_with_each_asset_on_one_shard(cluster: Cluster) -> None:
    database = f"test_{uuid.uuid4().hex[:12]}"
    first, other = (
        warehouse_on(cluster, "clickhouse-s1-r1", database),
        warehouse_on(cluster, "clickhouse-s2-r2", database),
    )
    assert first.migrate() == [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert other.migrate() == []  # the ledger is the cluster's: another server knows what was applied
    engines = dict(
        other.query(
            "SELECT name, engine FROM system.tables WHERE database = {db:String}", parameters={"db": database}
        ).rows
    )
    assert engines["asset_events"] == "Distributed"
    assert engines["asset_events_local"] == "ReplicatedReplacingMergeTree"
    assert engines["schema_migrations"] == engines["runs"] == "ReplicatedReplacingMergeTree"

    settings = Settings(
        kafka_bootstrap_servers=cluster.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}_",
        ingest_group_id=f"g{uuid.uuid4().hex[:10]}",
        clickhouse_url=cluster.urls["clickhouse-s1-r1"],
        clickhouse_database=database,
        clickhouse_cluster=CLUSTER,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=300,
        ingest_batch_max_seconds=0.2,
    )
    create_topics(settings)
    n, assets = 2_000, 40
    with running_worker(settings, Warehouse.from_settings(settings)) as worker:
        for _ in range(2):  # the second time: new event ids, the same data versions, so duplicates
            with Reporter(settings=settings) as reporter:
                for i in range(n):
                    reporter.report_materialization(f"shop/t{i % assets}", data_version=f"v{i}", metadata={"i": i})
                reporter.flush(60)
        wait_until(lambda: worker.status()["consumed"] >= 2 * n, 180, "both publications consumed")
    count = f"SELECT count() FROM {database}.asset_events"
    assert other.query(count).rows == [(n,)]

    # a retried block (the same rows under the same deduplication token) is stored once on every shard
    rows = EventColumns()
    for i in range(assets):
        record = build_record("materialization", ["retry", f"a{i}"], source="sdk", host="test")
        rows.append("materialization", record, i, 0, i)
    for _ in range(2):
        first.insert("asset_events", rows.columns, EVENT_COLUMNS, dedup_token=f"{database}-retried")
    assert other.query(count).rows == [(n + assets,)]

    # each asset on one shard, both shards used, each replica of a shard with the same rows
    spread = other.query(
        f"SELECT asset_key, uniqExact(_shard_num) FROM {database}.asset_events GROUP BY asset_key"
    ).rows
    assert len(spread) == 2 * assets and {shards for _, shards in spread} == {1}
    assert other.query(f"SELECT uniqExact(_shard_num) FROM {database}.asset_events").rows == [(2,)]
    local = {}
    for name in SHARDS:
        node = warehouse_on(cluster, name, database)
        node.command(f"SYSTEM SYNC REPLICA {database}.asset_events_local")
        local[name] = node.query(f"SELECT count() FROM {database}.asset_events_local").rows[0][0]
        node.close()
    assert local["clickhouse-s1-r1"] == local["clickhouse-s1-r2"]
    assert local["clickhouse-s2-r1"] == local["clickhouse-s2-r2"]
    assert local["clickhouse-s1-r1"] + local["clickhouse-s2-r1"] == n + assets
    # the views fed each shard's local tables: the latest state of every asset, read through Distributed
    latest = f"SELECT count() FROM {database}.asset_partition_state FINAL WHERE event_type = 'materialization'"
    assert other.query(latest).rows == [(2 * assets,)]
    first.close()
    other.close()
