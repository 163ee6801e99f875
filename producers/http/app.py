"""The HTTP API: routes, request handlers and the app factory ``create_app``.

The report endpoints (Dagster's three, and materialization failures) are one handler and a table entry
each (``ENDPOINTS``); the batch endpoint shares the per-event steps (``Api._encode``, which writes a plain
body straight to the message with ``schemas.form_writer`` and builds the rest field by field). Each
request goes through, in order: API key (401), content type (415), body size (413), JSON and its bounds
(400), asset key (400), the key's scope (403), fields (400), known asset (404), publishing and waiting for
the broker's acknowledgement (503), and only then 200. Errors are raised; ``producers.http.errors`` answers them.
The report routes are served straight from ASGI messages (``producers.http.endpoint``); the others are
Starlette's.
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from assetpipe.producers.http import docs, errors
from assetpipe.producers.http.auth import ApiKey, Authenticator
from assetpipe.producers.http.delivery import Delivery
from assetpipe.producers.http.endpoint import Answer, Incoming, ReportEndpoint, ReportRoutes
from assetpipe.producers.http.exceptions import LimitExceededError, RequestError, UnknownAssetError
from assetpipe.producers.http.known_assets import KnownAssets, Seed
from assetpipe.producers.http.metrics import CONTENT_TYPE, HttpMetrics, MetricsMiddleware
from assetpipe.producers.http.openapi import build_document
from assetpipe.producers.http.payload import (
    Limits,
    body_kind,
    check_strings,
    idempotency_key,
    parse_events,
    parse_object,
    read_body,
)
from assetpipe.producers.openlineage import receiver as openlineage
from assetpipe.schemas import jsonform
from assetpipe.schemas.codec import codec_for
from assetpipe.schemas.encoder import Encoded, EventEncoder
from assetpipe.schemas.errors import AssetpipeError, FieldError
from assetpipe.schemas.model import EventType
from assetpipe.schemas.settings import Settings

VERSION = "0.1.0"
BATCH_PATH = "/report_asset_events"
REPORTING_USER_TAG = "dagster/reporting_user"
_YIELD_EVERY = 1000  # events parsed between two turns of the event loop


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    summary: str
    recorded: str


ENDPOINTS: dict[EventType, Endpoint] = {
    "materialization": Endpoint(
        "/report_asset_materialization", "Report an asset materialization", "Asset materialization recorded"
    ),
    "observation": Endpoint("/report_asset_observation", "Report an asset observation", "Asset observation recorded"),
    "check_evaluation": Endpoint(
        "/report_asset_check", "Report an asset check evaluation", "Asset check evaluation recorded"
    ),
    "materialization_failure": Endpoint(
        "/report_asset_materialization_failure",
        "Report an asset materialization failure",
        "Asset materialization failure recorded",
    ),
}


class Api:
    """The state behind the routes: limits, keys, the known-asset cache, the encoder and the delivery."""

    def __init__(
        self,
        settings: Settings,
        *,
        known_seed: Seed | None = None,
        ingest_lag: Callable[[], int | None] | None = None,
        documented: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.auth = Authenticator.from_config(settings.api_keys)
        self.auth.require_for(settings.http_host)
        self.limits = Limits.from_settings(settings)
        paths = [e.path for e in ENDPOINTS.values()] + [BATCH_PATH, "/healthz", "/readyz", "/metrics"]
        paths += [openlineage.PATH, openlineage.BATCH_PATH]
        self.metrics = HttpMetrics(frozenset(paths))
        self.delivery = Delivery(settings, self.metrics.publish_latency.observe)
        self.known = KnownAssets(settings, known_seed) if settings.http_require_known_assets else None
        codec = codec_for(settings, settings.topics.events)
        self.encoder = EventEncoder(codec, source="http", host="")
        self.openlineage = openlineage.OpenLineageRoutes(self, settings)
        self.metrics.watch(lambda: self.delivery.in_flight, lambda: len(self.known or ()), ingest_lag)
        self._counted = {
            (t, outcome): self.metrics.events.labels(t, outcome)
            for t in ENDPOINTS
            for outcome in ("accepted", "not_stored")
        }
        self.document = build_document({t: (e.path, e.summary) for t, e in ENDPOINTS.items()}, VERSION, documented)
        self._document_json = orjson.dumps(self.document)
        self._docs_html = docs.render(self.document)

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.delivery.start()
        if self.known is not None:
            self.known.start()
        gc.freeze()  # what exists at start lives as long as the process: spare every collection scanning it
        try:
            yield
        finally:
            if self.known is not None:
                self.known.stop()
            await self.delivery.stop()

    async def report(self, event_type: EventType, request: Incoming) -> Answer:
        headers = request.headers
        key = self._authenticate(headers)
        body_kind(headers.get("content-type"))
        raw = await read_body(request, self.limits.body_bytes, "http_max_body_bytes")
        body = parse_object(raw, self.limits)
        query = request.query
        if query:
            check_strings(query, body, self.limits)
        encoded, asset_key = self._encode(
            event_type, body, path_key=request.path_key, strings=query, api_key=key,
            idempotency_key=idempotency_key(headers), host=request.client,
        )  # fmt: skip
        error = (await self.delivery.publish([encoded]))[0]
        self._counted[(event_type, "accepted" if error is None else "not_stored")].inc()
        if error is not None:
            raise error
        if event_type == "materialization" and self.known is not None:
            self.known.add(asset_key)
        return 200, {"status": "success", "event_id": encoded.event_id, "message": ENDPOINTS[event_type].recorded}, None

    async def report_events(self, request: Incoming) -> Answer:
        headers = request.headers
        key = self._authenticate(headers)
        kind = body_kind(headers.get("content-type"), ndjson=True)
        raw = await read_body(request, self.limits.batch_bytes, "http_max_batch_bytes")
        items = parse_events(raw, kind, self.limits)
        idempotency = idempotency_key(headers)
        host = request.client
        results: list[dict[str, Any]] = [{}] * len(items)
        encoded: list[Encoded] = []
        placed: list[tuple[int, EventType, str]] = []  # (position in the batch, type, asset key) of each encoded
        materialized: set[str] = set()  # a materialization earlier in the batch makes its asset known
        for index, item in enumerate(items):
            if index % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            try:
                event_type, body = _batch_event(item)
                event, asset_key = self._encode(
                    event_type, body, api_key=key, idempotency_key=f"{idempotency}/{index}" if idempotency else None,
                    host=host, materialized=materialized,
                )  # fmt: skip
            except AssetpipeError as exc:
                results[index] = _failure(exc)
                continue
            if event_type == "materialization":
                materialized.add(asset_key)
            encoded.append(event)
            placed.append((index, event_type, asset_key))
        outcomes = await self.delivery.publish(encoded)
        for (index, event_type, asset_key), event, error in zip(placed, encoded, outcomes, strict=True):
            if error is not None:
                results[index] = _failure(error)
                continue
            results[index] = {"status": "success", "event_id": event.event_id}
            if event_type == "materialization" and self.known is not None:
                self.known.add(asset_key)
        return self._batch_response(results, placed, outcomes)

    def _batch_response(
        self, results: list[dict[str, Any]], placed: list[tuple[int, EventType, str]], outcomes: list[Any]
    ) -> Answer:
        counts = Counter((event_type, "accepted" if error is None else "not_stored")
                         for (_, event_type, _), error in zip(placed, outcomes, strict=True))  # fmt: skip
        for label, count in counts.items():
            self._counted[label].inc(count)
        codes = {r["code"] for r in results if r["status"] == "error"}
        rejected = sum(1 for r in results if r["status"] == "error")
        status = 200 if not codes else 503 if 503 in codes else min(codes) if len(codes) == 1 else 400
        body = {
            "status": "success" if not codes else "error",
            "accepted": len(results) - rejected,
            "rejected": rejected,
            "results": results,
        }
        return status, body, {"Retry-After": errors.RETRY_AFTER_S} if status == 503 else None

    def _authenticate(self, headers: Mapping[str, str]) -> ApiKey | None:
        if not self.auth.enabled:
            return None
        return self.auth.authenticate(headers.get("x-api-key"), headers.get("authorization"))

    def _encode(
        self,
        event_type: EventType,
        body: Mapping[str, Any],
        *,
        path_key: str | None = None,
        strings: Mapping[str, str] | None = None,
        api_key: ApiKey | None,
        idempotency_key: str | None,
        host: str,
        materialized: set[str] | tuple[()] = (),
    ) -> tuple[Encoded, str]:
        """One event, checked and encoded: -> (the message, its asset key string)."""
        parts = jsonform.asset_key(path_key, body, strings)
        for part in parts:
            if len(part) > self.limits.string_chars:
                raise LimitExceededError(
                    f"Field 'asset_key' has a part longer than {self.limits.string_chars} characters "
                    "(ASSETPIPE_HTTP_MAX_STRING_CHARS)"
                )
        self.auth.authorize(api_key, event_type, parts)
        user = api_key.name if api_key is not None and api_key.name else None
        extra = {REPORTING_USER_TAG: user} if user is not None else None
        tags = body.get("tags")
        if type(tags) is dict and REPORTING_USER_TAG in tags:
            _check_reporting_user(tags[REPORTING_USER_TAG], user)

        def check_fields(fields: dict[str, Any]) -> None:  # the query string's tags, read by jsonform
            if REPORTING_USER_TAG in fields.get("tags", ()):
                _check_reporting_user(fields["tags"][REPORTING_USER_TAG], user)

        encoded = self.encoder.encode_form(event_type, body, parts, host=host, strings=strings,
                                           idempotency_key=idempotency_key, server_tags=extra,
                                           check_fields=check_fields)  # fmt: skip
        asset_key = "/".join(parts)
        if (
            event_type != "materialization"
            and self.known is not None
            and asset_key not in self.known
            and asset_key not in materialized
        ):
            raise UnknownAssetError(asset_key)
        return encoded, asset_key

    async def healthz(self, _request: Request) -> Response:
        return errors.json_response({"status": "ok"})

    async def readyz(self, _request: Request) -> Response:
        state = self.delivery.ready()  # on the loop: counting the queue serves delivery reports
        state["known_assets"] = "off" if self.known is None else "loaded" if self.known.loaded else "loading"
        ready = state.pop("ready")
        return errors.json_response({"status": "ready" if ready else "unavailable", **state}, 200 if ready else 503)

    async def metrics_text(self, _request: Request) -> Response:
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi(self, _request: Request) -> Response:
        return Response(self._document_json, media_type=errors.JSON)

    async def docs(self, _request: Request) -> Response:
        return HTMLResponse(self._docs_html)


def _batch_event(item: Any) -> tuple[EventType, Mapping[str, Any]]:
    if isinstance(item, RequestError):
        raise item
    name = item.get("type")
    if name is None:
        raise FieldError("type", "Missing required field: type")
    event_type = jsonform.EVENT_TYPE_NAMES.get(name) if type(name) is str else None  # as most clients spell it
    return event_type or jsonform.event_type(name), item


def _check_reporting_user(value: Any, user: str | None) -> None:
    """Only the server sets ``dagster/reporting_user``, to the name of the request's API key: a request
    may repeat that name, never claim another (nor any, without a named key)."""
    if value != user:
        who = f"the name of the request's API key ('{user}')" if user else "the name of a named API key"
        raise FieldError(REPORTING_USER_TAG, f"Tag '{REPORTING_USER_TAG}' is set by the server, to {who}: "
                         "remove it from the request")  # fmt: skip


def _failure(exc: BaseException) -> dict[str, Any]:
    status = errors.status_for(exc)
    return {"status": "error", "error": errors.message_for(exc, status), "code": status}


class _ApiApp(Starlette):
    """Starlette, with request counting outside its error middleware, so 500s are counted too, and the
    report routes served ahead of its routing and middleware (``ReportRoutes``)."""

    metrics_middleware: Callable[[ASGIApp], ASGIApp]
    report_routes: Callable[[ASGIApp], ASGIApp]

    def build_middleware_stack(self) -> ASGIApp:
        return self.report_routes(self.metrics_middleware(super().build_middleware_stack()))


def create_app(
    settings: Settings,
    *,
    known_seed: Seed | None = None,
    ingest_lag: Callable[[], int | None] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    documented: Mapping[str, Any] | None = None,
) -> Starlette:
    """The ASGI app. ``known_seed`` lists materialized asset keys at start (e.g. from the warehouse);
    ``ingest_lag`` reports the ingest worker's lag when it runs in this process; ``extra_routes`` are
    served besides (the front door's), ``documented`` their OpenAPI paths."""
    api = Api(settings, known_seed=known_seed, ingest_lag=ingest_lag, documented=documented)
    routes: list[BaseRoute] = []
    keyed: dict[str, ReportEndpoint] = {}
    for event_type, endpoint in ENDPOINTS.items():
        keyed[endpoint.path] = handler = ReportEndpoint(functools.partial(api.report, event_type))
        routes.append(Route(endpoint.path + "/{asset_key:path}", handler, methods=["POST"]))
        routes.append(Route(endpoint.path, handler, methods=["POST"]))
    batch = ReportEndpoint(api.report_events)
    exact = {
        BATCH_PATH: batch,
        openlineage.PATH: ReportEndpoint(api.openlineage.single),
        openlineage.BATCH_PATH: ReportEndpoint(api.openlineage.batch),
    }
    routes += [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in exact.items()),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/metrics", api.metrics_text, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/docs", api.docs, methods=["GET"]),
        *extra_routes,
    ]
    handlers = {HTTPException: errors.handle, AssetpipeError: errors.handle, Exception: errors.handle}
    app = _ApiApp(routes=routes, exception_handlers=handlers, lifespan=api.lifespan)
    app.metrics_middleware = functools.partial(MetricsMiddleware, metrics=api.metrics)
    app.report_routes = functools.partial(ReportRoutes, keyed=keyed, exact=exact, count=api.metrics.count)
    app.state.api = api
    return app
