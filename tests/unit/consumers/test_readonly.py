"""The read-only policy on syntax trees as ClickHouse's ``EXPLAIN AST`` prints them (copied from chDB 4.4),
its limits as engine settings, and its messages for the errors ClickHouse gives when a limit is hit."""

from __future__ import annotations

import re

import pytest

from assetpipe.consumers.exceptions import QueryLimitError, ReadOnlyQueryError, WarehouseError
from assetpipe.consumers.readonly import ReadOnlyPolicy
from assetpipe.schemas.settings import Settings


def tree(text: str) -> list[str]:
    return text.strip("\n").splitlines()


SELECT_FROM_NUMBERS = tree("""
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function numbers (alias n) (children 1)
       ExpressionList (children 1)
        Literal UInt64_3
""")
SHOW_CREATE = tree("""
ShowCreateTableQuery  asset_events (children 1)
 Identifier asset_events
""")
DESCRIBE = tree("""
DescribeQuery (children 1)
 TableExpression (children 1)
  TableIdentifier asset_events
""")
EXPLAIN_SELECT = tree("""
Explain EXPLAIN (children 1)
 SelectWithUnionQuery (children 1)
  ExpressionList (children 1)
   SelectQuery (children 1)
    ExpressionList (children 1)
     Literal UInt64_1
""")
FILE_IN_IN = tree("""
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Function in (children 1)
     ExpressionList (children 2)
      Identifier x
      Subquery (children 1)
       SelectWithUnionQuery (children 1)
        ExpressionList (children 1)
         SelectQuery (children 2)
          ExpressionList (children 1)
           Literal UInt64_1
          TablesInSelectQuery (children 1)
           TablesInSelectQueryElement (children 1)
            TableExpression (children 1)
             Function file (children 1)
              ExpressionList (children 1)
               Literal '/etc/passwd'
""")
URL_AS_IN_OPERAND = tree("""
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 1)
   Function in (children 1)
    ExpressionList (children 2)
     Literal UInt64_1
     Function url (children 1)
      ExpressionList (children 1)
       Literal 'http://127.0.0.1:9/'
""")
FILE_SCALAR_ALIASED = tree("""
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 2)
    Literal 'a (children 3)' (alias x y)
    Function file (alias z) (children 1)
     ExpressionList (children 1)
      Literal '/proc/self/environ'
""")
OUTFILE = tree("""
SelectWithUnionQuery (children 4)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
 Literal '/tmp/x'
 Literal 'gzip'
 Literal UInt64_3
""")
OUTFILE_OF_EXPLAIN = tree("""
Explain EXPLAIN (children 2)
 SelectWithUnionQuery (children 1)
  ExpressionList (children 1)
   SelectQuery (children 1)
    ExpressionList (children 1)
     Literal UInt64_1
 Literal 'x'
""")
FORMAT = tree("""
SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal UInt64_1
 Identifier JSON
""")
SHOW_CREATE_WITH_FORMAT = tree("""
ShowCreateTableQuery  t (children 2)
 Identifier t
 Identifier JSON
""")
SETTINGS = tree("""
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Literal UInt64_1
   Set
""")
EXPLAIN_OF_DROP = tree("""
Explain EXPLAIN AST (children 1)
 DropQuery  t (children 1)
  Identifier t
""")
DICT_GET = tree("""
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Function dictGetString (children 1)
     ExpressionList (children 3)
      Literal 'd'
      Literal 'a'
      Literal UInt64_1
""")
UPPER_CASE_FILE = [line.replace("Function file", "Function FILE") for line in FILE_IN_IN]


EXISTS = tree("ExistsTableQuery  t (children 1)\n Identifier t")


@pytest.mark.parametrize(
    "lines", [SELECT_FROM_NUMBERS, SHOW_CREATE, DESCRIBE, EXPLAIN_SELECT, tree("ShowTables"), EXISTS],
    ids=["select from numbers()", "show create", "describe", "explain select", "show tables", "exists"],
)  # fmt: skip
def test_reading_statements_pass(lines: list[str]) -> None:
    ReadOnlyPolicy().check(lines)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (tree("DropQuery  t (children 1)\n Identifier t"), "not DropQuery"),
        (tree("InsertQuery (children 1)\n Identifier t"), "not InsertQuery"),
        (tree("SetQuery"), "not SetQuery"),
        (EXPLAIN_OF_DROP, "not DropQuery"),
        (FILE_IN_IN, "table function file() reaches outside the warehouse"),
        (UPPER_CASE_FILE, "table function FILE() reaches outside the warehouse"),
        (URL_AS_IN_OPERAND, "function url() reaches outside the warehouse"),
        (FILE_SCALAR_ALIASED, "function file() reaches outside the warehouse"),
        (DICT_GET, "function dictGetString() reaches outside"),
        (OUTFILE, "INTO OUTFILE is not allowed"),
        (OUTFILE_OF_EXPLAIN, "INTO OUTFILE is not allowed"),
        (FORMAT, "FORMAT is not allowed"),
        (SHOW_CREATE_WITH_FORMAT, "FORMAT is not allowed"),
        (SETTINGS, "SETTINGS in a query are not allowed"),
        ([], "no syntax tree"),
    ],
    ids=["drop", "insert", "set", "explain of drop", "file() in IN", "FILE()", "url() operand", "file() scalar",
         "dictGet", "outfile", "outfile of explain", "format", "show create format", "settings", "empty"],
)  # fmt: skip
def test_other_statements_and_clauses_are_refused(lines: list[str], message: str) -> None:
    with pytest.raises(ReadOnlyQueryError, match=re.escape(message)):
        ReadOnlyPolicy().check(lines)


