"""The webhook launcher: hands a run request to a system elsewhere by POSTing it as JSON.

Connection errors, timeouts, 429 and 5xx answers are retried with exponential backoff; any other answer
is final. The body is the run request (``schemas.run_request.run_request_json``); the
``Idempotency-Key`` header carries the run id, so a receiver can drop a retried POST it already took.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from assetpipe.consumers.exceptions import LaunchError

log = logging.getLogger(__name__)
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookLauncher:
    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        wait: Callable[[float], object] = time.sleep,
    ) -> None:
        self.url = url
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._timeout = timeout_s
        self._attempts = attempts
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._wait = wait

    def launch(self, body: Mapping[str, Any]) -> int:
        """POST ``body``; returns the number of attempts it took. Raises ``LaunchError`` when every
        attempt failed or the receiver refused it."""
        data = json.dumps(body, default=str).encode()
        headers = {**self._headers, "Idempotency-Key": str(body.get("run_id", ""))}
        delay = self._backoff
        problem = ""
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    response.read()
                return attempt
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code} {exc.reason}"
                if exc.code not in _RETRYABLE_STATUS:
                    raise LaunchError(f"{self.url} refused the run: {problem}") from exc
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                problem = str(getattr(exc, "reason", exc))
            if attempt < self._attempts:
                log.warning(
                    "webhook %s: %s; attempt %d of %d in %.1fs", self.url, problem, attempt + 1, self._attempts, delay
                )
                self._wait(delay)
                delay = min(delay * 2, self._max_backoff)
        raise LaunchError(f"{self.url} did not take the run after {self._attempts} attempts: {problem}")
