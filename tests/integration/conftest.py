"""Integration fixtures: a real Kafka-protocol broker and a real ClickHouse engine.

The ``stack`` fixture is parametrized: ``embedded`` starts the Tansu broker as a child process and uses
the embedded ClickHouse engine (chDB) in this process; ``containers`` starts Kafka and ClickHouse with
Testcontainers and skips where no Docker engine runs. Each test gets fresh topics (a uuid prefix) and a
fresh consumer group; each session a fresh database.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assetpipe.broker import EmbeddedBroker, create_topics, free_port
from assetpipe.consumers.warehouse import Warehouse, load_migrations
from assetpipe.schemas.settings import Settings


@dataclass(frozen=True)
class Stack:
    bootstrap_servers: str
    clickhouse_url: str
    database: str
    data_dir: Path


def _docker_available() -> str | None:
    """None when a Docker engine answers on its socket, else the reason to skip."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return None  # a remote engine: Testcontainers will say if it is unreachable
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(host.removeprefix("unix://"))
    except OSError as exc:
        reason = exc.strerror or exc
        return f"no Docker engine at {host} ({reason}): the variant on Kafka and ClickHouse containers needs one"
    return None


@pytest.fixture(scope="session", params=["embedded", "containers"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("assetpipe")
    database = f"test_{uuid.uuid4().hex[:12]}"
    if request.param == "embedded":
        broker = EmbeddedBroker(free_port(), log_path=data_dir / "broker.log")
        broker.start()
        try:
            yield Stack(broker.bootstrap_servers, f"chdb://{data_dir / 'clickhouse'}", database, data_dir)
        finally:
            broker.stop()
        return
    reason = _docker_available()
    if reason:
        pytest.skip(reason)
    from testcontainers.clickhouse import ClickHouseContainer
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as kafka, ClickHouseContainer() as clickhouse:
        host, port = clickhouse.get_container_host_ip(), clickhouse.get_exposed_port(8123)
        url = f"http://{clickhouse.username}:{clickhouse.password}@{host}:{port}"
        yield Stack(kafka.get_bootstrap_server(), url, database, data_dir)


@pytest.fixture(scope="session")
def warehouse(stack: Stack) -> Iterator[Warehouse]:
    wh = Warehouse(stack.clickhouse_url, stack.database)
    wh.migrate()
    yield wh
    wh.close()


@pytest.fixture
def settings_factory(stack: Stack, warehouse: Warehouse) -> Callable[..., Settings]:
    """Settings for one test: fresh topics and consumer group, the session's database."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": stack.bootstrap_servers,
            "topic_prefix": f"t{uuid.uuid4().hex[:10]}_",
            "ingest_group_id": f"g{uuid.uuid4().hex[:10]}",
            "clickhouse_url": stack.clickhouse_url,
            "clickhouse_database": stack.database,
            "data_dir": stack.data_dir,
            "kafka_session_timeout_ms": 2000,
            "kafka_heartbeat_interval_ms": 300,
            "ingest_batch_max_seconds": 0.2,
        }
        values.update(overrides)
        settings = Settings(**values)
        create_topics(settings)
        return settings

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
def old_warehouse(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Warehouse]:
    """A database with the migrations before ``request.param`` (default 6) applied, as an earlier
    version left it."""
    before = getattr(request, "param", 6)
    warehouse = Warehouse(stack.clickhouse_url, f"m{uuid.uuid4().hex[:10]}")
    warehouse.command(f"CREATE DATABASE {warehouse.database}")
    warehouse.command(
        f"CREATE TABLE {warehouse.database}.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    for migration in load_migrations():
        if migration.version < before:
            for statement in migration.statements:
                warehouse.command(statement.replace("{db}", warehouse.database))
            warehouse.insert("schema_migrations", [[migration.version], [migration.name]], ["version", "name"])
    yield warehouse
    warehouse.command(f"DROP DATABASE {warehouse.database}")
    warehouse.close()
