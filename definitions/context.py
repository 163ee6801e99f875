"""What a sensor function sees and what it may return: ``SensorEvaluationContext``,
``MultiAssetSensorEvaluationContext``, ``collect_results``, the rule for what comes back (run requests, or
one skip reason, or nothing), and ``ContextLog``, the ``context.log`` that keeps each line it writes.

An asset sensor's event comes as an ``EventLogEntry``: Dagster's shape
(``asset_event.dagster_event.event_specific_data.materialization``, ``.asset_materialization``,
``.asset_failed_to_materialize_data.asset_materialization_failure``, ``.timestamp`` in seconds) over the
event's own fields (``.metadata``, ``.data_version``, ...). A multi-asset sensor's latest materializations
are ``EventLogRecord``s: the materialization itself, with Dagster's ``.event_log_entry`` and
``.asset_materialization`` beside its fields.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assetpipe.definitions.ops import DefinitionError, RunRequest, SkipReason
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.metadata import MetadataValue
from assetpipe.schemas.model import (
    AssetCheckEvaluation,
    AssetEvent,
    AssetMaterialization,
    AssetMaterializationFailure,
    AssetObservation,
)

Log = logging.Logger | logging.LoggerAdapter[logging.Logger]

_EVENT_TYPE_VALUES = {
    "materialization": "ASSET_MATERIALIZATION",
    "observation": "ASSET_OBSERVATION",
    "check_evaluation": "ASSET_CHECK_EVALUATION",
    "materialization_failure": "ASSET_FAILED_TO_MATERIALIZE",
}


class ContextLog(logging.LoggerAdapter[logging.Logger]):
    """``context.log`` of one sensor evaluation or one op: logs through ``logger`` and hands each line,
    formatted as logging formats it, to ``record(level, message)``. One per context, so lines of
    evaluations that a worker runs one after another never mix."""

    def __init__(self, logger: logging.Logger, record: Callable[[int, str], None]) -> None:
        super().__init__(logger, {})
        self._record = record

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        self._record(level, _message(msg, args))
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1  # the record names the user's line, not this one
        super().log(level, msg, *args, **kwargs)


def _message(msg: object, args: tuple[Any, ...]) -> str:
    """``msg % args`` as ``LogRecord.getMessage`` makes it (one mapping argument fills ``%(name)s``); a
    line whose arguments do not fit keeps them after it rather than raising in the user's code."""
    text = str(msg)
    if not args:
        return text
    values: Any = args[0] if len(args) == 1 and isinstance(args[0], Mapping) and args[0] else args
    try:
        return str(text % values)
    except (TypeError, ValueError, KeyError):
        return f"{text} {args!r}"


@dataclass(frozen=True, slots=True)
class StepMaterializationData:
    """``dagster_event.event_specific_data`` of a materialization."""

    materialization: AssetMaterialization


@dataclass(frozen=True, slots=True)
class AssetObservationData:
    """``dagster_event.event_specific_data`` of an observation."""

    asset_observation: AssetObservation


@dataclass(frozen=True, slots=True)
class AssetFailedToMaterializeData:
    """``dagster_event.event_specific_data`` of a materialization failure."""

    asset_materialization_failure: AssetMaterializationFailure


EventData = StepMaterializationData | AssetObservationData | AssetCheckEvaluation | AssetFailedToMaterializeData


@dataclass(frozen=True, slots=True)
class DagsterEvent:
    """``EventLogEntry.dagster_event``. For a check evaluation ``event_specific_data`` is the
    ``AssetCheckEvaluation`` itself, as in Dagster."""

    event_type_value: str
    event_specific_data: EventData
    asset_key: AssetKey
    partition: str | None

    @property
    def is_step_materialization(self) -> bool:
        return self.event_type_value == "ASSET_MATERIALIZATION"

    @property
    def is_asset_observation(self) -> bool:
        return self.event_type_value == "ASSET_OBSERVATION"

    @property
    def is_asset_failed_to_materialize(self) -> bool:
        return self.event_type_value == "ASSET_FAILED_TO_MATERIALIZE"

    @property
    def asset_failed_to_materialize_data(self) -> AssetFailedToMaterializeData | None:
        data = self.event_specific_data
        return data if isinstance(data, AssetFailedToMaterializeData) else None


