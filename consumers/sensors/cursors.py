"""Cursors of multi-asset sensors: per monitored asset, the newest materialization seen and whether the
sensor has consumed it.

Each tick stores, as JSON in ``sensor_ticks.cursor``, the entries its evaluation changed (a sensor of
100 assets writes one entry per event, not 100); the ``multi_asset_cursors`` view merges them, the newest
entry per asset winning. The worker loads that view when it starts and, before each batch, merges the
changes other replicas recorded meanwhile, so the replica that owns an asset's partition decides its
state. Changes made while a batch is evaluated are kept aside until the batch is recorded and dropped if
it is not, so a retried batch sees what the first attempt saw.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from assetpipe.consumers.sensors.store import SensorStore, cursor_text
from assetpipe.definitions.sensors import SensorDefinition
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.model import AssetMaterialization, now_us

_LOOKBACK_US = 5_000_000  # ticks of other replicas are read this far back: clocks differ a little


@dataclass(frozen=True, slots=True)
class AssetCursor:
    event_id: str
    consumed: bool
    updated_us: int


class MultiAssetCursors:
    def __init__(self, store: SensorStore, sensors: Sequence[SensorDefinition], worker_id: str) -> None:
        self._store = store
        self._sensors = {s.name: s for s in sensors if s.kind == "multi_asset"}
        self._worker_id = worker_id
        self._keys = {name: {str(k): k for k in s.asset_keys} for name, s in self._sensors.items()}
        self._state: dict[str, dict[str, AssetCursor]] = {name: {} for name in self._sensors}
        # kept in step with the state: what each evaluation hands the sensor, without walking its assets
        self._unconsumed: dict[str, dict[AssetKey, AssetMaterialization]] = {name: {} for name in self._sensors}
        self._events: dict[str, AssetMaterialization] = {}
        self._backup: dict[str, dict[str, AssetCursor]] = {}
        self._changed: dict[str, dict[str, AssetCursor]] = {}
        self._synced_us = 0
        self._stale = True  # other replicas' changes are merged once per batch, before the first evaluation

    def load(self) -> None:
        """The cursor of each multi-asset sensor, and the unconsumed events it points at."""
        if not self._sensors:
            return
        self._synced_us = now_us()
        for sensor, asset, event_id, consumed, updated_us in self._store.multi_asset_cursors(self._sensors):
            self._state[sensor][asset] = AssetCursor(event_id, consumed, updated_us)
        self._fetch_missing()

    def sync(self) -> None:
        """Merge what other replicas recorded since the last sync."""
        self._stale = False
        if not self._sensors:
            return
        since, self._synced_us = self._synced_us - _LOOKBACK_US, now_us()
        rows = self._store.cursor_changes(self._sensors, max(since, 1), self._worker_id)
        for name, text in rows:
            self._merge(name, text)
        if rows:
            self._fetch_missing()

    def observe(self, sensor: str, event: AssetMaterialization) -> None:
        """A new materialization of a monitored asset: it is the asset's latest unconsumed one."""
        if self._stale:
            self.sync()
        asset = str(event.asset_key)
        current = self._state[sensor].get(asset)
        if event.event_id is None or (current is not None and current.event_id == event.event_id):
            return  # evaluated before (a batch repeated after a crash): keep what came of it
        self._events[event.event_id] = event
        self._set(sensor, asset, AssetCursor(event.event_id, False, now_us()))

    def unconsumed(self, sensor: str) -> dict[AssetKey, AssetMaterialization]:
        """The newest unconsumed materialization per asset (the live mapping: read it, do not keep it)."""
        return self._unconsumed[sensor]

    def consume(self, sensor: str, keys: Iterable[AssetKey]) -> None:
        for key in keys:
            current = self._state[sensor].get(str(key))
            if current is not None and not current.consumed:
                self._set(sensor, str(key), AssetCursor(current.event_id, True, now_us()))

    def changes(self, sensor: str) -> str:
        """What changed since the last call, for the tick: ``{asset: {event_id, consumed, updated_us}}``."""
        changed = self._changed.pop(sensor, {})
        return cursor_text(
            {
                a: {"event_id": c.event_id, "consumed": c.consumed, "updated_us": c.updated_us}
                for a, c in changed.items()
            }
        )

    def commit(self) -> None:
        """The batch was recorded: keep its changes, forget events no cursor needs any more."""
        self._backup.clear()
        self._stale = True
        if len(self._events) > 4 * sum(len(s) for s in self._state.values()) + 1000:
            wanted = {c.event_id for s in self._state.values() for c in s.values() if not c.consumed}
            self._events = {k: v for k, v in self._events.items() if k in wanted}

    def rollback(self) -> None:
        """The batch was not recorded: back to the state before it."""
        self._state.update(self._backup)
        for sensor in self._backup:
            self._rebuild(sensor)
        self._backup.clear()
        self._changed.clear()
        self._stale = True

    def _set(self, sensor: str, asset: str, cursor: AssetCursor) -> None:
        if sensor not in self._backup:
            self._backup[sensor] = dict(self._state[sensor])  # cursors are immutable: a shallow copy suffices
        self._state[sensor][asset] = cursor
        self._changed.setdefault(sensor, {})[asset] = cursor
        self._track(sensor, asset, cursor)

    def _track(self, sensor: str, asset: str, cursor: AssetCursor) -> None:
        key = self._keys[sensor].get(asset)
        if key is None:
            return  # an asset the sensor no longer monitors
        event = None if cursor.consumed else self._events.get(cursor.event_id)
        if event is None:
            self._unconsumed[sensor].pop(key, None)
        else:
            self._unconsumed[sensor][key] = event

    def _rebuild(self, sensor: str) -> None:
        self._unconsumed[sensor] = {}
        for asset, cursor in self._state[sensor].items():
            self._track(sensor, asset, cursor)

    def _merge(self, sensor: str, text: str) -> None:
        try:
            entries = json.loads(text)
            incoming = {
                a: AssetCursor(e["event_id"], bool(e["consumed"]), int(e["updated_us"])) for a, e in entries.items()
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            return  # not a multi-asset cursor (the sensor was an asset sensor before)
        state = self._state[sensor]
        for asset, cursor in incoming.items():
            current = state.get(asset)
            if current is None or cursor.updated_us > current.updated_us:
                state[asset] = cursor

    def _fetch_missing(self) -> None:
        """Load the events unconsumed cursors point at, then bring every sensor's unconsumed map in step."""
        wanted = {
            c.event_id
            for s in self._state.values()
            for c in s.values()
            if not c.consumed and c.event_id not in self._events
        }
        self._events.update(self._store.materializations(wanted))
        for sensor in self._sensors:
            self._rebuild(sensor)
