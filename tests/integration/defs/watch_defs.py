"""Sensors on observations, check evaluations and failures to materialize, a sensor that raises, and one that
keeps working."""

from assetpipe import (
    RunRequest,
    asset_check_sensor,
    asset_sensor,
    job,
    materialization_failure_sensor,
    observation_sensor,
)


@job
def refresh(context):
    context.log.info("refresh after %s", context.tags)


@observation_sensor("raw/source_table", job=refresh)
def source_changed(context, observation):
    return RunRequest(run_key=observation.data_version, tags={"version": observation.data_version})


@asset_check_sensor("orders", passed=False, severity="ERROR", job=refresh)
def failed_check(context, evaluation):
    return RunRequest(tags={"check": evaluation.check_name})


@materialization_failure_sensor("orders", failure_type="FAILED", job=refresh)
def failed_materialization(context, asset_event):
    failure = asset_event.dagster_event.asset_failed_to_materialize_data.asset_materialization_failure
    return RunRequest(run_key=context.cursor, tags={"reason": failure.reason, "failed_run": asset_event.run_id})


@asset_sensor("inventory", job=refresh)
def broken_sensor(context, asset_event):
    return {"rows": asset_event.metadata["rows"].value} / 0


@asset_sensor("inventory", job=refresh)
def healthy_sensor(context, asset_event):
    return RunRequest(run_key=context.cursor)
