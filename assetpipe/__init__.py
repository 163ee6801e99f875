"""assetpipe: asset events on Kafka and ClickHouse, with Dagster's names.

Every public name has this one import path: the SDK (``Reporter`` and what it reports), the asset events
and metadata types, and the API of a definitions file (``assetpipe up --defs my_defs.py``): jobs and ops,
sensors, what they return or raise. The packages below (``assetpipe.schemas``, ``.definitions``,
``.producers``, ``.consumers``) are the implementation.
"""

from assetpipe.definitions.alerts import AlertPolicy, EmailChannel, SlackChannel, WebhookChannel
from assetpipe.definitions.asset_jobs import define_asset_job
from assetpipe.definitions.assets import (
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    AssetSpec,
    asset,
    observable_source_asset,
)
from assetpipe.definitions.code_references import (
    AnchorBasedFilePathMapping,
    CodeReferencesMetadataValue,
    FilePathMapping,
    link_code_references_to_git,
    with_source_code_references,
)
from assetpipe.definitions.context import EventLogEntry, MultiAssetSensorEvaluationContext, SensorEvaluationContext
from assetpipe.definitions.freshness import FreshnessPolicy
from assetpipe.definitions.jobs import JobDefinition, OpDefinition, OpExecutionContext, job, op, webhook_job
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.definitions.monitors import (
    AssetChecksDefinition,
    MonitorSpec,
    build_last_update_freshness_checks,
    build_metadata_anomaly_checks,
    build_metadata_bounds_checks,
)
from assetpipe.definitions.ops import (
    Backoff,
    Config,
    DefinitionError,
    ExpectationResult,
    Failure,
    In,
    Out,
    Output,
    RetryPolicy,
    RetryRequested,
    RunConfig,
    RunRequest,
    SkipReason,
)
from assetpipe.definitions.partitions import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    WeeklyPartitionsDefinition,
)
from assetpipe.definitions.results import (
    AssetCheckResult,
    AssetCheckSeverity,
    AutomationCondition,
    DataVersion,
    DataVersionsByPartition,
    MaterializeResult,
    ObserveResult,
)
from assetpipe.definitions.schedules import (
    DefaultScheduleStatus,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)
from assetpipe.definitions.sensors import (
    DefaultSensorStatus,
    SensorDefinition,
    asset_check_sensor,
    asset_sensor,
    materialization_failure_sensor,
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
from assetpipe.schemas.model import (
    AssetCheckEvaluation,
    AssetMaterialization,
    AssetMaterializationFailure,
    AssetObservation,
)
from assetpipe.schemas.settings import Settings

__all__ = [
    "AlertPolicy",
    "AnchorBasedFilePathMapping",
    "AssetCheckEvaluation",
    "AssetCheckResult",
    "AssetCheckSeverity",
    "AssetChecksDefinition",
    "AssetDep",
    "AssetExecutionContext",
    "AssetIn",
    "AssetKey",
    "AssetMaterialization",
    "AssetMaterializationFailure",
    "AssetObservation",
    "AssetSpec",
    "AssetpipeError",
    "AssetsDefinition",
    "AutomationCondition",
    "Backoff",
    "CodeReferencesMetadataValue",
    "Config",
    "DailyPartitionsDefinition",
    "DataVersion",
    "DataVersionsByPartition",
    "DefaultScheduleStatus",
    "DefaultSensorStatus",
    "DefinitionError",
    "Definitions",
    "DeliveryError",
    "EmailChannel",
    "EventLogEntry",
    "ExpectationResult",
    "Failure",
    "FilePathMapping",
    "FreshnessPolicy",
    "HourlyPartitionsDefinition",
    "In",
    "JobDefinition",
    "LocalFileCodeReference",
    "MaterializeResult",
    "MetadataValue",
    "MonitorSpec",
    "MonthlyPartitionsDefinition",
    "MultiAssetSensorEvaluationContext",
    "ObserveResult",
    "OpDefinition",
    "OpExecutionContext",
    "Out",
    "Output",
    "PartitionsDefinition",
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
    "ScheduleDefinition",
    "ScheduleEvaluationContext",
    "SensorDefinition",
    "SensorEvaluationContext",
    "Settings",
    "SkipReason",
    "SlackChannel",
    "StaticPartitionsDefinition",
    "TableColumn",
    "TableColumnConstraints",
    "TableColumnDep",
    "TableColumnLineage",
    "TableConstraints",
    "TableRecord",
    "TableSchema",
    "UrlCodeReference",
    "ValidationError",
    "WebhookChannel",
    "WeeklyPartitionsDefinition",
    "asset",
    "asset_check_sensor",
    "asset_sensor",
    "build_last_update_freshness_checks",
    "build_metadata_anomaly_checks",
    "build_metadata_bounds_checks",
    "define_asset_job",
    "job",
    "link_code_references_to_git",
    "load_definitions",
    "materialization_failure_sensor",
    "multi_asset_sensor",
    "observable_source_asset",
    "observation_sensor",
    "op",
    "schedule",
    "webhook_job",
    "with_source_code_references",
]
