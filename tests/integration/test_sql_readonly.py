"""``assetpipe sql`` as an attacker would use it: every hostile input is refused and leaves every table, every
row count and every host file as it was, in each mode: the data directory opened by this process (and by
the command), a running stack's control socket, and a ClickHouse server (the ``containers`` variant).
Then the limits, each with its message, and unqualified names resolving in the warehouse's database."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assetpipe.consumers.exceptions import QueryLimitError, ReadOnlyQueryError, WarehouseError
from assetpipe.consumers.readonly import ReadOnlyPolicy
from assetpipe.consumers.warehouse import QueryResult, Warehouse
from assetpipe.control import request
from tests.integration.conftest import Stack
from tests.integration.helpers import run_cli, up_env, wait_until

# Every table of every database, with the row counts of the two a hostile input names (the session's other
# databases may be written meanwhile by other tests' workers).
_SNAPSHOT = (
    "SELECT database, name, if(database = currentDatabase() OR startsWith(database, 'canary'), total_rows, NULL) "
    "FROM system.tables WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', 'information_schema') "
    "ORDER BY database, name"
)
_DICTIONARY = (
    "CREATE DICTIONARY {canary}.d (x UInt64) PRIMARY KEY x SOURCE(FILE(path '{file}' format 'CSV')) "
    "LAYOUT(FLAT()) LIFETIME(0)"
)
_RO, _ANY = "read_only", None  # the code the refusal carries; None: any WarehouseError (e.g. a syntax error)

# {db}: the warehouse's database, {canary}: a database of 100 rows, {file}: a host file that must not change
# or leak, {out}: a host file that must not come to exist. Written from how injection and read-only bypasses
# are tried: stacked statements hidden by comments, strings and escapes; writes of every kind; output and
# table functions that reach the host or the network, also nested; settings and unicode tricks.
HOSTILE: list[tuple[str, str, str | None]] = [
    ("stacked drop", "SELECT 1; DROP TABLE {canary}.t", _RO),
    ("stacked drop database", "SELECT 1;DROP DATABASE {canary}", _RO),
    ("stacked after comment", "SELECT 1 -- x\n; DROP TABLE {canary}.t", _RO),
    ("stacked after block comment", "SELECT 1 /* ; */; DROP TABLE {canary}.t", _RO),
    ("stacked after string", "SELECT ';'; DROP TABLE {canary}.t", _RO),
    ("stacked after escaped quote", "SELECT 'a\\';'; DROP TABLE {canary}.t", _RO),
    ("backslash semicolon", "SELECT 1 \\; DROP TABLE {canary}.t", _ANY),
    ("stacked with trailing semicolons", "SELECT 1;;; DROP TABLE {canary}.t;", _ANY),
    ("stacked newline", "SELECT 1\n;\nTRUNCATE TABLE {canary}.t", _RO),
    ("stacked system", "SELECT 1; SYSTEM DROP MARK CACHE", _RO),
    ("with then drop", "WITH 1 AS a SELECT a; DROP TABLE {canary}.t", _RO),
    ("explain then drop", "EXPLAIN SELECT 1; DROP TABLE {canary}.t", _RO),
    ("show then drop", "SHOW TABLES; DROP TABLE {canary}.t", _RO),
    ("unclosed comment hides the rest", "SELECT 1 /* DROP TABLE {canary}.t", _ANY),
    ("drop", "DROP TABLE {canary}.t", _RO),
    ("drop lower case, leading space", "  drop table {canary}.t", _RO),
    ("drop database", "DROP DATABASE {canary}", _RO),
    ("drop warehouse table", "DROP TABLE {db}.asset_events", _RO),
    ("alter delete", "ALTER TABLE {canary}.t DELETE WHERE 1", _RO),
    ("alter drop column", "ALTER TABLE {canary}.t DROP COLUMN x", _RO),
    ("insert", "INSERT INTO {canary}.t VALUES (1)", _ANY),
    ("insert select", "INSERT INTO {canary}.t SELECT number FROM numbers(5)", _RO),
    ("insert into function file", "INSERT INTO FUNCTION file('{out}', 'CSV', 'x UInt8') VALUES (1)", _ANY),
    ("delete", "DELETE FROM {canary}.t WHERE 1", _RO),
    ("update", "UPDATE {canary}.t SET x = 0 WHERE 1", _ANY),
    ("truncate", "TRUNCATE TABLE {canary}.t", _RO),
    ("optimize", "OPTIMIZE TABLE {canary}.t FINAL", _RO),
    ("create table", "CREATE TABLE {canary}.u (x UInt8) ENGINE = Memory", _RO),
    ("create table as file", "CREATE TABLE {canary}.f (x String) ENGINE = File(CSV, '{out}')", _RO),
    ("create dictionary", _DICTIONARY, _RO),
    ("create view", "CREATE VIEW {canary}.v AS SELECT * FROM file('{file}')", _RO),
    ("attach", "ATTACH TABLE {canary}.a (x UInt8) ENGINE = Memory", _RO),
    ("detach", "DETACH TABLE {canary}.t", _RO),
    ("rename", "RENAME TABLE {canary}.t TO {canary}.t2", _RO),
    ("exchange", "EXCHANGE TABLES {canary}.t AND {db}.asset_events", _RO),
    ("grant", "GRANT ALL ON *.* TO default", _RO),
    ("create user", "CREATE USER mallory IDENTIFIED WITH no_password", _RO),
    ("set readonly", "SET readonly = 0", _RO),
    ("use", "USE system", _RO),
    ("system shutdown", "SYSTEM SHUTDOWN", _RO),
    ("system reload", "SYSTEM RELOAD CONFIG", _RO),
    ("kill query", "KILL QUERY WHERE 1", _RO),
    ("backup", "BACKUP DATABASE {canary} TO File('{out}')", _ANY),
    ("explain of drop", "EXPLAIN AST DROP TABLE {canary}.t", _RO),
    ("outfile", "SELECT * FROM {canary}.t INTO OUTFILE '{out}'", _RO),
    ("outfile append to a host file", "SELECT 'echo owned' INTO OUTFILE '{file}' APPEND", _RO),
    ("outfile truncate", "SELECT 1 INTO OUTFILE '{file}' TRUNCATE", _RO),
    ("outfile compressed", "SELECT 1 INTO OUTFILE '{out}' COMPRESSION 'gzip' LEVEL 3", _RO),
    ("outfile and stdout", "SELECT 1 INTO OUTFILE '{out}' AND STDOUT", _RO),
    ("outfile with format", "SELECT 1 INTO OUTFILE '{out}' FORMAT CSV", _RO),
    ("outfile of show", "SHOW TABLES INTO OUTFILE '{out}'", _RO),
    ("outfile of describe", "DESCRIBE {canary}.t INTO OUTFILE '{out}'", _RO),
    ("outfile of explain", "EXPLAIN SELECT 1 INTO OUTFILE '{out}'", _RO),
    ("outfile of a union", "SELECT 1 UNION ALL SELECT 2 INTO OUTFILE '{out}'", _RO),
    ("format", "SELECT 1 FORMAT JSON", _RO),
    ("file table function", "SELECT * FROM file('{file}', 'LineAsString')", _RO),
    ("file scalar", "SELECT file('{file}')", _RO),
    ("environ", "SELECT file('/proc/self/environ')", _RO),
    ("file upper case", "SELECT * FROM FILE('{file}', 'LineAsString')", _RO),
    ("file quoted", "SELECT * FROM `file`('{file}', 'LineAsString')", _RO),
    ("file in a subquery", "SELECT * FROM (SELECT * FROM file('{file}', 'LineAsString'))", _RO),
    ("file in a join", "SELECT * FROM {canary}.t AS a JOIN file('{file}', 'LineAsString') AS b ON 1", _RO),
    ("file in a cte", "WITH f AS (SELECT * FROM file('{file}', 'LineAsString')) SELECT * FROM f", _RO),
    ("file in IN", "SELECT 1 WHERE 'x' IN (SELECT * FROM file('{file}', 'LineAsString'))", _RO),
    ("file in a union", "SELECT 'a' UNION ALL SELECT * FROM file('{file}', 'LineAsString')", _RO),
    ("file in view()", "SELECT * FROM view(SELECT * FROM file('{file}', 'LineAsString'))", _RO),
    ("file in a scalar subquery", "SELECT (SELECT any(line) FROM file('{file}', 'LineAsString'))", _RO),
    ("describe file", "DESCRIBE file('{file}', 'LineAsString')", _RO),
    ("explain of file", "EXPLAIN SELECT * FROM file('{file}', 'LineAsString')", _RO),
    ("url", "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", _RO),
    ("url as IN operand", "SELECT 1 WHERE 1 IN url('http://127.0.0.1:9/', 'CSV', 'x UInt8')", _RO),
    ("s3", "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV', 'x UInt8')", _RO),
    ("remote", "SELECT * FROM remote('127.0.0.1:9', system.one)", _RO),
    ("remote secure", "SELECT * FROM remoteSecure('127.0.0.1:9', system.one)", _RO),
    ("cluster", "SELECT * FROM cluster('default', system.one)", _RO),
    ("mysql", "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')", _RO),
    ("postgresql", "SELECT * FROM postgresql('127.0.0.1:9', 'd', 't', 'u', 'p')", _RO),
    ("executable", "SELECT * FROM executable('id', 'LineAsString', 'x String')", _RO),
    ("hdfs", "SELECT * FROM hdfs('hdfs://127.0.0.1:9/f', 'CSV', 'x UInt8')", _RO),
    ("sqlite", "SELECT * FROM sqlite('{file}', 't')", _RO),
    ("input", "SELECT * FROM input('x UInt8')", _RO),
    ("merge of other databases", "SELECT * FROM merge('system', '^one$')", _RO),
    ("dictionary table function", "SELECT * FROM dictionary('d')", _RO),
    ("dictGet", "SELECT dictGet('d', 'x', toUInt64(1))", _RO),
    ("dictHas", "SELECT dictHas('d', toUInt64(1))", _RO),
    ("settings readonly 0", "SELECT * FROM {canary}.t SETTINGS readonly = 0", _RO),
    ("settings lifting the limit", "SELECT * FROM numbers(10) SETTINGS max_result_rows = 0", _RO),
    ("settings in a subquery", "SELECT * FROM (SELECT 1 SETTINGS max_execution_time = 0)", _RO),
    ("fullwidth semicolon", "SELECT 1\uff1b DROP TABLE {canary}.t", _ANY),
    ("greek question mark", "SELECT 1\u037e DROP TABLE {canary}.t", _ANY),
    ("zero-width space", "SELECT 1;\u200bDROP TABLE {canary}.t", _ANY),
    ("right-to-left override", "SELECT '\u202e'; DROP TABLE {canary}.t", _RO),
    ("cyrillic keyword", "\u0405ELECT 1; DROP TABLE {canary}.t", _ANY),
    ("NUL byte", "SELECT 1\x00; DROP TABLE {canary}.t", _RO),
    ("very long", "SELECT 1" + " " * 300_000 + "; DROP TABLE {canary}.t", _ANY),
    ("deeply nested", "SELECT " + "(" * 5000 + "1" + ")" * 5000 + "; DROP TABLE {canary}.t", _ANY),
    ("empty", "", _ANY),
    ("only a comment", "-- DROP TABLE {canary}.t", _ANY),
]
_IDS = [name for name, _, _ in HOSTILE]


@dataclass(frozen=True)
class Target:
    """What the hostile inputs aim at, and what must stay as it was."""

    db: str
    canary: str
    file: Path
    out: Path

    def fill(self, template: str) -> str:
        return template.format(db=self.db, canary=self.canary, file=self.file, out=self.out)

    def host_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.file.parent.iterdir()) if p.is_file()}


CANARY_TEXT = b"#!/bin/sh\necho canary\n"


def make_target(tmp: Path, db: str, canary: str) -> Target:
    host = tmp / "host"
    host.mkdir()
    (host / "canary.sh").write_bytes(CANARY_TEXT)
    return Target(db, canary, host / "canary.sh", host / "written_by_a_query.csv")


@pytest.fixture(scope="module")
def warehouse(stack: Stack) -> Iterator[Warehouse]:
    """A database of this module's own: nothing else writes to it while a hostile input runs."""
    wh = Warehouse(stack.clickhouse_url, f"readonly_{uuid.uuid4().hex[:8]}")
    wh.migrate()
    yield wh
    wh.command(f"DROP DATABASE IF EXISTS {wh.database}")
    wh.close()


