"""What the web catalog's reads share: the read-only query they go through (``RegistryAccess.query``:
in this process, on a ClickHouse server, or through a running stack's control socket), times as ISO 8601
in UTC, and the cursors and limits of paginated lists.

Rows may come as clickhouse-connect gives them or as JSON through the control socket, so queries read
times as microseconds and ids as text: both give the same answer.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from assetpipe.consumers.warehouse import QueryResult
from assetpipe.web.exceptions import BadQueryError

Query = Callable[[str, Mapping[str, Any]], QueryResult]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(us: Any) -> str | None:
    """Microseconds since the epoch -> ``2024-06-03T10:00:00.123456Z``; None (or 0: a LEFT JOIN's default)
    -> None."""
    if us is None or int(us) == 0:
        return None
    return (_EPOCH + timedelta(microseconds=int(us))).isoformat().replace("+00:00", "Z")


def limit_of(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadQueryError(f"Query parameter 'limit' must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def one_of(name: str, text: str | None, allowed: tuple[str, ...]) -> str | None:
    """A filter that takes one of ``allowed`` (None or empty: no filter)."""
    if not text:
        return None
    if text not in allowed:
        raise BadQueryError(f"Query parameter '{name}' must be one of {', '.join(allowed)}")
    return text


def encode_cursor(us: int, tie: str = "") -> str:
    """The position after a row: its time and, where times may tie, its id. Opaque to clients."""
    return base64.urlsafe_b64encode(f"{int(us)}|{tie}".encode()).decode().rstrip("=")


def decode_cursor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        us, _, tie = raw.partition("|")
        return int(us), tie
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadQueryError("Query parameter 'cursor' is not a cursor this API gave (use next_cursor)") from None


def page(items: list[dict[str, Any]], positions: list[tuple[int, str]], limit: int) -> dict[str, Any]:
    """A page of ``items`` (fetched one beyond ``limit``; ``positions``: each one's (time, id)), with the
    cursor of the next page, or None on the last."""
    more = len(items) > limit
    nxt = encode_cursor(*positions[limit - 1]) if more else None
    return {"items": items[:limit], "next_cursor": nxt}
