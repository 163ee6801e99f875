"""Errors of the OpenLineage receiver, under the one ``AssetpipeError`` root."""

from __future__ import annotations

from assetpipe.schemas.errors import ConfigError


class MappingFileError(ConfigError):
    """The dataset-to-asset mapping file (``ASSETPIPE_OPENLINEAGE_MAPPING_FILE``) cannot be read or is malformed."""

    code = "invalid_openlineage_mapping"
