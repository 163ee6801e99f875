"""The sensors, schedules and runs pages: ``/sensors``, ``/sensors/{location}/{name}`` (its ticks, and a
button to start or stop it), ``/schedules`` and ``/schedules/{location}/{name}`` alike, ``/runs`` (filters,
status badges) and ``/runs/{run_id}`` (everything the run recorded). Each shows what its JSON route returns
(``ops_api``), through the same reads.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from assetpipe.consumers.sensors.store import InstigatorStatus
from assetpipe.web.instigators import TICK_STATUSES, Kind
from assetpipe.web.ops_api import KINDS
from assetpipe.web.routing import Handler, blocking, page_route, render_page, web_of
from assetpipe.web.runs import RUN_STATUSES

_TITLES = {"sensor": "Sensors", "schedule": "Schedules"}


def _listing(kind: Kind) -> Handler:
    async def handler(request: Request) -> Response:
        instigators = web_of(request).instigators
        location = request.query_params.get("location") or None
        items = await blocking(instigators.sensors if kind == "sensor" else instigators.schedules, location)
        plural = "sensors" if kind == "sensor" else "schedules"
        context = {"title": _TITLES[kind], "kind": kind, "plural": plural, "items": items, "location": location}
        return render_page(request, "instigators.html", context)

    return handler


def _detail(kind: Kind) -> Handler:
    async def handler(request: Request) -> Response:
        instigators = web_of(request).instigators
        location, name = request.path_params["location"], request.path_params["name"]
        item = await blocking(instigators.one, kind, name, location)
        params = {"location": location, **{n: request.query_params.get(n) for n in ("status", "cursor", "limit")}}
        ticks = await blocking(instigators.ticks, kind, name, params)
        context = {
            "title": f"{kind.capitalize()} {name}",
            "kind": kind,
            "plural": "sensors" if kind == "sensor" else "schedules",
            "item": item,
            "ticks": ticks,
            "status": params["status"] or "",
            "statuses": TICK_STATUSES,
            "paged": bool(params["cursor"]),
        }
        return render_page(request, "instigator.html", context)

    return handler


def _switch(kind: Kind, status: InstigatorStatus) -> Handler:
    async def handler(request: Request) -> Response:
        location, name = request.path_params["location"], request.path_params["name"]
        who = request.state.visitor.name
        await blocking(web_of(request).instigators.switch, kind, name, location, status, who)
        plural = "sensors" if kind == "sensor" else "schedules"
        return RedirectResponse(f"/{plural}/{quote(location, safe='')}/{quote(name, safe='')}", 303)

    return handler


async def runs(request: Request) -> Response:
    names = ("job", "status", "asset", "location", "cursor", "limit")
    params = {name: request.query_params.get(name) for name in names}
    listed = await blocking(web_of(request).runs.list, params)
    filters = {name: params[name] or "" for name in names[:4]}
    context = {"title": "Runs", "runs": listed, "filters": filters, "statuses": RUN_STATUSES,
               "paged": bool(params["cursor"])}  # fmt: skip
    return render_page(request, "runs.html", context)


async def run(request: Request) -> Response:
    found = await blocking(web_of(request).runs.one, request.path_params["run_id"])
    return render_page(request, "run.html", {"title": f"Run {found['run_id'][:8]}", "run": found})


def page_routes() -> list[Route]:
    routes = []
    for plural, kind in KINDS.items():
        detail = f"/{plural}/{{location}}/{{name}}"
        routes += [
            page_route(f"/{plural}", _listing(kind)),
            page_route(detail, _detail(kind)),
            page_route(f"{detail}/start", _switch(kind, "running"), scope="run", method="POST"),
            page_route(f"{detail}/stop", _switch(kind, "stopped"), scope="run", method="POST"),
        ]
    return [*routes, page_route("/runs", runs), page_route("/runs/{run_id}", run)]
