"""The ``assetpipe`` commands' documented answers that need no broker, ClickHouse or socket, run as a
user's script runs them: exit codes, and ``error [code]: message`` on standard error."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from assetpipe.producers.http.auth import parse_api_keys

# no broker listens there: a command that tried to reach one would say so in its log
_NO_BROKER = "127.0.0.1:1"


def _run(args: list[str], data_dir: Path, stdin: str = "", **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
    env |= {"ASSETPIPE_DATA_DIR": str(data_dir), "ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS": _NO_BROKER, **variables}
    return subprocess.run(
        [sys.executable, "-m", "assetpipe.cli", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_status_without_a_stack_exits_1_and_says_so(tmp_path: Path) -> None:
    done = _run(["status"], tmp_path)
    assert done.returncode == 1
    assert done.stdout == f"not running: no stack is running with this data directory ({tmp_path.resolve()})\n"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "command",
    [["up"], ["status"], ["migrate"], ["worker", "ingest"], ["sql", "SELECT 1"], ["api-key", "new"],
     ["report", "materialization", "a"], ["backfill", "x.jsonl"], ["serve"]],
    ids=lambda c: c[0],
)  # fmt: skip
def test_an_unknown_or_invalid_setting_is_named_before_anything_runs(command: list[str], tmp_path: Path) -> None:
    unknown = _run(command, tmp_path, ASSETPIPE_HTTP_PROT="3000")
    assert unknown.returncode == 2
    assert unknown.stderr == "error [invalid_config]: unknown setting ASSETPIPE_HTTP_PROT\n"
    invalid = _run(command, tmp_path, ASSETPIPE_HTTP_PORT="http")
    assert invalid.returncode == 2
    assert invalid.stderr.startswith("error [invalid_config]: invalid settings: ASSETPIPE_HTTP_PORT: "), invalid.stderr
    assert invalid.stdout == "" and not any(tmp_path.iterdir())  # nothing ran, nothing was created


@pytest.mark.parametrize("kind", ["sensor", "run"])
def test_sensor_and_run_workers_need_definitions(kind: str, tmp_path: Path) -> None:
    done = _run(["worker", kind], tmp_path)
    assert done.returncode == 2
    assert (
        done.stderr == f"error [invalid_config]: the {kind} worker needs definitions: --defs FILE or ASSETPIPE_DEFS\n"
    )
    missing = tmp_path / "missing_defs.py"
    for args, variables in (
        (["worker", kind, "--defs", str(missing)], {}),
        (["worker", kind], {"ASSETPIPE_DEFS": str(missing)}),
    ):
        done = _run(args, tmp_path, **variables)
        assert done.returncode == 2
        assert done.stderr == f"error [invalid_definition]: definitions file {missing} does not exist\n", done.stderr


def test_api_key_new_prints_a_key_and_the_entry_that_admits_it(tmp_path: Path) -> None:
    done = _run(
        ["api-key", "new", "--name", "etl", "--types", "materialization,check", "--prefixes", "sales/"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    key = re.fullmatch(r"key:   (apk_\S+)", lines[0])
    entry = re.fullmatch(r"entry: (sha256:[0-9a-f]{64}:name=etl:types=materialization,check:prefixes=sales/)", lines[1])
    assert key and entry, done.stdout
    digest = hashlib.sha256(key.group(1).encode()).hexdigest()
    assert entry.group(1).startswith(f"sha256:{digest}:")
    (parsed,) = parse_api_keys(entry.group(1))  # as the server reads ASSETPIPE_API_KEYS
    assert parsed.name == "etl" and parsed.allows("check_evaluation", ["sales", "daily"])
    assert not parsed.allows("observation", ["sales", "daily"])
    assert not parsed.allows("check_evaluation", ["salesforce"])
    assert _run(["api-key", "new"], tmp_path).stdout != done.stdout  # random every time

    # the entry of an existing key, from the argument or from standard input
    assert _run(["api-key", "hash", key.group(1)], tmp_path).stdout == f"sha256:{digest}\n"
    assert _run(["api-key", "hash"], tmp_path, stdin=key.group(1) + "\n").stdout == f"sha256:{digest}\n"


def test_api_key_errors(tmp_path: Path) -> None:
    no_key = _run(["api-key", "hash"], tmp_path, stdin="")
    assert no_key.returncode == 2 and no_key.stderr == "error [error]: no key given\n"
    bad_type = _run(["api-key", "new", "--types", "materialization,bogus"], tmp_path)
    assert bad_type.returncode == 2 and bad_type.stdout == ""
    assert bad_type.stderr.startswith("error [invalid_config]: ") and "Invalid event type 'bogus'" in bad_type.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["materialization", "a", "--metadata", "{rows: 1}"], "error [error]: --metadata is not valid JSON: "),
        (["check", "a", "--passed"], "error [error]: a check needs --check-name and --passed or --failed"),
        (["check", "a", "--check-name", "c"], "error [error]: a check needs --check-name and --passed or --failed"),
        (["check", "a", "--check-name", "c", "--failed", "--data-version", "v1"],
         "error [error]: --tag and --data-version do not apply to a check"),
    ],
)  # fmt: skip
def test_report_refuses_bad_arguments_without_reaching_for_a_broker(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = _run(["report", *args], tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert "librdkafka" not in done.stderr and "Traceback" not in done.stderr  # no connection was tried
    assert done.stdout == ""
