"""The contract shared by producers and consumers: Avro schemas, the event model, the codec, validation."""

from schemas.asset_key import AssetKey
from schemas.codec import Codec, SchemaSet, make_codec
from schemas.errors import (
    AssetpipeError,
    ConfigError,
    DecodeError,
    EventTooLargeError,
    SchemaRegistryError,
    UnknownSchemaError,
    ValidationError,
)
from schemas.metadata import (
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
from schemas.model import (
    AssetCheckEvaluation,
    AssetEvent,
    AssetMaterialization,
    AssetObservation,
    build_record,
    event_from_record,
)
from schemas.settings import Settings, Topics
from schemas.validation import validate_record

__all__ = [
    "AssetCheckEvaluation",
    "AssetEvent",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "AssetpipeError",
    "Codec",
    "ConfigError",
    "DecodeError",
    "EventTooLargeError",
    "LocalFileCodeReference",
    "MetadataValue",
    "SchemaRegistryError",
    "SchemaSet",
    "Settings",
    "TableColumn",
    "TableColumnConstraints",
    "TableColumnDep",
    "TableColumnLineage",
    "TableConstraints",
    "TableRecord",
    "TableSchema",
    "Topics",
    "UnknownSchemaError",
    "UrlCodeReference",
    "ValidationError",
    "build_record",
    "event_from_record",
    "make_codec",
    "validate_record",
]
