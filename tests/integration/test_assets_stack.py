"""The seed's observable source on `assetpipe up`: a file's hash observed by a schedule and by `assetpipe
assets observe`; the downstream asset turns STALE because "upstream data has changed", an eager one is
re-materialized once per change and stays FRESH; `assetpipe assets materialize` brings the other back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.helpers import run_cli, running_up, up_env, wait_until

DEFS = """
import hashlib
import os
from pathlib import Path

from assetpipe import (
    AutomationCondition, DataVersion, Definitions, MaterializeResult, ScheduleDefinition, asset,
    define_asset_job, observable_source_asset,
)

SOURCE = Path(os.environ["SEED_SOURCE_FILE"])


@observable_source_asset
def foo_source_asset():
    return DataVersion(hashlib.sha256(SOURCE.read_bytes()).hexdigest())


@asset(deps=[foo_source_asset], code_version="1")
def downstream():
    return MaterializeResult(metadata={"dagster/row_count": len(SOURCE.read_text().splitlines())})


@asset(deps=[foo_source_asset], code_version="1", automation_condition=AutomationCondition.eager())
def eager_downstream():
    return MaterializeResult(metadata={"dagster/row_count": len(SOURCE.read_text().splitlines())})


observe_job = define_asset_job("observe_job", selection=[foo_source_asset])

defs = Definitions(
    assets=[foo_source_asset, downstream, eager_downstream],
    jobs=[observe_job],
    schedules=[ScheduleDefinition(job=observe_job, interval_seconds=2)],
)
"""


class Stack:
    def __init__(self, env: dict[str, str], up: subprocess.Popen[bytes], log: Path) -> None:
        self.env, self.up, self.log = env, up, log
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{env['ASSETPIPE_HTTP_PORT']}", timeout=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = run_cli(list(args), self.env)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done

    def sql(self, query: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.cli("sql", query, "--format", "json").stdout)
        return found

    def status(self, key: str) -> dict[str, Any]:
        answer = self.http.get(f"/api/assets/{key}/status")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def materializations(self, key: str) -> int:
        rows = self.sql(
            f"SELECT count() AS n FROM asset_events WHERE asset_key = '{key}' AND event_type = 'materialization'"
        )
        return int(rows[0]["n"])


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    source = tmp_path / "foo.csv"
    source.write_text("a\n")
    defs = tmp_path / "seed_defs.py"
    defs.write_text(DEFS)
    env = up_env(tmp_path / "data", SEED_SOURCE_FILE=str(source))
    log = tmp_path / "up.log"
    with running_up(["--defs", str(defs)], env, log) as up:
        stack = Stack(env, up, log)
        with stack.http:
            yield stack


def test_a_changed_source_file_makes_downstream_stale_and_re_materializes_the_eager_one(
    stack: Stack, tmp_path: Path
) -> None:
    source = tmp_path / "foo.csv"
    # the schedule observes the file; the eager asset follows the first version
    wait_until(lambda: stack.materializations("eager_downstream") == 1, 60, "eager_downstream materialized")
    assert stack.status("downstream")["status"] == "MISSING"

    run = stack.cli("assets", "materialize", "downstream", "--wait")
    assert "succeeded" in run.stdout, run.stdout
    wait_until(lambda: stack.status("downstream")["status"] != "MISSING", 30, "downstream's event stored")
    status = stack.status("downstream")
    assert (status["status"], status["causes"]) == ("FRESH", [])

    source.write_text("a\nb\n")  # a new version of the source
    observed = stack.cli("assets", "observe", "foo_source_asset", "--wait")
    assert "succeeded" in observed.stdout, observed.stdout
    wait_until(lambda: stack.status("downstream")["status"] == "STALE", 30, "downstream stale")
    status = stack.status("downstream")
    assert status["causes"] == [
        {"category": "DATA", "dependency": "foo_source_asset", "reason": "upstream data has changed"}
    ]
    wait_until(lambda: stack.materializations("eager_downstream") == 2, 60, "eager_downstream re-materialized")
    wait_until(lambda: stack.status("eager_downstream")["status"] == "FRESH", 30, "eager_downstream fresh")

    # nothing changes any more: the schedule's observations are duplicates, nothing runs again
    ticks_before = stack.sql("SELECT count() AS n FROM schedule_ticks FINAL")[0]["n"]
    wait_until(
        lambda: stack.sql("SELECT count() AS n FROM schedule_ticks FINAL")[0]["n"] >= ticks_before + 2, 30, "2 ticks"
    )
    assert stack.materializations("eager_downstream") == 2
    observations = stack.sql(
        "SELECT count() AS n FROM asset_events WHERE asset_key = 'foo_source_asset' AND event_type = 'observation'"
    )
    assert observations == [{"n": 2}]

    stack.cli("assets", "materialize", "downstream", "--wait")
    wait_until(lambda: stack.status("downstream")["status"] == "FRESH", 30, "downstream fresh again")


def test_assets_commands_refuse_what_cannot_run_and_list_the_registry(stack: Stack) -> None:
    refused = run_cli(["assets", "materialize", "foo_source_asset", "nowhere"], stack.env)
    assert refused.returncode != 0
    assert "asset 'foo_source_asset' is an observable source: use `assetpipe assets observe`" in refused.stderr
    assert "asset 'nowhere' is not defined by any code location" in refused.stderr
    listed = json.loads(stack.cli("assets", "list", "--format", "json").stdout)
    assert {row["asset_key"] for row in listed} >= {"foo_source_asset", "downstream", "eager_downstream"}
