"""assetpipe: asset events on Kafka and ClickHouse, with Dagster's names.

The API of a definitions file (``assetpipe up --defs my_defs.py``): jobs and ops, sensors, what they
return or raise, and the asset events and metadata values they carry.
"""

from schemas.asset_key import AssetKey
from schemas.definitions import Definitions, load_definitions
from schemas.jobs import JobDefinition, OpDefinition, OpExecutionContext, job, op, webhook_job
from schemas.metadata import MetadataValue, TableColumn, TableRecord, TableSchema
from schemas.model import AssetCheckEvaluation, AssetMaterialization, AssetObservation
from schemas.ops import (
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
from schemas.sensor_context import MultiAssetSensorEvaluationContext, SensorEvaluationContext
from schemas.sensors import (
    DefaultSensorStatus,
    SensorDefinition,
    asset_check_sensor,
    asset_sensor,
    multi_asset_sensor,
    observation_sensor,
)

__all__ = [
    "AssetCheckEvaluation",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "Backoff",
    "Config",
    "DefaultSensorStatus",
    "DefinitionError",
    "Definitions",
    "ExpectationResult",
    "Failure",
    "JobDefinition",
    "MetadataValue",
    "MultiAssetSensorEvaluationContext",
    "OpDefinition",
    "OpExecutionContext",
    "Output",
    "RetryPolicy",
    "RetryRequested",
    "RunConfig",
    "RunRequest",
    "SensorDefinition",
    "SensorEvaluationContext",
    "SkipReason",
    "TableColumn",
    "TableRecord",
    "TableSchema",
    "asset_check_sensor",
    "asset_sensor",
    "job",
    "load_definitions",
    "multi_asset_sensor",
    "observation_sensor",
    "op",
    "webhook_job",
]
