"""The read-only query policy: which statements an analyst's query may be, the limits it runs under, and
what a refusal or a limit says. ``Warehouse.read_only_query`` applies it; the catalog API reuses it.

ClickHouse decides, never a reading of the text here: ``formatQuery`` (the query passed as a parameter)
parses exactly one statement and renders it, ``EXPLAIN AST`` of that rendering gives the tree this module
classifies, and the rendering is what runs. The engine enforces ``readonly`` besides: 1 on chDB, where
``INTO OUTFILE`` still writes and the scalar ``file()`` still reads (hence the tree check), 2 on a server,
where clickhouse-connect must send its own settings and the user's grants apply.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.consumers.exceptions import QueryLimitError, ReadOnlyQueryError, WarehouseError
from assetpipe.schemas.settings import Settings

# Table functions that read nothing outside the warehouse; ``view`` wraps a subquery checked like any other.
SAFE_TABLE_FUNCTIONS = (
    "numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generateRandom", "generate_series", "generateSeries",
    "view",
)  # fmt: skip
# Functions that reach the host or another system wherever they appear (also where the grammar takes an
# expression, as on the right of IN). ``file`` is a scalar too, and readonly=1 does not stop it.
_OUTSIDE = frozenset(
    {"file", "url", "urlcluster", "s3", "s3cluster", "gcs", "oss", "cosn", "remote", "remotesecure", "cluster",
     "clusterallreplicas", "mysql", "postgresql", "executable", "hdfs", "hdfscluster", "azureblobstorage",
     "azureblobstoragecluster", "jdbc", "odbc", "sqlite", "mongodb", "redis", "input", "dictionary", "iceberg",
     "icebergs3", "icebergazure", "iceberghdfs", "iceberglocal", "deltalake", "deltalakes3", "deltalakeazure",
     "deltalakelocal", "hudi", "ytsaurus", "arrowflight", "catboostevaluate", "loop"}
)  # fmt: skip
_READ_STATEMENTS = ("SelectWithUnionQuery", "Show", "DescribeQuery", "Exists")
_NAMED_STATEMENTS = ("ShowCreate", "Exists")  # their first Identifier child names the object


@dataclass(frozen=True, slots=True)
class ReadOnlyPolicy:
    """Limits of one read-only query and the table functions it may call. Defaults as in ``Settings``."""

    max_result_rows: int = 100_000
    max_result_bytes: int = 100_000_000
    max_memory_bytes: int = 1_000_000_000
    max_execution_seconds: float = 30.0
    extra_table_functions: frozenset[str] = field(default_factory=frozenset)
    concurrent_queries: int = 4  # read-only queries of one warehouse running at once, each on a client of its own

    @classmethod
    def from_settings(cls, settings: Settings) -> ReadOnlyPolicy:
        extra = frozenset(n.strip().lower() for n in settings.sql_allow_table_functions.split(",") if n.strip())
        return cls(
            settings.sql_max_result_rows,
            settings.sql_max_result_bytes,
            settings.sql_max_memory_bytes,
            settings.sql_max_execution_seconds,
            extra,
            settings.sql_max_concurrent_queries,
        )

    @property
    def readonly_level(self) -> int:
        """1 unless table functions beyond the safe ones are allowed: readonly=1 refuses them all."""
        return 2 if self.extra_table_functions - {n.lower() for n in SAFE_TABLE_FUNCTIONS} else 1

    def parse_settings(self) -> dict[str, Any]:
        """The limits of parsing a query for ``check``: no result limit, as a long query has a long tree."""
        return {
            "max_memory_usage": self.max_memory_bytes,
            "max_execution_time": self.max_execution_seconds,
            "timeout_overflow_mode": "throw",
        }

    def engine_settings(self) -> dict[str, Any]:
        """The limits of running a query."""
        return {
            **self.parse_settings(),
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
        }

    def background_settings(self) -> dict[str, Any]:
        """The limits of a query nobody waits on (a snapshot's refresh): one thread, at the lowest OS priority,
        so that it leaves the cores to the queries somebody waits on."""
        return {**self.engine_settings(), "max_threads": 1, "os_thread_priority": 19}

    def check(self, explain_ast: Sequence[str]) -> None:
        """Refuse the statement whose ``EXPLAIN AST`` lines these are, unless it only reads the warehouse."""
        nodes = _tree(explain_ast)
        if not nodes:
            raise ReadOnlyQueryError("ClickHouse gave no syntax tree for the query")
        statement = nodes[0]
        while statement.type == "Explain":
            self._check_output_clauses(statement)
            explained = [c for c in statement.children if c.type != "Set"]
            if not explained:
                raise ReadOnlyQueryError("EXPLAIN without a statement")
            statement = explained[0]
        if not statement.type.startswith(_READ_STATEMENTS):
            raise ReadOnlyQueryError(
                f"only SELECT, WITH, SHOW, DESCRIBE, EXISTS and EXPLAIN of them may run here, not {statement.type}"
            )
        self._check_output_clauses(statement)
        allowed = {n.lower() for n in SAFE_TABLE_FUNCTIONS} | self.extra_table_functions
        for node in _walk(nodes[0]):
            if node.type == "Set":
                raise ReadOnlyQueryError(
                    "SETTINGS in a query are not allowed: the limits are set by ASSETPIPE_SQL_MAX_* settings"
                )
            if node.type != "Function":
                continue
            name = node.name.lower()
            table_function = node.parent is not None and node.parent.type == "TableExpression"
            if (table_function and name not in allowed) or (
                (name in _OUTSIDE or name.startswith("dict")) and name not in self.extra_table_functions
            ):
                kind = "table function" if table_function else "function"
                raise ReadOnlyQueryError(
                    f"{kind} {node.name}() reaches outside the warehouse; the table functions allowed are "
                    f"{', '.join(SAFE_TABLE_FUNCTIONS)} and those in ASSETPIPE_SQL_ALLOW_TABLE_FUNCTIONS"
                )

    @staticmethod
    def _check_output_clauses(statement: _Node) -> None:
        named = statement.type.startswith(_NAMED_STATEMENTS)
        identifiers = 0
        for child in statement.children:
            if child.type == "Literal":
                raise ReadOnlyQueryError("INTO OUTFILE is not allowed: the result comes back to this command")
            if child.type == "Identifier":
                identifiers += 1
                if not (named and identifiers == 1):
                    raise ReadOnlyQueryError("FORMAT is not allowed: choose the output with --format")

    def translate(self, exc: WarehouseError) -> WarehouseError:
        """ClickHouse's error for a limit this policy set, as a message that says what to change."""
        text = str(exc)
        if "TOO_MANY_ROWS_OR_BYTES" in text and "max rows" in text:
            return QueryLimitError(
                f"the result exceeds {self.max_result_rows:,} rows (ASSETPIPE_SQL_MAX_RESULT_ROWS): "
                "add LIMIT or aggregate"
            )
        if "TOO_MANY_ROWS_OR_BYTES" in text:
            return QueryLimitError(
                f"the result exceeds {self.max_result_bytes:,} bytes (ASSETPIPE_SQL_MAX_RESULT_BYTES): "
                "select fewer columns, add LIMIT or aggregate"
            )
        if "MEMORY_LIMIT_EXCEEDED" in text:
            return QueryLimitError(
                f"the query needs more than {self.max_memory_bytes:,} bytes of memory "
                "(ASSETPIPE_SQL_MAX_MEMORY_BYTES): filter earlier or aggregate less"
            )
        if "TIMEOUT_EXCEEDED" in text:
            return QueryLimitError(
                f"the query ran longer than {self.max_execution_seconds:g} s "
                "(ASSETPIPE_SQL_MAX_EXECUTION_SECONDS): filter by time or partition, or aggregate less"
            )
        if "Multi-statements are not allowed" in text:
            return ReadOnlyQueryError(f"one statement per call: {text}")
        if "(READONLY)" in text:
            return ReadOnlyQueryError(f"refused in read-only mode: {text}")
        return exc


@dataclass(eq=False, slots=True)
class _Node:
    type: str
    name: str
    parent: _Node | None
    children: list[_Node] = field(default_factory=list)


def _tree(lines: Sequence[str]) -> list[_Node]:
    """The nodes of ``EXPLAIN AST`` output (one line a node, indented one space a level), roots first."""
    roots: list[_Node] = []
    path: list[_Node] = []
    for line in lines:
        depth = len(line) - len(line.lstrip(" "))
        words = line.split()
        if not words:
            continue
        name = words[1] if len(words) > 1 and not words[1].startswith("(") else ""
        del path[depth:]
        parent = path[-1] if path else None
        node = _Node(words[0], name, parent)
        (parent.children if parent else roots).append(node)
        path.append(node)
    return roots


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children:
        yield from _walk(child)
