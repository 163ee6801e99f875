"""compose/docker-compose.yml: valid for Compose, and wired the way its header tells users.

Validated with Debian's ``docker-compose`` (v1.29, package ``docker-compose``): ``config`` parses,
validates against the Compose schema and interpolates variables without talking to a Docker engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from assetpipe import Settings
from assetpipe.producers.http.auth import Authenticator, hash_key

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read `docker-compose config` output")

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
DOCKER_COMPOSE = shutil.which("docker-compose")
API_KEYS = hash_key("compose-test-key") + ":name=compose"  # the file requires ASSETPIPE_API_KEYS
# services running the assetpipe image
APP_SERVICES = ["ingest", "migrate", "api", "sensors", "schedules", "runs", "checks"]

pytestmark = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="the docker-compose binary is absent (Debian: apt-get install docker-compose)",
)

Config = dict[str, Any]


def _run_config(file: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert DOCKER_COMPOSE is not None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **variables}
    return subprocess.run(
        [DOCKER_COMPOSE, "--file", str(file), "config"],
        capture_output=True,
        text=True,
        env=env,  # only the variables given here are interpolated, not the developer's shell
        timeout=120,
        check=False,
    )


def _compose_config(**variables: str) -> Config:
    result = _run_config(COMPOSE_FILE, {"ASSETPIPE_API_KEYS": API_KEYS, **variables})
    assert result.returncode == 0, result.stderr
    config: Config = yaml.safe_load(result.stdout)
    return config


@pytest.fixture(scope="module")
def config() -> Config:
    return _compose_config()


@pytest.fixture(scope="module")
def services(config: Config) -> dict[str, Any]:
    return config["services"]  # type: ignore[no-any-return]


def _published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(published, target) pairs; v1 and v2 print long-form ports, v2 with string published ports."""
    return {(int(p["published"]), int(p["target"])) for p in service.get("ports", []) if "published" in p}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read-only) of each volume; v1 prints ``SOURCE:TARGET:MODE``, v2 the long form."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume["source"], volume["target"], bool(volume.get("read_only"))))
        else:
            source, target, *mode = volume.split(":")
            mounts.append((source, target, mode == ["ro"]))
    return mounts


def _listeners(value: str) -> dict[str, str]:
    """``NAME://host:port,...`` -> {NAME: "host:port"}."""
    pairs = (item.split("://", 1) for item in value.split(","))
    return {name: where for name, where in pairs}


def test_the_file_has_kafka_clickhouse_migrate_and_ingest(services: dict[str, Any]) -> None:
    assert {"kafka", "clickhouse", "migrate", "ingest"} <= set(services)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["ingest"]["command"] == ["worker", "ingest"]
    assert services["checks"]["command"] == ["worker", "checks"]
    assert "profiles" not in services["checks"]  # policies come from the registry: no definitions file needed


def test_the_file_has_the_api_and_the_sensor_and_run_workers(services: dict[str, Any]) -> None:
    assert services["api"]["command"] == ["serve"]
    assert services["sensors"]["command"] == ["worker", "sensor"]
    assert services["runs"]["command"] == ["worker", "run"]
    assert services["schedules"]["command"] == ["worker", "schedule"]
    assert "profiles" not in services["api"]
    for name in ("sensors", "schedules", "runs"):  # they need a definitions file: started with --profile sensors
        assert services[name]["profiles"] == ["sensors"]


