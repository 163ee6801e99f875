"""Definitions: the assets, jobs, sensors and schedules of one code location, and loading them from a
user's Python file.

``load_definitions(path)`` imports the file and takes its ``Definitions`` object if it has one, else every
module-level asset, ``@job``, asset job and sensor. A sensor's ``job`` joins the jobs. Asset jobs
(``define_asset_job``) are resolved against the assets; ``__ASSET_JOB`` runs any selection of them; eager
assets get the automation sensor. The code location is named by
``ASSETPIPE_CODE_LOCATION``, else by the file's stem: sensors, cursors and run keys are kept per location,
and each location reads the whole event stream with consumer groups of its own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assetpipe.definitions.alerts import AlertPolicy, unique_policies
from assetpipe.definitions.asset_jobs import (
    IMPLICIT_ASSET_JOB,
    UnresolvedAssetJobDefinition,
    asset_job,
    resolve_selection,
)
from assetpipe.definitions.assets import AssetsDefinition, as_assets_definition
from assetpipe.definitions.automation import AUTOMATION_SENSOR, automation_sensor
from assetpipe.definitions.jobs import JobDefinition
from assetpipe.definitions.monitors import AssetChecksDefinition, MonitorSpec, unique_monitors
from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.schedules import ScheduleDefinition
from assetpipe.definitions.sensors import SensorDefinition
from assetpipe.schemas.asset_key import AssetKey, CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.errors import AssetpipeError


@dataclass(frozen=True)
class Definitions:
    """``assets``: ``@asset`` and ``@observable_source_asset`` definitions, ``AssetSpec``s (external assets)
    and bare asset keys; all count as existing before their first event (the HTTP API accepts observations
    and checks of them). Keys are unique within a location. ``alert_policies``: what the alert worker
    notifies, and where (``definitions.alerts``)."""

    assets: Sequence[Any] = ()
    jobs: Sequence[JobDefinition | UnresolvedAssetJobDefinition] = ()
    sensors: Sequence[SensorDefinition] = ()
    location: str = ""
    schedules: Sequence[ScheduleDefinition] = ()
    alert_policies: Sequence[AlertPolicy] = ()
    asset_checks: Sequence[AssetChecksDefinition] = ()
    _jobs: dict[str, JobDefinition] = field(init=False, repr=False, compare=False)
    _sensors: dict[str, SensorDefinition] = field(init=False, repr=False, compare=False)
    _schedules: dict[str, ScheduleDefinition] = field(init=False, repr=False, compare=False)
    _assets: dict[AssetKey, AssetsDefinition] = field(init=False, repr=False, compare=False)
    _monitors: tuple[MonitorSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.assets, (str, AssetKey)):
            raise DefinitionError("Definitions: assets must be a list")
        assets: dict[AssetKey, AssetsDefinition] = {}
        for entry in self.assets:
            assets_def = as_assets_definition(entry)
            if assets_def.key in assets:
                raise DefinitionError(f"Duplicate asset key: {assets_def.key!r}")
            assets[assets_def.key] = assets_def
        eager = automation_sensor(assets.values())
        own = [s for s in self.sensors if s.name != AUTOMATION_SENSOR]  # made again: a copy may hold it
        all_sensors = [*own, *([eager] if eager is not None else [])]
        schedules: dict[str, ScheduleDefinition] = {}
        for schedule in self.schedules:
            if not isinstance(schedule, ScheduleDefinition):
                raise DefinitionError(f"Definitions: schedules must be schedules, got {type(schedule).__name__}")
            if schedules.setdefault(schedule.name, schedule) is not schedule:
                raise DefinitionError(f"two different schedules are named {schedule.name!r}")
        targets = [*(s.job for s in all_sensors), *(s.job for s in schedules.values())]
        jobs: dict[str, JobDefinition] = {}
        for job in [*self.jobs, *(target for target in targets if target is not None)]:
            if isinstance(job, UnresolvedAssetJobDefinition):
                job = job.resolve(assets)
            if not isinstance(job, JobDefinition):
                raise DefinitionError(f"Definitions: jobs must be @job definitions, got {type(job).__name__}")
            known = jobs.setdefault(job.name, job)
            if known is not job:
                raise DefinitionError(f"two different jobs are named {job.name!r}")
        sensors: dict[str, SensorDefinition] = {}
        for sensor in all_sensors:
            if not isinstance(sensor, SensorDefinition):
                raise DefinitionError(f"Definitions: sensors must be sensor definitions, got {type(sensor).__name__}")
            if sensors.setdefault(sensor.name, sensor) is not sensor:
                raise DefinitionError(f"two different sensors are named {sensor.name!r}")
        object.__setattr__(self, "assets", tuple(assets.values()))
        object.__setattr__(self, "jobs", tuple(jobs.values()))
        object.__setattr__(self, "sensors", tuple(sensors.values()))
        object.__setattr__(self, "schedules", tuple(schedules.values()))
        object.__setattr__(self, "alert_policies", tuple(unique_policies(self.alert_policies)))
        object.__setattr__(self, "_schedules", schedules)
        object.__setattr__(self, "_jobs", jobs)
        object.__setattr__(self, "_sensors", sensors)
        object.__setattr__(self, "_assets", assets)
        if isinstance(self.asset_checks, AssetChecksDefinition):
            raise DefinitionError("Definitions: asset_checks must be a list")
        object.__setattr__(self, "asset_checks", tuple(self.asset_checks))
        object.__setattr__(self, "_monitors", unique_monitors(self.asset_checks))

    def job(self, name: str) -> JobDefinition | None:
        """A job by name; ``__ASSET_JOB`` is every materializable asset (a run narrows it to its selection)."""
        if name == IMPLICIT_ASSET_JOB and name not in self._jobs:
            if not any(a.execution_type == "materialization" and a.is_executable for a in self._assets.values()):
                return None
            return self.asset_job(None)
        return self._jobs.get(name)

    def asset_job(
        self, selection: Sequence[CoercibleToAssetKey] | None, name: str = IMPLICIT_ASSET_JOB
    ) -> JobDefinition:
        """A job running the selected assets of this location (all materializable ones for None)."""
        keys = resolve_selection(None if selection is None else list(selection), self._assets, name)
        return asset_job(name, [self._assets[key] for key in keys], self._assets)

    def sensor(self, name: str) -> SensorDefinition | None:
        return self._sensors.get(name)

    def schedule(self, name: str) -> ScheduleDefinition | None:
        return self._schedules.get(name)

    def asset(self, key: CoercibleToAssetKey) -> AssetsDefinition | None:
        return self._assets.get(coerce_asset_key(key))

    def monitors(self) -> list[MonitorSpec]:
        """Every monitor check of ``asset_checks`` (``build_last_update_freshness_checks`` and friends), one per
        (asset, check name): what the registry stores for this location."""
        return list(self._monitors)

    def asset_keys(self) -> set[str]:
        """The assets this location defines, depends on or watches with its sensors, as ``a/b`` strings."""
        keys: list[AssetKey] = [
            *self._assets,
            *(dep for a in self._assets.values() for dep in a.spec.deps),
            *(key for sensor in self.sensors for key in sensor.asset_keys),
        ]
        return {key.to_user_string() for key in keys}


def load_definitions(path: str | Path, location: str | None = None) -> Definitions:
    """Import ``path`` and return its definitions, in code location ``location`` (default: the stem)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise DefinitionError(f"definitions file {path} does not exist")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    module_name = f"assetpipe_defs_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look classes up by module
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))  # so the file can import the modules next to it
    try:
        spec.loader.exec_module(module)
    except AssetpipeError:
        raise
    except Exception as exc:
        raise DefinitionError(f"cannot load definitions from {path}: {type(exc).__name__}: {exc}") from exc
    values = list(vars(module).values())
    found = [v for v in values if isinstance(v, Definitions)]
    if len(found) > 1:
        raise DefinitionError(f"{path} holds {len(found)} Definitions objects: keep one")
    if found:
        defs = found[0]
    else:
        defs = Definitions(
            assets=[v for v in values if isinstance(v, AssetsDefinition)],
            jobs=[v for v in values if isinstance(v, (JobDefinition, UnresolvedAssetJobDefinition))],
            sensors=[v for v in values if isinstance(v, SensorDefinition)],
            schedules=[v for v in values if isinstance(v, ScheduleDefinition)],
            alert_policies=[v for v in values if isinstance(v, AlertPolicy)],
            asset_checks=[c for v in values for c in _asset_checks(v)],
        )
    return replace(defs, location=location or defs.location or path.stem)


def _asset_checks(value: Any) -> list[AssetChecksDefinition]:
    """A module-level value's checks: a builder's list of them, or one."""
    if isinstance(value, AssetChecksDefinition):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, AssetChecksDefinition) for v in value):
        return value
    return []
