"""OpenLineage in: the receiver of OpenLineage events (``POST /api/v1/lineage``), their schema, the naming of
their datasets as assets, and their translation into assetpipe's events."""

from assetpipe.producers.openlineage.naming import AssetNaming, default_key
from assetpipe.producers.openlineage.spec import EventValidator
from assetpipe.producers.openlineage.translate import Translation, Translator

__all__ = ["AssetNaming", "EventValidator", "Translation", "Translator", "default_key"]
