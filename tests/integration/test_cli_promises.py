"""The README's command and error tables, checked as a user's script would check them: the quick start as
written, exit codes and messages, what ``assetpipe up`` leaves behind when it stops (Ctrl-C, SIGTERM,
SIGKILL), and the ports it gives back.

Each ``assetpipe up`` here runs in a data directory of its own, on free ports; the tests that do not stop
it share one.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from assetpipe.broker import free_port
from tests.integration.helpers import run_cli, start_cli, up_env, wait_until

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class Up:
    """An ``assetpipe up`` process and how a user's script reaches it."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path

    @property
    def data_dir(self) -> Path:
        return Path(self.env["ASSETPIPE_DATA_DIR"])

    @property
    def socket_file(self) -> Path:
        return self.data_dir / "assetpipe.sock"

    @property
    def kafka_port(self) -> int:
        return int(self.env["ASSETPIPE_EMBEDDED_KAFKA_PORT"])

    @property
    def http_port(self) -> int:
        return int(self.env["ASSETPIPE_HTTP_PORT"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def _env(data_dir: Path, **ports: int) -> dict[str, str]:
    chosen = {
        f"ASSETPIPE_{'EMBEDDED_KAFKA' if name == 'kafka' else 'HTTP'}_PORT": str(port) for name, port in ports.items()
    }
    return up_env(data_dir, **chosen)


def _start(env: dict[str, str], log: Path, *options: str) -> Up:
    process = start_cli([*options, "up"], env, log)
    up = Up(process, env, log)
    wait_until(lambda: process.poll() is not None or _status(env).returncode == 0, 90, "assetpipe up ready")
    assert process.poll() is None, log.read_text()
    return up


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_cli(["status"], env, timeout=30)


def _sql(env: dict[str, str], query: str) -> list[dict[str, object]]:
    done = run_cli(["sql", query, "--format", "json"], env)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def _stop(up: Up, signum: signal.Signals) -> str:
    up.process.send_signal(signum)
    try:
        code = up.process.wait(60)
    except subprocess.TimeoutExpired:
        up.process.kill()
        raise AssertionError(f"assetpipe up did not stop on {signum.name}:\n{up.log.read_text()[-3000:]}") from None
    text = up.log.read_text()
    assert code == 0, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return text


def _broker_pids(port: int) -> list[str]:
    """The embedded brokers listening on ``port`` (the child process ``up`` starts)."""
    found = subprocess.run(["pgrep", "-f", "--", f"--listener-url tcp://127.0.0.1:{port} "], capture_output=True)
    return found.stdout.decode().split()


def _can_listen(port: int) -> bool:
    """Whether a server can listen on ``port`` again, as the next ``assetpipe up`` would."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def _assert_released(up: Up) -> None:
    """Nothing of a stopped stack is left: no control socket, no broker child, both ports free."""
    assert not up.socket_file.exists(), sorted(p.name for p in up.data_dir.iterdir())
    wait_until(lambda: not _broker_pids(up.kafka_port), 10, f"no broker left on port {up.kafka_port}")
    assert _can_listen(up.kafka_port), f"the broker's port {up.kafka_port} is still taken"
    assert _can_listen(up.http_port), f"the HTTP API's port {up.http_port} is still taken"
    assert (up.data_dir / "clickhouse").is_dir()  # ClickHouse data persists across restarts


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One running stack for the tests that do not stop it."""
    data_dir = tmp_path_factory.mktemp("up")
    running = _start(_env(data_dir / "data"), data_dir / "up.log")
    try:
        yield running
    finally:
        running.process.send_signal(signal.SIGINT)
        try:
            running.process.wait(60)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


def test_the_quick_start_as_written(up: Up, tmp_path: Path) -> None:
    env = up.env
    mat = run_cli(
        ["report", "materialization", "sales/daily_summary", "--partition", "2024-01-15", "--data-version", "v1",
         "--metadata", '{"row_count": 1200, "source": "s3://bucket/sales"}', "--tag", "team=sales"],
        env,
    )  # fmt: skip
    assert mat.returncode == 0 and _UUID.match(mat.stdout.strip()), (mat.stdout, mat.stderr)
    check = run_cli(
        ["report", "check", "sales/daily_summary", "--check-name", "row_count_positive", "--passed",
         "--severity", "WARN"],
        env,
    )  # fmt: skip
    assert check.returncode == 0 and _UUID.match(check.stdout.strip()), (check.stdout, check.stderr)
    posted = httpx.post(
        f"{up.url}/report_asset_materialization/sales/daily_summary",
        headers={"Content-Type": "application/json"},
        content=b'{"partition": "2024-01-16", "metadata": {"row_count": 1310}}',
        timeout=30,
    )
    assert posted.status_code == 200 and posted.json()["status"] == "success", posted.text
    history = tmp_path / "history.jsonl"
    history.write_text(
        '{"type": "materialization", "asset_key": ["sales", "daily_summary"], "partition": "2024-01-14"}\n'
    )
    for _ in range(2):  # running it again adds nothing
        backfill = run_cli(["backfill", str(history)], env)
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr
        assert "published 1 events" in backfill.stdout, backfill.stdout
    # an event after the second backfill, on the same asset (so the same partition, in order): once it is
    # in ClickHouse, the ingest worker has seen the backfilled event again
    last = run_cli(["report", "materialization", "sales/daily_summary", "--partition", "last"], env)
    assert last.returncode == 0, last.stderr

    status = _status(env)
    assert status.returncode == 0, status.stdout + status.stderr
    for component in ("kafka", "clickhouse", "http", "ingest"):
        assert re.search(rf"^{component}\s+ready\b", status.stdout, re.M), status.stdout

    latest = "SELECT asset_key, partition, data_version, metadata FROM assetpipe.latest_materializations"
    wait_until(lambda: any(r["partition"] == "last" for r in _sql(env, latest)), 60, "the reports in ClickHouse")
    rows = {r["partition"]: r for r in _sql(env, latest) if r["asset_key"] == "sales/daily_summary"}
    assert set(rows) == {"2024-01-14", "2024-01-15", "2024-01-16", "last"}
    assert rows["2024-01-15"]["data_version"] == "v1"
    assert rows["2024-01-15"]["metadata"] == {"row_count": "1200", "source": "s3://bucket/sales"}
    assert rows["2024-01-16"]["metadata"] == {"row_count": "1310"}
    counts = _sql(env, "SELECT count() AS n FROM assetpipe.asset_events WHERE partition = '2024-01-14'")
    assert counts == [{"n": 1}]
    checks = _sql(env, "SELECT check_name, passed, severity FROM assetpipe.latest_check_results")
    assert checks == [{"check_name": "row_count_positive", "passed": True, "severity": "WARN"}]


def test_a_second_up_on_the_same_data_dir_is_refused_and_the_first_runs_on(up: Up) -> None:
    again = run_cli(["up"], _env(up.data_dir), timeout=60)
    assert again.returncode == 2
    expected = f"error [stack_already_running]: a stack already runs with this data directory ({up.data_dir})"
    assert expected in again.stderr, again.stderr
    assert "Traceback" not in again.stderr
    assert up.socket_file.exists()
    assert _status(up.env).returncode == 0
    assert up.process.poll() is None


@pytest.mark.parametrize("command", [["migrate"], ["worker", "ingest"]], ids=["migrate", "worker"])
def test_a_command_that_opens_the_data_dir_beside_a_stack_says_so(up: Up, command: list[str]) -> None:
    done = run_cli(command, up.env, timeout=60)
    assert done.returncode == 2
    assert f"error [stack_already_running]: a stack runs with this data directory ({up.data_dir})" in done.stderr
    assert "Traceback" not in done.stderr and "Cannot lock file" not in done.stderr
    assert _status(up.env).returncode == 0


@pytest.mark.parametrize("taken", ["kafka", "http"])
def test_up_with_a_port_taken_names_the_setting_and_leaves_nothing_behind(up: Up, taken: str, tmp_path: Path) -> None:
    port = up.kafka_port if taken == "kafka" else up.http_port
    env = _env(tmp_path / "data", **{taken: port})
    done = run_cli(["up"], env, timeout=90)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    if taken == "kafka":
        assert (
            f"error [port_in_use]: port {port} for the embedded Kafka broker is already in use; free it or set "
            "ASSETPIPE_EMBEDDED_KAFKA_PORT to another port"
        ) in done.stderr, done.stderr
    else:
        assert f"error [port_in_use]: cannot listen on 127.0.0.1:{port}: the port is already in use" in done.stderr
        assert "set ASSETPIPE_HTTP_PORT to another port" in done.stderr, done.stderr
        own_broker = int(env["ASSETPIPE_EMBEDDED_KAFKA_PORT"])
        assert not _broker_pids(own_broker) and _can_listen(own_broker)  # the broker it started is stopped
    assert not (tmp_path / "data" / "assetpipe.sock").exists()
    assert _status(env).returncode == 1
    assert _status(up.env).returncode == 0  # the stack that holds the port is untouched


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_exits_0_and_gives_everything_back(signum: signal.Signals, tmp_path: Path) -> None:
    up = _start(_env(tmp_path / "data"), tmp_path / "up.log", "-q")
    assert up.socket_file.exists() and _broker_pids(up.kafka_port)
    text = _stop(up, signum)
    assert text.rstrip().endswith("assetpipe stopped."), text[-2000:]
    assert "INFO " not in text, text  # -q: warnings and errors only
    assert "the HTTP API runs without API keys" in text
    _assert_released(up)
    status = _status(up.env)
    assert status.returncode == 1 and status.stdout.startswith("not running:"), status.stdout


def test_up_killed_with_sigkill_starts_again_over_its_stale_socket(tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    first = _start(env, tmp_path / "up-1.log")
    mat = run_cli(["report", "materialization", "killed/before", "--partition", "p1"], env)
    assert mat.returncode == 0, mat.stderr
    stored = f"SELECT count() AS n FROM assetpipe.asset_events WHERE event_id = '{mat.stdout.strip()}'"
    wait_until(lambda: _sql(env, stored) == [{"n": 1}], 60, "the event in ClickHouse")

    first.process.kill()
    first.process.wait(30)
    assert first.socket_file.exists()  # nobody removed it: the next start must cope
    wait_until(lambda: not _broker_pids(first.kafka_port), 10, "the broker to die with its parent")
    status = _status(env)
    assert status.returncode == 1 and status.stdout.startswith("not running:"), status.stdout + status.stderr

    second = _start(env, tmp_path / "up-2.log")  # same data directory, same ports
    assert _sql(env, stored) == [{"n": 1}]  # what reached ClickHouse before the kill is still there
    _stop(second, signal.SIGINT)
    _assert_released(second)


def test_report_without_a_broker_is_an_error_not_a_hang(tmp_path: Path) -> None:
    env = _env(tmp_path / "data") | {"ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    done = run_cli(["-q", "report", "materialization", "nowhere/asset"], env, timeout=90)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error [delivery_failed]: 1 event was not delivered" in done.stderr, done.stderr[-2000:]
    assert done.stdout == "" and "Traceback" not in done.stderr
