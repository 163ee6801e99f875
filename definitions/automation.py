"""Declarative automation: the sensor that requests runs of assets whose ``AutomationCondition`` is met.

``AutomationCondition.eager()``: an accepted materialization or observation of an upstream asset (an
accepted event is a new data version: the ingest worker keeps one event per data version) requests one run
of each eager asset downstream of it. The run key names the asset, the upstream and its new data version
(or the event when it has none), so the request is made once per change, across restarts and replicas.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assetpipe.definitions.asset_jobs import IMPLICIT_ASSET_JOB
from assetpipe.definitions.assets import AssetsDefinition
from assetpipe.definitions.context import SensorEvaluationContext
from assetpipe.definitions.ops import RunRequest, SkipReason
from assetpipe.definitions.sensors import DefaultSensorStatus, SensorDefinition
from assetpipe.schemas.asset_key import AssetKey

AUTOMATION_SENSOR = "default_automation_condition_sensor"


def automation_sensor(assets: Iterable[AssetsDefinition]) -> SensorDefinition | None:
    """The sensor for the eager assets among ``assets``, or None when there are none."""
    downstream: dict[AssetKey, list[AssetsDefinition]] = {}
    for assets_def in assets:
        condition = assets_def.spec.automation_condition
        if condition is None or condition.name != "eager" or not assets_def.is_executable:
            continue
        for dep in assets_def.spec.deps:
            downstream.setdefault(dep, []).append(assets_def)
    if not downstream:
        return None

    def evaluate(context: SensorEvaluationContext, event: Any) -> Any:
        targets = downstream.get(event.asset_key, [])
        change = event.data_version or f"event:{event.event_id}"
        requests = []
        for target in targets:
            partition = event.partition if target.spec.partitions_def is not None else None
            if partition is not None and not target.spec.partitions_def.has_partition_key(partition):  # type: ignore[union-attr]
                continue
            requests.append(
                RunRequest(
                    run_key=f"{target.key}|{event.asset_key}|{event.partition or ''}|{change}",
                    job_name=IMPLICIT_ASSET_JOB,
                    asset_selection=[target.key],
                    partition_key=partition,
                    tags={"dagster/automation_condition": "eager"},
                )
            )
        return requests or SkipReason(f"no eager asset downstream of {event.asset_key}")

    return SensorDefinition(
        name=AUTOMATION_SENSOR,
        fn=evaluate,
        kind="asset",
        event_type="materialization",
        event_types=("materialization", "observation"),
        asset_keys=tuple(downstream),
        job=None,
        job_name=IMPLICIT_ASSET_JOB,
        default_status=DefaultSensorStatus.RUNNING,
        start_at="latest",
        description="Requests a run of each eager asset when an upstream asset's data version changes.",
        arity=2,
    )
