"""Run keys: one run per order partition, however often the partition is rewritten; and a sensor that
requests the same run key twice in one evaluation. Also a sensor added later (``start_at``)."""

from assetpipe import RunRequest, asset_sensor, job


@job
def load_orders(context):
    context.log.info("loading partition %s", context.partition_key)


@asset_sensor(asset_key="orders", job=load_orders)
def orders_sensor(context, asset_event):
    return RunRequest(run_key=f"orders-{asset_event.partition}", partition_key=asset_event.partition)


@asset_sensor(asset_key="orders", job=load_orders)
def twice_sensor(context, asset_event):
    yield RunRequest(run_key=f"twice-{asset_event.data_version}")
    yield RunRequest(run_key=f"twice-{asset_event.data_version}")


@asset_sensor(asset_key="orders", job=load_orders, start_at="earliest")
def from_earliest_sensor(context, asset_event):
    return RunRequest(run_key=asset_event.data_version)
