"""assetpipe: asset events on Kafka and ClickHouse, with Dagster's names.

Every public name has this one import path: the SDK (``Reporter`` and what it reports), the asset events
and metadata types, and the API of a definitions file (``assetpipe up --defs my_defs.py``): jobs and ops,
sensors, what they return or raise. The packages below (``assetpipe.schemas``, ``.definitions``,
``.producers``, ``.consumers``) are the implementation.
"""

from assetpipe.definitions.context import MultiAssetSensorEvaluationContext, SensorEvaluationContext
from assetpipe.definitions.jobs import JobDefinition, OpDefinition, OpExecutionContext, job, op, webhook_job
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.definitions.ops import (
    Backoff,
    Config,
    DefinitionError,
    ExpectationResult,
    Failure,
    Output,
    RetryPolicy,
    RetryRequested,
    RunConfig,
    RunRequest,
    SkipReason,
)
from assetpipe.definitions.sensors import (
    DefaultSensorStatus,
    SensorDefinition,
    asset_check_sensor,
    asset_sensor,
    multi_asset_sensor,
    observation_sensor,
)
from assetpipe.producers.exceptions import (
    DeliveryError,
    PublisherClosedError,
    PublishError,
    PublishTimeoutError,
    QueueFullError,
)
from assetpipe.producers.publisher import Receipt
from assetpipe.producers.reporter import Reporter
from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.errors import AssetpipeError, ValidationError
from assetpipe.schemas.metadata import (
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableRecord,
    TableSchema,
    UrlCodeReference,
)
from assetpipe.schemas.model import AssetCheckEvaluation, AssetMaterialization, AssetObservation
from assetpipe.schemas.settings import Settings

__all__ = [
    "AssetCheckEvaluation",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "AssetpipeError",
    "Backoff",
    "Config",
    "DefaultSensorStatus",
    "DefinitionError",
    "Definitions",
    "DeliveryError",
    "ExpectationResult",
    "Failure",
    "JobDefinition",
    "LocalFileCodeReference",
    "MetadataValue",
    "MultiAssetSensorEvaluationContext",
    "OpDefinition",
    "OpExecutionContext",
    "Output",
    "PublishError",
    "PublishTimeoutError",
    "PublisherClosedError",
    "QueueFullError",
    "Receipt",
    "Reporter",
    "RetryPolicy",
    "RetryRequested",
    "RunConfig",
    "RunRequest",
    "SensorDefinition",
    "SensorEvaluationContext",
    "Settings",
    "SkipReason",
    "TableColumn",
    "TableColumnConstraints",
    "TableColumnDep",
    "TableColumnLineage",
    "TableConstraints",
    "TableRecord",
    "TableSchema",
    "UrlCodeReference",
    "ValidationError",
    "asset_check_sensor",
    "asset_sensor",
    "job",
    "load_definitions",
    "multi_asset_sensor",
    "observation_sensor",
    "op",
    "webhook_job",
]
