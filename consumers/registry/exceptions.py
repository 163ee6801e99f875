"""Errors of the asset registry."""

from __future__ import annotations

from assetpipe.schemas.errors import AssetpipeError


class SpecError(AssetpipeError):
    """An asset spec given as data (an HTTP body, an entry of a spec file) is not a valid ``AssetSpec``,
    or a registration names one asset twice. The message names the entry and the problem."""

    code = "invalid_spec"