def test_kafka_is_a_single_kraft_node_with_host_and_network_listeners(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    bound = _listeners(env["KAFKA_LISTENERS"])
    host = next(listener for listener, where in advertised.items() if where.startswith("localhost:"))
    host_port = int(advertised[host].rsplit(":", 1)[1])
    assert int(bound[host].rsplit(":", 1)[1]) == host_port
    assert (host_port, host_port) in _published_ports(kafka)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_workers_reach_kafka_on_an_advertised_network_listener(services: dict[str, Any], name: str) -> None:
    bootstrap = services[name]["environment"]["ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS"]
    kafka_env = services["kafka"]["environment"]
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    listener = next(listener for listener, where in advertised.items() if where == bootstrap)
    assert bootstrap.split(":")[0] in services  # a compose service name, resolvable on the network
    assert _listeners(kafka_env["KAFKA_LISTENERS"])[listener].endswith(":" + bootstrap.rsplit(":", 1)[1])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_workers_reach_clickhouse_with_its_user_and_password(services: dict[str, Any], name: str) -> None:
    url = urlsplit(services[name]["environment"]["ASSETPIPE_CLICKHOUSE_URL"])
    clickhouse = services["clickhouse"]
    assert url.scheme == "http"
    assert url.hostname == "clickhouse"
    assert url.port == 8123
    assert url.username == clickhouse["environment"]["CLICKHOUSE_USER"]
    assert url.password == clickhouse["environment"]["CLICKHOUSE_PASSWORD"]
    assert (8123, 8123) in _published_ports(clickhouse)


def test_one_password_variable_sets_both_server_and_workers() -> None:
    services = _compose_config(CLICKHOUSE_USER="analyst", CLICKHOUSE_PASSWORD="Xy7secret")["services"]
    assert services["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"] == "Xy7secret"
    for name in APP_SERVICES:
        url = urlsplit(services[name]["environment"]["ASSETPIPE_CLICKHOUSE_URL"])
        assert (url.username, url.password) == ("analyst", "Xy7secret")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_worker_environment_is_valid_assetpipe_settings(services: dict[str, Any], name: str) -> None:
    env = {k: str(v) for k, v in services[name]["environment"].items()}
    settings = Settings.from_env(environ=env)  # ConfigError on an unknown or invalid ASSETPIPE_ variable

    assert not settings.uses_embedded_kafka
    assert not settings.uses_embedded_clickhouse


def test_start_order_waits_for_health_and_for_migrate(services: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"kafka": "service_healthy", "clickhouse": "service_healthy"}
    for name in ("ingest", "sensors", "schedules", "runs"):
        assert conditions(name) == {
            "migrate": "service_completed_successfully",
            "kafka": "service_healthy",
            "clickhouse": "service_healthy",
        }
    assert conditions("api") == {"migrate": "service_completed_successfully", "kafka": "service_healthy"}
    for name in ("kafka", "clickhouse"):
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"].get("restart", "no") == "no"


def test_ingest_can_scale_in_one_consumer_group(services: dict[str, Any]) -> None:
    ingest = services["ingest"]
    assert "container_name" not in ingest  # a fixed name allows one replica only
    assert "ports" not in ingest  # a fixed host port allows one replica only


def test_api_listens_beyond_loopback_with_the_keys_it_is_given(services: dict[str, Any]) -> None:
    api = services["api"]
    settings = Settings.from_env(environ={k: str(v) for k, v in api["environment"].items()})
    assert settings.api_keys == API_KEYS
    Authenticator.from_config(settings.api_keys).require_for(settings.http_host)  # ConfigError without keys
    assert settings.http_host == "0.0.0.0"
    assert (settings.http_port, settings.http_port) in _published_ports(api)
    assert "http://127.0.0.1:3000/readyz" in " ".join(api["healthcheck"]["test"])


def test_the_api_keys_variable_is_required() -> None:
    result = _run_config(COMPOSE_FILE, {})
    assert result.returncode != 0
    assert "ASSETPIPE_API_KEYS" in result.stderr


@pytest.mark.parametrize("name", ["sensors", "schedules", "runs"])
def test_sensor_and_run_workers_read_the_mounted_definitions(services: dict[str, Any], name: str) -> None:
    service = services[name]
    defs = Path(service["environment"]["ASSETPIPE_DEFS"])
    assert [(Path(target), read_only) for _, target, read_only in _mounts(service)] == [(defs.parent, True)]
    renamed = _compose_config(DEFS_DIR="/srv/team_a", DEFS_FILE="team_a.py")["services"][name]
    assert renamed["environment"]["ASSETPIPE_DEFS"] == "/defs/team_a.py"
    assert _mounts(renamed) == [("/srv/team_a", "/defs", True)]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_worker_image_builds_from_the_repository_root(services: dict[str, Any], name: str) -> None:
    build = services[name]["build"]
    context = Path(build["context"])
    assert context.resolve() == REPO
    assert (context / build["dockerfile"]).is_file()
    assert (context / "pyproject.toml").is_file()


_MUTATIONS: list[tuple[str, Callable[[str], str]]] = [
    ("unknown condition", lambda text: text.replace("service_completed_successfully", "service_done", 1)),
    ("bad key", lambda text: text.replace("    restart: unless-stopped\n", "    restartt: unless-stopped\n", 1)),
]


@pytest.mark.parametrize("mutate", [m for _, m in _MUTATIONS], ids=[n for n, _ in _MUTATIONS])
def test_validation_rejects_a_broken_file(tmp_path: Path, mutate: Callable[[str], str]) -> None:
    """The validator is strict enough that the checks above mean something."""
    assert DOCKER_COMPOSE is not None
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(mutate(COMPOSE_FILE.read_text()))
    assert broken.read_text() != COMPOSE_FILE.read_text()
    assert _run_config(COMPOSE_FILE, {"ASSETPIPE_API_KEYS": API_KEYS}).returncode == 0
    assert _run_config(broken, {"ASSETPIPE_API_KEYS": API_KEYS}).returncode != 0
