"""The warehouse: one clickhouse-connect client for a ClickHouse server (``http(s)://``) or the
embedded engine (``chdb:///path``), versioned DDL, and column-oriented inserts.

Vendor errors are wrapped here: ``WarehouseUnavailableError`` when ClickHouse cannot be reached (the
caller retries), ``WarehouseError`` when it refused the statement.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from typing import Any

from consumers.exceptions import ReadOnlyQueryError, WarehouseError, WarehouseUnavailableError
from consumers.readonly import ReadOnlyPolicy

_UNAVAILABLE_HINTS = ("Cannot lock file", "Connection refused", "Max retries", "timed out", "connect")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations() -> list[Migration]:
    """The DDL files in ``consumers/migrations``, in version order."""
    migrations = []
    for entry in resources.files("consumers.migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version, _, name = entry.name.removesuffix(".sql").partition("_")
        text = "\n".join(line for line in entry.read_text().splitlines() if not line.lstrip().startswith("--"))
        statements = tuple(s.strip() for s in text.split(";") if s.strip())
        migrations.append(Migration(int(version), name, statements))
    return sorted(migrations, key=lambda m: m.version)


@dataclass(frozen=True, slots=True)
class QueryResult:
    column_names: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def insert_settings(token: str | None = None) -> dict[str, Any]:
    """A synchronous insert (async_insert off) deduplicated by ``token``, in the tables its views feed too.
    A block may span any number of partitions (``asset_events`` has one a month): a batch of backfilled
    history often spans more than ClickHouse's default of 100, and refusing it would stop ingestion there
    (the server logs a warning instead)."""
    settings: dict[str, Any] = {
        "async_insert": 0,
        "deduplicate_blocks_in_dependent_materialized_views": 1,
        "throw_on_max_partitions_per_insert_block": 0,
    }
    if token:
        settings["insert_deduplication_token"] = token
    return settings


class Warehouse:
    """ClickHouse through clickhouse-connect. Thread-safe: one lock serializes use of the client."""

    def __init__(self, dsn: str, database: str, read_only_policy: ReadOnlyPolicy | None = None) -> None:
        self.dsn = dsn
        self.database = database
        self.read_only_policy = read_only_policy or ReadOnlyPolicy()
        self._client: Any = None
        self._lock = threading.RLock()
        # Analysts' queries get a client of their own: on chDB its session is read-only for good, and a long
        # query does not hold up ingest.
        self._read_only_client: Any = None
        self._read_only_lock = threading.Lock()

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    def connect(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            import clickhouse_connect

            try:
                self._client = clickhouse_connect.get_client(dsn=self.dsn)
            except Exception as exc:
                raise WarehouseUnavailableError(f"cannot reach ClickHouse at {self._safe_dsn()}: {exc}") from exc

    def close(self) -> None:
        with self._read_only_lock:
            self._drop_read_only_client()
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None

    def ping(self) -> bool:
        try:
            self.query("SELECT 1")
        except WarehouseError:
            return False
        return True

    def command(self, sql: str, settings: Mapping[str, Any] | None = None) -> Any:
        return self._call("command", sql, settings=dict(settings or {}))

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        result = self._call("query", sql, parameters=parameters, settings=dict(settings or {}))
        return QueryResult(tuple(result.column_names), list(result.result_rows))

    def read_only_query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
        """An analyst's query, or one built from user input with ``parameters``: one statement that only
        reads the warehouse, checked on ClickHouse's own parse (``consumers.readonly``), run read-only under
        the policy's limits. Unqualified names resolve in this warehouse's database."""
        if "\x00" in sql:
            raise ReadOnlyQueryError("the query contains a NUL character")
        policy = self.read_only_policy
        params = dict(parameters or {})
        with self._read_only_lock:
            client, settings = self._read_only_session()
            try:
                with self._translated(self._drop_read_only_client):
                    rendered = client.query(
                        "SELECT formatQuery({q:String})", parameters={"q": sql}, settings=settings
                    ).result_rows[0][0]
                    explain = client.raw_query(f"EXPLAIN AST {rendered}", parameters=params or None, settings=settings)
                policy.check(explain.decode().splitlines())
                with self._translated(self._drop_read_only_client):
                    result = client.query(rendered, parameters=params or None, settings=settings)
            except WarehouseUnavailableError:
                raise
            except WarehouseError as exc:
                raise policy.translate(exc) from exc
        return QueryResult(tuple(result.column_names), list(result.result_rows))

    def _read_only_session(self) -> tuple[Any, dict[str, Any]]:
        """The read-only client and the settings each of its queries carries. On chDB the limits and then
        ``readonly`` are set on the client's session, after which no query can change a setting; a server
        gets them with each query, with ``readonly=2`` so that clickhouse-connect may send its own."""
        policy = self.read_only_policy
        if self._read_only_client is not None:
            return self._read_only_client, {} if self.embedded else self._server_read_only_settings()
        import clickhouse_connect

        exists = self.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}", parameters={"db": self.database}
        ).rows[0][0]
        database = self.database if exists else None  # before `migrate`: names must be qualified
        with self._translated(self._drop_read_only_client):
            client = clickhouse_connect.get_client(dsn=self.dsn, database=database)
            self._read_only_client = client
            if not self.embedded:
                return client, self._server_read_only_settings()
            for name, value in policy.engine_settings().items():
                client.set_client_setting(name, value)
            client.set_client_setting("readonly", policy.readonly_level)
            level = client.query("SELECT getSetting('readonly')").result_rows[0][0]
        if int(level) != policy.readonly_level:
            self._drop_read_only_client()
            raise ReadOnlyQueryError(f"the engine did not take readonly={policy.readonly_level} (it says {level})")
        return client, {}

    def _server_read_only_settings(self) -> dict[str, Any]:
        return {**self.read_only_policy.engine_settings(), "readonly": 2}

    def _drop_read_only_client(self) -> None:
        client, self._read_only_client = self._read_only_client, None
        if client is not None:
            with suppress(Exception):
                client.close()

    def query_np(self, sql: str) -> Any:
        """The result as a numpy array (a structured one when the columns' types differ)."""
        return self._call("query_np", sql)

    def query_np_blocks(self, sql: str, block_rows: int = 1_000_000) -> Iterator[Any]:
        """The result as numpy arrays of up to ``block_rows`` rows each, streamed: a large result is never
        held whole. The client stays this caller's until the last block is read."""
        with self._lock:
            self.connect()
            settings = {"max_block_size": block_rows}
            with self._translated(self._drop_client), self._client.query_np_stream(sql, settings=settings) as stream:
                yield from stream

    def insert(
        self,
        table: str,
        columns: Sequence[Any],  # each a sequence or a numpy array
        column_names: Sequence[str],
        *,
        dedup_token: str | None = None,
        temporary: bool = False,
    ) -> None:
        """Column-oriented insert, synchronous (async_insert off), with an optional dedup token.
        ``temporary``: ``table`` is a temporary table of this client's session."""
        self._call(
            "insert",
            table if temporary else f"{self.database}.{table}",
            columns,
            column_names=list(column_names),
            column_oriented=True,
            settings=insert_settings(dedup_token),
        )

    def insert_raw(self, table: str, column_names: Sequence[str], data: bytes, fmt: str) -> None:
        """Insert bytes in a ClickHouse input format (``fmt``) into a temporary table of this session,
        which ClickHouse parses itself."""
        self._call("raw_insert", table, list(column_names), data, fmt=fmt, settings={"async_insert": 0})

    def migrate(self) -> list[str]:
        """Apply the versioned DDL not applied yet; returns the names it applied. Idempotent."""
        db = self.database
        self.command(f"CREATE DATABASE IF NOT EXISTS {db}")
        self.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {row[0] for row in self.query(f"SELECT version FROM {db}.schema_migrations").rows}
        applied = []
        for migration in load_migrations():
            if migration.version in done:
                continue
            for statement in migration.statements:
                self.command(statement.replace("{db}", db))
            self.insert("schema_migrations", [[migration.version], [migration.name]], ["version", "name"])
            applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.connect()
            with self._translated(self._drop_client):
                return getattr(self._client, method)(*args, **kwargs)

    @contextmanager
    def _translated(self, drop: Callable[[], None]) -> Iterator[None]:
        """clickhouse-connect's and chDB's errors as this package's; ``drop`` forgets a client that failed."""
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        try:
            yield
        except OperationalError as exc:
            drop()
            raise WarehouseUnavailableError(f"ClickHouse unavailable: {exc}") from exc
        except DatabaseError as exc:
            raise WarehouseError(str(exc)) from exc
        except Exception as exc:  # the chDB backend raises plain errors
            if any(hint in str(exc) for hint in _UNAVAILABLE_HINTS):
                drop()
                raise WarehouseUnavailableError(f"ClickHouse unavailable: {exc}") from exc
            raise WarehouseError(str(exc)) from exc

    def _drop_client(self) -> None:
        try:
            if self._client is not None:
                self._client.close()
        except Exception:
            pass
        self._client = None

    def _safe_dsn(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.dsn)
