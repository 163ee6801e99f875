"""Requesting runs of assets from the command line (``assetpipe assets materialize|observe``), as Dagster's
``dagster asset materialize --select`` does, but on the running stack: the registry says which code
location computes each asset; one run request per location goes to ``run_requests``, where that
location's run worker runs it. With ``wait``, the runs are followed to their end in ``runs``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from assetpipe.consumers.sensors.run_keys import run_request_record
from assetpipe.consumers.warehouse import QueryResult
from assetpipe.definitions.asset_jobs import IMPLICIT_ASSET_JOB
from assetpipe.definitions.ops import RunRequest
from assetpipe.producers.publisher import Publisher
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.errors import AssetpipeError
from assetpipe.schemas.settings import Settings

Action = Literal["materialize", "observe"]
_EXECUTION = {"materialize": "materialization", "observe": "observation"}
_DEFINITIONS = (
    "SELECT d.asset_key, d.code_location, d.source, d.execution_type FROM latest_asset_definitions AS d "
    "WHERE has({keys:Array(String)}, d.asset_key)"
)
_RUNS = (
    "SELECT toString(r.run_id), r.status, r.error_message FROM runs AS r FINAL "
    "WHERE has({ids:Array(String)}, toString(r.run_id))"
)
_FINISHED = ("succeeded", "failed", "launched")
Query = Callable[[str, Mapping[str, Any]], QueryResult]


class AssetRunError(AssetpipeError):
    """Assets that no code location can run as asked."""

    code = "asset_run"


@dataclass(frozen=True, slots=True)
class RequestedRun:
    run_id: str
    code_location: str
    asset_keys: tuple[str, ...]


def plan(query: Query, action: Action, keys: Sequence[str]) -> dict[str, list[str]]:
    """The asset keys to run per code location; an error naming every key that cannot be run."""
    wanted = list(dict.fromkeys(AssetKey.from_user_string(k).to_user_string() for k in keys))
    found = {row[0]: row[1:] for row in query(_DEFINITIONS, {"keys": wanted}).rows}
    problems: list[str] = []
    by_location: dict[str, list[str]] = {}
    for key in wanted:
        if key not in found:
            problems.append(f"asset '{key}' is not defined by any code location (`assetpipe assets list`)")
            continue
        location, source, execution_type = found[key]
        if source != "code":
            problems.append(f"asset '{key}' is registered by {source}, not defined in code: no run worker computes it")
        elif execution_type == "external":
            problems.append(f"asset '{key}' is an external asset (an AssetSpec): it has no function to run")
        elif execution_type != _EXECUTION[action]:
            if execution_type == "observation":
                problems.append(f"asset '{key}' is an observable source: use `assetpipe assets observe`")
            else:
                problems.append(f"asset '{key}' is materialized, not observed: use `assetpipe assets materialize`")
        else:
            by_location.setdefault(location, []).append(key)
    if problems:
        raise AssetRunError("; ".join(problems))
    return by_location


def request_runs(
    settings: Settings, by_location: Mapping[str, Sequence[str]], partition: str | None
) -> list[RequestedRun]:
    """One run request per code location, acknowledged by the broker."""
    codec = codec_for(settings, settings.topics.run_requests)
    publisher = Publisher.from_settings(settings, receipts=False)
    requested = []
    try:
        for location, keys in by_location.items():
            run_id = str(uuid.uuid4())
            record = run_request_record(
                RunRequest(asset_selection=list(keys), partition_key=partition, tags={"dagster/launched_by": "cli"}),
                run_id=run_id,
                job_name=IMPLICIT_ASSET_JOB,
                code_location=location,
            )
            publisher.send(settings.topics.run_requests, run_id.encode(), codec.encode("run_request", record))
            requested.append(RequestedRun(run_id, location, tuple(keys)))
        publisher.flush(settings.http_publish_timeout_s)
    finally:
        publisher.close(10)
    return requested


def wait_for(query: Query, run_ids: Sequence[str], timeout: float) -> dict[str, tuple[str, str]]:
    """Each run's (status, error) once all are finished; unfinished ones as they are at the deadline."""
    deadline = time.monotonic() + timeout
    states: dict[str, tuple[str, str]] = {}
    while True:
        states = {row[0]: (row[1], row[2]) for row in query(_RUNS, {"ids": list(run_ids)}).rows}
        done = all(states.get(run_id, ("", ""))[0] in _FINISHED for run_id in run_ids)
        if done or time.monotonic() > deadline:
            return states
        time.sleep(0.2)
