"""Server-rendered pages: one Jinja2 environment with autoescape on for every template (a user's string is
always text, never markup), the filters the templates share, and ``render``, which lays a page out in the
base layout (``base.html``: the header, the navigation, our stylesheet and script).

A page's changing part sits in its template's ``live`` block; the page's script asks for it again every few
seconds (the same route, with the header ``X-Assetpipe-Live: 1``), so the page follows new ticks and runs
without a reload, through the same template and its escaping.

Filters: ``ts`` (an ISO time in UTC -> a ``<time>`` the script shows in the reader's zone), ``http_url``
(the URL if it is http(s), else None: a link is built from user data only then), ``asset_href`` (an asset
key -> its page), ``duration`` (milliseconds -> ``1.2 s``), ``pretty_json``, ``markdown`` (CommonMark,
raw HTML off, links to http(s), mailto and relative targets only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).parent / "templates"
LIVE_HEADER = "x-assetpipe-live"
NAV = (("Catalog", "/"), ("Sensors", "/sensors"), ("Schedules", "/schedules"), ("Runs", "/runs"), ("Alerts", "/alerts"))
_SAFE_SCHEMES = ("http", "https")
_LINK_SCHEMES = ("http", "https", "mailto", "")


def http_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL, else None: no ``javascript:``, ``data:`` or other scheme
    ever becomes a link."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in _SAFE_SCHEMES and parts.netloc else None


def asset_href(key: str | Sequence[str]) -> str:
    """The page of an asset (``a/b`` or its parts): ``/assets/a/b``, each part percent-encoded."""
    parts = key.split("/") if isinstance(key, str) else list(key)
    return "/assets/" + "/".join(quote(part, safe="") for part in parts)


def path_part(value: Any) -> str:
    """One URL path segment from user data, percent-encoded (a ``/`` too)."""
    return quote(str(value), safe="")


def ts(value: str | None) -> Markup:
    """An ISO time in UTC as ``<time>``: the text stays UTC until the script shows it in the reader's zone."""
    if not value:
        return Markup('<span class="muted">never</span>')
    shown = value.replace("T", " ").removesuffix("Z")[:19] + " UTC"
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(value, shown)


def duration(ms: float | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 1 else f"{ms:.2f} ms"
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


class Pages:
    """The templates of the web catalog (``templates/``, and ``extra`` folders searched first)."""

    def __init__(self, extra: Sequence[Path] = ()) -> None:
        loader = ChoiceLoader([*(FileSystemLoader(str(p)) for p in extra), FileSystemLoader(str(TEMPLATES))])
        self.env = Environment(
            loader=loader,
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})
        markdown.validateLink = _markdown_link  # type: ignore[method-assign]
        self.env.filters.update(
            ts=ts,
            http_url=http_url,
            asset_href=asset_href,
            path_part=path_part,
            duration=duration,
            pretty_json=pretty_json,
            markdown=lambda text: Markup(markdown.render(str(text or ""))),
        )
        self.env.globals.update(nav=NAV, static=lambda name: f"/static/{name}")

    def render(
        self,
        request: Request,
        template: str,
        context: Mapping[str, Any] | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """``template`` (which extends ``base.html``) with ``context``, the visitor and the current path. A
        request for the live part only gets its ``live`` block."""
        values = {
            "request_path": request.url.path,
            "visitor": getattr(request.state, "visitor", None),
            "auth_enabled": getattr(request.state, "auth_enabled", False),
            "title": "",
            **(context or {}),
        }
        page = self.env.get_template(template)
        if request.headers.get(LIVE_HEADER) == "1" and "live" in page.blocks:
            body = "".join(page.blocks["live"](page.new_context(values)))
        else:
            body = page.render(values)
        return HTMLResponse(body, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


# Scripts from /static only (a page hands data to them in <script type="application/json">); plotly sets
# inline styles. A page may pass its own headers to ``render`` to differ.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
}


def _markdown_link(url: str) -> bool:
    try:
        return urlsplit(url.strip()).scheme.lower() in _LINK_SCHEMES
    except ValueError:
        return False


def file_version(path: Path) -> str:
    """A short hash of a static file's content: its URL changes when it does, so it may be cached for good."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
