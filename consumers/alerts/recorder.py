"""Recording deliveries as they finish: each sender waits until its delivery is in the ``alerts`` table before it
sends the next, and the deliveries that finish while an insert is under way go together in the next one (a
group commit). A worker that dies can so have sent unrecorded only the deliveries in flight at that moment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assetpipe.consumers.alerts.alert import Delivery, Sent

Recorded = tuple[Delivery, Sent, int]  # a delivery, how its send went, when it was created (µs)


@dataclass(slots=True)
class _Pending:
    outcome: Recorded
    done: bool = False
    error: BaseException | None = None


class Recorder:
    def __init__(self, record_many: Callable[[Sequence[Recorded]], None]) -> None:
        self._record_many = record_many
        self._changed = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False

    def record(self, outcome: Recorded) -> None:
        """Return once ``outcome`` is recorded; raise what its insert raised."""
        pending = _Pending(outcome)
        with self._changed:
            self._queue.append(pending)
            while not pending.done:
                if self._writing:  # another sender is writing: ours goes in the insert after
                    self._changed.wait()
                    continue
                self._writing, batch, self._queue = True, self._queue, []
                error: BaseException | None = None
                self._changed.release()
                try:
                    self._record_many([p.outcome for p in batch])
                except BaseException as exc:  # every sender of the batch sees it
                    error = exc
                finally:
                    self._changed.acquire()
                    self._writing = False
                    for p in batch:
                        p.done, p.error = True, error
                    self._changed.notify_all()
        if pending.error is not None:
            raise pending.error
