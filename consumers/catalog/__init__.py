"""The asset catalog's reads: the list of assets and one asset in full (``assets``), an asset's events
(``events``), a numeric metadata series downsampled in ClickHouse and the labels with one (``series``), its
partitions (``partitions``), the asset graph around it (``lineage``), status and checks (``status``). Each is a
few read-only queries with parameters through a ``Query`` (``RegistryAccess.query``), answered from latest-state
tables and primary-key ranges of ``asset_events`` and ``asset_metadata_points``."""

from assetpipe.consumers.catalog.assets import AssetQuery, asset_detail, list_assets
from assetpipe.consumers.catalog.events import EventQuery, asset_events
from assetpipe.consumers.catalog.lineage import depth_of, lineage
from assetpipe.consumers.catalog.partitions import partitions
from assetpipe.consumers.catalog.rows import Query
from assetpipe.consumers.catalog.series import SeriesQuery, series, series_labels
from assetpipe.consumers.catalog.status import StalenessSnapshot

__all__ = [
    "AssetQuery",
    "EventQuery",
    "Query",
    "SeriesQuery",
    "StalenessSnapshot",
    "asset_detail",
    "asset_events",
    "depth_of",
    "lineage",
    "list_assets",
    "partitions",
    "series",
    "series_labels",
]
