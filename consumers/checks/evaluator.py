"""The check evaluator's state and decisions: for the assets this worker owns, when each was last updated, the
state of each timed check (a freshness policy, a last-update freshness check), when each must be evaluated
next, and the evaluations to publish.

Timed checks are evaluated when an event of their asset arrives and when their deadline passes (the
``Deadlines`` heap, woken by the worker's timer: no poll of the warehouse), and an evaluation is published
only when the check's state changes (PASS, WARN, FAIL; UNKNOWN, an asset never updated, publishes nothing).
An update cannot make a check worse, so an event of a passing check only moves its asset's clock: the check
is judged at its deadline with the newest update, and stays PASS with a later deadline. An event costs a
dictionary update; a check is evaluated at most once a window while it passes.
Event checks (metadata bounds, volume anomalies) are evaluated on each event that carries their label, and
each evaluation is published.

Ids. An evaluation's event id derives from the check, the state and what decided it (the event's id, or the
deadline), so the same decision taken twice (after a restart, by two replicas during a rebalance) is one
event: the ingest worker stores it once.

Ownership. The accepted stream is keyed by asset key, and a consumer group gives each partition to one
worker: an asset belongs to the worker holding its partition (librdkafka's default partitioner: CRC32 of the
key, modulo the partitions), whether or not any event of it has been seen yet.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assetpipe.consumers.checks.deadlines import Deadlines

PASS, WARN, FAIL, UNKNOWN = "PASS", "WARN", "FAIL", "UNKNOWN"
UPDATES = ("materialization", "observation")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation of a check: its state, as a check result (``passed``, ``severity``), with its metadata and
    description, and for a timed check when its state would change next if nothing arrived."""

    state: str
    passed: bool
    severity: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    next_change_us: int | None = None


@dataclass(slots=True)
class Clock:
    """When an asset was last updated, per event type, and its newest partition materialized (with when)."""

    updated: dict[str, int] = field(default_factory=dict)
    newest_partition: str | None = None
    newest_at: int | None = None

    def last(self, kinds: frozenset[str]) -> int | None:
        return max((self.updated[k] for k in kinds if k in self.updated), default=None)


@dataclass(frozen=True, slots=True)
class TimedCheck:
    """A check of one asset decided by time since its last update: ``evaluate(clock, now_us)``. ``updated_by``:
    the event types that update the asset for it; ``newer(a, b)``: the newer of two partition keys, for a
    check of a time-partitioned asset (None: partitions are not followed)."""

    asset_key: str
    check_name: str
    updated_by: frozenset[str]
    evaluate: Callable[[Clock, int], Verdict] = field(compare=False)
    newer: Callable[[str, str], str] | None = field(default=None, compare=False)
    definition: str = ""  # what the check was built from: checks compare equal when it is the same


@dataclass(frozen=True, slots=True)
class EventCheck:
    """A check of one asset decided by the value of ``label`` in each of its events of ``event_types``:
    ``evaluate(value, event_timestamp_us)``, None when it cannot judge (no baseline yet is a verdict, not None)."""

    asset_key: str
    check_name: str
    label: str
    event_types: frozenset[str]
    evaluate: Callable[[float, int], Verdict | None] = field(compare=False)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A verdict to publish as an ``AssetCheckEvaluation``: ``trigger`` names what decided it (an event id, or
    ``deadline:<us>``), for its derived event id; ``partition`` of the event judged, if any."""

    asset_key: str
    check_name: str
    verdict: Verdict
    at_us: int
    trigger: str
    partition: str | None = None
    previous: str | None = None  # a timed check's state before this verdict

    @property
    def idempotency_key(self) -> str:
        return f"check\x00{self.check_name}\x00{self.verdict.state}\x00{self.trigger}"


def partition_of(asset_key: str, partitions: int) -> int:
    """The partition librdkafka's default partitioner sends ``asset_key`` to (CRC32 of the key)."""
    return zlib.crc32(asset_key.encode()) % partitions if partitions > 0 else 0


def state_of(passed: bool, severity: str | None) -> str:
    """A stored evaluation's state: passed is PASS, a WARN failure WARN, an ERROR failure FAIL."""
    return PASS if passed else WARN if severity == "WARN" else FAIL


