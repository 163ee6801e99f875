"""The report routes as plain ASGI endpoints: the hot path of the HTTP API.

A report request is served straight from its ASGI messages: the headers are read from the scope in one
pass, the query string parsed only when there is one, and the answer sent as one start and one body
message with its headers ready-made; no Request or Response object, no middleware in between.
``ReportRoutes`` hands POSTs to the report paths to their endpoint before Starlette's routing (the same
endpoints are Starlette routes too, so the route table stays whole). Errors become answers in
``producers.http.errors``, as everywhere else. A request refused before its body was read to the end
has the rest of it read and dropped first (within bounds), so that a client still sending reads the
answer instead of a reset connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from assetpipe.producers.http import errors
from assetpipe.schemas.errors import FieldError
from assetpipe.schemas.validation import cut

# (status, JSON content, extra headers)
Answer = tuple[int, object, Mapping[str, str] | None]
_JSON_TYPE = (b"content-type", errors.JSON.encode())
# What is read and dropped of a refused request's body at most; past it the connection closes unread.
DISCARD_BYTES = 64 * 1024 * 1024
DISCARD_S = 10.0
UNREAD, READING, READ = 0, 1, 2  # how far a request's body has been read (``Incoming.body``)


@dataclass(slots=True)
class Incoming:
    """What a report handler reads from one request. ``headers`` holds each header's first value, under
    its lower-case name (as Starlette's ``Headers.get``); ``query`` each parameter's last value (as its
    ``QueryParams``)."""

    headers: dict[str, str]
    query: dict[str, str]
    path_key: str | None
    client: str
    receive: Receive
    body: int = UNREAD  # UNREAD, READING, READ: set by whoever reads it (``payload.read_body``)

    @classmethod
    def from_scope(cls, scope: Scope, receive: Receive, path_key: str | None) -> Incoming:
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}
        raw_query: bytes = scope.get("query_string", b"")
        query = _query(raw_query) if raw_query else {}
        if path_key and "\ufffd" in path_key:  # the server decoded the path leniently: was it valid UTF-8?
            _utf8(scope.get("raw_path") or b"", "asset_key", "The asset key in the URL path")
        client = scope.get("client")
        return cls(headers, query, path_key, client[0] if client else "", receive)


async def discard_body(scope: Scope, receive: Receive, state: int) -> None:
    """Read and drop the rest of a refused request's body (``state``: how far it was read), within
    ``DISCARD_BYTES`` and ``DISCARD_S``. Answering and closing while the client still sends makes it see
    a reset, not the answer (always so for urllib, which asks for ``Connection: close``). A client waiting
    for ``100 Continue`` has sent nothing yet: it is answered at once."""
    if state == READ:
        return
    if state == UNREAD and any(n == b"expect" and v.lower() == b"100-continue" for n, v in scope["headers"]):
        return
    dropped = 0
    try:
        async with asyncio.timeout(DISCARD_S):
            while dropped <= DISCARD_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                dropped += len(message.get("body", b""))
    except TimeoutError:
        return


def _query(raw: bytes) -> dict[str, str]:
    """A query string's parameters, each the last of its name (as ``parse_qsl`` with blank values kept),
    decoded as strict UTF-8: an undecodable byte is refused with the parameter's name, never replaced."""
    query: dict[str, str] = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.replace(b"+", b" ").partition(b"=")
        key = _utf8(name, "query", "A query parameter name")
        query[key] = _utf8(value, key, f"Query parameter '{cut(key, 64)}'")
    return query


def _utf8(raw: bytes, field: str, what: str) -> str:
    data = unquote_to_bytes(raw)
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.end].hex(" ").upper()
        raise FieldError(field, f"{what} is not valid UTF-8 (byte {bad}): percent-encode UTF-8 text") from None


Handler = Callable[[Incoming], Awaitable[Answer]]


class ReportEndpoint:
    """One report route: ``serve`` answers a request and returns its status. Called as an ASGI app it is
    a Starlette route's endpoint (the asset key, if any, in ``path_params``)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(scope, receive, send, scope.get("path_params", {}).get("asset_key"))

    async def serve(self, scope: Scope, receive: Receive, send: Send, path_key: str | None) -> int:
        incoming = None
        try:
            incoming = Incoming.from_scope(scope, receive, path_key)
            status, content, extra = await self.handler(incoming)
        except Exception as exc:  # every failure is an answer: the one mapping decides which
            status, content, extra = errors.error_answer(exc)
            await discard_body(scope, receive, UNREAD if incoming is None else incoming.body)
        body = orjson.dumps(content)
        headers = [(b"content-length", str(len(body)).encode()), _JSON_TYPE]
        if extra:
            headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status


class ReportRoutes:
    """POSTs to the report paths go to their endpoint (counted under the path's first segment); every
    other request goes on to ``app``. ``keyed`` paths take an asset key after a ``/``; ``exact`` do not."""

    def __init__(
        self,
        app: ASGIApp,
        keyed: Mapping[str, ReportEndpoint],
        exact: Mapping[str, ReportEndpoint],
        count: Callable[[str, int], None],
    ) -> None:
        self.app = app
        self._keyed = dict(keyed)
        self._exact = dict(exact)
        self._count = count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path = _route_path(scope)
            endpoint = self._exact.get(path)
            if endpoint is not None:
                self._count(path, await endpoint.serve(scope, receive, send, None))
                return
            first, slash, key = path[1:].partition("/")
            endpoint = self._keyed.get("/" + first)
            if endpoint is not None:
                self._count("/" + first, await endpoint.serve(scope, receive, send, key if slash else None))
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path below the app's mount point (``root_path``), as Starlette's router matches it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path
