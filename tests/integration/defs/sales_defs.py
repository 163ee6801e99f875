"""The asset-sensor examples of the Dagster docs, for assetpipe: a run when ``daily_sales_data`` is
materialized; a custom evaluation that skips holidays; run config built from the event's metadata; a
multi-asset sensor that fires once both of its assets have new data."""

from assetpipe import (
    AssetKey,
    Config,
    DefaultSensorStatus,
    Output,
    RunConfig,
    RunRequest,
    SkipReason,
    asset_sensor,
    job,
    multi_asset_sensor,
    op,
)

HOLIDAYS = {"2024-12-25", "2025-01-01"}


class WeeklyReportConfig(Config):
    param1: str


@op
def weekly_report(context, config: WeeklyReportConfig):
    context.log.info(f"Running weekly report with param1: {config.param1}")
    return Output(config.param1, metadata={"param1": config.param1})


@job
def weekly_report_job():
    weekly_report()


@job
def my_job(context):
    context.log.info("downstream work for %s", context.run_id)


@asset_sensor(asset_key=AssetKey("daily_sales_data"), job=my_job)
def daily_sales_data_sensor():
    return RunRequest()


@asset_sensor(asset_key=AssetKey("daily_sales_data"), job=my_job)
def business_day_sensor(context, asset_event):
    if asset_event.partition in HOLIDAYS:
        return SkipReason(f"{asset_event.partition} is a holiday")
    return RunRequest(run_key=context.cursor, tags={"day": asset_event.partition or "none"})


@asset_sensor(asset_key=AssetKey("daily_sales_data"), job=weekly_report_job, default_status=DefaultSensorStatus.RUNNING)
def weekly_report_sensor(context, asset_event):
    if "specific_property" in asset_event.metadata:
        value = asset_event.metadata["specific_property"].value
        yield RunRequest(
            run_key=context.cursor, run_config=RunConfig(ops={"weekly_report": WeeklyReportConfig(param1=value)})
        )
    else:
        yield SkipReason("Asset materialization does not have the required property")


@multi_asset_sensor(monitored_assets=[AssetKey("asset_a"), AssetKey("asset_b")], job=my_job)
def asset_a_and_b_sensor(context):
    asset_events = context.latest_materialization_records_by_key()
    if all(asset_events.values()):
        context.advance_all_cursors()
        return RunRequest(tags={"a": asset_events[AssetKey("asset_a")].data_version or ""})
    return None


@asset_sensor(asset_key="daily_sales_data", job=my_job, default_status=DefaultSensorStatus.STOPPED)
def stopped_sensor():
    return RunRequest()
