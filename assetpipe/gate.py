"""The gate in front of the local stack's HTTP API: open while the stack takes reports, closed while it
drains to stop or recovers its broker.

Closed, a report is answered 503 with ``Retry-After`` (nothing was stored: the client sends it again,
to this stack once it is back or to another), and ``/readyz`` says why the stack is not ready. The gate
counts the requests it let through that are still being answered, so the stack knows when every
report it acknowledged has reached the broker.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from assetpipe.exceptions import NotAcceptingError
from assetpipe.producers.http import errors
from assetpipe.producers.http.endpoint import UNREAD, discard_body


class Gate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._reason: str | None = None
        self._in_flight = 0

    @property
    def open(self) -> bool:
        return self._reason is None

    @property
    def reason(self) -> str | None:
        return self._reason

    @property
    def in_flight(self) -> int:
        """Requests let through and not yet answered."""
        return self._in_flight

    def close(self, reason: str) -> None:
        """Refuse reports from now on; ``reason`` is what clients and ``/readyz`` are told."""
        self._reason = reason

    def reopen(self) -> None:
        self._reason = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reason = self._reason
        if reason is not None and (scope["method"] == "POST" or scope["path"] == "/readyz"):
            await self._refuse(scope, receive, send, reason)
            return
        self._in_flight += 1  # changed on the server's event loop only; read from other threads
        try:
            await self.app(scope, receive, send)
        finally:
            self._in_flight -= 1

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        if scope["path"] == "/readyz":
            response = errors.json_response({"status": "unavailable", "reason": reason}, 503)
        else:
            await discard_body(scope, receive, UNREAD)  # so that the client reads the 503
            response = errors.error_response(NotAcceptingError(f"not accepting reports: {reason}; retry later"))
        await response(scope, receive, send)
