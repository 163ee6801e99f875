"""The asset registry: every version of every asset definition, from code locations, the HTTP API and
spec files (``asset_definitions``), and what the warehouse says of each asset's status."""

from assetpipe.consumers.registry.catalog import asset_status, list_assets, show_asset
from assetpipe.consumers.registry.definition import Source, StoredDefinition
from assetpipe.consumers.registry.exceptions import SpecError
from assetpipe.consumers.registry.registry import AssetRegistry, Registration, RegistrationSummary
from assetpipe.consumers.registry.specs import SPEC_FIELDS, spec_entry, spec_from_json

__all__ = [
    "SPEC_FIELDS",
    "AssetRegistry",
    "Registration",
    "RegistrationSummary",
    "Source",
    "SpecError",
    "StoredDefinition",
    "asset_status",
    "list_assets",
    "show_asset",
    "spec_entry",
    "spec_from_json",
]
