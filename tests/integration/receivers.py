"""Receivers of alerts on loopback, for the alert tests: an HTTP server (webhooks and Slack-compatible
incoming webhooks) that answers with statuses given in turn and can hold a request, and an SMTP server
(aiosmtpd) that keeps every message."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from assetpipe.broker import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float
    status: int = 0


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the standard library's 5 drops connections a sender opens at once (1 s retry)


@dataclass
class HttpReceiver:
    """Records every POST; answers the statuses of ``answers`` in turn, then 200. While ``hold`` is clear,
    the ``hold_from``-th request (1-based; 0: none) and later ones wait, then are answered 503: the sender is
    cut off mid-request."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)  # clear: hold from ``hold_from`` on
    hold_from: int = 0
    held: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def delivered(self, path: str) -> list[Received]:
        """The requests of ``path`` answered 200."""
        return [r for r in self.on(path) if r.status == 200]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Received(self.path, dict(self.headers.items()), json.loads(body or b"null"), time.monotonic())
            with receiver.lock:
                receiver.requests.append(request)
                number = len(receiver.requests)
                status = receiver.answers.pop(0) if receiver.answers else 200
            if receiver.hold_from and number >= receiver.hold_from and not receiver.hold.is_set():
                receiver.held += 1
                receiver.hold.wait(60)
                status = 503
            request.status = status
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="http-receiver", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.hold.set()
        server.shutdown()
        server.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@dataclass
class SmtpReceiver:
    host: str
    port: int
    mailbox: _Mailbox

    @property
    def messages(self) -> list[tuple[list[str], Message]]:
        return list(self.mailbox.messages)


@contextmanager
def smtp_receiver() -> Iterator[SmtpReceiver]:
    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpReceiver("127.0.0.1", port, mailbox)
    finally:
        controller.stop()
