"""The ``alerts`` table as the web pages and ``GET /api/alerts`` show it: every delivery, newest first,
filtered by asset, status, policy and kind, a cursor page at a time; and the latest alerts of one asset
(``alerts_of``, for its page). Each read is one read-only query with parameters (``Query``: in this
process, on a ClickHouse server, or through a running stack's control socket)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assetpipe.consumers.alerts.alert import KINDS
from assetpipe.consumers.catalog import cursor
from assetpipe.consumers.catalog.rows import Query, iso, strings
from assetpipe.schemas.errors import FieldError

ALERT_STATUSES = ("sent", "failed")
TRANSITIONS = ("triggered", "resolved")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_CURSOR = "alerts"
_FIELDS = (
    "toString(alert_id), toString(delivery_id), policy, asset_key, toString(check_name), subject, toString(kind), "
    "toString(transition), toString(severity), toString(state), message, toString(channel), toString(channel_kind), "
    "recipient, owners, partition, link, toString(status), attempts, error, event_id, "
    "toUnixTimestamp64Micro(event_time), toUnixTimestamp64Micro(created_at), toUnixTimestamp64Micro(sent_at)"
)
_LIST = (
    f"SELECT {_FIELDS} FROM alerts FINAL "
    "WHERE ({asset:String} = '' OR asset_key = {asset:String}) "
    "AND ({status:String} = '' OR toString(status) = {status:String}) "
    "AND ({policy:String} = '' OR policy = {policy:String}) "
    "AND ({kind:String} = '' OR toString(kind) = {kind:String}) "
    "AND ({before:Int64} = 0 "
    "OR (toUnixTimestamp64Micro(created_at), toString(delivery_id)) < ({before:Int64}, {tie:String})) "
    "ORDER BY created_at DESC, toString(delivery_id) DESC LIMIT {limit:UInt32}"
)


def _item(row: tuple[Any, ...]) -> dict[str, Any]:
    (alert_id, delivery_id, policy, asset_key, check_name, subject, kind, transition, severity, state, message,
     channel, channel_kind, recipient, owners, partition, link, status, attempts, error, event_id, event_us,
     created_us, sent_us) = row  # fmt: skip
    return {
        "alert_id": alert_id,
        "delivery_id": delivery_id,
        "policy": policy,
        "asset_key": asset_key or None,
        "check_name": check_name or None,
        "subject": subject,
        "kind": kind,
        "transition": transition,
        "severity": severity or None,
        "state": state,
        "message": message,
        "channel": channel,
        "channel_kind": channel_kind,
        "recipient": recipient,
        "owners": strings(owners),
        "partition": partition or None,
        "link": link,
        "status": status,
        "attempts": int(attempts),
        "error": error or None,
        "event_id": event_id,
        "event_time": iso(event_us),
        "created_at": iso(created_us),
        "sent_at": iso(sent_us),
    }


def _one_of(name: str, text: str | None, allowed: tuple[str, ...]) -> str:
    if text and text not in allowed:
        raise FieldError(name, f"Query parameter '{name}' must be one of {', '.join(allowed)}")
    return text or ""


def list_alerts(query: Query, params: Mapping[str, str | None]) -> dict[str, Any]:
    """A page of deliveries, newest first (``params``: asset ``a/b``, status, policy, kind, cursor, limit)."""
    size = cursor.limit(params.get("limit"), DEFAULT_LIMIT, MAX_LIMIT)
    after = cursor.decode(params.get("cursor"), _CURSOR, (int, str))
    values = {
        "asset": (params.get("asset") or "").strip("/"),
        "status": _one_of("status", params.get("status"), ALERT_STATUSES),
        "policy": params.get("policy") or "",
        "kind": _one_of("kind", params.get("kind"), KINDS),
        "before": after[0] if after else 0,
        "tie": after[1] if after else "",
        "limit": size + 1,
    }
    rows = query(_LIST, values).rows
    positions = [cursor.encode(_CURSOR, int(row[22]), str(row[1])) for row in rows]
    return cursor.page([_item(row) for row in rows], positions, size)


def alerts_of(query: Query, asset_key: str, limit: int = 20) -> list[dict[str, Any]]:
    """The newest ``limit`` deliveries of alerts about one asset (``a/b``), for its page."""
    return list(list_alerts(query, {"asset": asset_key, "limit": str(limit)})["items"])
