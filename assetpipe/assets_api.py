"""The asset registry at the front door: ``PUT /api/assets/{asset_key}`` (define an asset from its spec)
and ``GET /api/assets/{asset_key}/status`` on the HTTP API, and the registry as this process reaches it.

The registry lives in the warehouse. A process that has it (``assetpipe up``, or any process against a
ClickHouse server) uses it directly (``LocalRegistry``); an embedded engine belongs to the one process
that opened it, so ``assetpipe serve`` and the CLI beside a running stack go through its control socket
(``StackRegistry``), which runs the same registration and the same read-only queries there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Route

from assetpipe.consumers.catalog import StalenessSnapshot
from assetpipe.consumers.exceptions import (
    QueryLimitError,
    ReadOnlyQueryError,
    WarehouseError,
    WarehouseUnavailableError,
)
from assetpipe.consumers.readonly import ReadOnlyPolicy
from assetpipe.consumers.registry import (
    AssetRegistry,
    RegistrationSummary,
    Source,
    SpecError,
    asset_status,
    spec_entry,
    spec_from_json,
)
from assetpipe.consumers.warehouse import QueryResult, Warehouse
from assetpipe.control import answers, call
from assetpipe.exceptions import StackNotRunningError
from assetpipe.producers.http import Api, ApiKey
from assetpipe.producers.http.endpoint import Answer, Incoming, ReportEndpoint
from assetpipe.producers.http.exceptions import LimitExceededError, RequestError, UnknownAssetError
from assetpipe.producers.http.payload import body_kind, parse_object, read_body
from assetpipe.producers.openlineage.translate import SPEC_LOCATION
from assetpipe.schemas import jsonform
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.settings import Settings
from assetpipe.schemas.validation import cut, validate_asset_key

T = TypeVar("T")
_STACK_ERRORS = (SpecError, ReadOnlyQueryError, QueryLimitError, WarehouseUnavailableError, WarehouseError)
_STATUS = "/status"  # GET /api/assets/{asset_key}/status
_LOCATION_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _route(path: str, endpoint: ReportEndpoint, method: str) -> Route:
    """A route whose asset key may hold any character (``path`` matches no newline by default), so that a
    key with a control character reaches the handler and is refused with a 400 naming it, as the report
    endpoints do, rather than a 404."""
    route = Route(path, endpoint, methods=[method])
    route.path_regex = re.compile(route.path_regex.pattern, re.DOTALL)
    return route


def now_us() -> int:
    return time.time_ns() // 1000


class RegistryAccess(Protocol):
    # every asset's status, at most 5 s old: the catalog's JSON and its pages read the one snapshot
    statuses: StalenessSnapshot

    def register(self, entries: list[dict[str, Any]], source: Source, location: str) -> RegistrationSummary:
        """Register spec entries (``{"key": [...], <fields>}``, as ``spec_entry`` reads them)."""
        ...

    def query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        """One read-only query of the program's own text (user input only in ``parameters``), unqualified names
        in the warehouse's database."""
        ...

    def background_query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        """``query``, for a reader nobody waits on (a snapshot's refresh): it leaves the cores to the others."""
        ...


