"""Ticks: one sensor evaluated on one accepted event, with what came of it and the lines its
``context.log`` wrote, and its ``sensor_ticks`` row.

A tick's run requests travel in parallel arrays on its row; materialized views turn them into
``run_requests`` rows and ``runs`` rows with status ``queued``, in the same insert, so a tick and its
requests are recorded together or not at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.definitions.ops import RunRequest
from assetpipe.definitions.sensors import SensorDefinition
from assetpipe.schemas.run_request import trigger_of

TICK_COLUMNS = (
    "tick_id", "code_location", "sensor_name", "status", "trigger_event_id", "trigger_event_type", "asset_key",
    "partition", "data_version", "event_timestamp", "accepted_partition", "accepted_offset", "run_ids",
    "run_keys", "job_names", "run_configs", "run_tags", "partition_keys", "skipped_run_keys", "skip_reason",
    "error", "traceback", "cursor", "worker_id", "evaluated_at", "duration_ms", "logs", "run_asset_selections",
)  # fmt: skip
LogLine = tuple[int, str, str]  # (microseconds since the epoch, level name, message): a ``logs`` entry


def request_arrays(records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """A tick's run requests as the parallel arrays its row holds: run ids, run keys, job names, run
    configs, tags, partition keys (``run_ids`` ... ``partition_keys``)."""
    return [
        [r["run_id"] for r in records],
        [r["run_key"] or "" for r in records],
        [r["job_name"] for r in records],
        [r["run_config"] for r in records],
        [r["tags"] for r in records],
        [r["partition_key"] or "" for r in records],
    ]


@dataclass(slots=True)
class Tick:
    """One evaluation. ``requests`` is what the sensor returned; ``records`` what survived run-key dedup
    (wire records, ready to publish) and ``skipped_keys`` the run keys dropped as already requested."""

    sensor: SensorDefinition
    event_type: str
    record: dict[str, Any]
    accepted_partition: int
    accepted_offset: int
    evaluated_at_us: int
    tick_id: str
    requests: list[RunRequest] = field(default_factory=list)
    skip_reason: str | None = None
    error: str | None = None
    traceback: str | None = None
    cursor: str = ""
    duration_ms: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped_keys: list[str] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return str(self.record["event_id"])

    @property
    def status(self) -> str:
        if self.error is not None:
            return "failure"
        return "success" if self.records else "skipped"

    def reason(self) -> str:
        if self.skip_reason is not None:
            return self.skip_reason
        if self.skipped_keys and not self.records:
            return f"run keys already requested: {', '.join(self.skipped_keys)}"
        return ""


class TickColumns:
    """``sensor_ticks`` rows, one list per column."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in TICK_COLUMNS]

    def __len__(self) -> int:
        return len(self.columns[0])

    def append(self, tick: Tick, code_location: str, worker_id: str) -> None:
        trigger = trigger_of(tick.event_type, tick.record)
        records = tick.records
        values = (
            tick.tick_id,
            code_location,
            tick.sensor.name,
            tick.status,
            tick.event_id,
            tick.event_type,
            "/".join(trigger["asset_key"]),
            trigger["partition"] or "",
            trigger["data_version"] or "",
            trigger["timestamp"],
            tick.accepted_partition,
            tick.accepted_offset,
            *request_arrays(records),
            tick.skipped_keys,
            tick.reason(),
            tick.error or "",
            tick.traceback or "",
            tick.cursor,
            worker_id,
            tick.evaluated_at_us,
            tick.duration_ms,
            tick.logs,
            [r.get("asset_selection") or [] for r in records],
        )
        for column, value in zip(self.columns, values, strict=True):
            column.append(value)
