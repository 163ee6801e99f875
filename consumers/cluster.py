"""Cluster mode (``ASSETPIPE_CLICKHOUSE_CLUSTER``): the one set of migrations, each statement rewritten at
migrate time for a ClickHouse cluster of shards and replicas (docs/scale-out.md).

Every table is placed one of three ways, decided from the migrations themselves:

- **sharded** (tables keyed by asset, and what views derive from them): ``<name>_local`` on every node, a
  Replicated engine per shard (``{shard}`` and ``{replica}`` macros), and ``<name>``, a ``Distributed`` table
  over them sharded by ``cityHash64(asset_key)``, which every query and insert names. One asset's rows live
  on one shard, so deduplication, merges, ``FINAL`` and ``argMax`` per asset are right shard by shard.
- **replicated** (everything else: runs, ticks, definitions' monitors, the migration ledger): ``<name>``
  itself, one replication group spanning every node, so each node reads a whole copy locally.
- **node** (engines that are not MergeTree, such as Null): the same table on every node.

A table a materialized view feeds takes its source's placement (a view fires where its source's block is
written, so a sharded source writes into its own shard); a refreshable view's target is computed by each
node for itself and is not replicated. Statements come out in order; ``ClusterDDL.transform`` must see every
statement of every migration, applied or not, to know where each table lives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assetpipe.consumers.ddl import Name, Statement, head, source_table, table_parts, view_parts
from assetpipe.consumers.exceptions import ClusterDDLError

SHARDED, REPLICATED, NODE = "sharded", "replicated", "node"
SHARD_BY = "asset_key"
SHARDING_KEY = f"cityHash64({SHARD_BY})"
LOCAL = "_local"
# every query of a cluster-mode session: inserts into Distributed tables return once each shard has its
# block (not queued on the node that took them), and a subquery over a Distributed table inside a distributed
# query is run once and sent to the shards (GLOBAL), which is right whatever the tables' sharding
SESSION_SETTINGS: Mapping[str, Any] = {"distributed_foreground_insert": 1, "distributed_product_mode": "global"}
# migrations' statements: a replicated ALTER returns once every replica applied it
MIGRATE_SETTINGS: Mapping[str, Any] = {"alter_sync": 2}
_COLUMN_COMMANDS = {"ADD", "DROP", "MODIFY", "RENAME", "COMMENT"}
_LOCAL_ALTERS = ("MODIFY SETTING", "RESET SETTING", "MODIFY COMMENT")  # each replica's own metadata


@dataclass(frozen=True, slots=True)
class Placement:
    layout: str  # SHARDED, REPLICATED or NODE
    key: str | None = None  # sharding expression; None: rows land on the shard of the view that writes them
    replicated: bool = True  # a Replicated engine (False: each node computes its own rows)


@dataclass(frozen=True, slots=True)
class ClusterStatement:
    sql: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _View:
    target: str
    source: str
    refresh: str


class ClusterDDL:
    """Rewrites statements for ``cluster``; ``statements`` are all the migrations' (``{db}`` substituted), read
    ahead for the materialized views that feed each table."""

    def __init__(self, cluster: str, database: str, statements: Iterable[str] = ()) -> None:
        self.cluster = cluster
        self.database = database
        self.tables: dict[str, Placement] = {}
        self.views: dict[str, _View | None] = {}  # None: a plain view
        self._fed_by: dict[str, list[tuple[str, bool]]] = defaultdict(list)  # table -> (source, refreshable)
        for sql in statements:
            stmt = Statement(sql)
            top = head(stmt)
            if top.verb == "CREATE" and top.object == "MATERIALIZED VIEW":
                parts = view_parts(stmt, top.name.end)
                source = source_table(stmt, parts.select)
                if parts.target and source:
                    self._fed_by[parts.target.table].append((source.table, bool(parts.refresh)))

    def transform(self, sql: str) -> list[ClusterStatement]:
        """The statements that do on the cluster what ``sql`` does on one server."""
        stmt = Statement(sql)
        top = head(stmt)
        key = (top.verb, top.object)
        if key == ("CREATE", "DATABASE"):
            return [self._on_cluster(stmt, top.name, top.name.table)]
        if top.verb in ("CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "INSERT") and top.name.database not in (
            "",
            self.database,
        ):
            raise ClusterDDLError(f"{sql[:80]!r} names another database than {self.database}")
        handlers = {
            ("CREATE", "TABLE"): self._create_table,
            ("CREATE", "VIEW"): self._create_view,
            ("CREATE", "MATERIALIZED VIEW"): self._create_materialized_view,
            ("ALTER", "TABLE"): self._alter,
            ("DROP", "TABLE"): self._drop,
            ("DROP", "VIEW"): self._drop,
            ("DROP", "DATABASE"): self._drop,
            ("TRUNCATE", "TABLE"): self._truncate,
            ("RENAME", "TABLE"): self._rename,
            ("INSERT", ""): self._insert,
        }
        handler = handlers.get(key)
        if handler is None:
            raise ClusterDDLError(f"no cluster form for {' '.join(filter(None, key))}: {sql[:80]!r}")
        if stmt.words(1, "OR", "REPLACE") and key == ("CREATE", "TABLE"):
            raise ClusterDDLError(f"CREATE OR REPLACE TABLE has no cluster form: {sql[:80]!r}")
        return handler(stmt, top.name)

    # -- CREATE

    def _create_table(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        parts = table_parts(stmt, name.end)
        if parts.engine == (-1, -1):
            raise ClusterDDLError(f"say the engine of {name.table} (cluster mode places tables by engine)")
        placement = self._place(name.table, parts.engine_name, parts.order_first)
        self.tables[name.table] = placement
        table = name.table + LOCAL if placement.layout == SHARDED else name.table
        edits = [(name.start, name.end, f"{self.database}.{table} ON CLUSTER {self.cluster}")]
        if placement.replicated and _merge_tree(parts.engine_name):
            path = f"/clickhouse/tables/{self.cluster}/{{shard}}/{self.database}/{name.table}"
            replica = "{replica}"
            if placement.layout == REPLICATED:  # one group across the shards: the replica name is unique in it
                path, replica = (
                    f"/clickhouse/tables/{self.cluster}/all/{self.database}/{name.table}",
                    "{shard}-{replica}",
                )
            args = ", ".join(filter(None, (f"'{path}'", f"'{replica}'", parts.engine_args.strip())))
            edits.append((*parts.engine, f"ENGINE = Replicated{parts.engine_name}({args})"))
            if parts.settings != (-1, -1):
                items = stmt.text(*parts.settings).replace(
                    "non_replicated_deduplication_window", "replicated_deduplication_window"
                )
                edits.append((*parts.settings, items))
        out = [ClusterStatement(stmt.render(edits))]
        if placement.layout == SHARDED:
            out.append(self._distributed(name.table, placement))
        return out

    def _place(self, table: str, engine: str, order_first: str) -> Placement:
        feeds = self._fed_by.get(table, [])
        sources = {self.tables[s].layout for s, _ in feeds if s in self.tables}
        if any(refresh for _, refresh in feeds):
            return Placement(SHARDED, None, False) if SHARDED in sources else Placement(NODE, None, False)
        keyed = order_first.strip('`" ') == SHARD_BY
        if SHARDED in sources:
            return Placement(SHARDED, SHARDING_KEY if keyed else None)
        if feeds or not _merge_tree(engine):
            return Placement(REPLICATED) if _merge_tree(engine) else Placement(NODE, None, False)
        return Placement(SHARDED, SHARDING_KEY) if keyed else Placement(REPLICATED)

    def _distributed(self, table: str, placement: Placement) -> ClusterStatement:
        args = [f"'{self.cluster}'", f"'{self.database}'", f"'{table}{LOCAL}'"]
        if placement.key:
            args.append(placement.key)
        return ClusterStatement(
            f"CREATE TABLE IF NOT EXISTS {self.database}.{table} ON CLUSTER {self.cluster} "
            f"AS {self.database}.{table}{LOCAL} ENGINE = Distributed({', '.join(args)})"
        )

    def _create_view(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        self.views[name.table] = None
        return [self._on_cluster(stmt, name, name.table)]

    def _create_materialized_view(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        parts = view_parts(stmt, name.end)
        if parts.target is None:
            raise ClusterDDLError(f"materialized view {name.table} needs a TO table in cluster mode")
        edits = [(name.start, name.end, f"{self.database}.{name.table} ON CLUSTER {self.cluster}")]
        edits += self._view_edits(stmt, name.table, parts.target, parts.select, bool(parts.refresh))
        return [ClusterStatement(stmt.render(edits))]

    def _view_edits(
        self, stmt: Statement, view: str, target_name: Name | None, select: int, refresh: bool
    ) -> list[tuple[int, int, str]]:
        """Checks that the view may feed its target where both live, and points the view at the local tables
        (its target given as ``target_name`` in the statement, or known from before)."""
        known = self.views.get(view)
        target = target_name.table if target_name else (known.target if known else "")
        source = source_table(stmt, select)
        if target not in self.tables or source is None or source.table not in self.tables:
            raise ClusterDDLError(f"materialized view {view}: its target and source must be tables created before")
        into, out_of = self.tables[target], self.tables[source.table]
        allowed = {(SHARDED, SHARDED), (REPLICATED, REPLICATED), (NODE, REPLICATED), (NODE, NODE)}
        if refresh:
            allowed = {(SHARDED, SHARDED), (REPLICATED, NODE), (NODE, NODE)}
            if into.replicated:
                raise ClusterDDLError(f"refreshable view {view}: each node refreshes, its target must not replicate")
        if (out_of.layout, into.layout) not in allowed:
            raise ClusterDDLError(
                f"materialized view {view} would feed {into.layout} table {target} from {out_of.layout} table "
                f"{source.table}: a view's rows must stay where its source's rows are"
            )
        self.views[view] = _View(target, source.table, "refresh" if refresh else "")
        edits = []
        if target_name and into.layout == SHARDED:
            edits.append((target_name.start, target_name.end, f"{self.database}.{target}{LOCAL}"))
        if out_of.layout == SHARDED:
            edits.append((source.start, source.end, f"{self.database}.{source.table}{LOCAL}"))
        return edits

    # -- ALTER, DROP, TRUNCATE, RENAME, INSERT

    def _alter(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        commands = stmt.top_level_split(name.end)
        if stmt.words(name.end, "MODIFY", "QUERY"):  # its SELECT's commas are not commands
            commands = [(name.end, len(stmt))]
        if name.table in self.views:
            return self._alter_view(stmt, name, commands)
        placement = self._placement(name)
        if placement.layout == REPLICATED:
            local = [stmt.text(*c).upper().startswith(_LOCAL_ALTERS) for c in commands]
            if all(local):
                return [self._on_cluster(stmt, name, name.table, MIGRATE_SETTINGS)]
            if any(local):
                raise ClusterDDLError(f"split ALTER of {name.table}: settings apart from replicated changes")
            return [ClusterStatement(stmt.sql, MIGRATE_SETTINGS)]  # replicated through the group's log
        table = name.table + LOCAL if placement.layout == SHARDED else name.table
        out = [self._on_cluster(stmt, name, table, MIGRATE_SETTINGS)]
        columns = [
            stmt.text(*c) for c in commands if stmt[c[0]].word in _COLUMN_COMMANDS and stmt[c[0] + 1].word == "COLUMN"
        ]
        if placement.layout == SHARDED and columns:
            out.append(
                ClusterStatement(
                    f"ALTER TABLE {self.database}.{name.table} ON CLUSTER {self.cluster} {', '.join(columns)}",
                    MIGRATE_SETTINGS,
                )
            )
        return out

    def _alter_view(self, stmt: Statement, name: Name, commands: list[tuple[int, int]]) -> list[ClusterStatement]:
        view = self.views[name.table]
        if view is None or len(commands) != 1 or not stmt.words(commands[0][0], "MODIFY", "QUERY"):
            raise ClusterDDLError(f"ALTER of view {name.table}: only a materialized view's MODIFY QUERY")
        select = commands[0][0] + 2
        edits = self._view_edits(stmt, name.table, None, select, bool(view.refresh))
        query = stmt.render(edits, select)
        if not self.tables[view.target].replicated:
            return [ClusterStatement(f"{self._head(stmt, name, name.table)} MODIFY QUERY {query}", MIGRATE_SETTINGS)]
        # ClickHouse runs ON CLUSTER ALTERs of a view whose target replicates on one replica a shard, which views
        # cannot take: the view is made again (an insert in between does not reach it: migrate with ingest stopped)
        target = view.target + LOCAL if self.tables[view.target].layout == SHARDED else view.target
        db, on = self.database, f"ON CLUSTER {self.cluster}"
        return [
            ClusterStatement(f"DROP VIEW IF EXISTS {db}.{name.table} {on} SYNC"),
            ClusterStatement(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{name.table} {on} TO {db}.{target} AS {query}"
            ),
        ]

    def _drop(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        sync = "" if any(stmt[i].word == "SYNC" for i in range(name.end, len(stmt))) else " SYNC"
        rest = stmt.text(name.end)
        if head(stmt).object == "DATABASE" or name.table not in self.tables:
            self.views.pop(name.table, None)
            return [ClusterStatement(self._head(stmt, name, name.table) + sync + (" " + rest if rest else ""))]
        placement = self.tables.pop(name.table)
        out = []
        if placement.layout == SHARDED:
            out.append(ClusterStatement(f"{self._head(stmt, name, name.table)} SYNC"))
        table = name.table + LOCAL if placement.layout == SHARDED else name.table
        out.append(ClusterStatement(self._head(stmt, name, table) + sync + (" " + rest if rest else "")))
        return out

    def _truncate(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        placement = self._placement(name)
        if placement.layout == REPLICATED:
            return [ClusterStatement(stmt.sql)]  # replicated through the group's log
        table = name.table + LOCAL if placement.layout == SHARDED else name.table
        return [self._on_cluster(stmt, name, table)]

    def _rename(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        to = stmt.find("TO", name.end)
        if to != name.end or any(stmt[i].text == "," for i in range(to, len(stmt))):
            raise ClusterDDLError(f"rename one table at a time in cluster mode: {stmt.sql[:80]!r}")
        new = stmt.name_at(to + 1).table
        db, on = self.database, f"ON CLUSTER {self.cluster}"
        if name.table in self.views:
            self.views[new] = self.views.pop(name.table)
        placement = self.tables.pop(name.table, None)
        if placement is None or placement.layout != SHARDED:
            if placement:
                self.tables[new] = placement
            return [ClusterStatement(f"RENAME TABLE {db}.{name.table} TO {db}.{new} {on}")]
        self.tables[new] = placement
        for view in self.views.values():
            if view and view.target == name.table:
                view.target = new
            if view and view.source == name.table:
                view.source = new
        return [
            ClusterStatement(f"RENAME TABLE {db}.{name.table}{LOCAL} TO {db}.{new}{LOCAL} {on}"),
            ClusterStatement(f"DROP TABLE IF EXISTS {db}.{name.table} {on} SYNC"),
            self._distributed(new, placement),
        ]

    def _insert(self, stmt: Statement, name: Name) -> list[ClusterStatement]:
        placement = self._placement(name)
        if placement.layout == NODE or not placement.replicated:
            raise ClusterDDLError(f"INSERT into {name.table}: its rows are each node's own")
        if placement.layout == SHARDED and placement.key is None:
            # no key to send rows by: each shard inserts into its local table what its own rows give
            select = stmt.find("SELECT", name.end)
            source = source_table(stmt, select) if select >= 0 else None
            if source is None or self.tables.get(source.table, Placement(NODE)).layout != SHARDED:
                raise ClusterDDLError(f"INSERT into {name.table} must select from a sharded table")
            return [ClusterStatement(stmt.sql, {"parallel_distributed_insert_select": 2})]
        return [ClusterStatement(stmt.sql)]

    # -- helpers

    def _placement(self, name: Name) -> Placement:
        if name.table not in self.tables:
            raise ClusterDDLError(f"{name.table} is not a table the migrations created")
        return self.tables[name.table]

    def _head(self, stmt: Statement, name: Name, table: str) -> str:
        """The statement up to its name, with ``table`` as the name, then ON CLUSTER."""
        qualified = f"{self.database}.{table}" if name.database or table != name.table else table
        return f"{stmt.text(0, name.start)} {qualified} ON CLUSTER {self.cluster}"

    def _on_cluster(
        self, stmt: Statement, name: Name, table: str, settings: Mapping[str, Any] | None = None
    ) -> ClusterStatement:
        qualified = f"{self.database}.{table}" if name.database or table != name.table else table
        return ClusterStatement(
            stmt.render([(name.start, name.end, f"{qualified} ON CLUSTER {self.cluster}")]), dict(settings or {})
        )


def _merge_tree(engine: str) -> bool:
    return engine.endswith("MergeTree") and not engine.startswith(("Replicated", "Shared"))
