"""A sensor whose description, log line and error hold markup and a javascript: link: the pages must show
them as text."""

from assetpipe import asset_sensor, job


@job
def noop(context):
    pass


@asset_sensor(
    asset_key="hostile/asset",
    job=noop,
    description='<script>window.__pwned = 1</script><a href="javascript:window.__pwned = 2">click me</a>',
)
def hostile_sensor(context, asset_event):
    context.log.info('<img src=x onerror="window.__pwned = 3">')
    raise ValueError("<script>window.__pwned = 4</script>")
