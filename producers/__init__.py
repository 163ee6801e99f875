"""The publishing side: the SDK ``Reporter`` and the ``Publisher`` every producer front-end shares.

Re-exports the event classes and metadata types of ``schemas`` so SDK users need one import:
``from producers import Reporter, MetadataValue``.
"""

from producers.encoder import Encoded, EventEncoder
from producers.exceptions import (
    DeliveryError,
    PublisherClosedError,
    PublishError,
    PublishTimeoutError,
    QueueFullError,
)
from producers.publisher import Publisher, Receipt
from producers.reporter import Reporter
from schemas.asset_key import AssetKey
from schemas.errors import ValidationError
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
from schemas.model import AssetCheckEvaluation, AssetMaterialization, AssetObservation
from schemas.settings import Settings

__all__ = [
    "AssetCheckEvaluation",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "DeliveryError",
    "Encoded",
    "EventEncoder",
    "LocalFileCodeReference",
    "MetadataValue",
    "PublishError",
    "PublishTimeoutError",
    "Publisher",
    "PublisherClosedError",
    "QueueFullError",
    "Receipt",
    "Reporter",
    "Settings",
    "TableColumn",
    "TableColumnConstraints",
    "TableColumnDep",
    "TableColumnLineage",
    "TableConstraints",
    "TableRecord",
    "TableSchema",
    "UrlCodeReference",
    "ValidationError",
]
