"""The run request on the wire: the Avro ``assetpipe.RunRequest`` record on the ``run_requests`` topic,
its deterministic ids, and its JSON form (the body the webhook launcher POSTs).

Ids are derived, not random, so a sensor evaluation repeated after a crash yields the same ids and the
run worker runs it once: a tick is (code location, sensor, event); a run with a run key is (code
location, sensor, run key); a run without one is (code location, sensor, event, its index in the tick).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_NAMESPACE = uuid.UUID("0b6f3c52-94d4-4f0e-b7a5-5d8b1c2e7f90")


def tick_id_for(code_location: str, sensor_name: str, event_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"t\x00{code_location}\x00{sensor_name}\x00{event_id}"))


def run_id_for(code_location: str, sensor_name: str, run_key: str | None, event_id: str, index: int) -> str:
    if run_key is not None:
        return str(uuid.uuid5(_NAMESPACE, f"k\x00{code_location}\x00{sensor_name}\x00{run_key}"))
    return str(uuid.uuid5(_NAMESPACE, f"e\x00{code_location}\x00{sensor_name}\x00{event_id}\x00{index}"))


def schedule_tick_id_for(code_location: str, schedule_name: str, scheduled_us: int) -> str:
    """A schedule's tick: (code location, schedule, scheduled time in microseconds since the epoch), the
    same on every replica that fires it."""
    return str(uuid.uuid5(_NAMESPACE, f"st\x00{code_location}\x00{schedule_name}\x00{scheduled_us}"))


def schedule_run_id_for(
    code_location: str, schedule_name: str, scheduled_us: int, run_key: str | None, index: int
) -> str:
    """A run a schedule's tick requested: by its run key, else by its index in the tick."""
    tail = f"k\x00{run_key}" if run_key is not None else f"i\x00{index}"
    return str(uuid.uuid5(_NAMESPACE, f"sr\x00{code_location}\x00{schedule_name}\x00{scheduled_us}\x00{tail}"))


def trigger_of(event_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The ``RunTrigger`` of an accepted asset event's wire record."""
    return {
        "event_id": record["event_id"],
        "event_type": event_type,
        "asset_key": list(record["asset_key"]),
        "partition": record.get("partition"),
        "data_version": record.get("data_version"),
        "timestamp": _micros(record["timestamp"]),
    }


def run_request_json(record: Mapping[str, Any]) -> dict[str, Any]:
    """A decoded run request as plain JSON: run config as an object, times as ISO 8601 strings."""
    trigger = record.get("trigger")
    return {
        **record,
        "run_config": json.loads(record["run_config"] or "{}"),
        "requested_at": _iso(record["requested_at"]),
        "trigger": None if trigger is None else {**trigger, "timestamp": _iso(trigger["timestamp"])},
    }


def _micros(value: int | datetime) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1_000_000)
    return int(value)


def _iso(value: int | datetime) -> str:
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value / 1e6, tz=UTC)
    return value.isoformat()
