"""Op events and exceptions: outputs, asset events and expectation results; Failure with metadata;
RetryRequested; an exception; a job-level retry policy."""

from assetpipe import (
    AssetObservation,
    ExpectationResult,
    Failure,
    MetadataValue,
    Output,
    RetryPolicy,
    RetryRequested,
    job,
    op,
)


@op
def extract(context):
    context.log_event(AssetObservation("ops/source", metadata={"num_rows": 3}))
    return [1, 2, 3]


@op
def check(context, rows):
    context.log_event(
        ExpectationResult(success=len(rows) > 0, label="has_rows", description="ensure rows", metadata={"n": len(rows)})
    )
    yield Output(sum(rows), metadata={"total": sum(rows), "dashboard_url": MetadataValue.url("http://example.com/d")})


@job
def etl():
    check(extract())


@job
def no_files(context):
    path = "/path/to/files"
    raise Failure(
        description="No files to process",
        metadata={"filepath": MetadataValue.path(path), "dashboard_url": MetadataValue.url("http://example.com/f")},
    )


@job
def flaky(context):
    if context.retry_number < 2:
        raise RetryRequested(max_retries=3, seconds_to_wait=0.05)
    context.log.info("succeeded on retry %d", context.retry_number)


@job
def always_flaky(context):
    raise RetryRequested(max_retries=1)


@job
def broken(context):
    return {}["missing"]


@job(retry_policy=RetryPolicy(max_retries=2, delay=0.01))
def policy_retried(context):
    if context.retry_number < 2:
        raise ValueError(f"transient, attempt {context.retry_number}")


@job(retry_policy=RetryPolicy(max_retries=3))
def no_retry_failure(context):
    raise Failure("fatal", allow_retries=False)
