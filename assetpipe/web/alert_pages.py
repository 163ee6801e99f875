"""The alerts page and its JSON: ``/alerts``, every alert sent (or failed to send), newest first, filtered by
asset, status, policy and kind, a cursor page at a time; ``GET /api/alerts`` returns the same page. Both read
the ``alerts`` table through ``consumers.alerts.list_alerts``; an asset's page shows its own with the partial
``_asset_alerts.html`` and ``consumers.alerts.alerts_of``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from assetpipe.assets_api import RegistryAccess
from assetpipe.consumers.alerts import ALERT_STATUSES, list_alerts
from assetpipe.consumers.alerts.alert import KINDS
from assetpipe.web.routing import api_route, blocking, page_route, render_page

FILTERS = ("asset", "status", "policy", "kind")


class AlertPages:
    def __init__(self, registry: RegistryAccess) -> None:
        self.query = registry.query

    def routes(self) -> list[Route]:
        return [page_route("/alerts", self.page), api_route("/api/alerts", self.json)]

    def _params(self, request: Request) -> dict[str, str | None]:
        return {name: request.query_params.get(name) for name in (*FILTERS, "cursor", "limit")}

    async def json(self, request: Request) -> Any:
        return await blocking(list_alerts, self.query, self._params(request))

    async def page(self, request: Request) -> Response:
        params = self._params(request)
        listed = await blocking(list_alerts, self.query, params)
        filters = {name: params[name] or "" for name in FILTERS}
        context = {
            "title": "Alerts",
            "listed": listed,
            "filters": filters,
            "filtered": any(filters.values()),
            "statuses": ALERT_STATUSES,
            "kinds": KINDS,
            "paged": bool(params["cursor"]),
        }
        return render_page(request, "alerts.html", context)


def alert_routes(registry: RegistryAccess) -> list[Route]:
    return AlertPages(registry).routes()
