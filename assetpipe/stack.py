"""The local stack behind ``assetpipe up``: broker, warehouse, topics, ingest worker, control socket.

With no ``ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS`` it starts the embedded broker (memory only: a restart
loses topics and offsets); with no ``ASSETPIPE_CLICKHOUSE_URL`` it opens the embedded ClickHouse engine
under the data directory (persistent). Every component that touches embedded ClickHouse lives in this
process; other commands reach it through the control socket.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from assetpipe.api import build_app
from assetpipe.broker import EmbeddedBroker, broker_ready, create_topics
from assetpipe.control import ControlServer
from consumers.ingest_worker import IngestWorker
from consumers.run import RunWorker
from consumers.sensor import SensorWorker
from consumers.warehouse import QueryResult, Warehouse
from producers.http import ApiServer
from schemas.definitions import Definitions, load_definitions
from schemas.settings import Settings

log = logging.getLogger(__name__)


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        self.warehouse = Warehouse(settings.clickhouse_dsn, settings.clickhouse_database)
        self.worker: IngestWorker | None = None
        self.api: ApiServer | None = None
        self.sensors: SensorWorker | None = None
        self.runs: RunWorker | None = None
        self.control = ControlServer(settings.control_socket, self._on_request)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []

    def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        defs = load_definitions(s.defs, s.code_location) if s.defs is not None else None  # bad defs: fail first
        self.control.start()
        try:
            if s.uses_embedded_kafka:
                self.broker = EmbeddedBroker(s.embedded_kafka_port, log_path=s.data_dir / "broker.log")
                self.broker.start()
            create_topics(s)
            self.warehouse.migrate()
            self.worker = IngestWorker(s)  # a ClickHouse session of its own, for its staging tables
            self._spawn("ingest", self.worker.run)
            if defs is not None:
                self._start_definitions(defs)
            self._start_api(defs)
        except BaseException:
            self.stop()
            raise

    def _start_api(self, defs: Definitions | None) -> None:
        worker = self.worker

        def lag() -> int | None:
            return worker.metrics.lag if worker is not None else None

        app = build_app(self.settings, self.warehouse, lag, defs)
        if not self.settings.api_keys:
            log.warning("the HTTP API runs without API keys: any local user can report events (ASSETPIPE_API_KEYS)")
        self.api = ApiServer(app, self.settings)
        self.api.start()

    def _start_definitions(self, defs: Definitions) -> None:
        """The sensor and run workers, as threads: they share this process's ClickHouse engine."""
        self.sensors = SensorWorker(self.settings, defs, self.warehouse)
        self.runs = RunWorker(self.settings, defs, self.warehouse)
        self._spawn("sensors", self.sensors.run)
        self._spawn("runs", self.runs.run)

    def _spawn(self, name: str, target: Any) -> None:
        def run() -> None:
            try:
                target(self._stop)
            except BaseException as exc:
                log.exception("%s stopped with an error", name)
                self._errors.append(exc)
                self._stop.set()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        while not self._stop.wait(0.5):
            pass

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self.api is not None:
            self.api.stop()
        for thread in self._threads:
            thread.join()
        self.control.stop()
        self.warehouse.close()
        if self.broker is not None:
            self.broker.stop()

    @property
    def errors(self) -> list[BaseException]:
        return list(self._errors)

    def describe(self) -> list[tuple[str, str]]:
        s = self.settings
        kafka = f"{s.bootstrap_servers} ({'embedded, memory only' if self.broker else 'external'})"
        clickhouse = s.clickhouse_dsn if s.uses_embedded_clickhouse else "server (ASSETPIPE_CLICKHOUSE_URL)"
        return [
            ("kafka", kafka),
            ("clickhouse", f"{clickhouse}, database {s.clickhouse_database}"),
            ("topics", ", ".join((s.topics.events, s.topics.accepted, s.topics.dlq, s.topics.run_requests))),
            ("ingest worker", f"group {s.ingest_group_id}"),
            *self._describe_definitions(),
            ("http api", f"{self.api.url if self.api else '-'} ({'API keys' if s.api_keys else 'open: no API keys'})"),
            ("control socket", str(s.control_socket)),
        ]

    def _describe_definitions(self) -> list[tuple[str, str]]:
        if self.sensors is None or self.runs is None:
            return []
        defs = self.sensors.defs
        running = sum(sensor.running for sensor in defs.sensors)
        return [
            ("definitions", f"{self.settings.defs} (code location {defs.location})"),
            ("sensor worker", f"{running} of {len(defs.sensors)} sensors running, group {self.sensors.group_id}"),
            ("run worker", f"{len(defs.jobs)} jobs, group {self.runs.group_id}"),
        ]

    def status(self) -> dict[str, Any]:
        components: dict[str, dict[str, Any]] = {
            "kafka": {"ready": broker_ready(self.settings), "address": self.settings.bootstrap_servers},
            "clickhouse": {"ready": self.warehouse.ping(), "database": self.settings.clickhouse_database},
        }
        if self.api is not None:
            components["http"] = {"ready": self.api.running, "url": self.api.url}
        if self.worker is not None:
            worker = self.worker.status()
            components["ingest"] = {"ready": worker["state"] == "running", **worker}
        for name, loop in (("sensors", self.sensors), ("runs", self.runs)):
            if loop is not None:
                state = loop.status()
                components[name] = {"ready": state["state"] == "running", **state}
        return {"ok": True, "ready": all(c["ready"] for c in components.values()), "components": components}

    def _on_request(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "ping":
            return {"ok": True, "started": time.time()}
        if op == "status":
            return self.status()
        if op == "sql":
            result: QueryResult = self.warehouse.read_only_query(str(req.get("query", "")))
            return {"ok": True, "columns": list(result.column_names), "rows": result.rows}
        return {"ok": False, "code": "bad_request", "error": f"unknown op {op!r}"}