@dataclass(slots=True)
class Stored:
    """What the warehouse says of an asset when its partition is assigned: its last update per event type and
    the last published state of each of its checks."""

    updated_us: dict[str, int] = field(default_factory=dict)  # event type -> latest event time
    states: dict[str, str] = field(default_factory=dict)  # check name -> state
    partitions: dict[str, int] = field(default_factory=dict)  # candidates for the newest partition, with when


class Evaluator:
    """The checks of the assets of the owned partitions, their last updates, states and deadlines. Thread-safe:
    the consumer loop hands it events while the timer asks for what is due."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified when the earliest deadline may be earlier
        self._timed: dict[str, list[TimedCheck]] = {}
        self._event: dict[str, list[EventCheck]] = {}
        self._clocks: dict[str, Clock] = {}
        self._states: dict[tuple[str, str], str] = {}
        self._deadlines: Deadlines[tuple[str, str]] = Deadlines()
        self._owned: set[int] = set()
        self._partitions = 0

    # ownership

    def owns(self, asset_key: str) -> bool:
        return self._partitions > 0 and partition_of(asset_key, self._partitions) in self._owned

    def watched(self, asset_key: str) -> bool:
        """Whether an event of ``asset_key`` matters here: the asset has checks, and this worker owns it."""
        return (asset_key in self._timed or asset_key in self._event) and self.owns(asset_key)

    def assign(
        self, partitions: Iterable[int], count: int, stored: Mapping[str, Stored], now_us: int
    ) -> list[Evaluation]:
        """Partitions gained (of ``count``), with what the warehouse holds of their assets; the evaluations that
        are due at once (a deadline passed while no worker owned the asset)."""
        with self.lock:
            self._partitions = count
            self._owned.update(partitions)
            for key, known in stored.items():
                if not self.owns(key):
                    continue
                clock = self._clocks.setdefault(key, Clock())
                for kind, at in known.updated_us.items():
                    clock.updated[kind] = max(clock.updated.get(kind, at), at)
                for name, state in known.states.items():
                    self._states.setdefault((key, name), state)
                for partition, at in known.partitions.items():
                    self._partition(key, clock, partition, at)
            return self._reevaluate(now_us, [k for k in self._timed if self.owns(k)])

    def revoke(self, partitions: Iterable[int]) -> None:
        with self.lock:
            self._owned.difference_update(partitions)
            for key in [k for k in self._clocks if not self.owns(k)]:
                del self._clocks[key]
            for key, name in [k for k in self._states if not self.owns(k[0])]:
                del self._states[(key, name)]
                self._deadlines.cancel((key, name))

    # checks

    def set_checks(self, timed: Sequence[TimedCheck], event: Sequence[EventCheck], now_us: int) -> list[Evaluation]:
        """The checks as registered now; a new or changed one is evaluated at once."""
        with self.lock:
            before = {(c.asset_key, c.check_name): c for checks in self._timed.values() for c in checks}
            self._timed, self._event = {}, {}
            for check in timed:
                self._timed.setdefault(check.asset_key, []).append(check)
            for event_check in event:
                self._event.setdefault(event_check.asset_key, []).append(event_check)
            current = {(c.asset_key, c.check_name) for c in timed}
            for gone in set(before) - current:
                self._deadlines.cancel(gone)
            fresh = [c.asset_key for c in timed if before.get((c.asset_key, c.check_name)) != c]
            return self._reevaluate(now_us, [k for k in dict.fromkeys(fresh) if self.owns(k)])

    def partitioned_assets(self) -> set[str]:
        """The assets with a check that follows their partitions."""
        with self.lock:
            return {key for key, checks in self._timed.items() if any(c.newer is not None for c in checks)}

    def timed_check_names(self) -> set[str]:
        with self.lock:
            return {c.check_name for checks in self._timed.values() for c in checks}

    def checked_assets(self) -> int:
        with self.lock:
            return len(self._timed) + len(self._event)

    # events and time

    def on_event(self, event_type: str, asset_key: str, event_id: str, at_us: int, partition: str | None,
                 metadata: Mapping[str, Any], now_us: int) -> list[Evaluation]:  # fmt: skip
        """An accepted event of an owned asset: its update, then its timed checks; its event checks."""
        out: list[Evaluation] = []
        with self.lock:
            if not self.owns(asset_key):
                return out
            if event_type in UPDATES:
                clock = self._clocks.setdefault(asset_key, Clock())
                if event_type not in clock.updated or at_us > clock.updated[event_type]:
                    clock.updated[event_type] = at_us
                if partition and event_type == "materialization":
                    self._partition(asset_key, clock, partition, at_us)
                for check in self._timed.get(asset_key, ()):
                    key = (asset_key, check.check_name)
                    if event_type not in check.updated_by:
                        continue
                    if self._states.get(key) == PASS and self._deadlines.get(key) is not None:
                        continue  # an update never makes a check worse: judged again at its deadline, with it
                    out.extend(self._evaluate(check, now_us, event_id))
            for event_check in self._event.get(asset_key, ()):
                if event_type not in event_check.event_types or event_check.label not in metadata:
                    continue
                value = metadata[event_check.label]
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                verdict = event_check.evaluate(value, at_us)
                if verdict is not None:
                    out.append(Evaluation(asset_key, event_check.check_name, verdict, now_us, event_id, partition))
        return out

    def next_deadline(self) -> int | None:
        with self.lock:
            return self._deadlines.next_at()

    def due(self, now_us: int) -> list[Evaluation]:
        """The timed checks whose deadline passed, evaluated at their deadline."""
        out: list[Evaluation] = []
        with self.lock:
            for (key, name), at in self._deadlines.pop_due(now_us):
                check = next((c for c in self._timed.get(key, ()) if c.check_name == name), None)
                if check is not None and self.owns(key):
                    out.extend(self._evaluate(check, max(now_us, at), f"deadline:{at}"))
        return out

    def unpublished(self, evaluations: Iterable[Evaluation], retry_at_us: int) -> None:
        """The evaluations could not be published: their timed checks go back to the states before and are
        evaluated again at ``retry_at_us`` (a verdict is taken as the check's state when it is made, so that
        the next event or deadline does not publish it a second time)."""
        with self.lock:
            for evaluation in evaluations:
                if evaluation.previous is None:  # an event check: nothing kept
                    continue
                key = (evaluation.asset_key, evaluation.check_name)
                if evaluation.previous == UNKNOWN:
                    self._states.pop(key, None)
                else:
                    self._states[key] = evaluation.previous
                self._deadlines.set(key, retry_at_us)
            self.changed.notify_all()

    def state(self, asset_key: str, check_name: str) -> str:
        with self.lock:
            return self._states.get((asset_key, check_name), UNKNOWN)

    def _reevaluate(self, now_us: int, keys: Iterable[str]) -> list[Evaluation]:
        out: list[Evaluation] = []
        for key in keys:
            for check in self._timed.get(key, ()):
                out.extend(self._evaluate(check, now_us, f"deadline:{now_us}"))
        return out

    def _partition(self, asset_key: str, clock: Clock, partition: str, at_us: int) -> None:
        newer = next((c.newer for c in self._timed.get(asset_key, ()) if c.newer is not None), None)
        if newer is None:
            return
        newest = clock.newest_partition
        if newest is None or (partition != newest and newer(newest, partition) == partition):
            clock.newest_partition, clock.newest_at = partition, at_us
        elif partition == newest:
            clock.newest_at = max(clock.newest_at or at_us, at_us)

    def _evaluate(self, check: TimedCheck, now_us: int, trigger: str) -> list[Evaluation]:
        verdict = check.evaluate(self._clocks.get(check.asset_key) or Clock(), now_us)
        key = (check.asset_key, check.check_name)
        self._deadlines.set(key, verdict.next_change_us)
        if verdict.next_change_us is not None:
            self.changed.notify_all()
        previous = self._states.get(key)
        if verdict.state == UNKNOWN or verdict.state == previous:
            return []
        self._states[key] = verdict.state
        return [Evaluation(check.asset_key, check.check_name, verdict, now_us, trigger, previous=previous or UNKNOWN)]
