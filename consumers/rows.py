"""Wire records -> ClickHouse columns for ``asset_events`` (column-oriented, explicit names)."""

from __future__ import annotations

from typing import Any

from schemas.metadata import STRING_KINDS, to_text

_AS_IS = STRING_KINDS | {"json"}  # stored as their own text

EVENT_COLUMNS = (
    "event_id", "event_type", "asset_key", "asset_key_path", "partition", "data_version", "description",
    "metadata", "metadata_types", "tags", "check_name", "check_passed", "check_severity", "timestamp",
    "source", "producer_host", "run_id", "dedup_key", "kafka_partition", "kafka_offset",
)  # fmt: skip


class EventColumns:
    """Accumulates rows as one list per column."""

    __slots__ = ("columns",)

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in EVENT_COLUMNS]

    def __len__(self) -> int:
        return len(self.columns[0])

    def append(self, event_type: str, record: dict[str, Any], dedup_key: int, partition: int, offset: int) -> None:
        c = self.columns
        path = record["asset_key"]
        metadata = record["metadata"]
        c[0].append(record["event_id"])
        c[1].append(event_type)
        c[2].append("/".join(path))
        c[3].append(path)
        c[4].append(record["partition"] or "")
        c[5].append(record["data_version"] or "")
        c[6].append(record["description"] or "")
        c[7].append({k: v["value"] if v["kind"] in _AS_IS else to_text(v) for k, v in metadata.items()})
        c[8].append({k: v["kind"] for k, v in metadata.items()})
        c[9].append(record["tags"])
        if event_type == "check_evaluation":
            c[10].append(record["check_name"])
            c[11].append(record["passed"])
            c[12].append(record["severity"])
        else:
            c[10].append("")
            c[11].append(None)
            c[12].append(None)
        c[13].append(record["timestamp"])
        source = record["source"]
        c[14].append(source["kind"])
        c[15].append(source["host"])
        c[16].append(record.get("run_id") or "")
        c[17].append(dedup_key)
        c[18].append(partition)
        c[19].append(offset)
