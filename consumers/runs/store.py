"""What the run worker keeps in ClickHouse: a ``runs`` row per status change, the ``run_events`` of each
run, and the lookup of runs already finished (so a redelivered request is not run twice)."""

from __future__ import annotations

import socket
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from assetpipe.consumers.runs.execution import RunEvent, RunResult
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.results import DEFAULT_DATA_VERSION
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.metadata import MetadataValue, to_text, to_wire

RUN_COLUMNS = (
    "run_id", "job_name", "code_location", "status", "run_key", "run_config", "tags", "partition_key",
    "sensor_name", "tick_id", "trigger_event_id", "trigger_asset_key", "requested_at", "started_at",
    "finished_at", "duration_ms", "attempts", "error_type", "error_message", "error_traceback", "error_metadata",
    "worker_host", "version", "asset_selection",
)  # fmt: skip
RUN_EVENT_COLUMNS = (
    "run_id", "seq", "timestamp", "event_type", "job_name", "op_name", "attempt", "level", "message",
    "output_name", "asset_key", "asset_event_id", "success", "label", "metadata", "metadata_types",
    "error_type", "traceback",
)  # fmt: skip
# A later status always wins in ReplacingMergeTree(version), whatever the order rows arrive in.
VERSIONS = {"queued": 1, "started": 2, "launched": 3, "succeeded": 4, "failed": 4}
FINISHED = ("launched", "succeeded", "failed")


def metadata_columns(metadata: Mapping[str, MetadataValue]) -> tuple[dict[str, str], dict[str, str]]:
    """Typed metadata as ClickHouse's (text, kind) maps, as ``asset_events`` stores it."""
    wire = {key: to_wire(key, value) for key, value in metadata.items()}
    return {k: to_text(w) for k, w in wire.items()}, {k: str(w["kind"]) for k, w in wire.items()}


class RunStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._host = socket.gethostname()

    def finished(self, run_ids: Collection[str]) -> set[str]:
        if not run_ids:
            return set()
        rows = self.warehouse.query(
            f"SELECT DISTINCT toString(run_id) FROM {self.warehouse.database}.runs "
            "WHERE has(%(ids)s, toString(run_id)) AND status IN %(finished)s",
            parameters={"ids": list(run_ids), "finished": FINISHED},
        ).rows
        return {row[0] for row in rows}

    def current_data_versions(self, keys: Sequence[AssetKey]) -> dict[AssetKey, str]:
        """Each asset's data version as Dagster reads it: the version of its latest materialization or
        observation (``INITIAL`` when that event has none); assets without either are left out."""
        if not keys:
            return {}
        by_text = {key.to_user_string(): key for key in keys}
        # from the latest state, which keeps each asset's also once its events are past the raw window (retention)
        rows = self.warehouse.query(
            "SELECT toString(asset_key), argMaxMerge(current_version) "
            f"FROM {self.warehouse.database}.asset_latest_state "
            "WHERE asset_key IN %(keys)s GROUP BY asset_key HAVING max(versioned) = 1",
            parameters={"keys": list(by_text)},
        ).rows
        return {by_text[key]: version or DEFAULT_DATA_VERSION for key, version in rows}

    def status(
        self,
        request: Mapping[str, Any],
        status: str,
        *,
        started_us: int | None = None,
        finished_us: int | None = None,
        result: RunResult | None = None,
        error: str = "",
    ) -> None:
        """One ``runs`` row: the request, the status, the timings and (when finished) the outcome."""
        trigger = request.get("trigger") or {}
        duration = (finished_us - started_us) / 1000 if started_us is not None and finished_us is not None else None
        error_type, message, trace, metadata = "", error, "", {}
        if result is not None and not result.succeeded:
            error_type, message, trace = result.error_type, result.error_message, result.error_traceback
            metadata = metadata_columns(result.error_metadata)[0]
        elif error:
            error_type = "LaunchError" if status == "failed" else ""
        row = (
            request["run_id"],
            request["job_name"],
            request["code_location"],
            status,
            request.get("run_key") or "",
            request.get("run_config") or "{}",
            dict(request.get("tags") or {}),
            request.get("partition_key") or "",
            request.get("sensor_name") or "",
            request.get("tick_id") or "",
            trigger.get("event_id", ""),
            "/".join(trigger.get("asset_key", [])),
            request["requested_at"],
            started_us,
            finished_us,
            duration,
            result.attempts if result is not None else 0,
            error_type,
            message,
            trace,
            metadata,
            self._host,
            VERSIONS[status],
            list(request.get("asset_selection") or []),
        )
        self.warehouse.insert("runs", [[value] for value in row], RUN_COLUMNS)

    def events(self, run_id: str, job_name: str, events: Sequence[RunEvent]) -> None:
        columns: list[list[Any]] = [[] for _ in RUN_EVENT_COLUMNS]
        for seq, e in enumerate(events):
            metadata, kinds = metadata_columns(e.metadata)
            values = (
                run_id,
                seq,
                e.timestamp_us,
                e.event_type,
                job_name,
                e.op_name,
                e.attempt,
                e.level,
                e.message,
                e.output_name,
                e.asset_key,
                e.asset_event_id,
                e.success,
                e.label,
                metadata,
                kinds,
                e.error_type,
                e.traceback,
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        if events:
            self.warehouse.insert("run_events", columns, RUN_EVENT_COLUMNS)
