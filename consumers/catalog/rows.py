"""How the catalog reads its rows. Every read is a read-only query with parameters (``Warehouse.read_only_query``,
or the same through a running stack's control socket), so a row may come as clickhouse-connect gives it or
as JSON: queries select times as microseconds and ids as text, and tuples and maps are read here the same
way from either form.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from assetpipe.consumers.warehouse import QueryResult

Query = Callable[[str, Mapping[str, Any]], QueryResult]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Threads running the reads of one answer side by side, every answer's together (started as reads need them).
_READERS = ThreadPoolExecutor(8, thread_name_prefix="catalog-read")


def together(*reads: Callable[[], Any]) -> list[Any]:
    """The results of ``reads`` (independent reads of one answer), run side by side: the first on this thread,
    the others on the catalog's reader threads. ClickHouse runs each on a session of its own, up to
    ``ASSETPIPE_SQL_MAX_CONCURRENT_QUERIES`` at once. The first read that fails raises, once all have ended."""
    others = [_READERS.submit(read) for read in reads[1:]]
    try:
        first = reads[0]()
    finally:
        for other in others:
            other.exception()  # wait: a failed first read must not leave reads behind it
    return [first, *(other.result() for other in others)]


def iso(micros: Any) -> str | None:
    """Microseconds since the epoch as ISO 8601 in UTC (``2024-06-03T10:00:00.123456Z``); None or 0 (an
    outer join's default, a time never set) as None."""
    if micros is None or int(micros) == 0:
        return None
    return (_EPOCH + timedelta(microseconds=int(micros))).isoformat().replace("+00:00", "Z")


def micros(text: str) -> int:
    """An ISO 8601 time (a zone, or UTC) or epoch seconds as microseconds since the epoch; ValueError
    otherwise (``inf`` and ``nan`` too: no time)."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise ValueError(f"not a time: {text!r}")
        return round(seconds * 1_000_000)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def mapping(value: Any) -> dict[str, Any]:
    """A Map column: a dict from clickhouse-connect and from JSON alike (None for a NULL)."""
    return dict(value or {})


def strings(value: Any) -> list[str]:
    return [str(v) for v in value or ()]


def pairs(value: Any) -> list[Sequence[Any]]:
    """An Array(Tuple(...)) column: tuples from clickhouse-connect, lists through JSON."""
    return [tuple(v) for v in value or ()]
