"""Run-key dedup: a run key a sensor requested once is never requested again by that sensor, whether in
the same evaluation, the same batch, or any batch before, on any replica (looked up in ``run_requests``,
with the keys this worker requested remembered in memory).

What survives becomes the tick's wire records, ready to publish. A key whose first request came from the
very event being evaluated is kept: that is the same evaluation repeated after a crash, and its run id
is the same, so the run worker runs it once.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from assetpipe.consumers.sensors.store import SensorStore
from assetpipe.consumers.sensors.ticks import Tick
from assetpipe.definitions.ops import RunRequest
from assetpipe.schemas.model import now_us
from assetpipe.schemas.run_request import run_id_for, trigger_of

_REMEMBERED = 100_000  # keys kept in memory; older ones are looked up in ClickHouse


class RunKeys:
    def __init__(self, store: SensorStore) -> None:
        self._store = store
        self._known: OrderedDict[tuple[str, str], str] = OrderedDict()  # (sensor, key) -> first event

    def apply(self, ticks: Sequence[Tick]) -> None:
        """Fill each tick's ``records`` with its requests whose run keys are new, ``skipped_keys`` with
        the others."""
        wanted = {(t.sensor.name, r.run_key) for t in ticks for r in t.requests if r.run_key is not None}
        missing = [k for k in wanted if k not in self._known]
        found = self._store.requested({s for s, _ in missing}, {k for _, k in missing}) if missing else {}
        seen: set[tuple[str, str]] = set()
        location = self._store.location
        for tick in ticks:
            if tick.error is not None:
                continue
            trigger = trigger_of(tick.event_type, tick.record)
            for index, request in enumerate(tick.requests):
                key = request.run_key
                if key is not None:
                    ident = (tick.sensor.name, key)
                    owner = self._known.get(ident) or found.get(ident)
                    if ident in seen or (owner is not None and owner != tick.event_id):
                        tick.skipped_keys.append(key)
                        continue
                    seen.add(ident)
                tick.records.append(
                    run_request_record(
                        request,
                        run_id=run_id_for(location, tick.sensor.name, key, tick.event_id, index),
                        job_name=request.job_name or tick.sensor.target or "",
                        code_location=location,
                        sensor_name=tick.sensor.name,
                        tick_id=tick.tick_id,
                        trigger=trigger,
                        requested_at_us=tick.evaluated_at_us,
                    )
                )

    def remember(self, ticks: Sequence[Tick]) -> None:
        """The ticks are recorded: their keys are requested for good."""
        for tick in ticks:
            for record in tick.records:
                if record["run_key"] is not None:
                    ident = (tick.sensor.name, record["run_key"])
                    self._known[ident] = tick.event_id
                    self._known.move_to_end(ident)
        while len(self._known) > _REMEMBERED:
            self._known.popitem(last=False)


def run_request_record(
    request: RunRequest,
    *,
    run_id: str,
    job_name: str,
    code_location: str,
    sensor_name: str | None = None,
    tick_id: str | None = None,
    trigger: Mapping[str, Any] | None = None,
    requested_at_us: int | None = None,
) -> dict[str, Any]:
    """A ``RunRequest`` a sensor returned as its wire record on ``run_requests``."""
    tags = dict(request.tags)
    if request.partition_key is not None:
        tags.setdefault("dagster/partition", request.partition_key)
    return {
        "run_id": run_id,
        "job_name": job_name,
        "code_location": code_location,
        "run_key": request.run_key,
        "run_config": json.dumps(request.run_config, separators=(",", ":"), sort_keys=True),
        "tags": tags,
        "partition_key": request.partition_key,
        "sensor_name": sensor_name,
        "tick_id": tick_id,
        "trigger": dict(trigger) if trigger is not None else None,
        "requested_at": now_us() if requested_at_us is None else requested_at_us,
        "asset_selection": [key.to_user_string() for key in getattr(request, "asset_selection", None) or ()],
    }
