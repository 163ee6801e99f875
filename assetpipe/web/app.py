"""The web catalog put on the HTTP API's app (``mount_web``): the pages and their JSON under ``/api``, the
browser sign-in (``/login``, ``/logout``), and the static files: our stylesheet and script, and plotly.js
from the installed ``plotly`` package at ``/static/vendor/plotly.min.js`` (for the asset pages' charts).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from assetpipe.assets_api import LocalRegistry, RegistryAccess, StackRegistry, now_us
from assetpipe.consumers.sensors.store import InstigatorKind, InstigatorStatus, write_instigator_state
from assetpipe.control import call
from assetpipe.producers.http import errors
from assetpipe.producers.http.exceptions import AuthenticationError
from assetpipe.web.alert_pages import alert_routes
from assetpipe.web.asset_pages import asset_page_routes
from assetpipe.web.auth import COOKIE, WebAuth, session_secret
from assetpipe.web.instigators import Instigators, StateWriter
from assetpipe.web.ops_api import ops_routes
from assetpipe.web.ops_pages import page_routes
from assetpipe.web.pages import Pages
from assetpipe.web.routing import Web, web_of
from assetpipe.web.runs import Runs

STATIC = Path(__file__).parent / "static"
PLOTLY = "vendor/plotly.min.js"
_MAX_FORM_BYTES = 8192
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


def local_target(text: str | None) -> str:
    """Where to go after signing in: a path of this server only (never another site)."""
    if not text or not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    parts = urlsplit(text)
    return text if not parts.scheme and not parts.netloc else "/"


async def login_page(request: Request) -> Response:
    web = web_of(request)
    request.state.auth_enabled = web.auth.enabled
    request.state.visitor = None
    target = local_target(request.query_params.get("next"))
    context: dict[str, Any] = {"title": "Sign in", "next": target, "error": None}
    if request.method == "GET":
        return web.pages.render(request, "login.html", context)
    try:
        web.auth.check_origin(request, None)
        body = await request.body()
        if len(body) > _MAX_FORM_BYTES:
            raise AuthenticationError("The form is too large")
        form = {name: values[-1] for name, values in parse_qs(body.decode("utf-8", "replace")).items()}
        target = local_target(form.get("next"))
        key = web.auth.login(form.get("key", ""))
    except Exception as exc:
        status, content, _ = errors.error_answer(exc)
        context.update(next=target, error=content["error"])
        return web.pages.render(request, "login.html", context, status)
    answer = RedirectResponse(target, 303)
    secure = request.url.scheme == "https"
    answer.set_cookie(COOKIE, web.auth.session_for(key), max_age=web.auth.session_s, path="/", httponly=True,
                      samesite="strict", secure=secure)  # fmt: skip
    return answer


async def logout(request: Request) -> Response:
    web = web_of(request)
    web.auth.check_origin(request, web.auth.visitor(request))
    answer = RedirectResponse("/login" if web.auth.enabled else "/", 303)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer


async def static_file(request: Request) -> Response:
    """Our own files and plotly.js: cached for good when asked for by their version (``?v=``), briefly
    otherwise; ``ETag`` on each."""
    web = web_of(request)
    name = request.path_params["name"]
    path = web.static.get(name)
    if path is None:
        raise HTTPException(404)
    version = web.versions[name]
    etag = f'"{version}"'
    forever = request.query_params.get("v") == version
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=31536000, immutable" if forever else "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, headers=headers, media_type=_TYPES.get(path.suffix, "application/octet-stream"))


def static_files() -> dict[str, Path]:
    files = {p.relative_to(STATIC).as_posix(): p for p in sorted(STATIC.rglob("*")) if p.is_file()}
    plotly = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if plotly.is_file():
        files[PLOTLY] = plotly
    return files


def state_writer(registry: RegistryAccess) -> StateWriter:
    """Where a start or stop is written: the warehouse this process holds, or the running stack's."""
    if isinstance(registry, LocalRegistry):
        return functools.partial(write_instigator_state, registry.warehouse)
    if isinstance(registry, StackRegistry):

        def through_stack(location: str, kind: InstigatorKind, name: str, status: InstigatorStatus, by: str,
                          at_us: int) -> None:  # fmt: skip
            payload = {"op": "instigator_state", "location": location, "kind": kind, "name": name, "status": status,
                       "by": by, "at_us": at_us}  # fmt: skip
            call(registry.socket, payload, (), registry.timeout)

        return through_stack
    raise TypeError(f"no way to write sensor and schedule states through {type(registry).__name__}")


def mount_web(app: Starlette, registry: RegistryAccess, extra_routes: Sequence[BaseRoute] = (),
              templates: Sequence[Path] = ()) -> None:  # fmt: skip
    """Put the web catalog on ``app`` (made by ``create_app``, whose keys it shares): its pages and JSON,
    the sign-in, the static files, then ``extra_routes`` (pages made with ``page_route``), whose templates
    may live in ``templates`` folders."""
    api = app.state.api
    auth = WebAuth(api.auth, session_secret(api.settings.data_dir))
    instigators = Instigators(registry.query, state_writer(registry), now_us)
    app.state.web = Web(Pages(templates), auth, instigators, Runs(registry.query), static_files())
    app.router.routes.extend(
        [
            Route("/login", login_page, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/static/{name:path}", static_file, methods=["GET"]),
            *ops_routes(),
            *page_routes(),
            *asset_page_routes(registry),
            *alert_routes(registry),
            *extra_routes,
        ]
    )
