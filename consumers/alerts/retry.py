"""The one retry policy of every alert channel: attempts with exponential backoff (the first wait doubling
up to 30 s) while the error says trying again may help."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from assetpipe.consumers.alerts.alert import Sent
from assetpipe.consumers.alerts.exceptions import AlertDeliveryError

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


def backoff_delays(first_s: float, attempts: int, cap_s: float = MAX_BACKOFF_S) -> list[float]:
    """The waits between ``attempts`` attempts: ``first_s``, doubling, at most ``cap_s`` each."""
    return [min(first_s * 2**i, cap_s) for i in range(max(0, attempts - 1))]


def with_retries(
    attempt: Callable[[], None],
    *,
    what: str,
    attempts: int,
    backoff_s: float,
    wait: Callable[[float], object] = time.sleep,
    now_us: Callable[[], int] = lambda: time.time_ns() // 1000,
) -> Sent:
    """Call ``attempt`` until it returns, a ``AlertDeliveryError`` that is not retryable, or ``attempts`` tries:
    how many it took, and the last error when it never succeeded."""
    delays = backoff_delays(backoff_s, attempts)
    for number in range(1, attempts + 1):
        try:
            attempt()
            return Sent(number, "", now_us())
        except AlertDeliveryError as exc:
            if not exc.retryable or number == attempts:
                return Sent(number, str(exc) or exc.code)
            delay = delays[number - 1]
            log.warning("%s: %s; attempt %d of %d in %.1fs", what, exc, number + 1, attempts, delay)
            wait(delay)
    return Sent(attempts, "no attempt made")  # attempts < 1: the settings forbid it
