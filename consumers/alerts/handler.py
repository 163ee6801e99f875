"""The alert worker's handler: check evaluations off the accepted stream, and run and tick failures read
from ClickHouse, become alerts on the transitions the policies watch, sent once each and recorded.

One replica owns an asset: the accepted stream is keyed by asset key, so each asset's evaluations reach one
partition, whose owner in the consumer group keeps the asset's state (rebuilt from the ``alerts`` table when
it gains the partition). A run or tick failure belongs to the owner of the partition its id hashes to. A
delivery is looked up before it is sent and recorded right after, and offsets are committed only once a
batch's alerts are recorded, so a replay (a restart, a rebalance) finds what was sent and sends the rest.
One lock serializes a batch, a round of failures and a change of partitions: a partition is given up only
once what was being done for it is recorded. Within a batch, deliveries go out ``send_concurrency`` at a time,
each recorded before its sender sends another (``Recorder``).
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import Message

from assetpipe.consumers.alerts.alert import Alert, Change, Delivery, Kind, alert_id_for
from assetpipe.consumers.alerts.delivery import Dispatcher, deliveries
from assetpipe.consumers.alerts.failures import Failure, FailureReader
from assetpipe.consumers.alerts.message import asset_url, page_url
from assetpipe.consumers.alerts.recorder import Recorded, Recorder
from assetpipe.consumers.alerts.store import AlertStore, StateKey
from assetpipe.consumers.alerts.transitions import Evaluation, State, level_of, step, watches
from assetpipe.consumers.handler import Decoded, Outcome
from assetpipe.definitions.alerts import AlertPolicy, AssetFacts, Channel, Transition

log = logging.getLogger(__name__)
_FACTS_TTL_S = 5.0  # how long the owners, group and tags of an asset are taken as they were read
_FAILURE_SLACK_US = 60_000_000  # failures are read again this far back: a row may land after its time
_OUTCOMES = frozenset({"materialization", "materialization_failure"})
_FAILURE_TRANSITIONS: dict[str, Transition] = {
    "run": "run_failed",
    "sensor_tick": "sensor_tick_failed",
    "schedule_tick": "schedule_tick_failed",
}


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class AlertMetrics:
    evaluations: int = 0
    alerts: int = 0
    sent: int = 0
    failed: int = 0
    skipped_sent: int = 0
    failures_read: int = 0


class AlertHandler:
    def __init__(
        self,
        policies: Sequence[AlertPolicy],
        store: AlertStore,
        dispatcher: Dispatcher,
        catalog_url: str,
        *,
        lookback_s: float = 900.0,
        send_concurrency: int = 16,
        now_us: Callable[[], int] = _now_us,
    ) -> None:
        self.metrics = AlertMetrics()
        self.lock = threading.Lock()
        self._policies = tuple(policies)
        self._store = store
        self._dispatcher = dispatcher
        self._failures = FailureReader(store.warehouse)
        self._base = catalog_url
        self._now_us = now_us
        self._concurrency = max(1, send_concurrency)
        self._recorder = Recorder(self._recorded)
        self._states: dict[StateKey, State] = {}
        self._loaded: set[str] = set()  # assets whose states are read from the alerts table
        self._facts: dict[str, tuple[float, AssetFacts | None]] = {}
        self._owned: dict[str, set[int]] = {}  # topic -> partitions held
        self._counts: dict[str, int] = {}  # topic -> its partition count
        self._failures_after = now_us() - int(lookback_s * 1_000_000)
        self._failures_done: dict[str, int] = {}  # failure id -> its time, while it is inside the window
        self._materializations = any(p.watches("materialization_failed") for p in self._policies)

    # -- check evaluations off the accepted stream ------------------------------------------------------
    def handle(self, events: Sequence[Decoded], batch: Sequence[Message]) -> Outcome:
        evaluations = [
            Evaluation.of(e.record)
            if e.event_type == "check_evaluation"
            else Evaluation.outcome(e.event_type, e.record)
            for e in events
            if e.event_type == "check_evaluation" or (self._materializations and _outcome(e))
        ]
        watched = [ev for ev in evaluations if any(watches(p, ev.kind) for p in self._policies)]
        if watched:
            with self.lock:
                self.metrics.evaluations += len(watched)
                self._evaluate(watched)
        return Outcome()

    def _evaluate(self, evaluations: list[Evaluation]) -> None:
        missing = sorted({ev.asset_key for ev in evaluations} - self._loaded)
        for key, state in self._store.states(missing).items():
            self._states.setdefault(key, state)
        self._loaded.update(missing)
        # a materialization matters only to an asset whose failure to materialize is alerted and unresolved
        evaluations = [ev for ev in evaluations if not (ev.materialization and ev.passed) or self._open(ev)]
        facts = self._asset_facts([ev.asset_key for ev in evaluations])
        alerts: list[tuple[Alert, AlertPolicy]] = []
        for ev in evaluations:
            asset = facts.get(ev.asset_key)
            for policy in self._policies:
                if not watches(policy, ev.kind) or not policy.selects(asset or AssetFacts(ev.asset_key)):
                    continue
                key = (policy.name, ev.asset_key, ev.check_name)
                state = self._states.setdefault(key, State())
                change = step(state, level_of(policy, ev), (ev.event_us, ev.event_id))
                if change is not None:
                    alerts.append((self._check_alert(policy, ev, change, asset), policy))
        self._send(alerts)

    def _open(self, ev: Evaluation) -> bool:
        return any(
            (state := self._states.get((p.name, ev.asset_key, ev.check_name))) is not None and state.level > 0
            for p in self._policies
        )

    def _check_alert(self, policy: AlertPolicy, ev: Evaluation, change: Change, asset: AssetFacts | None) -> Alert:
        cause = ev.description or ""
        if not cause and ev.kind == "freshness":
            overdue = ev.metadata.get("dagster/overdue_seconds")
            cause = f"overdue by {overdue} s" if overdue and change == "triggered" else ""
        return Alert(
            alert_id=alert_id_for(policy.name, ev.asset_key, ev.check_name, change, ev.event_id),
            policy=policy.name,
            kind=ev.kind,
            change=change,
            asset_key=ev.asset_key,
            subject=ev.check_name,
            severity="" if change == "resolved" else ev.severity,
            state=ev.state,
            cause=cause,
            event_id=ev.event_id,
            event_us=ev.event_us,
            link=asset_url(self._base, ev.asset_key),
            owners=asset.owners if asset is not None else (),
            partition=ev.partition,
            details=dict(ev.metadata),
        )

    def _asset_facts(self, keys: Sequence[str]) -> dict[str, AssetFacts | None]:
        """The facts of each asset (None: no current definition), read again once ``_FACTS_TTL_S`` old."""
        now = time.monotonic()
        stale = sorted({k for k in keys if now - self._facts.get(k, (-_FACTS_TTL_S - 1, None))[0] > _FACTS_TTL_S})
        if stale:
            read = self._store.facts(stale)
            for key in stale:
                self._facts[key] = (now, read.get(key))
        return {key: self._facts[key][1] for key in keys}

    # -- run and tick failures read from ClickHouse -------------------------------------------------------
    def poll_failures(self) -> int:
        """One round: the failures recorded since the last round (and a margin), of the partitions this
        replica holds, alerted once each. Returns how many alerts it made."""
        if not any(watches_failures(p) for p in self._policies):
            return 0
        with self.lock:
            if not self._counts:
                return 0  # no partition held yet: nothing is ours
            started = self._now_us()
            found = [f for f in self._failures.since(self._failures_after) if f.event_id not in self._failures_done]
            self.metrics.failures_read += len(found)
            alerts: list[tuple[Alert, AlertPolicy]] = []
            for failure in found:
                if not self._owns(failure.event_id):
                    continue
                alerts += self._failure_alerts(failure)
            self._send(alerts)
            for failure in found:
                if self._owns(failure.event_id):
                    self._failures_done[failure.event_id] = failure.at_us
            self._failures_after = started - _FAILURE_SLACK_US
            self._failures_done = {k: at for k, at in self._failures_done.items() if at >= self._failures_after}
            return len(alerts)

    def _owns(self, failure_id: str) -> bool:
        """A failure belongs to the replica holding the partition its id hashes to."""
        for topic, count in self._counts.items():
            if zlib.crc32(failure_id.encode()) % count in self._owned.get(topic, set()):
                return True
        return False

    def _failure_alerts(self, failure: Failure) -> list[tuple[Alert, AlertPolicy]]:
        facts = self._asset_facts(list(failure.asset_keys))
        transition = _FAILURE_TRANSITIONS[failure.kind]
        made = []
        for policy in self._policies:
            if transition not in policy.on:
                continue
            if failure.asset_keys:  # about the first asset of the run (or the tick's) the policy selects
                chosen = [k for k in failure.asset_keys if policy.selects(facts.get(k) or AssetFacts(k))]
                if not chosen:
                    continue
                asset_key = chosen[0]
            elif policy.selects(None):
                asset_key = ""
            else:
                continue
            made.append((self._failure_alert(policy, failure, asset_key, facts.get(asset_key)), policy))
        return made

    def _failure_alert(self, policy: AlertPolicy, failure: Failure, asset_key: str, asset: AssetFacts | None) -> Alert:
        kind: Kind = failure.kind
        if asset_key:
            link = asset_url(self._base, asset_key)
        elif kind == "run":
            link = page_url(self._base, "runs", failure.event_id)
        else:
            plural = "sensors" if kind == "sensor_tick" else "schedules"
            link = page_url(self._base, plural, failure.location, failure.subject)
        return Alert(
            alert_id=alert_id_for(policy.name, asset_key, failure.subject, "triggered", failure.event_id),
            policy=policy.name,
            kind=kind,
            change="triggered",
            asset_key=asset_key,
            subject=failure.subject,
            severity="ERROR",
            state="FAILED",
            cause=failure.error,
            event_id=failure.event_id,
            event_us=failure.at_us,
            link=link,
            owners=asset.owners if asset is not None else (),
            location=failure.location,
        )

    # -- sending ----------------------------------------------------------------------------------------
    def _send(self, alerts: list[tuple[Alert, AlertPolicy]]) -> None:
        """Send each alert's deliveries not sent before (by anyone), each recorded before its sender sends
        another: the deliveries about one asset's subject in order (triggered before resolved), those of
        ``send_concurrency`` assets at a time."""
        planned: list[tuple[Delivery, Channel]] = [d for alert, policy in alerts for d in deliveries(alert, policy)]
        if not planned:
            return
        self.metrics.alerts += len(alerts)
        done = self._store.sent([d.delivery_id for d, _ in planned])
        todo = [(d, c) for d, c in planned if d.delivery_id not in done]
        self.metrics.skipped_sent += len(planned) - len(todo)
        streams: dict[tuple[str, str], list[tuple[Delivery, Channel]]] = {}
        for delivery, channel in todo:
            streams.setdefault((delivery.alert.asset_key, delivery.alert.subject), []).append((delivery, channel))
        if len(streams) <= 1 or self._concurrency == 1:
            for stream in streams.values():
                self._send_in_order(stream)
            return
        with ThreadPoolExecutor(min(self._concurrency, len(streams)), thread_name_prefix="alert-send") as pool:
            for future in [pool.submit(self._send_in_order, stream) for stream in streams.values()]:
                future.result()  # a failed insert fails the batch: it is replayed, and what was recorded skipped

    def _send_in_order(self, stream: list[tuple[Delivery, Channel]]) -> None:
        for delivery, channel in stream:
            created = self._now_us()
            sent = self._dispatcher.send(delivery, channel)
            self._recorder.record((delivery, sent, created))

    def _recorded(self, outcomes: Sequence[Recorded]) -> None:
        self._store.record_many(outcomes)
        for delivery, sent, _ in outcomes:  # one recording at a time: the recorder's
            if sent.ok:
                self.metrics.sent += 1
            else:
                self.metrics.failed += 1
                log.warning("alert %s to %s %s failed after %d attempts: %s", delivery.alert.alert_id,
                            delivery.channel_kind, delivery.recipient, sent.attempts, sent.error)  # fmt: skip

    # -- group membership -------------------------------------------------------------------------------
    def partitions_assigned(self, partitions: Sequence[tuple[str, int]], counts: Mapping[str, int]) -> None:
        with self.lock:
            for topic, partition in partitions:
                self._owned.setdefault(topic, set()).add(partition)
            self._counts.update({t: c for t, c in counts.items() if t in self._owned})
            self._forget_states()  # rebuilt from the alerts table: another replica may have moved them on

    def partitions_revoked(self, partitions: Sequence[tuple[str, int]]) -> None:
        with self.lock:  # after the round in hand: what it sent for these partitions is recorded
            for topic, partition in partitions:
                self._owned.get(topic, set()).discard(partition)
            self._forget_states()

    def _forget_states(self) -> None:
        self._states.clear()
        self._loaded.clear()


def _outcome(event: Decoded) -> bool:
    """A materialization, or a failure to materialize that was not expected (a SKIPPED one changes nothing)."""
    return event.event_type in _OUTCOMES and event.record.get("failure_type") != "SKIPPED"


def watches_failures(policy: AlertPolicy) -> bool:
    return policy.watches(*_FAILURE_TRANSITIONS.values())