class LocalRegistry:
    """The registry in a warehouse this process holds."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.statuses = StalenessSnapshot(self.query, refresh=self.background_query)

    def register(self, entries: list[dict[str, Any]], source: Source, location: str) -> RegistrationSummary:
        specs = [spec_entry(entry, f"entry {i}") for i, entry in enumerate(entries, 1)]
        return AssetRegistry(self.warehouse).register_specs(specs, source, location, now_us())

    def query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        return self.warehouse.own_read_only_query(sql, parameters)

    def background_query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        return self.warehouse.own_read_only_query(sql, parameters, background=True)


class StackRegistry:
    """The registry in a running stack's embedded engine, through its control socket."""

    def __init__(self, socket: Path, timeout: float = 60.0) -> None:
        self.socket = socket
        self.timeout = timeout
        self.statuses = StalenessSnapshot(self.query, refresh=self.background_query)

    def register(self, entries: list[dict[str, Any]], source: Source, location: str) -> RegistrationSummary:
        payload = {"op": "assets_register", "specs": entries, "source": source, "location": location}
        return RegistrationSummary.from_json(call(self.socket, payload, _STACK_ERRORS, self.timeout))

    def query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        return self._sql(sql, parameters, background=False)

    def background_query(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        return self._sql(sql, parameters, background=True)

    def _sql(self, sql: str, parameters: Mapping[str, Any], *, background: bool) -> QueryResult:
        payload = {"op": "sql", "query": sql, "parameters": dict(parameters), "background": background}
        answer = call(self.socket, payload, _STACK_ERRORS, self.timeout)
        return QueryResult(tuple(answer["columns"]), [tuple(row) for row in answer["rows"]])


def registry_for_api(settings: Settings, warehouse: Warehouse | None) -> RegistryAccess:
    """The stack's warehouse under ``assetpipe up``; a ClickHouse server's, opened on first use; else the
    running stack's, through its control socket (each request says so when none runs)."""
    if warehouse is not None:
        return LocalRegistry(warehouse)
    if not settings.uses_embedded_clickhouse:
        policy = ReadOnlyPolicy.from_settings(settings)
        return LocalRegistry(Warehouse.from_settings(settings, policy))
    return StackRegistry(settings.control_socket, settings.sql_max_execution_seconds + 30)


@contextmanager
def open_registry(settings: Settings) -> Iterator[RegistryAccess]:
    """For a command: the running stack's registry when it holds the embedded engine, else the warehouse
    opened here (the data directory itself, or the ClickHouse server)."""
    if settings.uses_embedded_clickhouse and answers(settings.control_socket):
        yield StackRegistry(settings.control_socket, settings.sql_max_execution_seconds + 30)
        return
    policy = ReadOnlyPolicy.from_settings(settings)
    warehouse = Warehouse.from_settings(settings, policy)
    try:
        yield LocalRegistry(warehouse)
    finally:
        warehouse.close()


class AssetRoutes:
    """The ``/api/assets`` routes. They share the report API's keys, limits and known-asset cache
    (``attach``): a key needs the scope ``define`` to define an asset, and a defined asset is known."""

    def __init__(self, registry: RegistryAccess) -> None:
        self.registry = registry
        self._api: Api | None = None

    def attach(self, api: Api) -> None:
        self._api = api

    def routes(self) -> list[BaseRoute]:
        return [
            _route("/api/assets/{asset_key:path}/status", ReportEndpoint(self.status), "GET"),
            _route("/api/assets/{asset_key:path}", ReportEndpoint(self.put), "PUT"),
        ]

    async def put(self, request: Incoming) -> Answer:
        api = self._attached()
        if (request.path_key or "").endswith(_STATUS):
            raise HTTPException(
                405,
                f"Method PUT not allowed on /api/assets/{cut(request.path_key or '')}: it is the asset's status (GET). "
                "An asset key whose last part is 'status' is defined from a spec file (assetpipe assets apply)",
                {"Allow": "GET"},
            )
        key = self._authenticate(api, request)
        body_kind(request.headers.get("content-type"))
        raw = await read_body(request, api.limits.body_bytes, "http_max_body_bytes")
        body = parse_object(raw, api.limits)
        parts = self._asset_key(api, request.path_key)
        api.auth.authorize_define(key, parts)
        location = body.pop("code_location", "")
        if not isinstance(location, str) or not set(location) <= _LOCATION_CHARS:
            raise FieldError("code_location", "Field 'code_location' must be a string of [A-Za-z0-9_.-]")
        try:
            spec_from_json(parts, body)  # refused here, before the registry is reached
        except SpecError as exc:
            raise RequestError(str(exc)) from exc
        entry = {"key": parts, **body}
        summary = await self._run(self.registry.register, [entry], "http", location)
        (registration,) = summary.registrations
        if api.known is not None:
            api.known.add(registration.asset_key)
        answer = {"asset_key": registration.asset_key, "version": registration.version, "changed": registration.changed}
        return 200, answer, None

    async def define_openlineage(self, entries: list[dict[str, Any]]) -> None:
        """Register the specs of OpenLineage DatasetEvents (code location ``openlineage``, over HTTP: a code
        location's definition of the same asset wins, as for ``PUT``)."""
        api = self._attached()
        summary = await self._run(self.registry.register, entries, "http", SPEC_LOCATION)
        if api.known is not None:
            for registration in summary.registrations:
                api.known.add(registration.asset_key)

    async def status(self, request: Incoming) -> Answer:
        api = self._attached()
        self._authenticate(api, request)
        asset_key = "/".join(self._asset_key(api, request.path_key))
        found = await self._run(asset_status, self.registry.query, asset_key)
        if found is None:
            raise UnknownAssetError(asset_key)
        return 200, found, None

    def _attached(self) -> Api:
        if self._api is None:
            raise RuntimeError("AssetRoutes.attach was not called")
        return self._api

    @staticmethod
    def _authenticate(api: Api, request: Incoming) -> ApiKey | None:
        if not api.auth.enabled:
            return None
        return api.auth.authenticate(request.headers.get("x-api-key"), request.headers.get("authorization"))

    @staticmethod
    def _asset_key(api: Api, path_key: str | None) -> list[str]:
        parts = jsonform.asset_key(path_key, {})
        validate_asset_key(parts)
        if any(len(part) > api.limits.string_chars for part in parts):
            raise LimitExceededError(
                f"Field 'asset_key' has a part longer than {api.limits.string_chars} characters "
                "(ASSETPIPE_HTTP_MAX_STRING_CHARS)"
            )
        return parts

    @staticmethod
    async def _run(function: Callable[..., T], *args: Any) -> T:
        """``function`` on a worker thread (it waits on ClickHouse); no registry to reach is a 503."""
        try:
            return await run_in_threadpool(function, *args)
        except StackNotRunningError as exc:
            raise HTTPException(
                503,
                f"The asset registry is unavailable: it is kept in the embedded ClickHouse engine of `assetpipe up`, "
                f"and {exc}. Start the stack, or set ASSETPIPE_CLICKHOUSE_URL to a ClickHouse server",
            ) from exc
        except WarehouseUnavailableError as exc:
            raise HTTPException(503, f"The asset registry is unavailable: {exc}") from exc
        except SpecError as exc:
            raise RequestError(str(exc)) from exc
