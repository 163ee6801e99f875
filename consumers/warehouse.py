"""The warehouse: one clickhouse-connect client for a ClickHouse server (``http(s)://``) or the
embedded engine (``chdb:///path``), versioned DDL, and column-oriented inserts.

Vendor errors are wrapped here: ``WarehouseUnavailableError`` when ClickHouse cannot be reached (the
caller retries), ``WarehouseError`` when it refused the statement.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from assetpipe.consumers.cluster import MIGRATE_SETTINGS, SESSION_SETTINGS, ClusterDDL, ClusterStatement
from assetpipe.consumers.exceptions import ReadOnlyQueryError, WarehouseError, WarehouseUnavailableError
from assetpipe.consumers.readonly import ReadOnlyPolicy

if TYPE_CHECKING:
    from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)
_UNAVAILABLE_HINTS = ("Cannot lock file", "Connection refused", "Max retries", "timed out", "connect")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def load_migrations() -> list[Migration]:
    """The DDL files in ``consumers/migrations``, in version order."""
    migrations = []
    for entry in resources.files("assetpipe.consumers.migrations").iterdir():
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


class _SessionPool:
    """Read-only sessions made under one set of limits, at most ``size`` in use at once; the idle ones kept."""

    def __init__(self, size: int, limits: Callable[[], dict[str, Any]]) -> None:
        self.slots = threading.BoundedSemaphore(size)
        self.limits = limits
        self.idle: list[tuple[Any, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def drop_idle(self) -> None:
        with self.lock:
            sessions, self.idle = self.idle, []
        for client, _ in sessions:
            with suppress(Exception):
                client.close()


class Warehouse:
    """ClickHouse through clickhouse-connect. Thread-safe: one lock serializes use of the client.
    ``cluster``: the ClickHouse cluster the database spans (``consumers.cluster``); every query then carries
    the cluster's session settings."""

    def __init__(
        self, dsn: str, database: str, read_only_policy: ReadOnlyPolicy | None = None, *, cluster: str | None = None
    ) -> None:
        if cluster and dsn.startswith("chdb:"):
            raise WarehouseError("cluster mode needs a ClickHouse server: the embedded engine is one node")
        self.dsn = dsn
        self.database = database
        self.read_only_policy = read_only_policy or ReadOnlyPolicy()
        self.cluster = cluster
        self._session_settings = dict(SESSION_SETTINGS) if cluster else {}
        self._client: Any = None
        self._lock = threading.RLock()
        # Read-only queries get sessions of their own: on chDB a client's session is read-only for good, and a long
        # query does not hold up ingest. One parses analysts' queries, up to the policy's ``concurrent_queries`` run
        # queries, one runs the queries nobody waits on (``background``).
        policy = self.read_only_policy
        self._read_only_pools = {
            "parse": _SessionPool(1, policy.parse_settings),
            "run": _SessionPool(policy.concurrent_queries, policy.engine_settings),
            "background": _SessionPool(1, policy.background_settings),
        }

    @classmethod
    def from_settings(cls, settings: Settings, read_only_policy: ReadOnlyPolicy | None = None) -> Warehouse:
        return cls(
            settings.clickhouse_dsn, settings.clickhouse_database, read_only_policy, cluster=settings.clickhouse_cluster
        )

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb:")

    def connect(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            import clickhouse_connect

            try:
                self._client = clickhouse_connect.get_client(dsn=self.dsn, settings=self._session_settings)
            except Exception as exc:
                raise WarehouseUnavailableError(f"cannot reach ClickHouse at {self._safe_dsn()}: {exc}") from exc

    def close(self) -> None:
        self._drop_read_only_clients()
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

    def read_only_query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        """An analyst's query, or one built from user input with ``parameters``: one statement that only
        reads the warehouse, checked on ClickHouse's own parse (``consumers.readonly``), run read-only under
        the policy's limits. Unqualified names resolve in this warehouse's database. ``background``: nobody waits
        on it (a snapshot's refresh): it runs on a session of its own, one thread at the lowest priority."""
        if "\x00" in sql:
            raise ReadOnlyQueryError("the query contains a NUL character")
        params = dict(parameters or {}) or None
        with self._read_only_session("parse") as (parser, parse_settings):
            rendered = parser.query(
                "SELECT formatQuery({q:String})", parameters={"q": sql}, settings=parse_settings
            ).result_rows[0][0]
            tree = parser.raw_query(f"EXPLAIN AST {rendered}", parameters=params, settings=parse_settings)
        self.read_only_policy.check(tree.decode().splitlines())
        return self._run_read_only(rendered, params, background)

    def own_read_only_query(
        self, sql: str, parameters: Mapping[str, Any] | None = None, *, background: bool = False
    ) -> QueryResult:
        """A query whose text is the program's own (user input only in ``parameters``), run as
        ``read_only_query`` runs a query, read-only and under the policy's limits, without its parse
        checks: they judge text a user wrote, and cost two round trips."""
        return self._run_read_only(sql, dict(parameters or {}) or None, background)

    def _run_read_only(self, sql: str, params: dict[str, Any] | None, background: bool) -> QueryResult:
        with self._read_only_session("background" if background else "run") as (client, settings):
            result = client.query(sql, parameters=params, settings=settings)
            return QueryResult(tuple(result.column_names), list(result.result_rows))

    @contextmanager
    def _read_only_session(self, kind: str) -> Iterator[tuple[Any, dict[str, Any]]]:
        """A session of the pool ``kind`` and the settings its queries carry: an idle one, or a new one while fewer
        than the pool's size are in use (else it waits for one). A session whose query failed is closed, not put
        back: chDB hands the rest of an aborted result to the session's next query."""
        pool = self._read_only_pools[kind]
        with pool.slots:
            with pool.lock:
                session = pool.idle.pop() if pool.idle else None
            try:
                with self._read_only_errors():
                    if session is None:
                        session = self._read_only_client(pool.limits())
                    with self._translated(pool.drop_idle):
                        yield session
            except BaseException:
                if session is not None:
                    with suppress(Exception):
                        session[0].close()
                raise
            with pool.lock:
                pool.idle.append(session)

    @contextmanager
    def _read_only_errors(self) -> Iterator[None]:
        """The policy's words for a failed read-only query; a lost connection as it is."""
        try:
            yield
        except WarehouseUnavailableError:
            raise
        except WarehouseError as exc:
            raise self.read_only_policy.translate(exc) from exc

    def _read_only_client(self, limits: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """A read-only client and the settings its queries carry: on chDB the limits and then ``readonly`` are
        set on the client's session, after which no query can change a setting; a server gets them with each
        query, with ``readonly=2`` so that clickhouse-connect may send its own."""
        import clickhouse_connect

        exists = self.query(
            "SELECT count() FROM system.databases WHERE name = {db:String}", parameters={"db": self.database}
        ).rows[0][0]
        database = self.database if exists else None  # before `migrate`: names must be qualified
        policy = self.read_only_policy
        with self._translated(lambda: None):
            client = clickhouse_connect.get_client(dsn=self.dsn, database=database)
            if not self.embedded:
                return client, {**limits, **self._session_settings, "readonly": 2}
            try:
                for name, value in limits.items():
                    client.set_client_setting(name, value)
                client.set_client_setting("readonly", policy.readonly_level)
                level = client.query("SELECT getSetting('readonly')").result_rows[0][0]
            except Exception:
                client.close()
                raise
        if int(level) != policy.readonly_level:
            client.close()
            raise ReadOnlyQueryError(f"the engine did not take readonly={policy.readonly_level} ({level})")
        return client, {}

    def _drop_read_only_clients(self) -> None:
        for pool in self._read_only_pools.values():
            pool.drop_idle()

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

    def insert_raw(
        self, table: str, column_names: Sequence[str], data: bytes, fmt: str, settings: Mapping[str, Any] | None = None
    ) -> None:
        """Insert bytes in a ClickHouse input format (``fmt``) into a temporary table of this session,
        which ClickHouse parses itself. ``settings``: more settings of the insert."""
        self._call(
            "raw_insert", table, list(column_names), data, fmt=fmt, settings={**(settings or {}), "async_insert": 0}
        )

    def migrate_at_start(self, worker: str) -> None:
        """A worker's migration as it starts: ClickHouse away is not fatal there (the worker's first batch
        finds it unavailable and is retried), so it is logged and the worker goes on."""
        try:
            self.migrate()
        except WarehouseUnavailableError as exc:
            log.warning("%s starts without ClickHouse (retried on the first batch): %s", worker, exc)

    def migrate(self) -> list[str]:
        """Apply the versioned DDL not applied yet; returns the names it applied. Idempotent. With a cluster,
        each statement is rewritten for it (``consumers.cluster``) and the ledger is replicated to every node."""
        db = self.database
        migrations = load_migrations()
        plan = self._cluster_plan(migrations)
        self._apply(plan, f"CREATE DATABASE IF NOT EXISTS {db}")
        self._apply(
            plan,
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(6, 'UTC') DEFAULT now64(6)) "
            "ENGINE = ReplacingMergeTree ORDER BY version",
        )
        if plan:  # this node has every version another one recorded
            self.command(f"SYSTEM SYNC REPLICA {db}.schema_migrations")
        done = {row[0] for row in self.query(f"SELECT version FROM {db}.schema_migrations").rows}
        applied = []
        for migration in migrations:
            for statement in migration.statements:  # a cluster's plan reads every statement, applied or not
                self._apply(plan, statement.replace("{db}", db), run=migration.version not in done)
            if migration.version in done:
                continue
            self.insert("schema_migrations", [[migration.version], [migration.name]], ["version", "name"])
            applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def alter_schema(self, statement: str) -> None:
        """One DDL statement on the migrated schema outside the migrations (a setting's TTL, say); with a
        cluster, rewritten as the migrations' statements are, for the tables where they put them."""
        migrations = load_migrations()
        plan = self._cluster_plan(migrations)
        for migration in migrations:
            for known in migration.statements:
                self._apply(plan, known.replace("{db}", self.database), run=False)
        self._apply(plan, statement)

    def _cluster_plan(self, migrations: Sequence[Migration]) -> ClusterDDL | None:
        if not self.cluster:
            return None
        statements = [s.replace("{db}", self.database) for m in migrations for s in m.statements]
        return ClusterDDL(self.cluster, self.database, statements)

    def _apply(self, plan: ClusterDDL | None, statement: str, run: bool = True) -> None:
        """``statement`` as is, or as ``plan`` rewrites it for the cluster (which it must see even when it is
        not run)."""
        steps = plan.transform(statement) if plan else [ClusterStatement(statement)]
        for step in steps if run else ():
            self.command(step.sql, settings={**MIGRATE_SETTINGS, **step.settings} if plan else step.settings)

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
