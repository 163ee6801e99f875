"""The local stack behind ``assetpipe up``: broker, warehouse, topics, workers, HTTP API, control socket.

With no ``ASSETPIPE_KAFKA_BOOTSTRAP_SERVERS`` it starts the embedded broker (memory only: a restart
loses topics and offsets); with no ``ASSETPIPE_CLICKHOUSE_URL`` it opens the embedded ClickHouse engine
under the data directory (persistent). Every component that touches embedded ClickHouse lives in this
process; other commands reach it through the control socket.

Stopping drains: the HTTP API stops taking reports (503 with ``Retry-After``), and the workers run until
everything the broker holds is in ClickHouse, so nothing acknowledged is lost to the memory-only
broker. The embedded broker is supervised: when it dies, the workers stop, the broker is started again
with its topics, and fresh workers resume; the API refuses reports meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confluent_kafka.admin import AdminClient

from assetpipe.api import build_app
from assetpipe.assets_api import LocalRegistry
from assetpipe.broker import EmbeddedBroker, broker_ready, create_topics
from assetpipe.consumers.alerts import AlertWorker, alert_policies
from assetpipe.consumers.checks.sources import RegistryChecks
from assetpipe.consumers.checks.worker import CheckWorker
from assetpipe.consumers.ingest.worker import IngestWorker
from assetpipe.consumers.loop import ConsumerLoop
from assetpipe.consumers.openlineage import OpenLineageWorker
from assetpipe.consumers.readonly import ReadOnlyPolicy
from assetpipe.consumers.retention import apply_retention
from assetpipe.consumers.runs.worker import RunWorker
from assetpipe.consumers.schedules.worker import ScheduleWorker
from assetpipe.consumers.sensors.store import write_instigator_state
from assetpipe.consumers.sensors.worker import SensorWorker
from assetpipe.consumers.warehouse import QueryResult, Warehouse
from assetpipe.control import ControlServer
from assetpipe.definitions.alerts import AlertPolicy
from assetpipe.definitions.loader import Definitions, load_definitions
from assetpipe.exceptions import BrokerError
from assetpipe.gate import Gate
from assetpipe.producers.http import ApiServer
from assetpipe.schemas.settings import Settings

log = logging.getLogger(__name__)

_BROKER_RESTARTS = 3  # within _RESTART_WINDOW_S; one more stops the stack
_RESTART_WINDOW_S = 60.0
_CAUGHT_UP_CHECKS = 3  # consecutive measures, _DRAIN_TICK_S apart, that find nothing left
_DRAIN_TICK_S = 0.25


class LocalStack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | None = None
        policy = ReadOnlyPolicy.from_settings(settings)  # what analysts' queries through the control socket may do
        self.warehouse = Warehouse.from_settings(settings, policy)
        self.worker: IngestWorker | None = None
        self.api: ApiServer | None = None
        self.gate: Gate | None = None
        self.sensors: SensorWorker | None = None
        self.runs: RunWorker | None = None
        self.schedules: ScheduleWorker | None = None
        self.defs: Definitions | None = None
        self.checks: CheckWorker | None = None  # freshness, bounds and anomaly checks of the registry
        self.openlineage: OpenLineageWorker | None = None  # OpenLineage events as they came, and their edges
        self.alerts: AlertWorker | None = None  # with alert policies (definitions file or policies file)
        self.alert_policies: list[AlertPolicy] = []
        self.control = ControlServer(settings.control_socket, self._on_request)
        self.phase = "starting"  # running, draining, recovering, stopping, stopped
        self._stop = threading.Event()  # the stack's: set once, when it stops
        self._workers_stop = threading.Event()  # this generation of workers'
        self._ticking_stop = threading.Event()  # the scheduler's: it stops first, when the stack drains
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._restarts: list[float] = []

    # -- starting ---------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.defs = load_definitions(s.defs, s.code_location) if s.defs is not None else None  # bad defs: fail first
        self.alert_policies = alert_policies(s, self.defs)  # a bad policies file too
        self.control.start()
        try:
            if s.uses_embedded_kafka:
                self.broker = EmbeddedBroker(s.embedded_kafka_port, log_path=s.data_dir / "broker.log")
                self.broker.start()
            create_topics(s)
            self.warehouse.migrate()
            apply_retention(self.warehouse, s.retention_days)
            self._start_workers()
            self._start_api()
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        self.phase = "running"

    def _start_workers(self) -> None:
        s = self.settings
        self._workers_stop = threading.Event()
        self.worker = IngestWorker(s)  # a ClickHouse session of its own, for its staging tables
        self._spawn("ingest", self.worker.run)
        warehouse = self.warehouse
        self.checks = CheckWorker(s, RegistryChecks(warehouse), warehouse)
        self._spawn("checks", self.checks.run)
        self.openlineage = OpenLineageWorker(s, warehouse)  # a thread: it shares this process's ClickHouse engine
        self._spawn("openlineage", self.openlineage.run)
        if self.defs is not None:  # sensors and runs as threads: they share this process's ClickHouse engine
            self.sensors = SensorWorker(s, self.defs, self.warehouse)
            self.runs = RunWorker(s, self.defs, self.warehouse)
            self._spawn("sensors", self.sensors.run)
            self._spawn("runs", self.runs.run)
        if self.defs is not None and self.defs.schedules:
            schedules = self.schedules = ScheduleWorker(s, self.defs, self.warehouse)
            ticking = self._ticking_stop = threading.Event()
            self._spawn("schedules", lambda _stop: schedules.run(ticking))
        self._start_alerts()

    def _start_alerts(self) -> None:
        """The alert worker, as a thread sharing this process's ClickHouse engine, when there are policies."""
        if self.alert_policies:
            self.alerts = AlertWorker(self.settings, self.alert_policies, self.warehouse)
            self._spawn("alerts", self.alerts.run)

    def _wait_for_workers(self, timeout: float = 60.0) -> None:
        """Until every worker's loop runs (subscribed), so that ``status`` is true when it says ready."""
        deadline = time.monotonic() + timeout
        while not all(loop.metrics.state == "running" for loop in self._loops()) or (
            self.schedules is not None and self.schedules.state != "running"
        ):
            if self._errors:
                raise self._errors[0]
            if time.monotonic() > deadline:
                raise BrokerError(f"the workers did not start within {timeout:.0f}s")
            time.sleep(0.02)

    def _start_api(self) -> None:
        worker = self.worker

        def lag() -> int | None:
            return worker.metrics.lag if worker is not None else None

        app = build_app(self.settings, self.warehouse, lag, self.defs)
        if not self.settings.api_keys:
            log.warning("the HTTP API runs without API keys: any local user can report events (ASSETPIPE_API_KEYS)")
        self.gate = Gate(app)
        self.api = ApiServer(self.gate, self.settings)
        self.api.start()

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        stop = self._workers_stop

        def run() -> None:
            try:
                target(stop)
            except BaseException as exc:
                if self.phase == "recovering":  # the broker died under it: expected, it is replaced
                    log.warning("%s stopped with the broker: %s", name, exc)
                    return
                log.exception("%s stopped with an error", name)
                self._errors.append(exc)
                self._stop.set()

        thread = threading.Thread(target=run, name=name)
        thread.start()
        self._threads.append(thread)

    def _loops(self) -> list[ConsumerLoop]:
        loops: list[ConsumerLoop] = [c.loop for c in self.worker.consumers] if self.worker is not None else []
        loops += [w.loop for w in (self.sensors, self.runs, self.checks, self.openlineage) if w is not None]
        loops += [self.alerts.loop] if self.alerts is not None else []
        return loops

    # -- running ----------------------------------------------------------------------------------
    def watch(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds, restarting the embedded broker if it died; True once the stack
        stopped by itself (an error). Called from the thread that started the stack: the broker is its
        child and dies with the thread that started it (``PR_SET_PDEATHSIG``), so it is restarted from
        the thread that lives as long as the stack."""
        if self._stop.wait(timeout):
            return True
        self._supervise()
        return self._stop.is_set()

    @property
    def errors(self) -> list[BaseException]:
        return list(self._errors)

    def _supervise(self) -> None:
        """Restart the embedded broker if it died, and the workers with it."""
        broker = self.broker
        if broker is None or broker.running() or self._stop.is_set():
            return
        code = broker.returncode
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW_S]
        if len(self._restarts) >= _BROKER_RESTARTS:
            times = len(self._restarts) + 1
            why = f"{times} times within {_RESTART_WINDOW_S:.0f}s (last exit code {code}); see {broker.log_path}"
            self._fail(BrokerError(f"the embedded broker died {why}"))
            return
        self._restarts.append(now)
        try:
            self._recover(code)
        except Exception as exc:
            self._fail(exc)

    def _recover(self, code: int | None) -> None:
        assert self.broker is not None and self.gate is not None
        phase, self.phase = self.phase, "recovering"
        self.gate.close("the embedded Kafka broker is restarting")
        log.error("the embedded broker exited (code %s); restarting it. It kept everything in memory: events "
                  "it held that were not yet in ClickHouse are lost (a real Kafka keeps them)", code)  # fmt: skip
        for loop in self._loops():
            loop.publish_timeout = 2.0  # a final batch cannot be published to the dead broker: do not wait on it
        self._stop_workers()
        self._join_workers()
        self.broker.start()
        create_topics(self.settings)
        self._start_workers()
        self._wait_for_workers()
        self.phase = phase
        if phase == "running":
            self.gate.reopen()
        log.warning("the embedded broker is back with its topics; the workers resumed")

    def _fail(self, exc: BaseException) -> None:
        log.error("%s", exc)
        self._errors.append(exc)
        self._stop.set()

    def _stop_workers(self) -> None:
        self._ticking_stop.set()
        self._workers_stop.set()

    def _join_workers(self) -> None:
        for thread in self._threads:
            thread.join()
        self._threads = []

    # -- stopping ---------------------------------------------------------------------------------
    def drain(self, force: threading.Event, say: Callable[[str], None]) -> int:
        """Stop taking reports, then wait until the workers wrote everything the embedded broker holds to
        ClickHouse (or ``force`` is set). Returns the events left behind: 0 unless forced. An external
        Kafka keeps what it acknowledged: only the reports being answered are waited for, and the workers
        go on from their committed offsets when they start again."""
        self.phase = "draining"
        if self.gate is not None:
            self.gate.close("assetpipe is stopping")
        self._ticking_stop.set()  # no new run requests: the run worker gets through those already published
        partitions = self._partition_counts()
        said = ""
        clear = 0
        left = -1
        while clear < _CAUGHT_UP_CHECKS:
            if force.wait(_DRAIN_TICK_S) or self.watch(0):
                return max(left, 0)
            loops = self._loops()  # new ones if the broker was restarted meanwhile
            for loop in loops:
                loop.draining = True
            waiting = list(self._waiting_for(loops, partitions))
            left = sum(n for _, n in waiting if n > 0)
            clear = clear + 1 if not waiting else 0
            line = "; ".join(f"{what}" + (f" ({n:,} events)" if n > 0 else "") for what, n in waiting)
            if waiting and line != said:
                say(f"waiting for {line}")
                said = line
        return 0

    def _waiting_for(self, loops: list[ConsumerLoop], partitions: dict[str, int]) -> Iterator[tuple[str, int]]:
        if self.gate is not None and self.gate.in_flight:
            yield "HTTP requests to be answered", self.gate.in_flight
        if self.broker is None:
            return
        groups: dict[str, list[ConsumerLoop]] = {}
        for loop in loops:
            groups.setdefault(loop.name, []).append(loop)
        for name, members in groups.items():
            backlogs = [loop.backlog for loop in members]
            if any(b is None or not b.known for b in backlogs):
                yield f"{name} to measure its backlog", -1
                continue
            held = {tp for b in backlogs if b is not None for tp in b.assigned}
            topics = {t for loop in members for t in loop.topics}
            if len(held) < sum(partitions.get(t, 0) for t in topics):
                yield f"{name} to be assigned every partition", -1
                continue
            behind = sum(b.behind for b in backlogs if b is not None)
            if behind or any(b is not None and b.idle_seconds < 0.5 for b in backlogs):
                yield f"{name} to write what the broker holds", behind

    def _partition_counts(self) -> dict[str, int]:
        try:
            topics = AdminClient(self.settings.as_librdkafka_dict()).list_topics(timeout=5).topics
        except Exception:
            return {}
        return {name: len(meta.partitions) for name, meta in topics.items() if meta.error is None}

    def stop(self) -> None:
        self.phase = "stopping"
        self._stop.set()
        self._stop_workers()
        if self.gate is not None:
            self.gate.close("assetpipe is stopping")
        if self.api is not None:
            self.api.stop()
        self._join_workers()
        self.control.stop()
        self.warehouse.close()
        if self.broker is not None:
            self.broker.stop()
        self.phase = "stopped"

    # -- describing -------------------------------------------------------------------------------
    def describe(self) -> list[tuple[str, str]]:
        s = self.settings
        kafka = f"{s.bootstrap_servers} ({'embedded, memory only' if self.broker else 'external'})"
        clickhouse = s.clickhouse_dsn if s.uses_embedded_clickhouse else "server (ASSETPIPE_CLICKHOUSE_URL)"
        return [
            ("kafka", kafka),
            ("clickhouse", f"{clickhouse}, database {s.clickhouse_database}"),
            ("topics", ", ".join((s.topics.events, s.topics.accepted, s.topics.dlq, s.topics.run_requests))),
            ("ingest worker", f"group {s.ingest_group_id}"),
            ("check worker", f"freshness policies and monitor checks of the registry, group {s.check_group_id}"),
            *self._describe_definitions(),
            *self._describe_alerts(),
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
            *self._describe_schedules(),
        ]

    def _describe_alerts(self) -> list[tuple[str, str]]:
        if not self.alert_policies:
            return []
        return [("alert worker", f"{len(self.alert_policies)} policies, group {self.settings.alert_group_id}")]

    def _describe_schedules(self) -> list[tuple[str, str]]:
        if self.schedules is None or self.defs is None:
            return []
        running = sum(schedule.running for schedule in self.defs.schedules)
        return [("scheduler", f"{running} of {len(self.defs.schedules)} schedules running")]

    def status(self) -> dict[str, Any]:
        """Every component the stack runs, started or not: ready only when all are, and the stack runs."""
        s = self.settings
        pending = {"ready": False, "state": self.phase if self.phase != "running" else "starting"}
        components: dict[str, dict[str, Any]] = {
            "kafka": {"ready": broker_ready(s), "address": s.bootstrap_servers},
            "clickhouse": {"ready": self.warehouse.ping(), "database": s.clickhouse_database},
        }
        if self.broker is not None and not self.broker.running():
            components["kafka"] = {"ready": False, "address": s.bootstrap_servers, "state": "restarting"}
        components["ingest"] = pending
        if self.worker is not None:
            worker = self.worker.status()
            components["ingest"] = {"ready": worker["state"] == "running", **worker}
        if self.defs is not None:
            for name, loop in (("sensors", self.sensors), ("runs", self.runs)):
                state = loop.status() if loop is not None else {"state": "starting"}
                components[name] = {"ready": state["state"] == "running", **state}
            if self.defs.schedules:
                ticking = self.schedules.status() if self.schedules is not None else {"state": "starting"}
                components["schedules"] = {"ready": ticking["state"] == "running", **ticking}
        checks = self.checks.status() if self.checks is not None else {"state": "starting"}
        components["checks"] = {"ready": checks["state"] == "running", **checks}
        lineage = self.openlineage.status() if self.openlineage is not None else {"state": "starting"}
        components["openlineage"] = {"ready": lineage["state"] == "running", **lineage}
        if self.alert_policies:
            state = self.alerts.status() if self.alerts is not None else {"state": "starting"}
            components["alerts"] = {"ready": state["state"] == "running", **state}
        components["http"] = pending
        if self.api is not None and self.gate is not None:
            components["http"] = {"ready": self.api.running and self.gate.open, "url": self.api.url}
            if not self.gate.open:
                components["http"]["state"] = self.gate.reason
        ready = self.phase == "running" and all(c["ready"] for c in components.values())
        return {"ok": True, "ready": ready, "phase": self.phase, "components": components}

    def _on_request(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "ping":
            return {"ok": True, "started": time.time()}
        if op == "status":
            return self.status()
        if op == "sql":
            result: QueryResult = self.warehouse.read_only_query(
                str(req.get("query", "")), req.get("parameters"), background=req.get("background") is True
            )
            return {"ok": True, "columns": list(result.column_names), "rows": result.rows}
        if op == "assets_register":  # `assetpipe assets apply`, and `assetpipe serve`'s PUT /api/assets/...
            summary = LocalRegistry(self.warehouse).register(req["specs"], req["source"], req.get("location", ""))
            return {"ok": True, **summary.to_json()}
        if op == "instigator_state":  # `assetpipe serve`'s POST /api/sensors|schedules/{name}/start|stop
            write_instigator_state(self.warehouse, req["location"], req["kind"], req["name"], req["status"],
                                   req.get("by", ""), int(req["at_us"]))  # fmt: skip
            return {"ok": True}
        return {"ok": False, "code": "bad_request", "error": f"unknown op {op!r}"}
