"""The HTTP API put together with the rest of assetpipe: the report endpoints, the asset registry's
routes (``assetpipe.assets_api``), the known-asset cache seeded from the warehouse and from the
definitions file's assets, and the app factory that ``assetpipe serve``'s worker processes import
(``assetpipe.api:app_from_env``). The web catalog (``assetpipe.web``) is mounted on the same app."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette

from assetpipe.assets_api import AssetRoutes, registry_for_api
from assetpipe.catalog_api import catalog_routes
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.producers.http import create_app
from assetpipe.producers.http.known_assets import Seed
from assetpipe.producers.http.openapi import ALERT_PATHS, ASSET_PATHS, CATALOG_PATHS, OPS_PATHS
from assetpipe.schemas.settings import Settings
from assetpipe.web import mount_web

# Materialized assets, and assets defined in the registry (they exist before their first materialization). The
# latest state knows every asset ever materialized, also once its events are past the raw window (retention).
_KNOWN = (
    "SELECT DISTINCT toString(asset_key) FROM {db}.asset_latest_state WHERE materialized = 1 "
    "UNION DISTINCT SELECT asset_key FROM {db}.latest_asset_definitions"
)


def warehouse_seed(settings: Settings, warehouse: Warehouse | None = None) -> Seed | None:
    """Materialized and registered asset keys from ClickHouse: through ``warehouse`` when this process has
    one (``assetpipe up``), else from a ClickHouse server; None for an embedded engine another process owns."""
    if warehouse is None and settings.uses_embedded_clickhouse:
        return None

    def seed() -> list[str]:
        wh = warehouse or Warehouse.from_settings(settings)
        try:
            rows = wh.query(_KNOWN.format(db=settings.clickhouse_database)).rows
        finally:
            if warehouse is None:
                wh.close()
        return [str(row[0]) for row in rows]

    return seed


def known_seed(settings: Settings, warehouse: Warehouse | None = None, defs: Definitions | None = None) -> Seed | None:
    """The warehouse's materialized keys and the assets the definitions declare or watch
    (``ASSETPIPE_DEFS``, loaded here unless given)."""
    if defs is None and settings.defs is not None:
        defs = load_definitions(settings.defs, settings.code_location)
    stored = warehouse_seed(settings, warehouse)
    declared = sorted(defs.asset_keys()) if defs is not None else []
    if not declared:
        return stored
    return lambda: [*declared, *(stored() if stored is not None else ())]


def build_app(
    settings: Settings,
    warehouse: Warehouse | None = None,
    ingest_lag: Callable[[], int | None] | None = None,
    defs: Definitions | None = None,
) -> Starlette:
    registry = registry_for_api(settings, warehouse)
    assets = AssetRoutes(registry)
    app = create_app(
        settings,
        known_seed=known_seed(settings, warehouse, defs),
        ingest_lag=ingest_lag,
        extra_routes=[*catalog_routes(registry), *assets.routes()],  # the catalog's before the registry's PUT
        documented={**ASSET_PATHS, **OPS_PATHS, **CATALOG_PATHS, **ALERT_PATHS},
    )
    assets.attach(app.state.api)
    app.state.api.openlineage.registrar = assets.define_openlineage  # a DatasetEvent's spec
    mount_web(app, registry)  # the web catalog: pages, their JSON, the sign-in (assetpipe.web)
    return app


def app_from_env() -> Starlette:
    """Each ``assetpipe serve`` worker process builds its app from the environment."""
    return build_app(Settings.from_env())
