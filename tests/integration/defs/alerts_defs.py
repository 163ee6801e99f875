"""A job that fails and a sensor that raises, for the alert tests."""

from assetpipe import Failure, RunRequest, asset_sensor, job


@job
def load_orders(context):
    raise Failure("the source is empty")


@asset_sensor("alerting/orders", job=load_orders)
def orders_sensor(context, asset_event):
    return RunRequest(run_key=context.cursor)


@asset_sensor("alerting/inventory", job=load_orders)
def broken_inventory(context, asset_event):
    raise ValueError("cannot read inventory")
