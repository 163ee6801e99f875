"""The asset catalog's JSON on the HTTP API (``consumers.catalog`` answers; this module routes, checks the visitor
and reads the request):

- ``GET /api/assets``: every asset defined or reported, filtered, sorted, a cursor page at a time;
- ``GET /api/assets/{key}``: one asset in full; ``/events``, ``/metadata/{label}``, ``/partitions`` below it;
- ``GET /api/lineage?root=a/b&depth=2``: the asset graph around an asset;
- ``POST /api/assets/{key}/materialize`` and ``/observe``: request a run, as ``assetpipe assets materialize``
  does (``assetpipe.asset_runs``), answered 202 with the run ids.

Reads need the API key scope ``read`` and requests of runs ``run`` (under the key's prefixes), through the
web catalog's gate (``assetpipe.web``: a key or a browser session; open on loopback without keys).

**Keys in paths.** ``{key}`` is the asset key written ``a/b``. The suffix routes are matched before the bare
key: a path whose last part is ``events``, ``partitions``, ``status``, ``materialize`` or ``observe`` is that
route of the key before it, and ``/metadata/`` splits the key (before its first occurrence) from the label
(after it, which may hold ``/``: ``dagster/row_count``). A key whose last part is one of those words, or that
has a part ``metadata``, is written as a JSON list of its parts, percent-encoded, in its place:
``/api/assets/%5B%22a%22%2C%22events%22%5D`` is the asset ``a/events``. An asset neither defined nor ever
reported is a 404 on every route.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from assetpipe.asset_runs import Action, AssetRunError, plan, request_runs
from assetpipe.assets_api import RegistryAccess
from assetpipe.consumers.catalog import (
    AssetQuery,
    EventQuery,
    SeriesQuery,
    asset_detail,
    asset_events,
    depth_of,
    lineage,
    list_assets,
    partitions,
    series,
)
from assetpipe.producers.http import errors
from assetpipe.producers.http.endpoint import Incoming
from assetpipe.producers.http.exceptions import RequestError, UnknownAssetError
from assetpipe.producers.http.payload import body_kind, parse_object, read_body
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.validation import check_printable, validate_asset_key
from assetpipe.web import api_route, blocking
from assetpipe.web.routing import web_of

# Known to the catalog: defined (in any version) or reported.
_EXISTS = (
    "SELECT count() FROM (SELECT s.asset_key FROM asset_latest_state AS s WHERE s.asset_key = {key:String} LIMIT 1 "
    "UNION ALL SELECT d.asset_key FROM asset_definitions AS d WHERE d.asset_key = {key:String} LIMIT 1)"
)
_SERIES_PATH = r"^/api/assets/(?P<key>.+?)/metadata/(?P<label>.+)$"  # the key ends at the first /metadata/
_ASSET_PATH = r"^/api/assets/(?P<key>(?!.*/status$).+)$"  # a path ending in /status is the registry's (GET, PUT 405)
_METHODS = frozenset({"DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})
Handler = Callable[[Request], Awaitable[Any]]


def asset_key_of(text: str, what: str = "asset_key") -> str:
    """The asset key ``a/b`` of a path's (or ``root``'s) key text: ``a/b``, or a JSON list of parts."""
    parts: Any = text.split("/")
    if text.startswith("["):
        try:
            parts = json.loads(text)
        except ValueError:
            raise FieldError(what, f"The asset key {text[:100]!r} is not a JSON list of its parts") from None
    validate_asset_key(parts)
    return "/".join(parts)


def query_of(request: Request) -> dict[str, str]:
    """The query string's parameters; one given twice is a 400 (which one would count is anyone's guess)."""
    repeated = sorted({name for name, _ in request.query_params.multi_items()
                       if len(request.query_params.getlist(name)) > 1})  # fmt: skip
    if repeated:
        raise FieldError(repeated[0], f"Query parameter '{repeated[0][:64]}' is given more than once")
    return dict(request.query_params)


def _keyed(route: Route, pattern: str | None = None) -> Route:
    """``route`` under ``/api/assets/{key}``: the key may hold any character (a control character is a 400
    naming it, not a 404), and ``pattern`` replaces the path's regex."""
    route.path_regex = re.compile(pattern or route.path_regex.pattern, re.DOTALL)
    return route


def _not_allowed(route: Route, allow: tuple[str, ...]) -> Route:
    """Every other method on ``route``'s paths is a 405 naming those it takes: placed before the registry's
    ``PUT /api/assets/{key}``, so that a PUT on a catalog path is not taken as defining an asset whose key ends
    with the suffix."""

    async def endpoint(request: Request) -> Response:
        raise HTTPException(405, headers={"Allow": ", ".join(allow)})

    other = Route(route.path, endpoint, methods=sorted(_METHODS - set(allow) - {"HEAD"}))
    other.path_regex = route.path_regex
    return other


