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


def engine_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of the embedded engine in this process, which opens one a process: the integration and
    the browser tests share it, with a broker and a database each, whichever runs first."""
    path = tmp_path_factory.getbasetemp() / "assetpipe-engine"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = engine_data_dir(tmp_path_factory)
    broker = EmbeddedBroker(free_port(), log_path=data_dir / f"broker-{uuid.uuid4().hex[:6]}.log")
    broker.start()
    try:
        yield Stack(
            broker.bootstrap_servers, f"chdb://{data_dir / 'clickhouse'}", f"test_{uuid.uuid4().hex[:12]}", data_dir
        )
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def containers_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = _docker_available()
    if reason:
        pytest.skip(reason)
    from testcontainers.clickhouse import ClickHouseContainer
    from testcontainers.kafka import KafkaContainer

    data_dir = tmp_path_factory.mktemp("assetpipe")
    with KafkaContainer().with_kraft() as kafka, ClickHouseContainer() as clickhouse:
        host, port = clickhouse.get_container_host_ip(), clickhouse.get_exposed_port(8123)
        url = f"http://{clickhouse.username}:{clickhouse.password}@{host}:{port}"
        yield Stack(kafka.get_bootstrap_server(), url, f"test_{uuid.uuid4().hex[:12]}", data_dir)


@pytest.fixture(scope="session", params=["embedded", "containers"])
def stack(request: pytest.FixtureRequest) -> Stack:
    """The variant's stack. Each is a session fixture of its own, started once a process: pytest finalizes a
    parametrized session fixture whenever the parameter changes, which a process running test files of both
    variants in turn (a pytest-xdist worker) does over and over, and the embedded engine opens one data
    directory a process."""
    stack: Stack = request.getfixturevalue(f"{request.param}_stack")
    return stack


@pytest.fixture(scope="session")
def opened_warehouses() -> Iterator[dict[str, Warehouse]]:
    """Each variant's warehouse, by its stack's database, kept across the ``stack`` parameter's changes."""
    opened: dict[str, Warehouse] = {}
    yield opened
    for wh in opened.values():
        wh.close()


@pytest.fixture(scope="session")
def warehouse(stack: Stack, opened_warehouses: dict[str, Warehouse]) -> Warehouse:
    if stack.database not in opened_warehouses:
        wh = Warehouse(stack.clickhouse_url, stack.database)
        wh.migrate()
        opened_warehouses[stack.database] = wh
    return opened_warehouses[stack.database]


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
