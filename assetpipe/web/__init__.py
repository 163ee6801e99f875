"""The web catalog: server-rendered pages and their JSON under ``/api``, served by the HTTP API's process
(``assetpipe up``, ``assetpipe serve``). ``mount_web`` puts it on the app ``create_app`` made
(``assetpipe.api.build_app`` does).

Writing a page (the asset pages do it this way)::

    from assetpipe.web import page_route, render_page

    async def asset(request):
        found = await blocking(read_asset, request.path_params["key"])   # ClickHouse on a worker thread
        return render_page(request, "asset.html", {"title": found["key"], "asset": found})

    mount_web(app, registry, extra_routes=[page_route("/assets/{key:path}", asset)], templates=[MY_TEMPLATES])

- ``page_route(path, handler, scope="read", method="GET")`` checks the visitor first (an API key, the
  browser session of ``/login``, or nobody when no keys are configured) and the scope (``read``; ``run``
  for POSTs that start things, which must also come from this server's pages); a visitor without a
  session is sent to ``/login``; an error raised by ``handler`` is an HTML page with the status the JSON
  API would give (``NotFoundError`` 404, ``BadQueryError`` 400, ...). ``api_route`` is the same for JSON:
  ``handler`` returns the content.
- ``render_page(request, template, context)``: ``template`` extends ``base.html`` and fills ``content``
  (and ``head`` for a script of its own, e.g. ``<script src="{{ static('vendor/plotly.min.js') }}">``).
  Autoescape is on: every string is text. Put what changes in a ``live`` block inside an element with
  ``data-live``: the page fetches that block again every 3 s. Filters: ``ts`` (ISO UTC time, shown in the
  reader's zone), ``http_url`` (a link only for http(s)), ``asset_href``, ``path_part``, ``duration``,
  ``pretty_json``, ``markdown`` (raw HTML off). Scripts come from ``/static`` only (the pages' Content
  Security Policy): hand them data in ``<script type="application/json">``.
"""

from assetpipe.web.app import mount_web
from assetpipe.web.exceptions import BadQueryError, NotFoundError
from assetpipe.web.routing import api_route, blocking, page_route, render_page

__all__ = ["BadQueryError", "NotFoundError", "api_route", "blocking", "mount_web", "page_route", "render_page"]