class CatalogRoutes:
    """The catalog's routes over the registry's read-only queries (``RegistryAccess.query``)."""

    def __init__(self, registry: RegistryAccess) -> None:
        self.registry = registry
        self.statuses = registry.statuses

    def routes(self) -> list[BaseRoute]:
        """The routes, each followed by the 405 of the methods it does not take. They go before the registry's
        (``AssetRoutes``): its ``PUT /api/assets/{key}`` would take any path below."""
        base = "/api/assets/{key:path}"
        keyed = [
            (_keyed(api_route(f"{base}/events", self.events)), ("GET",)),
            (_keyed(api_route(f"{base}/partitions", self.partitions)), ("GET",)),
            (_keyed(api_route(f"{base}/metadata/{{label:path}}", self.series), _SERIES_PATH), ("GET",)),
            (_keyed(self._run_route(f"{base}/materialize", "materialize")), ("POST",)),
            (_keyed(self._run_route(f"{base}/observe", "observe")), ("POST",)),
            (_keyed(api_route(base, self.detail), _ASSET_PATH), ("GET", "PUT")),  # PUT: the registry's
        ]
        routes: list[BaseRoute] = [api_route("/api/assets", self.listing), api_route("/api/lineage", self.lineage)]
        for route, allow in keyed:
            routes += [route, _not_allowed(route, allow)]
        return routes

    async def listing(self, request: Request) -> Any:
        return await blocking(list_assets, self.registry.query, AssetQuery.parse(query_of(request)), self.statuses)

    async def detail(self, request: Request) -> Any:
        key = asset_key_of(request.path_params["key"])
        found = await blocking(asset_detail, self.registry.query, key, self.statuses)
        if found is None:
            raise UnknownAssetError(key)
        return found

    async def events(self, request: Request) -> Any:
        key = asset_key_of(request.path_params["key"])
        page = await blocking(asset_events, self.registry.query, key, EventQuery.parse(query_of(request)))
        return await self._known(key, page, bool(page["items"]))

    async def partitions(self, request: Request) -> Any:
        key = asset_key_of(request.path_params["key"])
        page = await blocking(partitions, self.registry.query, key, query_of(request))
        return await self._known(key, page, bool(page["items"]))

    async def series(self, request: Request) -> Any:
        key = asset_key_of(request.path_params["key"])
        label = request.path_params["label"]
        check_printable("label", label)
        shown = await blocking(series, self.registry.query, key, label, SeriesQuery.parse(query_of(request)))
        return await self._known(key, shown, shown["count"] > 0)

    async def lineage(self, request: Request) -> Any:
        params = query_of(request)
        root = params.get("root")
        if not root:
            raise FieldError("root", "Missing required query parameter: root (an asset key, a/b)")
        key = asset_key_of(root.strip("/"), "root")
        graph = await blocking(lineage, self.registry.query, key, depth_of(params.get("depth")), self.statuses)
        if graph is None:
            raise UnknownAssetError(key)
        return graph

    async def _known(self, key: str, answer: dict[str, Any], found: bool) -> dict[str, Any]:
        """``answer`` unless it is empty for an asset neither defined nor reported (404): the check costs a query
        only when there is nothing to show."""
        if not found and not (await blocking(self.registry.query, _EXISTS, {"key": key})).rows[0][0]:
            raise UnknownAssetError(key)
        return answer

    def _run_route(self, path: str, action: Action) -> Route:
        """A POST that requests a run of the asset (scope ``run``, under the key's prefixes), answered 202."""

        async def endpoint(request: Request) -> Response:
            web = web_of(request)
            visitor = web.auth.require(request, "run")
            web.auth.check_origin(request, visitor)
            key = asset_key_of(request.path_params["key"])
            web.auth.authenticator.authorize_run(visitor.key, key.split("/"))
            partition = await self._partition(request)
            if not (await blocking(self.registry.query, _EXISTS, {"key": key})).rows[0][0]:
                raise UnknownAssetError(key)
            try:
                by_location = await blocking(plan, self.registry.query, action, [key])
            except AssetRunError as exc:
                raise RequestError(str(exc)) from exc
            settings = request.app.state.api.settings
            runs = await run_in_threadpool(request_runs, settings, by_location, partition)
            content = {
                "asset_key": key,
                "action": action,
                "partition": partition,
                "run_ids": [run.run_id for run in runs],
                "runs": [
                    {"run_id": run.run_id, "code_location": run.code_location, "asset_keys": list(run.asset_keys)}
                    for run in runs
                ],
            }
            return errors.json_response(content, 202)

        return Route(path, endpoint, methods=["POST"])

    @staticmethod
    async def _partition(request: Request) -> str | None:
        """The body's optional ``partition`` (a JSON object, or no body), read as the report endpoints read theirs."""
        limits = request.app.state.api.limits
        body_kind(request.headers.get("content-type"))
        raw = await read_body(Incoming.from_scope(request.scope, request.receive, None), limits.body_bytes,
                              "http_max_body_bytes")  # fmt: skip
        body: Mapping[str, Any] = parse_object(raw, limits)
        unknown = sorted(set(body) - {"partition"})
        if unknown:
            raise FieldError(unknown[0], f"unknown field '{unknown[0][:64]}': the body may hold partition only")
        partition = body.get("partition")
        if partition is not None and (not isinstance(partition, str) or not partition):
            raise FieldError("partition", "Field 'partition' must be a non-empty string")
        if partition is not None:
            check_printable("partition", partition)
        return partition


def catalog_routes(registry: RegistryAccess) -> list[BaseRoute]:
    return CatalogRoutes(registry).routes()
