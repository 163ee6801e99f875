"""Errors of the consuming side: the warehouse and the consumer loop."""

from __future__ import annotations

from assetpipe.schemas.errors import AssetpipeError


class WarehouseError(AssetpipeError):
    """ClickHouse refused a statement (bad SQL, a constraint): retrying will not help."""

    code = "warehouse_error"


class WarehouseUnavailableError(WarehouseError):
    """ClickHouse cannot be reached right now: the consumer pauses and retries with backoff."""

    code = "warehouse_unavailable"


class ReadOnlyQueryError(WarehouseError):
    """A query that is not one statement that only reads the warehouse: refused before it runs."""

    code = "read_only"


class QueryLimitError(WarehouseError):
    """A read-only query hit a limit on its result, memory or time: the message says which and what to change."""

    code = "query_limit"


class ClusterDDLError(WarehouseError):
    """A migration's statement has no form for a ClickHouse cluster (``consumers.cluster`` says why): the
    migration is not applied, on any node."""

    code = "cluster_ddl"


class ConsumerError(AssetpipeError):
    code = "consumer_error"


class LaunchError(AssetpipeError):
    """The webhook launcher could not hand a run to its URL: the run is recorded as failed."""

    code = "launch_failed"
