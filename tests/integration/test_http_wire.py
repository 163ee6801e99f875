"""The HTTP API on the wire, under uvicorn as it serves: refusals a client reads as the documented JSON
error whatever it sends (an oversized body it is still sending, bytes that are not HTTP)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import httpx
import pytest

from assetpipe.broker import free_port
from assetpipe.schemas.settings import Settings
from tests.integration.http_server import serving

MAT = "/report_asset_materialization"


@pytest.fixture
def url(settings_factory: Callable[..., Settings]) -> Iterator[str]:
    with serving(settings_factory(http_port=free_port(), http_max_batch_bytes=65_536)) as client:
        yield str(client.base_url).rstrip("/")


def _urllib(url: str, data: bytes, content_type: str = "application/json") -> tuple[int, dict[str, str]]:
    """POST as urllib does it (``Connection: close``): the status and JSON body the client reads."""
    request = urllib.request.Request(url, data=data, headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        assert exc.headers["content-type"] == "application/json"
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("size", [2_000_000, 20_000_000])
def test_urllib_reads_the_413_of_a_body_over_the_limit(url: str, size: int) -> None:
    status, body = _urllib(f"{url}{MAT}/a", b"{" + b" " * size + b"}")
    assert status == 413
    assert body == {
        "status": "error",
        "error": f"Request body is {size + 2} bytes, over the limit of 1048576 bytes (ASSETPIPE_HTTP_MAX_BODY_BYTES)",
    }
    status, body = _urllib(f"{url}/report_asset_events", b"[" + b" " * size + b"]")
    assert status == 413 and "ASSETPIPE_HTTP_MAX_BATCH_BYTES" in body["error"]


def test_urllib_reads_a_refusal_made_before_the_body_was_read(url: str) -> None:
    status, body = _urllib(f"{url}{MAT}/a", b"x" * 8_000_000, content_type="text/csv")
    assert status == 415
    assert body["error"] == "Unsupported content type 'text/csv': send application/json or no body"


def test_a_client_waiting_for_100_continue_is_answered_at_once(url: str) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {MAT}/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 50000000\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = sock.recv(65_536)
    assert answer.startswith(b"HTTP/1.1 413 "), answer  # no 100 Continue asked it to upload 50 MB first
    assert time.monotonic() - started < 5


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65_536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (b"\x00\x01 not http\r\n\r\n", "Invalid method encountered"),
        (f"POST {MAT}/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{{}}".encode(), "Content-Length"),
        (
            f"POST {MAT}/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}".encode(),
            "Duplicate Content-Length",
        ),
        (f"POST {MAT}/{'a' * 70_000} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), "url is too long"),
    ],
    ids=["not-http", "bad-content-length", "duplicate-content-length", "url-over-64k"],
)
def test_what_the_http_parser_refuses_is_a_json_error(url: str, request_bytes: bytes, reason: str) -> None:
    head, _, body = _raw(url, request_bytes).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert set(error) == {"status", "error"} and error["status"] == "error"
    assert error["error"].startswith("Malformed HTTP request: ") and reason in error["error"]


def test_a_long_path_under_the_parser_limit_is_a_json_400_naming_the_asset_key(url: str) -> None:
    response = httpx.post(f"{url}{MAT}/{'a' * 60_000}", timeout=30)
    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "error": "asset_key: is 60000 characters long (as a/b), over the limit of 4096",
    }
