"""The control socket of a running stack (``<data_dir>/assetpipe.sock``).

The embedded ClickHouse engine allows one process per data directory, so while a stack runs, other
commands (``assetpipe status``, ``assetpipe sql``, ``assetpipe assets``, and ``assetpipe serve``'s asset
routes) reach it through this Unix socket: one JSON request per connection, one JSON answer.
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from assetpipe.exceptions import StackAlreadyRunningError, StackNotRunningError
from assetpipe.schemas.errors import AssetpipeError

Handler = Callable[[dict[str, Any]], dict[str, Any]]
_MAX_REQUEST = 64 << 20  # a request line: `assetpipe assets apply` sends every spec of its file in one


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self._handler = handler
        self._server: socketserver.UnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path.exists():
            if answers(self.path):
                raise StackAlreadyRunningError(f"a stack already runs with this data directory ({self.path.parent})")
            self.path.unlink()  # left behind by a stack that was killed
        handle = self._handler

        class _Request(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(_MAX_REQUEST)
                try:
                    answer = handle(json.loads(line))
                except AssetpipeError as exc:
                    answer = {"ok": False, "code": exc.code, "error": str(exc)}
                except Exception as exc:
                    answer = {"ok": False, "code": "error", "error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write(json.dumps(answer, default=str).encode() + b"\n")

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = socketserver.ThreadingUnixStreamServer(str(self.path), _Request)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: Path, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Send one request to a running stack. Raises ``StackNotRunningError`` if none answers."""
    if not path.exists():
        raise StackNotRunningError(f"no stack is running with this data directory ({path.parent})")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        raise StackNotRunningError(f"no stack is running with this data directory ({path.parent})") from exc
    answer: dict[str, Any] = json.loads(data)
    return answer


def call(
    path: Path, payload: dict[str, Any], errors: Sequence[type[AssetpipeError]], timeout: float = 60.0
) -> dict[str, Any]:
    """``request``, and a refusal raised again as the one of ``errors`` with its code (else
    ``AssetpipeError``), so a caller meets the same errors as in the stack's process."""
    answer = request(path, payload, timeout)
    if not answer.get("ok"):
        error = next((e for e in errors if e.code == answer.get("code")), AssetpipeError)
        raise error(str(answer.get("error", "the stack refused the request")))
    return answer


def answers(path: Path) -> bool:
    """True if a running stack answers on the control socket ``path``."""
    try:
        request(path, {"op": "ping"}, timeout=2.0)
    except (StackNotRunningError, OSError, ValueError):
        return False
    return True
