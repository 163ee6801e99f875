"""Settings from ``ASSETPIPE_*`` variables: coercion, errors that name the variable, derived values, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetpipe import Settings
from assetpipe.schemas.errors import ConfigError
from assetpipe.schemas.settings import Topics

SASL_ENV = {
    "ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": "broker-1:9093,broker-2:9093",
    "ASSETPIPE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "ASSETPIPE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "ASSETPIPE_KAFKA_SASL_USERNAME": "ingest",
    "ASSETPIPE_KAFKA_SASL_PASSWORD": "s3cret-Pa55",
}


def test_variables_are_parsed_and_coerced() -> None:
    settings = Settings.from_env(
        environ={
            "ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": "kafka:19092",
            "ASSETPIPE_KAFKA_SESSION_TIMEOUT_MS": "4000",
            "ASSETPIPE_INGEST_BATCH_MAX_SECONDS": "0.5",
            "ASSETPIPE_DATA_DIR": "/var/lib/assetpipe",
            "ASSETPIPE_PRODUCER_COMPRESSION": "zstd",
            "ASSETPIPE_EMBEDDED_KAFKA_PORT": "8080",
            "ASSETPIPE_CLICKHOUSE_DATABASE": "events_prod",
            "HOME": "/root",
            "KAFKA_HEAP_OPTS": "-Xmx1G",
            "assetpipe_embedded_kafka_port": "1",
        }
    )

    assert settings.kafka_bootstrap_servers == "kafka:19092"
    assert settings.kafka_session_timeout_ms == 4000
    assert settings.ingest_batch_max_seconds == 0.5
    assert settings.data_dir == Path("/var/lib/assetpipe")
    assert settings.producer_compression == "zstd"
    assert settings.embedded_kafka_port == 8080
    assert settings.clickhouse_database == "events_prod"
    assert not settings.uses_embedded_kafka


def test_no_variables_gives_the_embedded_defaults() -> None:
    settings = Settings.from_env(environ={})

    assert settings.uses_embedded_kafka
    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.uses_embedded_clickhouse
    assert settings.topics == Topics(
        "asset_events", "asset_events.dlq", "asset_events.accepted", "run_requests", "openlineage"
    )


def test_empty_bootstrap_servers_means_embedded_everywhere() -> None:
    settings = Settings.from_env(
        environ={"ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": "", "ASSETPIPE_EMBEDDED_KAFKA_PORT": "19092"}
    )
    assert settings.bootstrap_servers == "127.0.0.1:19092"
    assert settings.uses_embedded_kafka


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env(environ={"ASSETPIPE_EMBEDDED_KAFKA_PORT": "8080"}, embedded_kafka_port=9090)
    assert settings.embedded_kafka_port == 9090


def test_unknown_assetpipe_variable_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(environ={"ASSETPIPE_KAFKA_BOOTSTRAP": "kafka:9092"})
    assert "ASSETPIPE_KAFKA_BOOTSTRAP" in str(exc.value)
    assert exc.value.code == "invalid_config"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASSETPIPE_KAFKA_SESSION_TIMEOUT_MS", "soon"),
        ("ASSETPIPE_KAFKA_SESSION_TIMEOUT_MS", "10"),
        ("ASSETPIPE_EMBEDDED_KAFKA_PORT", "70000"),
        ("ASSETPIPE_INGEST_BATCH_MAX_SECONDS", "0"),
        ("ASSETPIPE_PRODUCER_COMPRESSION", "brotli"),
        ("ASSETPIPE_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("ASSETPIPE_CLICKHOUSE_DATABASE", "my-db; DROP TABLE x"),
        ("ASSETPIPE_MAX_EVENT_BYTES", "100"),
    ],
)
def test_invalid_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env(environ={"ASSETPIPE_EMBEDDED_KAFKA_PORT": "8080", name: value})
    assert name in str(exc.value)
    assert "ASSETPIPE_EMBEDDED_KAFKA_PORT" not in str(exc.value) or name == "ASSETPIPE_EMBEDDED_KAFKA_PORT"


def test_topics_take_the_prefix() -> None:
    settings = Settings.from_env(environ={"ASSETPIPE_TOPIC_PREFIX": "staging."})
    assert settings.topics == Topics(
        events="staging.asset_events",
        dlq="staging.asset_events.dlq",
        accepted="staging.asset_events.accepted",
        run_requests="staging.run_requests",
        openlineage="staging.openlineage",
    )


def test_clickhouse_dsn_defaults_to_embedded_engine_under_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={"ASSETPIPE_DATA_DIR": str(tmp_path)})
    assert settings.clickhouse_dsn == f"chdb://{tmp_path.resolve()}/clickhouse"
    assert settings.uses_embedded_clickhouse


def test_relative_data_dir_gives_an_absolute_chdb_path() -> None:
    dsn = Settings.from_env(environ={"ASSETPIPE_DATA_DIR": "state"}).clickhouse_dsn
    assert dsn.startswith("chdb:///")
    assert dsn.endswith("/state/clickhouse")


def test_clickhouse_url_is_used_as_given() -> None:
    url = "http://assetpipe:pw@clickhouse:8123"
    settings = Settings.from_env(environ={"ASSETPIPE_CLICKHOUSE_URL": url})
    assert settings.clickhouse_dsn == url
    assert not settings.uses_embedded_clickhouse


def test_librdkafka_dict_without_sasl_has_no_sasl_keys() -> None:
    conf = Settings.from_env(environ={"ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}).as_librdkafka_dict()
    assert conf["bootstrap.servers"] == "kafka:9092"
    assert conf["security.protocol"] == "PLAINTEXT"
    assert [key for key in conf if key.startswith("sasl.")] == []


def test_librdkafka_dict_carries_every_sasl_setting_including_the_password() -> None:
    settings = Settings.from_env(environ=SASL_ENV)
    expected = {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ingest",
        "sasl.password": "s3cret-Pa55",
    }

    assert settings.as_librdkafka_dict().items() >= expected.items()
    assert settings.producer_config().items() >= expected.items()
    assert settings.consumer_config("g").items() >= expected.items()


def test_repr_does_not_leak_passwords() -> None:
    settings = Settings.from_env(
        environ={**SASL_ENV, "ASSETPIPE_CLICKHOUSE_URL": "https://writer:ch-Pa55@ch.example.com:8443"}
    )
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "s3cret-Pa55" not in text
    assert "ch-Pa55" not in repr(settings)
    assert "ch-Pa55" not in str(settings)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env(environ={})
    with pytest.raises(ValueError, match="frozen"):
        settings.embedded_kafka_port = 1
