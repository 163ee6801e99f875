"""The asset catalog's pages: ``/``, every asset defined or reported (filters, status badges, a cursor page at a
time), and ``/assets/{key}``, one asset with its tabs as separate URLs (``?tab=``): overview, events, plots,
partitions, checks, lineage. Each shows what the catalog's JSON returns (``assetpipe.catalog_api``) through the
same reads (``consumers.catalog``). ``static/assets.js`` draws the plots from the JSON series (downsampled in
ClickHouse, fetched again for a zoomed range) and presses Materialize or Observe through the JSON API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from assetpipe.assets_api import RegistryAccess
from assetpipe.consumers.alerts import alerts_of
from assetpipe.consumers.catalog import (
    AssetQuery,
    EventQuery,
    asset_detail,
    asset_events,
    depth_of,
    lineage,
    list_assets,
    partitions,
    series_labels,
)
from assetpipe.consumers.catalog.rows import Query, iso, micros
from assetpipe.schemas.validation import validate_asset_key
from assetpipe.web.exceptions import BadQueryError, NotFoundError
from assetpipe.web.lineage_layout import layout
from assetpipe.web.pages import LIVE_HEADER, asset_href
from assetpipe.web.routing import blocking, page_route, render_page

TABS = ("overview", "events", "plots", "partitions", "checks", "lineage")
FILTERS = ("search", "prefix", "tag", "owner", "group", "kind", "location", "status", "defined", "sort")
STATUSES = (("FRESH", "fresh"), ("STALE", "stale"), ("MISSING", "missing"), ("FAILED_CHECK", "failed check"),
            ("FAILED", "failed to materialize"))  # fmt: skip
EVENT_TYPES = ("materialization", "observation", "check", "materialization_failure")
GRID_LIMIT = "500"
# The last parts of a key that the catalog's JSON routes read as a suffix (``catalog_api``): such a key, one with
# a part ``metadata`` or one that reads as a JSON list, is written as the JSON list of its parts.
_SUFFIXES = frozenset({"events", "partitions", "status", "materialize", "observe"})
# The values of each filter, offered as the catalog's inputs are typed (500 of each at most).
_FACETS = (
    "SELECT groupUniqArrayArray(500)(d.owners), groupUniqArray(500)(d.group_name), "
    "groupUniqArrayArray(500)(d.kinds), groupUniqArray(500)(d.code_location), "
    "groupUniqArrayArray(500)(arrayFilter(t -> NOT startsWith(t, 'dagster/kind/'), "
    "arrayMap((k, v) -> if(v = '', k, concat(k, '=', v)), mapKeys(d.tags), mapValues(d.tags)))) "
    "FROM latest_asset_definitions AS d"
)


def api_path(key: str) -> str:
    """The key as the catalog's JSON routes take it in a path (``/api/assets/<this>``), percent-encoded."""
    parts = key.split("/")
    if parts[-1] in _SUFFIXES or "metadata" in parts or key.startswith("["):
        return quote(json.dumps(parts, ensure_ascii=False), safe="")
    return "/".join(quote(part, safe="") for part in parts)


def facets(query: Query) -> dict[str, list[str]]:
    row = query(_FACETS, {}).rows[0]
    names = ("owners", "groups", "kinds", "locations", "tags")
    return {name: sorted({str(v) for v in values if v}) for name, values in zip(names, row, strict=True)}


