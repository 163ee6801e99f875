"""compose/docker-compose.cluster.yml and compose/clickhouse/: valid for Compose, and a cluster wired the way
docs/scale-out.md tells: three KRaft brokers, two shards of two ClickHouse replicas with a three-node Keeper, and
the API, ingest, sensor and run workers with replicas in cluster mode. ClickHouse itself reads the servers'
cluster configuration (the embedded engine, in a process of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assetpipe import Settings
from tests.unit.test_compose import API_KEYS, DOCKER_COMPOSE, REPO, _listeners, _mounts, _run_config

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read `docker-compose config` output")

COMPOSE_FILE = REPO / "compose" / "docker-compose.cluster.yml"
CONFIG = REPO / "compose" / "clickhouse"
APP_SERVICES = ["migrate", "ingest", "api", "sensors", "runs"]
SCALED = ["ingest", "api", "sensors", "runs"]
needs_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None, reason="the docker-compose binary is absent (Debian: apt-get install docker-compose)"
)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    result = _run_config(COMPOSE_FILE, {"ASSETPIPE_API_KEYS": API_KEYS})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]  # type: ignore[no-any-return]


def _of(services: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {name: s for name, s in services.items() if name.startswith(prefix)}


def _cluster_xml() -> ET.Element:
    return ET.parse(CONFIG / "cluster.xml").getroot()


def _shards_in_config() -> list[list[str]]:
    """remote_servers' cluster: the hosts of each shard, in order."""
    (cluster,) = list(_cluster_xml().find("remote_servers") or [])
    return [[r.findtext("host", "") for r in shard.findall("replica")] for shard in cluster.findall("shard")]


@needs_compose
def test_kafka_is_three_kraft_brokers_each_a_voter_replicating_topics_three_times(services: dict[str, Any]) -> None:
    brokers = _of(services, "kafka-")
    assert len(brokers) == 3
    voters = {f"{b['environment']['KAFKA_NODE_ID']}@{b['hostname']}:9093" for b in brokers.values()}
    for broker in brokers.values():
        env = broker["environment"]
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert _listeners(env["KAFKA_ADVERTISED_LISTENERS"]) == {"INTERNAL": f"{broker['hostname']}:19092"}
        assert (int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]), int(env["KAFKA_MIN_INSYNC_REPLICAS"])) == (3, 2)
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
    assert len({b["environment"]["CLUSTER_ID"] for b in brokers.values()}) == 1


@needs_compose
def test_clickhouse_is_two_shards_of_two_replicas_as_the_cluster_config_says(services: dict[str, Any]) -> None:
    servers = _of(services, "clickhouse-")
    by_shard: dict[str, list[str]] = {}
    for name, server in servers.items():
        env = server["environment"]
        assert server["hostname"] == name == env["CLICKHOUSE_REPLICA"]  # the replica macro: unique, resolvable
        by_shard.setdefault(env["CLICKHOUSE_SHARD"], []).append(name)
        assert "clickhouse" in server["networks"]["default"]["aliases"]
        targets = {Path(target).name for _, target, read_only in _mounts(server) if read_only}
        assert targets == {"cluster.xml", "keeper-client.xml"}
        assert {dep for dep, spec in server["depends_on"].items() if spec["condition"] == "service_healthy"} == set(
            _of(services, "keeper-")
        )
    assert sorted(sorted(hosts) for hosts in by_shard.values()) == sorted(sorted(s) for s in _shards_in_config())
    (cluster,) = list(_cluster_xml().find("remote_servers") or [])
    assert all(shard.findtext("internal_replication") == "true" for shard in cluster.findall("shard"))


@needs_compose
def test_keeper_is_a_three_node_ensemble_the_servers_know(services: dict[str, Any]) -> None:
    keepers = _of(services, "keeper-")
    raft = ET.parse(CONFIG / "keeper.xml").getroot().find("keeper_server/raft_configuration")
    assert raft is not None
    members = {int(s.findtext("id", "0")): s.findtext("hostname") for s in raft.findall("server")}
    assert members == {int(k["environment"]["KEEPER_SERVER_ID"]): k["hostname"] for k in keepers.values()}
    assert len(members) == 3
    clients = ET.parse(CONFIG / "keeper-client.xml").getroot().findall("zookeeper/node")
    assert {n.findtext("host") for n in clients} == set(members.values())


@needs_compose
@pytest.mark.parametrize("name", APP_SERVICES)
def test_workers_run_in_cluster_mode_against_every_broker_and_any_server(services: dict[str, Any], name: str) -> None:
    env = {k: str(v) for k, v in services[name]["environment"].items()}
    settings = Settings.from_env(environ=env)
    cluster = next(iter(_cluster_xml().find("remote_servers") or [])).tag
    assert settings.clickhouse_cluster == cluster
    assert urlsplit(settings.clickhouse_dsn).hostname == "clickhouse"  # the alias every server answers to
    advertised = {
        b["environment"]["KAFKA_ADVERTISED_LISTENERS"].split("://")[1] for b in _of(services, "kafka-").values()
    }
    assert set(settings.bootstrap_servers.split(",")) == advertised
    assert settings.topic_replication_factor == 3


@needs_compose
@pytest.mark.parametrize("name", SCALED)
def test_the_api_and_the_workers_have_replicas(services: dict[str, Any], name: str) -> None:
    replicas = services[name]["deploy"]["replicas"]
    assert replicas >= 2
    assert "container_name" not in services[name]
    partitions = int(services[name]["environment"]["ASSETPIPE_TOPIC_PARTITIONS"])
    assert replicas <= partitions  # a consumer beyond the partitions would stand by


@needs_compose
def test_migrate_waits_for_every_broker_and_every_server_and_the_rest_for_migrate(services: dict[str, Any]) -> None:
    waits = {dep for dep, spec in services["migrate"]["depends_on"].items() if spec["condition"] == "service_healthy"}
    assert waits == set(_of(services, "kafka-")) | set(_of(services, "clickhouse-"))
    for name in SCALED:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_clickhouse_reads_the_cluster_config_with_each_servers_macros(tmp_path: Path) -> None:
    """The embedded engine loads compose/clickhouse/cluster.xml as a server of shard 02 would."""
    script = (
        "import sys, chdb.state.sqlitelike as s\n"
        "conn = s.connect(f'file:{sys.argv[1]}/db?config-file={sys.argv[2]}')\n"
        "c = conn.cursor()\n"
        "c.execute(\"SELECT shard_num, replica_num, host_name, user FROM system.clusters WHERE cluster = 'assetpipe' "
        'ORDER BY shard_num, replica_num")\n'
        "print(c.fetchall())\n"
        "c.execute('SELECT macro, substitution FROM system.macros ORDER BY macro')\n"
        "print(c.fetchall())\n"
    )
    env = {**os.environ, "CLICKHOUSE_USER": "ap", "CLICKHOUSE_PASSWORD": "pw", "CLICKHOUSE_SHARD": "02"}
    env["CLICKHOUSE_REPLICA"] = "clickhouse-s2-r1"
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), str(CONFIG / "cluster.xml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    hosts = _shards_in_config()
    assert out[0] == repr(
        tuple(
            (shard + 1, replica + 1, host, "ap") for shard, row in enumerate(hosts) for replica, host in enumerate(row)
        )
    )
    assert out[1] == repr((("replica", "clickhouse-s2-r1"), ("shard", "02")))