def test_allowed_table_functions_come_from_the_settings_and_lower_readonly() -> None:
    url = [line.replace("Function numbers", "Function url") for line in SELECT_FROM_NUMBERS]
    with pytest.raises(ReadOnlyQueryError, match=r"url\(\)"):
        ReadOnlyPolicy().check(url)
    policy = ReadOnlyPolicy.from_settings(Settings(sql_allow_table_functions="url, s3"))
    policy.check(url)
    policy.check(URL_AS_IN_OPERAND)
    assert policy.readonly_level == 2  # readonly=1 refuses every table function but the harmless ones
    assert ReadOnlyPolicy().readonly_level == 1
    assert ReadOnlyPolicy.from_settings(Settings(sql_allow_table_functions="numbers")).readonly_level == 1


def test_defaults_are_the_settings_defaults_and_become_engine_settings() -> None:
    assert ReadOnlyPolicy.from_settings(Settings()) == ReadOnlyPolicy()
    policy = ReadOnlyPolicy.from_settings(
        Settings.from_env({"ASSETPIPE_SQL_MAX_RESULT_ROWS": "10", "ASSETPIPE_SQL_MAX_EXECUTION_SECONDS": "2.5"})
    )
    assert policy.engine_settings() == {
        "max_result_rows": 10,
        "max_result_bytes": 100_000_000,
        "result_overflow_mode": "throw",
        "max_memory_usage": 1_000_000_000,
        "max_execution_time": 2.5,
        "timeout_overflow_mode": "throw",
    }
    assert "max_result_rows" not in policy.parse_settings()  # a long query's tree is long


@pytest.mark.parametrize(
    ("clickhouse", "message"),
    [
        ("Code: 396. DB::Exception: Limit for result exceeded, max rows: 10.00, current rows: 100.00. "
         "(TOO_MANY_ROWS_OR_BYTES)", "the result exceeds 100,000 rows (ASSETPIPE_SQL_MAX_RESULT_ROWS): add LIMIT"),
        ("Code: 396. DB::Exception: Limit for result exceeded, max bytes: 9.54 KiB, current bytes: 15.00 KiB. "
         "(TOO_MANY_ROWS_OR_BYTES)", "the result exceeds 100,000,000 bytes (ASSETPIPE_SQL_MAX_RESULT_BYTES)"),
        ("Code: 241. DB::Exception: Query memory limit exceeded: would use 96.06 MiB. (MEMORY_LIMIT_EXCEEDED)",
         "more than 1,000,000,000 bytes of memory (ASSETPIPE_SQL_MAX_MEMORY_BYTES)"),
        ("Code: 159. DB::Exception: Timeout exceeded: elapsed 2007.762 ms, maximum: 2000.000 ms. (TIMEOUT_EXCEEDED)",
         "the query ran longer than 30 s (ASSETPIPE_SQL_MAX_EXECUTION_SECONDS)"),
    ],
    ids=["rows", "bytes", "memory", "time"],
)  # fmt: skip
def test_limit_errors_say_what_to_change(clickhouse: str, message: str) -> None:
    translated = ReadOnlyPolicy().translate(WarehouseError(clickhouse))
    assert isinstance(translated, QueryLimitError) and translated.code == "query_limit"
    assert message in str(translated)


def test_other_errors_keep_clickhouses_words() -> None:
    multi = ReadOnlyPolicy().translate(WarehouseError("Syntax error (Multi-statements are not allowed): ..."))
    assert isinstance(multi, ReadOnlyQueryError) and str(multi).startswith("one statement per call")
    syntax = WarehouseError("Code: 62. DB::Exception: Syntax error: failed at position 8")
    assert ReadOnlyPolicy().translate(syntax) is syntax
