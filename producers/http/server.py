"""Running the HTTP API under uvicorn: alone (``assetpipe serve``, one or several worker processes) or in
a thread of another process (``assetpipe up``).

The listening socket is bound here, before uvicorn starts, so a port in use is a ``ListenError`` with a
clear message instead of uvicorn's log line and exit. Worker processes import the app through a factory
import string (uvicorn spawns them and binds the socket they share, once this module found it free).
Each answer leaves in one write (``OneWriteProtocol``), and a request the HTTP parser refuses is
answered in the API's error shape, as JSON, like every other error.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import orjson
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from assetpipe.producers.http.exceptions import ListenError
from assetpipe.producers.http.metrics import MULTIPROCESS_DIR
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or ``ListenError`` naming the setting to change."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ListenError(
                f"cannot listen on {host}:{port}: the port is already in use; stop what uses it or set "
                "ASSETPIPE_HTTP_PORT to another port"
            ) from exc
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (ASSETPIPE_HTTP_HOST)") from exc
    sock.set_inheritable(True)
    return sock


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class OneWriteTransport:
    """The connection's transport, sending a response's head together with what follows it.

    uvicorn writes a response's status line and headers, then its body, as two writes: two system calls
    and two packets for every small answer. This holds the head back until the next write (or the end
    of the response, or closing), so a small answer leaves in one. An interim ``100 Continue`` is never
    held: the client waits for it before sending the body."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head: bytes | None = None
        self.responding = False  # the response's head has been written

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head + data)
        elif not self.responding and data != _CONTINUE:
            self.responding = True
            self._head = bytes(data)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        self.responding = False
        if self._head is not None:
            head, self._head = self._head, None
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing each response's head and body together (``OneWriteTransport``),
    and answering a request its parser refuses (a bad ``Content-Length``, bytes that are not HTTP, a
    request line too long) with a JSON error saying why, instead of uvicorn's plain-text 400."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, OneWriteTransport(transport)))

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this while handling the parser's error: that error is the reason worth telling
        reason = sys.exc_info()[1]
        if reason is not None and reason.__context__ is not None:  # raised in a parser callback: its cause
            reason = reason.__context__
        detail = str(reason) if reason is not None and str(reason) else msg.rstrip(".")
        body = orjson.dumps({"status": "error", "error": f"Malformed HTTP request: {detail}"})
        head = (
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()

    def on_response_complete(self) -> None:
        cast(OneWriteTransport, self.transport).flush()
        super().on_response_complete()


def _options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.http_host,
        "port": settings.http_port,
        "http": OneWriteProtocol,
        "ws": "none",  # no websocket routes; and an upgraded connection must not keep its transport wrapper
        "loop": "uvloop",
        "lifespan": "on",
        "access_log": False,  # a log line per request would cost more than the request
        "log_config": None,  # keep the process's logging as it is
        "server_header": False,
        "backlog": 4096,
    }


class ApiServer:
    """One uvicorn server for ``app``: ``run()`` in the main thread, or ``start()``/``stop()`` in a thread
    of its own (signals are then left to the process)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.settings = settings
        self._server = uvicorn.Server(uvicorn.Config(app, **_options(settings)))
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.http_host
        port = self._socket.getsockname()[1] if self._socket is not None else self.settings.http_port
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def running(self) -> bool:
        return self._server.started and self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        self._socket = bind(self.settings.http_host, self.settings.http_port)
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()

    def start(self, timeout: float = 30.0) -> None:
        self._socket = bind(self.settings.http_host, self.settings.http_port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="http-api", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ListenError(f"the HTTP API did not start on {self.url} (see the log)")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def serve(settings: Settings, build_app: Callable[[], ASGIApp], factory: str) -> None:
    """``assetpipe serve``: one process, or ``http_workers`` processes importing ``factory``
    (``module:function`` returning the app, built from the environment)."""
    if settings.http_workers == 1:
        ApiServer(build_app(), settings).run()
        return
    build_app()  # fail here, with a clear message, rather than in every worker
    bind(settings.http_host, settings.http_port).close()  # likewise for a port in use; uvicorn binds it again
    # the workers' metrics, shared through files, so that any worker answers /metrics for all of them
    with tempfile.TemporaryDirectory(prefix="assetpipe-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR] = directory
        try:
            uvicorn.run(factory, factory=True, workers=settings.http_workers, **_options(settings))
        finally:
            del os.environ[MULTIPROCESS_DIR]
