"""Settings: one typed, frozen object per process, built from ``ASSETPIPE_*`` environment variables.

``Settings.from_env()`` is the only place that reads the environment; everything else receives the
object. Tests pass ``environ={...}`` instead of patching ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from assetpipe.schemas.errors import ConfigError

ENV_PREFIX = "ASSETPIPE_"


@dataclass(frozen=True, slots=True)
class Topics:
    """The topic names, all under one prefix."""

    events: str
    dlq: str
    accepted: str
    run_requests: str
    openlineage: str  # OpenLineage events as they came, with their lineage edges (the receiver's)

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(
            f"{prefix}asset_events",
            f"{prefix}asset_events.dlq",
            f"{prefix}asset_events.accepted",
            f"{prefix}run_requests",
            f"{prefix}openlineage",
        )


class Settings(BaseModel):
    """Every setting of assetpipe. Field ``x`` is read from ``ASSETPIPE_X``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kafka_bootstrap_servers: str | None = Field(
        None, description="Kafka bootstrap servers; unset: `assetpipe up` starts the embedded broker"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_session_timeout_ms: int = Field(6000, ge=1000, description="consumer group session timeout")
    kafka_heartbeat_interval_ms: int = Field(500, ge=100)
    embedded_kafka_port: int = Field(9092, ge=1, le=65535, description="port of the embedded broker")
    topic_prefix: str = Field("", description="prefix of every topic name")
    topic_partitions: int = Field(4, ge=1, description="partitions of topics that assetpipe creates")
    topic_replication_factor: int = Field(1, ge=1)
    schema_registry_url: str | None = Field(
        None, description="Confluent schema registry; unset: Avro single-object encoding"
    )
    clickhouse_url: str | None = Field(
        None,
        description="http(s)://user:pass@host:8123 or chdb:///abs/path; unset: embedded under data_dir",
        repr=False,  # may hold a password
    )
    clickhouse_database: str = Field("assetpipe", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    clickhouse_cluster: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="ClickHouse cluster the database spans, from the servers' remote_servers (docs/scale-out.md)",
    )
    data_dir: Path = Field(Path(".assetpipe"), description="embedded ClickHouse data and the control socket")
    retention_days: int | None = Field(
        None, ge=1, description="days raw events and numeric points are kept at least (docs/retention.md); unset: all"
    )
    ingest_group_id: str = "assetpipe-ingest"
    ingest_batch_max_rows: int = Field(100_000, ge=1)
    ingest_batch_max_seconds: float = Field(
        0.25, gt=0, description="a batch closes this long after its first message, whatever its size"
    )
    ingest_batch_idle_seconds: float = Field(
        0.25, gt=0, description="a batch also closes once no message came for this long (the stream paused or ended)"
    )
    ingest_key_filter_bits: int = Field(
        16, ge=0, le=64, description="bits a stored dedup key in the ingest worker's key filter; 0: no filter"
    )
    ingest_consumers: int = Field(
        1, ge=1, le=64, description="consumers in one ingest worker process, each with its own ClickHouse session"
    )
    ingest_key_filter_max_mb: int = Field(
        256, ge=1, description="memory of an ingest worker's key filters, all its consumers' together (MiB)"
    )
    dedup_window_days: int = Field(
        30, ge=0, description="days an event's identity is held against repeats after it was ingested; 0: forever"
    )
    producer_linger_ms: int = Field(5, ge=0)
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "lz4"
    producer_queue_max_messages: int = Field(1_000_000, ge=1)
    producer_backpressure_timeout_s: float = Field(30.0, ge=0)
    max_event_bytes: int = Field(1_048_576, ge=1024)
    # HTTP API
    http_host: str = Field("127.0.0.1", description="address the HTTP API listens on")
    http_port: int = Field(3000, ge=1, le=65535, description="port of the HTTP API")
    http_workers: int = Field(1, ge=1, description="HTTP API worker processes (`assetpipe serve`)")
    api_keys: str | None = Field(
        None, description="API keys as hashes with optional scopes; required when http_host is not loopback"
    )
    http_max_body_bytes: int = Field(1_048_576, ge=1024, description="body limit of the report endpoints (413)")
    http_max_batch_bytes: int = Field(16_777_216, ge=1024, description="body limit of /report_asset_events (413)")
    http_max_json_depth: int = Field(32, ge=2, le=512, description="nesting depth of a request body (400)")
    http_max_metadata_entries: int = Field(1000, ge=1, description="metadata entries of one event (400)")
    http_max_string_chars: int = Field(65_536, ge=64, description="length of any string in a request (400)")
    http_publish_timeout_s: float = Field(
        10.0, gt=0, description="wait for the broker's acknowledgement before answering 503"
    )
    http_require_known_assets: bool = Field(
        True, description="404 for an observation or check of an asset never materialized; false: Dagster-lenient"
    )
    # assetpipe sql (and queries built from user input)
    openlineage_mapping_file: Path | None = Field(
        None, description="YAML or JSON rules naming the assets of OpenLineage datasets (docs/openlineage.md)"
    )
    openlineage_raw_ttl_days: int = Field(7, ge=1, description="days OpenLineage events are kept as they came")
    openlineage_group_id: str = "assetpipe-openlineage"
    sql_max_result_rows: int = Field(100_000, ge=1, description="rows a read-only query may return")
    sql_max_result_bytes: int = Field(100_000_000, ge=1024, description="bytes a read-only query may return")
    sql_max_memory_bytes: int = Field(1_000_000_000, ge=1_000_000, description="memory of one read-only query")
    sql_max_execution_seconds: float = Field(30.0, gt=0, description="time of one read-only query")
    sql_max_concurrent_queries: int = Field(
        4, ge=1, le=64, description="read-only queries (the catalog's, analysts') a process runs at once"
    )
    sql_allow_table_functions: str = Field(
        "", description="table functions beyond numbers, zeros, values, generateRandom, view: comma-separated"
    )
    # sensors and runs
    defs: Path | None = Field(None, description="Python module declaring jobs and sensors (`--defs`)")
    sensor_group_id: str = "assetpipe-sensors"
    run_group_id: str = "assetpipe-runs"
    code_location: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$", description="name of the definitions' code location; unset: the file stem"
    )
    sensor_batch_max_seconds: float = Field(0.02, gt=0, description="longest a sensor worker gathers a batch")
    # checks evaluated on the stream (freshness, bounds, anomalies)
    check_group_id: str = "assetpipe-checks"
    check_refresh_seconds: float = Field(
        5.0, gt=0, description="how often the check worker reads the registered checks and anomaly baselines again"
    )
    run_timeout_s: float = Field(
        3600.0, ge=10, description="longest a run worker may spend on a batch of runs before its group moves on"
    )
    run_webhook_url: str | None = Field(
        None, pattern=r"^https?://", description="POST run requests for jobs not defined here to this URL"
    )
    run_webhook_timeout_s: float = Field(10.0, gt=0, description="timeout of one webhook POST")
    run_webhook_attempts: int = Field(5, ge=1, description="webhook POST attempts before the run fails")
    run_webhook_backoff_s: float = Field(0.5, ge=0, description="first wait between webhook attempts; doubles")
    # alerts
    alert_policies_file: Path | None = Field(None, description="JSON file of alert policies (beside the definitions')")
    alert_group_id: str = "assetpipe-alerts"
    alert_batch_max_seconds: float = Field(0.05, gt=0, description="longest the alert worker gathers a batch")
    alert_poll_interval_s: float = Field(
        1.0, ge=1.0, description="how often the alert worker reads new run and tick failures from ClickHouse"
    )
    alert_failure_lookback_s: float = Field(
        900.0, ge=1, description="how far back a starting alert worker looks for run and tick failures not alerted"
    )
    alert_webhook_timeout_s: float = Field(10.0, gt=0, description="timeout of one alert webhook POST")
    alert_delivery_attempts: int = Field(5, ge=1, description="attempts at sending an alert (webhook, Slack, SMTP)")
    alert_send_concurrency: int = Field(16, ge=1, description="deliveries the alert worker sends at once")
    alert_delivery_backoff_s: float = Field(0.5, ge=0, description="first wait between an alert's attempts; doubles")
    public_url: str | None = Field(
        None, pattern=r"^https?://", description="the web catalog's URL in alerts' links; unset: http://HTTP_HOST:PORT"
    )
    smtp_host: str | None = Field(None, description="SMTP server of email alerts")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_from: str | None = Field(None, description="From address of email alerts")
    smtp_starttls: bool = Field(False, description="STARTTLS before sending (and before logging in)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(10.0, gt=0, description="timeout of one SMTP conversation")

    @pydantic.field_validator("retention_days", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``ASSETPIPE_RETENTION_DAYS=`` (as a compose file passes a variable not set) keeps everything."""
        return None if value == "" else value

    @pydantic.field_validator("clickhouse_cluster")
    @classmethod
    def _cluster_needs_a_server(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        url = info.data.get("clickhouse_url") or "chdb:"
        if value and url.startswith("chdb:"):
            raise ValueError("a cluster needs a ClickHouse server: set ASSETPIPE_CLICKHOUSE_URL to one")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, value in env.items():
            if not name.startswith(ENV_PREFIX):
                continue
            field = name[len(ENV_PREFIX) :].lower()
            if field not in cls.model_fields:
                raise ConfigError(f"unknown setting {name}")
            values[field] = value
        values.update(overrides)
        try:
            return cls(**values)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid settings: {problems}") from exc

    @property
    def topics(self) -> Topics:
        return Topics.with_prefix(self.topic_prefix)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.embedded_kafka_port}"

    @property
    def uses_embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers  # as bootstrap_servers: empty means unset

    @property
    def clickhouse_dsn(self) -> str:
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def uses_embedded_clickhouse(self) -> bool:
        return self.clickhouse_dsn.startswith("chdb:")

    @property
    def catalog_url(self) -> str:
        """Where the web catalog is reached, for links in alerts: ``public_url``, else the HTTP API's address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "::", "") else self.http_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.http_port}"

    @property
    def control_socket(self) -> Path:
        return self.data_dir.resolve() / "assetpipe.sock"

    def as_librdkafka_dict(self) -> dict[str, Any]:
        """Connection settings shared by every Kafka client."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
            "log.connection.close": False,
        }
        if self.kafka_sasl_mechanism:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
        if self.kafka_sasl_username is not None:
            conf["sasl.username"] = self.kafka_sasl_username
        if self.kafka_sasl_password is not None:
            conf["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        return conf

    def producer_config(self) -> dict[str, Any]:
        return {
            **self.as_librdkafka_dict(),
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": self.producer_compression,
            "linger.ms": self.producer_linger_ms,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": self.producer_queue_max_messages,
            "message.max.bytes": self.max_event_bytes + 65_536,
        }

    def consumer_config(self, group_id: str) -> dict[str, Any]:
        return {
            **self.as_librdkafka_dict(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.kafka_session_timeout_ms,
            "heartbeat.interval.ms": self.kafka_heartbeat_interval_ms,
            "partition.assignment.strategy": "cooperative-sticky",
            "statistics.interval.ms": 1000,
        }
