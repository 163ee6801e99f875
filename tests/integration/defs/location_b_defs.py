"""Another code location watching the same asset as sales_defs."""

from assetpipe import RunRequest, asset_sensor, job


@job
def other_team_job(context):
    context.log.info("the other team's work")


@asset_sensor("daily_sales_data", job=other_team_job)
def other_team_sensor(context, asset_event):
    return RunRequest(run_key=context.cursor)