class EventLogEntry:
    """The event an asset sensor receives, in Dagster's shape: ``dagster_event`` (with
    ``event_specific_data.materialization``, ``.asset_observation`` or ``.asset_materialization_failure``,
    ``asset_key``, ``event_type_value``), ``asset_materialization``, ``asset_observation`` and
    ``asset_materialization_failure`` (None when the event is not one), ``timestamp`` (seconds since the
    epoch, a float) and ``run_id`` ("" for an event reported outside a run). Every other attribute is the
    event's own (``metadata``, ``data_version``, ``partition``, ``asset_key``, ``tags``, ``event_id``, a
    check's ``check_name``, a failure's ``reason``, ...), so sensors written for assetpipe's events read it
    as before; ``event`` is the event itself."""

    __slots__ = ("dagster_event", "event")

    is_dagster_event = True
    user_message = ""
    level = logging.INFO
    job_name = ""  # the job is not on the event; Dagster's runless events have none either
    step_key = None

    def __init__(self, event: AssetEvent) -> None:
        self.event = event
        data: EventData
        if isinstance(event, AssetMaterialization):
            data = StepMaterializationData(event)
        elif isinstance(event, AssetObservation):
            data = AssetObservationData(event)
        elif isinstance(event, AssetMaterializationFailure):
            data = AssetFailedToMaterializeData(event)
        else:
            data = event
        self.dagster_event = DagsterEvent(_EVENT_TYPE_VALUES[event.event_type], data, event.asset_key, event.partition)

    @property
    def asset_materialization(self) -> AssetMaterialization | None:
        return self.event if isinstance(self.event, AssetMaterialization) else None

    @property
    def asset_observation(self) -> AssetObservation | None:
        return self.event if isinstance(self.event, AssetObservation) else None

    @property
    def asset_materialization_failure(self) -> AssetMaterializationFailure | None:
        return self.event if isinstance(self.event, AssetMaterializationFailure) else None

    @property
    def timestamp(self) -> float:
        """When the event happened, in seconds since the epoch (0.0 for an event built without a time)."""
        when = self.event.timestamp
        return when.timestamp() if when is not None else 0.0

    @property
    def run_id(self) -> str:
        return self.event.run_id or ""

    @property
    def asset_key(self) -> AssetKey:
        return self.event.asset_key

    @property
    def partition(self) -> str | None:
        return self.event.partition

    @property
    def data_version(self) -> str | None:
        return self.event.data_version

    @property
    def metadata(self) -> Mapping[str, MetadataValue]:
        return self.event.metadata

    @property
    def tags(self) -> Mapping[str, str]:
        return self.event.tags

    @property
    def event_id(self) -> str | None:
        return self.event.event_id

    def __getattr__(self, name: str) -> Any:
        if name in self.__slots__:  # not set yet (a copy being made): no recursion through the event
            raise AttributeError(name)
        return getattr(self.event, name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EventLogEntry) and other.event == self.event

    __hash__ = None  # type: ignore[assignment]  # equal entries hold equal events, whose metadata is a dict

    def __repr__(self) -> str:
        return f"EventLogEntry({self.event!r})"


_MATERIALIZATION_FIELDS = tuple(f.name for f in dataclasses.fields(AssetMaterialization))


class EventLogRecord(AssetMaterialization):
    """A multi-asset sensor's latest materialization of an asset: the ``AssetMaterialization`` itself
    (equal to it, its fields as ever), with Dagster's ``EventLogRecord`` attributes beside them:
    ``event_log_entry`` (an ``EventLogEntry``), ``asset_materialization`` and ``partition_key``."""

    __slots__ = ()

    @classmethod
    def of(cls, event: AssetMaterialization) -> EventLogRecord:
        """``event`` as a record: its fields copied as they are (they were checked when it was made)."""
        if type(event) is cls:
            return event
        record = object.__new__(cls)
        for name in _MATERIALIZATION_FIELDS:
            object.__setattr__(record, name, getattr(event, name))
        return record

    @property
    def event_log_entry(self) -> EventLogEntry:
        return EventLogEntry(self)

    @property
    def asset_materialization(self) -> AssetMaterialization:
        return self

    @property
    def partition_key(self) -> str | None:
        return self.partition

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AssetMaterialization):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _MATERIALIZATION_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # as the event's: its metadata is a dict


