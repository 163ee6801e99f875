"""Assets of the seeds: an observable source whose data version is a file's hash, an eager asset
downstream of it, a plain asset chain, and an asset sensor that requests a run of selected assets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from assetpipe import (
    AssetExecutionContext,
    AssetSpec,
    AutomationCondition,
    DataVersion,
    Definitions,
    MaterializeResult,
    RunRequest,
    asset,
    asset_sensor,
    observable_source_asset,
)


def _source() -> Path:
    return Path(os.environ["ASSETS_DEFS_SOURCE_FILE"])


@observable_source_asset(group_name="sources", owners=["team:ingest"])
def source_file() -> DataVersion:
    """The raw file: its data version is the hash of its content."""
    return DataVersion(hashlib.sha256(_source().read_bytes()).hexdigest())


@asset(deps=[source_file], code_version="1", automation_condition=AutomationCondition.eager(), kinds={"python"})
def parsed(context: AssetExecutionContext) -> MaterializeResult:
    """Parsed from the raw file, whenever the file changes."""
    lines = _source().read_text().splitlines()
    context.log.info("parsed %d lines", len(lines))
    return MaterializeResult(metadata={"dagster/row_count": len(lines)})


@asset(key_prefix="sel")
def first() -> int:
    return 1


@asset(key_prefix="sel")
def second(first: int) -> MaterializeResult:
    return MaterializeResult(metadata={"got": first})


@asset_sensor("trigger/selection", job_name="__ASSET_JOB")
def selection_sensor(context: object, event: object) -> RunRequest:
    return RunRequest(asset_selection=["sel/first", "sel/second"])


defs = Definitions(
    assets=[source_file, parsed, first, second, AssetSpec("external/table", owners=["data@example.com"])],
    sensors=[selection_sensor],
)