def metadata_entries(entries: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Typed metadata (``{label: {"type", "value"}}``) as the templates show it, in label order; a timestamp also
    as an ISO time (``at``), shown in the reader's zone."""
    shown = []
    for label, entry in sorted((entries or {}).items()):
        item = {"label": label, "type": entry.get("type", "text"), "value": entry.get("value")}
        if item["type"] == "timestamp" and isinstance(item["value"], (int, float)):
            item["at"] = iso(round(item["value"] * 1_000_000))
        shown.append(item)
    return shown


def catalog_filters(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params.get(name) or "" for name in FILTERS}


def _query_string(values: Mapping[str, Any]) -> str:
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _event_query(params: Mapping[str, str]) -> EventQuery:
    """The events tab's filters; ``at`` (a point of a plot) is the events at exactly that time. The form's
    partition left empty is any partition, as its placeholder says."""
    wanted = EventQuery.parse(params)
    if not wanted.partition:
        wanted = replace(wanted, partition=None)
    at = params.get("at")
    if at:
        try:
            us = micros(at)
        except ValueError:
            raise BadQueryError("Query parameter 'at' must be an ISO 8601 time") from None
        wanted = replace(wanted, after=us, before=us + 1)
    return wanted


class AssetPages:
    """The catalog's pages over the registry's read-only queries (``RegistryAccess.query``)."""

    def __init__(self, registry: RegistryAccess) -> None:
        self.query = registry.query
        self.statuses = registry.statuses  # the JSON routes' snapshot

    def routes(self) -> list[Route]:
        return [page_route("/", self.catalog), page_route("/assets/{key:path}", self.asset)]

    async def catalog(self, request: Request) -> Response:
        params = request.query_params
        wanted = AssetQuery.parse(params)
        refresh = request.headers.get(LIVE_HEADER) == "1"  # the table alone: the inputs' values are not needed

        def read() -> tuple[dict[str, Any], dict[str, list[str]]]:
            return list_assets(self.query, wanted, self.statuses), {} if refresh else facets(self.query)

        listed, offered = await blocking(read)
        filters = catalog_filters(params)
        context = {
            "title": "Assets",
            "assets": listed,
            "filters": filters,
            "filtered": any(v for k, v in filters.items() if k != "sort"),
            "query_string": _query_string(filters),
            "facets": offered,
            "statuses": STATUSES,
            "paged": bool(params.get("cursor")),
        }
        return render_page(request, "catalog.html", context)

    async def asset(self, request: Request) -> Response:
        key = request.path_params["key"].strip("/")
        validate_asset_key(key.split("/"))
        params = request.query_params
        tab = params.get("tab") or "overview"
        if tab not in TABS:
            raise BadQueryError(f"Query parameter 'tab' must be one of {', '.join(TABS)}")
        context = await blocking(self._asset, key, tab, params)
        return render_page(request, "asset.html", context)

    def _asset(self, key: str, tab: str, params: Mapping[str, str]) -> dict[str, Any]:
        """The page's context: the asset in full (every tab shows its status and checks), then its tab's."""
        found = asset_detail(self.query, key, self.statuses)
        if found is None:
            raise NotFoundError(f"No asset {key!r} is defined or was ever reported")
        definition = found["definition"] or {}
        action = None
        if definition.get("source") == "code":  # a code location's run worker has its function
            action = {"materialization": "materialize", "observation": "observe"}.get(definition["execution_type"])
        paged = bool(params.get("cursor"))
        context: dict[str, Any] = {
            "title": key,
            "tab": tab,
            "asset": found,
            "definition": definition,
            "parts": key.split("/"),
            "api_path": api_path(key),
            "action": action,
            "paged": paged,
            "live": tab in ("overview", "events", "partitions", "checks") and not paged,
            "metadata_entries": metadata_entries,
        }
        tab_context = getattr(self, f"_{tab}")
        context.update(tab_context(key, found, params))
        return context

    def _overview(self, key: str, found: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        latest = {kind: (found[f"latest_{kind}"] or {}).get("metadata") for kind in ("materialization", "observation")}
        shown = {kind: metadata_entries(entries) for kind, entries in latest.items()}
        return {
            "metadata": {"definition": metadata_entries((found["definition"] or {}).get("metadata")), **shown},
            "alerts": alerts_of(self.query, key),
        }

    def _events(self, key: str, found: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        return {
            "events": asset_events(self.query, key, _event_query(params)),
            "event_filters": {name: params.get(name) or "" for name in ("type", "partition", "at")},
            "event_types": EVENT_TYPES,
            "focus": params.get("event") or "",
        }

    def _plots(self, key: str, found: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        axes = ("time", "partition") if found["partitions"]["partitioned"] else ("time",)
        plots = [
            {"label": label, "x": x, "id": f"plot-{i}-{x}"}
            for i, label in enumerate(series_labels(self.query, key))
            for x in axes
        ]
        return {"plots": plots, "plot_data": {"api": f"/api/assets/{api_path(key)}", "page": asset_href(key)}}

    def _partitions(self, key: str, found: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        wanted = {"cursor": params.get("cursor") or "", "limit": GRID_LIMIT}
        return {"partition_page": partitions(self.query, key, wanted)}

    def _checks(self, key: str, found: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        wanted = EventQuery.parse({"type": "check", "cursor": params.get("cursor") or ""})
        return {"history": asset_events(self.query, key, wanted)}

    def _lineage(self, key: str, found: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        depth = depth_of(params.get("depth"))
        graph = lineage(self.query, key, depth, self.statuses)
        return {"depth": depth, "graph": layout(graph) if graph else None}


def asset_page_routes(registry: RegistryAccess) -> list[Route]:
    return AssetPages(registry).routes()
