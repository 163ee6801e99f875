"""A chain: A materialized -> sensor -> job materializes B -> sensor on B -> job C."""

from assetpipe import AssetMaterialization, Output, RunRequest, asset_sensor, job, op


@op
def build_b(context):
    version = context.op_config["upstream_version"]
    context.log_event(AssetMaterialization("chain/b", data_version=f"b-{version}", metadata={"from": version}))
    return Output(version, metadata={"upstream": version})


@job
def make_b():
    build_b()


@op
def build_c(context):
    yield AssetMaterialization("chain/c", data_version=f"c-{context.run_config['ops']['build_c']['config']['v']}")
    yield Output("done")


@job
def make_c():
    build_c()


@asset_sensor("chain/a", job=make_b)
def a_sensor(context, asset_event):
    config = {"ops": {"build_b": {"config": {"upstream_version": asset_event.data_version}}}}
    return RunRequest(run_key=context.cursor, run_config=config)


@asset_sensor("chain/b", job=make_c)
def b_sensor(context, asset_event):
    return RunRequest(
        run_key=context.cursor, run_config={"ops": {"build_c": {"config": {"v": asset_event.data_version}}}}
    )
