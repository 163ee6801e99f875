"""What the alert worker keeps and reads in ClickHouse: the ``alerts`` table (each delivery as it went, the
deliveries already sent, the state of each (policy, asset, check) its alerts left), and the facts a policy
selects assets by (owners, group, tags of the registry's current definitions, ``latest_asset_definitions``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Any

from assetpipe.consumers.alerts.alert import CHECK_KINDS, Delivery, Sent
from assetpipe.consumers.alerts.message import summary
from assetpipe.consumers.alerts.transitions import State, level_after
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.definitions.alerts import AssetFacts

ALERT_COLUMNS = (
    "alert_id", "delivery_id", "policy", "asset_key", "check_name", "subject", "kind", "transition", "severity",
    "state", "message", "channel", "channel_kind", "recipient", "owners", "partition", "link", "status", "attempts",
    "error", "event_id", "event_time", "created_at", "sent_at", "updated_at",
)  # fmt: skip
StateKey = tuple[str, str, str]  # (policy, asset key, check name)


def _now_us() -> int:
    return time.time_ns() // 1000


class AlertStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self._db = warehouse.database

    def sent(self, delivery_ids: Collection[str]) -> set[str]:
        """Those of ``delivery_ids`` recorded as sent, by any replica at any time."""
        if not delivery_ids:
            return set()
        rows = self.warehouse.query(
            f"SELECT DISTINCT toString(delivery_id) FROM {self._db}.alerts "
            "WHERE delivery_id IN {ids:Array(UUID)} AND status = 'sent'",
            parameters={"ids": list(delivery_ids)},
        ).rows
        return {str(row[0]) for row in rows}

    def record(self, delivery: Delivery, sent: Sent, created_us: int) -> None:
        """One delivery as it went; written again (a retry that now succeeded) the newest row wins."""
        self.record_many([(delivery, sent, created_us)])

    def record_many(self, outcomes: Sequence[tuple[Delivery, Sent, int]]) -> None:  # (delivery, sent, created µs)
        """Deliveries as they went (each with when it was created), in one insert."""
        if not outcomes:
            return
        updated = _now_us()
        rows: list[tuple[Any, ...]] = []
        for delivery, sent, created_us in outcomes:
            a = delivery.alert
            rows.append((
                a.alert_id, delivery.delivery_id, a.policy, a.asset_key, a.check_name, a.subject, a.kind, a.change,
                a.severity, a.state, summary(a), delivery.channel, delivery.channel_kind, delivery.recipient,
                list(a.owners), a.partition or "", a.link, "sent" if sent.ok else "failed", sent.attempts, sent.error,
                a.event_id, a.event_us, created_us, sent.sent_us, updated,
            ))  # fmt: skip
        self.warehouse.insert("alerts", [list(column) for column in zip(*rows, strict=True)], ALERT_COLUMNS)

    def states(self, asset_keys: Collection[str]) -> dict[StateKey, State]:
        """The state the alerts of these assets' checks left each (policy, asset, check) in: the level of
        the latest alert by the time of its event (then its id), and that time."""
        if not asset_keys:
            return {}
        rows = self.warehouse.query(
            "SELECT policy, asset_key, toString(check_name), argMax((toString(transition), severity, event_id), "
            "(event_time, event_id)), toUnixTimestamp64Micro(max(event_time)) "
            f"FROM {self._db}.alerts WHERE asset_key IN {{keys:Array(String)}} AND kind IN {{kinds:Array(String)}} "
            "GROUP BY policy, asset_key, check_name",
            parameters={"keys": list(asset_keys), "kinds": list(CHECK_KINDS)},
        ).rows
        found = {}
        for policy, key, check, (change, severity, event_id), at_us in rows:
            found[(str(policy), str(key), str(check))] = State(level_after(change, severity), (int(at_us), event_id))
        return found

    def facts(self, asset_keys: Sequence[str]) -> dict[str, AssetFacts]:
        """The owners, group and tags of the assets with a current definition (the others have none)."""
        if not asset_keys:
            return {}
        rows = self.warehouse.query(
            f"SELECT asset_key, owners, group_name, tags FROM {self._db}.latest_asset_definitions "
            "WHERE asset_key IN {keys:Array(String)}",
            parameters={"keys": list(asset_keys)},
        ).rows
        return {
            str(key): AssetFacts(str(key), tuple(owners), group or None, dict(tags), defined=True)
            for key, owners, group, tags in rows
        }