class SensorEvaluationContext:
    """What a sensor function sees: its name, its code location, ``cursor`` and ``log``."""

    def __init__(self, *, sensor_name: str, code_location: str, cursor: str | None, log: Log) -> None:
        self.sensor_name = sensor_name
        self.code_location = code_location
        self.cursor = cursor
        self.log = log


class MultiAssetSensorEvaluationContext(SensorEvaluationContext):
    """Adds the latest unconsumed materialization per monitored asset, and advancing past them."""

    def __init__(
        self,
        *,
        sensor_name: str,
        code_location: str,
        cursor: str | None,
        log: Log,
        monitored_assets: Sequence[AssetKey] | Mapping[AssetKey, None],
        unconsumed: Mapping[AssetKey, AssetMaterialization],
    ) -> None:
        super().__init__(sensor_name=sensor_name, code_location=code_location, cursor=cursor, log=log)
        self._monitored = (
            dict(monitored_assets) if isinstance(monitored_assets, Mapping) else dict.fromkeys(monitored_assets)
        )
        self.monitored_assets = tuple(self._monitored)
        self._unconsumed = unconsumed
        self._consumed: set[AssetKey] = set()

    def latest_materialization_records_by_key(
        self, asset_keys: Iterable[CoercibleToAssetKey] | None = None
    ) -> dict[AssetKey, EventLogRecord | None]:
        """Per monitored asset: its newest materialization not consumed yet (an ``EventLogRecord``), or None."""
        latest: dict[AssetKey, Any]
        if asset_keys is None:
            latest = dict(self._monitored)
            latest.update(self._unconsumed)
        else:
            keys = [coerce_asset_key(k) for k in asset_keys]
            latest = {key: self._unconsumed.get(key) for key in keys}
        for key in self._consumed:
            if key in latest:
                latest[key] = None
        for key, event in latest.items():
            if event is not None and type(event) is not EventLogRecord:  # the worker hands records already
                latest[key] = EventLogRecord.of(event)
        return latest

    def advance_cursor(self, materialization_records_by_key: Mapping[Any, AssetMaterialization | None]) -> None:
        """Mark the given materializations consumed (a None value leaves that asset as it is)."""
        for raw_key, event in materialization_records_by_key.items():
            key = coerce_asset_key(raw_key)
            if key not in self._monitored:
                raise DefinitionError(f"sensor {self.sensor_name!r} does not monitor asset {key}")
            if event is not None:
                self._consumed.add(key)

    def advance_all_cursors(self) -> None:
        """Mark every unconsumed materialization consumed."""
        self._consumed.update(self._unconsumed)

    @property
    def consumed(self) -> frozenset[AssetKey]:
        return frozenset(self._consumed)


def collect_results(sensor_name: str, value: Any, kind: str = "sensor") -> tuple[list[RunRequest], SkipReason | None]:
    """What a sensor (or a schedule: ``kind``) returned or yielded, as (run requests, skip reason). Mixing
    both is an error."""
    if value is None:
        items: list[Any] = []
    elif isinstance(value, (RunRequest, SkipReason)):
        items = [value]
    elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping)):
        items = [item for item in value if item is not None]
    else:
        items = [value]
    requests: list[RunRequest] = []
    skips: list[SkipReason] = []
    for item in items:
        if isinstance(item, RunRequest):
            requests.append(item)
        elif isinstance(item, SkipReason):
            skips.append(item)
        else:
            raise DefinitionError(
                f"{kind} {sensor_name!r} returned a {type(item).__name__}: expected RunRequest, SkipReason or None"
            )
    if requests and skips:
        raise DefinitionError("Expected a single SkipReason or one or more RunRequests: received both")
    if len(skips) > 1:
        raise DefinitionError(f"Expected a single SkipReason: received {len(skips)}")
    return requests, skips[0] if skips else None
