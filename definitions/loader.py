"""Definitions: the jobs, sensors and declared assets of one code location, and loading them from a
user's Python file.

``load_definitions(path)`` imports the file and takes its ``Definitions`` object if it has one, else every
module-level ``@job`` and sensor. A sensor's ``job`` joins the jobs. The code location is named by
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

from assetpipe.definitions.jobs import JobDefinition
from assetpipe.definitions.ops import DefinitionError
from assetpipe.definitions.sensors import SensorDefinition
from assetpipe.schemas.asset_key import CoercibleToAssetKey, coerce_asset_key
from assetpipe.schemas.errors import AssetpipeError


@dataclass(frozen=True)
class Definitions:
    """``assets``: asset keys this code location declares, so they count as existing before their first
    materialization (the HTTP API accepts observations and checks of them)."""

    jobs: Sequence[JobDefinition] = ()
    sensors: Sequence[SensorDefinition] = ()
    location: str = ""
    assets: Sequence[CoercibleToAssetKey] = ()
    _jobs: dict[str, JobDefinition] = field(init=False, repr=False, compare=False)
    _sensors: dict[str, SensorDefinition] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        jobs: dict[str, JobDefinition] = {}
        for job in [*self.jobs, *(s.job for s in self.sensors if s.job is not None)]:
            if not isinstance(job, JobDefinition):
                raise DefinitionError(f"Definitions: jobs must be @job definitions, got {type(job).__name__}")
            known = jobs.setdefault(job.name, job)
            if known is not job:
                raise DefinitionError(f"two different jobs are named {job.name!r}")
        sensors: dict[str, SensorDefinition] = {}
        for sensor in self.sensors:
            if not isinstance(sensor, SensorDefinition):
                raise DefinitionError(f"Definitions: sensors must be sensor definitions, got {type(sensor).__name__}")
            if sensors.setdefault(sensor.name, sensor) is not sensor:
                raise DefinitionError(f"two different sensors are named {sensor.name!r}")
        try:
            assets = tuple(coerce_asset_key(key) for key in self.assets)
        except (TypeError, ValueError, AssetpipeError) as exc:
            raise DefinitionError(f"Definitions: assets must be asset keys: {exc}") from exc
        object.__setattr__(self, "assets", assets)
        object.__setattr__(self, "jobs", tuple(jobs.values()))
        object.__setattr__(self, "sensors", tuple(sensors.values()))
        object.__setattr__(self, "_jobs", jobs)
        object.__setattr__(self, "_sensors", sensors)

    def job(self, name: str) -> JobDefinition | None:
        return self._jobs.get(name)

    def sensor(self, name: str) -> SensorDefinition | None:
        return self._sensors.get(name)

    def asset_keys(self) -> set[str]:
        """The assets this location declares or watches with its sensors, as ``a/b`` strings."""
        keys = [*self.assets, *(key for sensor in self.sensors for key in sensor.asset_keys)]
        return {coerce_asset_key(key).to_user_string() for key in keys}


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
        jobs = [v for v in values if isinstance(v, JobDefinition)]
        defs = Definitions(jobs=jobs, sensors=[v for v in values if isinstance(v, SensorDefinition)])
    return replace(defs, location=location or defs.location or path.stem)
