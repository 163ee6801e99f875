"""The one place where errors become HTTP answers.

``status_for`` walks ``type(exc).__mro__`` through ``STATUS``, so a subclass answers like its closest
listed ancestor. Every error answer is ``{"status": "error", "error": "<message>"}``; a 503 carries
``Retry-After``; a 500 never shows internals (the traceback goes to the log).
"""

from __future__ import annotations

import logging

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from assetpipe.producers.exceptions import PublishError
from assetpipe.producers.http.exceptions import (
    AuthenticationError,
    BodyTooLargeError,
    PermissionDeniedError,
    RequestError,
    UnknownAssetError,
    UnsupportedMediaTypeError,
)
from assetpipe.schemas.errors import EventTooLargeError, ValidationError

log = logging.getLogger(__name__)

STATUS: dict[type[BaseException], int] = {
    RequestError: 400,
    ValidationError: 400,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    UnknownAssetError: 404,
    BodyTooLargeError: 413,
    EventTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    PublishError: 503,  # queue full, broker down, not acknowledged: nothing was stored, retry
    ClientDisconnect: 400,  # the client left mid-body; nobody reads the answer, but it is no server error
}
RETRY_AFTER_S = "1"
INTERNAL_ERROR = "Failed to process asset event: internal error"
JSON = "application/json"


def status_for(exc: BaseException) -> int:
    if isinstance(exc, HTTPException):
        return exc.status_code
    for cls in type(exc).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


def message_for(exc: BaseException, status: int) -> str:
    """What the client is told: the error's own message (it names the field), never a 500's internals."""
    if status == 500:
        return INTERNAL_ERROR
    if isinstance(exc, HTTPException):
        return str(exc.detail)
    return str(exc)


def json_response(content: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code=status, headers=headers, media_type=JSON)


def error_response(exc: BaseException) -> Response:
    status, content, headers = error_answer(exc)
    return json_response(content, status, headers)


def error_answer(exc: BaseException) -> tuple[int, dict[str, str], dict[str, str]]:
    """(status, JSON content, extra headers) answering ``exc``."""
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    if status == 503:
        headers["Retry-After"] = RETRY_AFTER_S
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="assetpipe"'
    if status == 500:
        log.error("unhandled error while serving a request", exc_info=exc)
    return status, {"status": "error", "error": message_for(exc, status)}, headers


async def handle(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for every error class (``Exception`` included, for the 500s)."""
    if isinstance(exc, HTTPException) and exc.status_code in _ROUTING:
        what = _ROUTING[exc.status_code].format(method=request.method, path=request.url.path)
        exc = HTTPException(exc.status_code, what, exc.headers)
    return error_response(exc)


_ROUTING = {
    404: "Not found: {method} {path} (the endpoints are listed at /docs)",
    405: "Method {method} not allowed on {path}",
}
