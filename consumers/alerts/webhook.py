"""Alerts POSTed over HTTP: a webhook's JSON body, or a Slack-compatible incoming webhook's ``{"text"}``.
Each POST carries ``Idempotency-Key`` (the delivery's id), so a receiver can drop a retry it already took.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from assetpipe.consumers.alerts.exceptions import AlertDeliveryError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def post_json(url: str, body: Mapping[str, Any], *, headers: Mapping[str, str], timeout_s: float) -> None:
    """One POST of ``body`` as JSON; a 2xx returns, anything else raises ``AlertDeliveryError`` (retryable for
    connection errors, timeouts, 408, 425, 429 and 5xx)."""
    data = json.dumps(body, ensure_ascii=False, default=str).encode()
    sent = {"Content-Type": "application/json", "User-Agent": "assetpipe-alerts", **headers}
    request = urllib.request.Request(url, data=data, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        retryable = exc.code in RETRYABLE_STATUS or exc.code >= 500
        raise AlertDeliveryError(f"HTTP {exc.code} {exc.reason}", retryable=retryable) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise AlertDeliveryError(str(getattr(exc, "reason", exc)) or type(exc).__name__, retryable=True) from exc
