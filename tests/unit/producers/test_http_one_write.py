"""A response's head leaves with its body in one write; an interim 100 Continue is never held back."""

from __future__ import annotations

import asyncio
from typing import cast

from assetpipe.producers.http.server import OneWriteTransport


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _transport() -> tuple[OneWriteTransport, _Recorder]:
    recorder = _Recorder()
    return OneWriteTransport(cast(asyncio.Transport, recorder)), recorder


def test_head_and_body_go_out_together_and_each_response_starts_afresh() -> None:
    transport, recorder = _transport()
    for sent, body in enumerate((b"one", b"two")):
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n")
        assert len(recorder.writes) == sent  # held back
        transport.write(body)
        transport.flush()  # the response completed
        assert recorder.writes[-1] == b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n" + body
    assert len(recorder.writes) == 2
    assert not transport.is_closing()  # everything else is the transport's own


def test_a_head_without_body_leaves_when_the_response_completes_or_the_connection_closes() -> None:
    transport, recorder = _transport()
    transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert recorder.writes == []
    transport.flush()
    assert recorder.writes == [b"HTTP/1.1 204 No Content\r\n\r\n"]
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert recorder.writes[-1] == b"HTTP/1.1 400 Bad Request\r\n\r\n" and recorder.closed


def test_100_continue_is_sent_at_once() -> None:
    transport, recorder = _transport()
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert recorder.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"{}")
    assert recorder.writes[-1] == b"HTTP/1.1 200 OK\r\n\r\n{}"
