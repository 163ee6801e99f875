"""Helpers for integration tests: waiting, running workers, reading topics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message

from assetpipe.broker import free_port
from assetpipe.consumers.ingest.rows import EVENT_COLUMNS, EventColumns
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.schemas.settings import Settings


def wait_until(predicate: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s: {message}")


@contextmanager
def running(target: Callable[[threading.Event], None], name: str) -> Iterator[threading.Event]:
    """``target(stop)`` in a thread of this process until the block ends; its error, if any, fails the test."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(60)
    assert not errors, f"{name} failed: {errors[0]!r}"


@contextmanager
def running_worker(settings: Settings, warehouse: Warehouse) -> Iterator[IngestWorker]:
    """An ingest worker in a thread of this process (it shares this process's ClickHouse engine)."""
    worker = IngestWorker(settings, warehouse)
    with running(worker.run, "ingest-under-test"):
        yield worker


def read_topic(settings: Settings, topic: str, expected: int, timeout: float = 60.0) -> list[Message]:
    """Every message on ``topic`` from the start, waiting until at least ``expected`` arrived."""
    consumer = Consumer(settings.consumer_config(f"reader-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                if message.error() is None:
                    messages.append(message)
            if len(messages) >= expected:
                # a moment more, to see anything beyond what was expected
                messages.extend(m for m in consumer.consume(10_000, 1.0) if m.error() is None)
                return messages
    finally:
        consumer.close()
    raise AssertionError(f"{topic}: {len(messages)} of {expected} messages after {timeout:.0f}s")


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an ``assetpipe`` subprocess configured like ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"ASSETPIPE_{name.upper()}"] = str(value)
    env.update(extra)
    return env


def up_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``assetpipe up`` of its own: ``data_dir``, free ports, quick group joins."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETPIPE_")}
    return env | {
        "ASSETPIPE_DATA_DIR": str(data_dir),
        "ASSETPIPE_EMBEDDED_KAFKA_PORT": str(free_port()),
        "ASSETPIPE_HTTP_PORT": str(free_port()),
        "ASSETPIPE_KAFKA_SESSION_TIMEOUT_MS": "2000",
        "ASSETPIPE_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
        "ASSETPIPE_INGEST_BATCH_MAX_SECONDS": "0.2",
        **extra,
    }


def start_cli(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "assetpipe.cli", *args], env=env, stdout=log, stderr=log)


@contextmanager
def running_up(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``assetpipe up <args>`` until the block ends: ready (``assetpipe status`` exits 0) when the block
    starts; stopped by SIGINT after it, which must end it cleanly (exit 0) when the block succeeded."""
    up = start_cli(["up", *args], env, log_path)
    try:
        wait_until(
            lambda: up.poll() is not None or run_cli(["status"], env, timeout=30).returncode == 0, 120, "up ready"
        )
        assert up.poll() is None, log_path.read_text()
        yield up
        up.send_signal(signal.SIGINT)
        assert up.wait(120) == 0, log_path.read_text()[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assetpipe.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def count_rows(warehouse: Warehouse, sql: str, **params: Any) -> int:
    return int(warehouse.query(sql, parameters=params).rows[0][0])


def insert_event_rows(warehouse: Warehouse, rows: EventColumns) -> None:
    """``rows`` into ``asset_events`` as the version that made the table wrote them: the columns it has (a
    database left by an earlier version lacks the later ones, whose values those rows do not use)."""
    present = {
        name
        for (name,) in warehouse.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'asset_events'",
            parameters={"db": warehouse.database},
        ).rows
    }
    kept = [i for i, name in enumerate(EVENT_COLUMNS) if name in present]
    warehouse.insert("asset_events", [rows.columns[i] for i in kept], [EVENT_COLUMNS[i] for i in kept])
