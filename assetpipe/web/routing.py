"""The gate every web route goes through (``page_route``, ``api_route``): the visitor is found (an API key,
a session, or nobody when the API is open), the scope is checked, a POST must come from this server's own
pages, and ClickHouse is reached on a worker thread (``blocking``). A page's error is an HTML page with the
status the JSON API would give; a page asked for without a session sends the browser to ``/login``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from assetpipe.consumers.exceptions import QueryLimitError, WarehouseUnavailableError
from assetpipe.exceptions import StackNotRunningError
from assetpipe.producers.http import errors
from assetpipe.web.auth import Scope, WebAuth
from assetpipe.web.instigators import Instigators
from assetpipe.web.pages import Pages, file_version
from assetpipe.web.runs import Runs

T = TypeVar("T")


class Web:
    """What the web routes share, kept on ``app.state.web``."""

    def __init__(self, pages: Pages, auth: WebAuth, instigators: Instigators, runs: Runs, static: dict[str, Path]):
        self.pages = pages
        self.auth = auth
        self.instigators = instigators
        self.runs = runs
        self.static = static
        self.versions = {name: file_version(path) for name, path in static.items()}
        pages.env.globals["static"] = lambda name: f"/static/{name}?v={self.versions.get(name, '0')}"


def web_of(request: Request) -> Web:
    web: Web = request.app.state.web
    return web


async def blocking(function: Callable[..., T], *args: Any) -> T:
    """``function`` on a worker thread (it waits on ClickHouse); a warehouse out of reach is a 503."""
    try:
        return await run_in_threadpool(function, *args)
    except StackNotRunningError as exc:
        raise HTTPException(
            503,
            f"The catalog is unavailable: it is kept in the embedded ClickHouse engine of `assetpipe up`, and {exc}. "
            "Start the stack, or set ASSETPIPE_CLICKHOUSE_URL to a ClickHouse server",
        ) from exc
    except (WarehouseUnavailableError, QueryLimitError) as exc:
        raise HTTPException(503, f"The catalog is unavailable: {exc}") from exc


Handler = Callable[[Request], Awaitable[Response]]


def api_route(path: str, handler: Callable[[Request], Awaitable[Any]], *, scope: Scope = "read",
              method: str = "GET") -> Route:  # fmt: skip
    """A JSON route: ``handler`` returns the content; errors answer as the report API's do."""

    async def endpoint(request: Request) -> Response:
        web = web_of(request)
        visitor = web.auth.require(request, scope)
        if method != "GET":
            web.auth.check_origin(request, visitor)
        request.state.visitor = visitor
        return errors.json_response(await handler(request))

    return Route(path, endpoint, methods=[method])


def page_route(path: str, handler: Handler, *, scope: Scope = "read", method: str = "GET") -> Route:
    """A page: ``handler`` returns the response (``render_page``); errors become pages with their status."""

    async def endpoint(request: Request) -> Response:
        web = web_of(request)
        request.state.auth_enabled = web.auth.enabled
        try:
            request.state.visitor = web.auth.visitor(request)
            if request.state.visitor is None and method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            visitor = web.auth.require(request, scope)
            if method != "GET":
                web.auth.check_origin(request, visitor)
            return await handler(request)
        except Exception as exc:  # every failure is a page: the one mapping decides its status
            status, content, headers = errors.error_answer(exc)
            context = {"title": f"Error {status}", "status": status, "message": content["error"]}
            return web.pages.render(request, "error.html", context, status, headers)

    return Route(path, endpoint, methods=[method])


def render_page(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    """``template`` (extending ``base.html``) rendered with ``context`` in the base layout."""
    return web_of(request).pages.render(request, template, context, status)
