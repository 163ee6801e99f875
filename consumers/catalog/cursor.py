"""Cursor pagination: a page's ``next_cursor`` is the sort key of its last row, opaque to clients (URL-safe
base64 of a JSON list), and the next page is the rows after that key, never an OFFSET: a page costs the same
wherever it is, and rows added meanwhile shift nothing already seen. Limits of a page are checked here too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from assetpipe.schemas.errors import FieldError


def encode(kind: str, *position: Any) -> str:
    """The cursor after a row of a list of ``kind`` (which says what the position means), at ``position``."""
    text = json.dumps([kind, *position], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(text: str | None, kind: str, types: Sequence[type]) -> list[Any] | None:
    """The position a cursor of ``kind`` holds, its values of ``types``; None for no cursor. A cursor of
    another list or sort, or one this API did not give, is a 400 (``FieldError``)."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw.decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = None
    if (
        not isinstance(value, list)
        or len(value) != len(types) + 1
        or value[0] != kind
        or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
    ):
        raise FieldError("cursor", "Query parameter 'cursor' is not a cursor of this list (use next_cursor as given)")
    return value[1:]


def count(name: str, text: str | None, default: int, minimum: int, maximum: int) -> int:
    """A whole-number query parameter ``name`` from ``minimum`` to ``maximum``; absent or empty: ``default``."""
    if text is None or text == "":
        return default
    if not text.isdigit() or not minimum <= int(text) <= maximum:
        raise FieldError(name, f"Query parameter '{name}' must be an integer from {minimum} to {maximum}")
    return int(text)


def limit(text: str | None, default: int, maximum: int) -> int:
    return count("limit", text, default, 1, maximum)


def page(items: list[dict[str, Any]], positions: list[str], size: int) -> dict[str, Any]:
    """``items`` fetched one beyond ``size`` (``positions``: the cursor after each): the page, and the
    cursor of the next one (None on the last)."""
    more = len(items) > size
    return {"items": items[:size], "next_cursor": positions[size - 1] if more else None}
