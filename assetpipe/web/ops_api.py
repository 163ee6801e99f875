"""The JSON of the sensors, schedules and runs pages, under ``/api`` (each page shows what these return):

- ``GET /api/sensors``, ``GET /api/schedules`` (``?location=``): every one, with its status and counts;
- ``GET /api/sensors/{name}``, ``GET /api/schedules/{name}`` (``?location=``): one;
- ``GET /api/sensors/{name}/ticks``, ``GET /api/schedules/{name}/ticks`` (``?location=&status=&cursor=&limit=``):
  its ticks, newest first, a page at a time (``next_cursor``);
- ``POST /api/sensors/{name}/start|stop``, ``POST /api/schedules/{name}/start|stop`` (``?location=``, scope
  ``run``): switch it on or off; the workers follow within a second;
- ``GET /api/runs`` (``?job=&status=&asset=&location=&cursor=&limit=``), ``GET /api/runs/{run_id}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from assetpipe.consumers.sensors.store import InstigatorStatus
from assetpipe.web.instigators import Kind
from assetpipe.web.routing import api_route, blocking, web_of

KINDS: dict[str, Kind] = {"sensors": "sensor", "schedules": "schedule"}


def _params(request: Request, *names: str) -> dict[str, str | None]:
    return {name: request.query_params.get(name) for name in names}


def _listing(kind: Kind) -> Any:
    async def handler(request: Request) -> Any:
        instigators = web_of(request).instigators
        read = instigators.sensors if kind == "sensor" else instigators.schedules
        return {"items": await blocking(read, request.query_params.get("location") or None)}

    return handler


def _one(kind: Kind) -> Any:
    async def handler(request: Request) -> Any:
        name, location = request.path_params["name"], request.query_params.get("location") or None
        return await blocking(web_of(request).instigators.one, kind, name, location)

    return handler


def _ticks(kind: Kind) -> Any:
    async def handler(request: Request) -> Any:
        params = _params(request, "location", "status", "cursor", "limit")
        return await blocking(web_of(request).instigators.ticks, kind, request.path_params["name"], params)

    return handler


def _switch(kind: Kind, status: InstigatorStatus) -> Any:
    async def handler(request: Request) -> Any:
        name, location = request.path_params["name"], request.query_params.get("location") or None
        who = request.state.visitor.name
        return await blocking(web_of(request).instigators.switch, kind, name, location, status, who)

    return handler


async def runs(request: Request) -> Any:
    params = _params(request, "job", "status", "asset", "location", "cursor", "limit")
    return await blocking(web_of(request).runs.list, params)


async def run(request: Request) -> Any:
    return await blocking(web_of(request).runs.one, request.path_params["run_id"])


def ops_routes() -> list[Route]:
    routes = []
    for plural, kind in KINDS.items():
        routes += [
            api_route(f"/api/{plural}", _listing(kind)),
            api_route(f"/api/{plural}/{{name}}", _one(kind)),
            api_route(f"/api/{plural}/{{name}}/ticks", _ticks(kind)),
            api_route(f"/api/{plural}/{{name}}/start", _switch(kind, "running"), scope="run", method="POST"),
            api_route(f"/api/{plural}/{{name}}/stop", _switch(kind, "stopped"), scope="run", method="POST"),
        ]
    return [*routes, api_route("/api/runs", runs), api_route("/api/runs/{run_id}", run)]