@pytest.fixture(scope="module")
def target(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    canary = f"canary_{uuid.uuid4().hex[:8]}"
    warehouse.command(f"CREATE DATABASE {canary}")
    warehouse.command(f"CREATE TABLE {canary}.t (x UInt64) ENGINE = MergeTree ORDER BY x")
    warehouse.command(f"INSERT INTO {canary}.t SELECT number FROM numbers(100)")
    yield make_target(tmp_path_factory.mktemp("sql"), warehouse.database, canary)
    warehouse.command(f"DROP DATABASE IF EXISTS {canary}")


def test_unqualified_and_qualified_names_resolve(warehouse: Warehouse) -> None:
    assert warehouse.read_only_query("SELECT count() FROM asset_events").rows[0][0] >= 0
    qualified = warehouse.read_only_query(f"SELECT count() FROM {warehouse.database}.asset_events").rows
    assert qualified == warehouse.read_only_query("SELECT count() FROM asset_events").rows
    assert warehouse.read_only_query("SELECT currentDatabase()").rows == [(warehouse.database,)]
    assert ("asset_events",) in warehouse.read_only_query("SHOW TABLES").rows
    assert warehouse.read_only_query("EXISTS TABLE asset_events").rows == [(1,)]


def test_reading_statements_still_run(warehouse: Warehouse, target: Target) -> None:
    read = warehouse.read_only_query
    assert read(f"SELECT count() FROM {target.canary}.t").rows == [(100,)]
    assert read("WITH 2 AS a SELECT a * number FROM numbers(3) ORDER BY 1").rows == [(0,), (2,), (4,)]
    assert read("SELECT ';' AS s -- a comment; DROP\n").rows == [(";",)]
    assert read("SELECT 1;").rows == [(1,)]
    assert read("SELECT x FROM {canary}.t WHERE x = {n:UInt64}".replace("{canary}", target.canary),
                parameters={"n": 7}).rows == [(7,)]  # fmt: skip
    assert read(f"DESCRIBE TABLE {target.canary}.t").rows[0][:2] == ("x", "UInt64")
    assert read("EXPLAIN SELECT 1").rows
    assert read("SELECT 'a%b' LIKE '%b'").rows == [(1,)]


@pytest.mark.parametrize(("sql", "code"), [(sql, code) for _, sql, code in HOSTILE], ids=_IDS)
def test_hostile_input_is_refused_and_changes_nothing(
    warehouse: Warehouse, target: Target, sql: str, code: str | None
) -> None:
    tables, files = warehouse.query(_SNAPSHOT).rows, target.host_files()
    with pytest.raises(WarehouseError) as refused:
        warehouse.read_only_query(target.fill(sql))
    if code:
        assert refused.value.code == code, str(refused.value)
    assert CANARY_TEXT.decode() not in str(refused.value)  # nothing of the file in the error either
    assert warehouse.query(_SNAPSHOT).rows == tables
    assert target.host_files() == files
    assert not target.out.exists()


def test_limits_refuse_with_a_message_that_says_what_to_change(warehouse: Warehouse) -> None:
    policy = ReadOnlyPolicy(max_result_rows=10, max_result_bytes=10_000, max_memory_bytes=50_000_000,
                            max_execution_seconds=1)  # fmt: skip
    limited = Warehouse(warehouse.dsn, warehouse.database, policy)
    try:
        assert len(limited.read_only_query("SELECT number FROM numbers(10)").rows) == 10
        cases = {
            "SELECT number FROM numbers(11)": "the result exceeds 10 rows (ASSETPIPE_SQL_MAX_RESULT_ROWS): add LIMIT",
            "SELECT repeat(toString(number), 3000) FROM numbers(5)": "the result exceeds 10,000 bytes",
            "SELECT length(groupArray(number)) FROM numbers(20000000)": "the query needs more than 50,000,000 bytes",
            "SELECT sleepEachRow(0.5) FROM numbers(4) SETTINGS max_block_size = 1": None,
            "SELECT count() FROM numbers(10) WHERE sleepEachRow(0.3) = 0": "the query ran longer than 1 s",
        }
        for sql, message in cases.items():
            with pytest.raises(WarehouseError) as hit:
                limited.read_only_query(sql)
            if message:
                assert isinstance(hit.value, QueryLimitError) and message in str(hit.value), (sql, str(hit.value))
                assert hit.value.code == "query_limit"
            else:  # a SETTINGS clause that would lift max_block_size is refused before it runs
                assert isinstance(hit.value, ReadOnlyQueryError)
            assert limited.read_only_query("SELECT 1").rows == [(1,)]  # nothing of the refused result is left
    finally:
        limited.close()


def test_queries_run_side_by_side_up_to_the_policys_number(warehouse: Warehouse) -> None:
    """Read-only queries run at once on sessions of their own, at most ``concurrent_queries``: the others wait for
    a session, and every one gets its answer."""
    limited = Warehouse(warehouse.dsn, warehouse.database, ReadOnlyPolicy(concurrent_queries=3))
    probe = f"probe_{uuid.uuid4().hex[:8]}"
    answers: list[QueryResult] = []
    readers = [threading.Thread(target=lambda: answers.append(limited.own_read_only_query(
        f"SELECT sleep(1), '{probe}'", {}))) for _ in range(5)]  # fmt: skip
    running = (f"SELECT count() FROM system.processes WHERE query LIKE '%{probe}%' "
               "AND query NOT LIKE '%system.processes%'")  # fmt: skip
    try:
        for reader in readers:
            reader.start()
        seen = set()
        while any(reader.is_alive() for reader in readers):
            seen.add(warehouse.query(running).rows[0][0])
        for reader in readers:
            reader.join()
    finally:
        limited.close()
    assert max(seen) == 3
    assert [answer.rows for answer in answers] == [[(0, probe)]] * 5


def test_a_query_nobody_waits_on_runs_on_one_thread_at_the_lowest_priority(warehouse: Warehouse) -> None:
    """``background`` (a snapshot's refresh): the same answer, read-only, on one thread at nice 19, so that it
    leaves the cores to the queries a reader waits on."""
    settings = "SELECT toUInt64(getSetting('max_threads')), toInt64(getSetting('os_thread_priority'))"
    assert warehouse.own_read_only_query(settings, background=True).rows == [(1, 19)]
    assert warehouse.read_only_query(settings, background=True).rows == [(1, 19)]
    assert warehouse.own_read_only_query(settings).rows != [(1, 19)]
    count = "SELECT count() FROM asset_events"
    assert warehouse.read_only_query(count, background=True).rows == warehouse.read_only_query(count).rows
    with pytest.raises(ReadOnlyQueryError):
        warehouse.read_only_query("CREATE TABLE t (x UInt8) ENGINE = Memory", background=True)
    with pytest.raises(WarehouseError):
        warehouse.own_read_only_query("INSERT INTO asset_events (event_type) VALUES ('observation')", background=True)
    assert warehouse.own_read_only_query("SELECT 1", background=True).rows == [(1,)]


# -- through the command, opening the data directory, and through a running stack ----------------------------


def _seed(data_dir: Path) -> None:
    """The warehouse's DDL and a canary database of 100 rows in ``data_dir``, by a process of its own."""
    script = (
        "import sys\n"
        "from consumers.warehouse import Warehouse\n"
        "w = Warehouse(sys.argv[1], 'assetpipe')\n"
        "w.migrate()\n"
        "w.command('CREATE DATABASE canary')\n"
        "w.command('CREATE TABLE canary.t (x UInt64) ENGINE = MergeTree ORDER BY x')\n"
        "w.command('INSERT INTO canary.t SELECT number FROM numbers(100)')\n"
        "w.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, f"chdb://{data_dir / 'clickhouse'}"], check=True, timeout=120)


def _cli_sql(env: dict[str, str], sql: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["sql", sql, "--format", "json"], env)


def test_the_command_opening_the_data_directory(stack: Stack, tmp_path: Path) -> None:
    if stack.clickhouse_url.startswith("http"):
        pytest.skip("opens an embedded ClickHouse directory of its own")
    _seed(tmp_path)
    target = make_target(tmp_path, "assetpipe", "canary")
    env = up_env(tmp_path, ASSETPIPE_SQL_MAX_RESULT_ROWS="50")
    files = target.host_files()

    done = _cli_sql(env, "SELECT count() AS n FROM asset_events")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": 0}]
    dropped = _cli_sql(env, target.fill("SELECT 1; DROP TABLE {canary}.t"))
    assert dropped.returncode == 2 and dropped.stderr.startswith("error [read_only]: one statement per call")
    leaked = _cli_sql(env, target.fill("SELECT file('{file}')"))
    assert leaked.returncode == 2 and "error [read_only]: function file() reaches outside" in leaked.stderr
    appended = _cli_sql(env, target.fill("SELECT 'rm -rf ~' INTO OUTFILE '{file}' APPEND"))
    assert appended.returncode == 2 and "error [read_only]: INTO OUTFILE is not allowed" in appended.stderr
    many = _cli_sql(env, "SELECT number FROM numbers(51)")
    assert many.returncode == 2
    assert "error [query_limit]: the result exceeds 50 rows (ASSETPIPE_SQL_MAX_RESULT_ROWS): add LIMIT" in many.stderr
    counted = _cli_sql(env, "SELECT count() AS n FROM canary.t")
    assert json.loads(counted.stdout) == [{"n": 100}]
    assert target.host_files() == files and not target.out.exists()


@pytest.fixture
def running_stack(stack: Stack, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """``assetpipe up`` on a data directory holding the canary database; its working directory: ``tmp_path``."""
    if stack.clickhouse_url.startswith("http"):
        pytest.skip("the local stack runs the embedded ClickHouse")
    _seed(tmp_path)
    env = up_env(tmp_path, ASSETPIPE_SQL_MAX_RESULT_ROWS="50000")  # the stack's queries take its settings
    log = tmp_path / "up.log"
    with open(log, "ab") as out:
        up = subprocess.Popen([sys.executable, "-m", "assetpipe.cli", "up"], env=env, stdout=out, stderr=out,
                              cwd=tmp_path)  # fmt: skip
    try:
        wait_until(lambda: "assetpipe is running" in log.read_text(), 90, "assetpipe up started")
        yield env, tmp_path
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()


def test_hostile_inputs_through_a_running_stack(running_stack: tuple[dict[str, str], Path]) -> None:
    env, data_dir = running_stack
    socket_path = data_dir.resolve() / "assetpipe.sock"
    target = make_target(data_dir, "assetpipe", "canary")
    cwd_before = sorted(p.name for p in data_dir.iterdir())

    def ask(sql: str, background: bool = False) -> dict[str, object]:
        return request(socket_path, {"op": "sql", "query": sql, "background": background}, timeout=120)

    tables, files = ask(_SNAPSHOT)["rows"], target.host_files()
    assert ask("SELECT count() FROM canary.t")["rows"] == [[100]]
    accepted = [name for name, sql, _ in HOSTILE if ask(target.fill(sql))["ok"]]
    assert accepted == [], f"the stack ran hostile inputs: {accepted}"
    # a query nobody waits on (the catalog's status snapshot, from assetpipe serve) is checked the same way
    accepted = [name for name, sql, _ in HOSTILE if ask(target.fill(sql), background=True)["ok"]]
    assert accepted == [], f"the stack ran hostile inputs in the background: {accepted}"
    threads = ask("SELECT toUInt64(getSetting('max_threads')) AS n", background=True)
    assert threads["rows"] == [[1]], threads
    relative = ask("SELECT 1 INTO OUTFILE 'relative_out.csv'")
    assert relative["code"] == "read_only"
    assert ask(_SNAPSHOT)["rows"] == tables
    assert target.host_files() == files and not target.out.exists()
    assert sorted(p.name for p in data_dir.iterdir()) == cwd_before

    # the command through the stack: names in the warehouse's database, errors with their code, exit 2
    done = _cli_sql(env, "SELECT count() AS n FROM asset_events")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": 0}]
    refused = _cli_sql(env, "SELECT 1; DROP DATABASE assetpipe")
    assert refused.returncode == 2 and refused.stderr.startswith("error [read_only]: one statement per call")
    big = _cli_sql(env, "SELECT number FROM numbers(3000000)")
    assert big.returncode == 2
    assert "error [query_limit]: the result exceeds 50,000 rows (ASSETPIPE_SQL_MAX_RESULT_ROWS)" in big.stderr
    readonly = ask("SELECT getSetting('readonly')")
    assert readonly.get("rows") == [[1]], readonly
