"""Wire records -> ClickHouse columns for ``asset_events`` (column-oriented, explicit names)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from assetpipe.schemas.metadata import STRING_KINDS, to_text

_AS_IS = STRING_KINDS | {"json"}  # stored as their own text
# The scalar kinds' text as ``to_text`` writes it (JSON numbers are Python's float repr), without json.
_SCALAR_TEXT: dict[str, Callable[[Any], str]] = {
    "int": str,
    "float": str,
    "timestamp": str,
    "bool": lambda value: "true" if value else "false",
    "null": lambda _value: "",
}

EVENT_COLUMNS = (
    "event_id", "event_type", "asset_key", "asset_key_path", "partition", "data_version", "description",
    "metadata", "metadata_types", "tags", "check_name", "check_passed", "check_severity", "failure_type",
    "failure_reason", "timestamp", "source", "producer_host", "run_id", "dedup_key", "kafka_partition", "kafka_offset",
)  # fmt: skip


def metadata_maps(metadata: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """Wire metadata entries -> the ``metadata`` (each value as text) and ``metadata_types`` maps, as
    ``asset_events`` stores them (the asset registry stores definition metadata the same way)."""
    texts: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for name, entry in metadata.items():
        kind = kinds[name] = entry["kind"]
        if kind in _AS_IS:
            texts[name] = entry["value"]
        else:
            scalar = _SCALAR_TEXT.get(kind)
            texts[name] = scalar(entry["value"]) if scalar is not None else to_text(entry)
    return texts, kinds


class EventColumns:
    """Accumulates rows as one list per column."""

    __slots__ = ("_add", "columns")

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in EVENT_COLUMNS]
        self._add = tuple(column.append for column in self.columns)  # bound once: 22 calls a row

    def __len__(self) -> int:
        return len(self.columns[0])

    def append(self, event_type: str, record: dict[str, Any], dedup_key: int, partition: int, offset: int) -> None:
        (event_id, type_, key, key_path, partition_, data_version, description, metadata_, metadata_types, tags,
         check_name, check_passed, check_severity, failure_type, failure_reason, timestamp, source_, host, run_id,
         dedup_key_, kafka_partition, kafka_offset) = self._add  # fmt: skip
        path = record["asset_key"]
        event_id(record["event_id"])
        type_(event_type)
        key("/".join(path))
        key_path(path)
        partition_(record["partition"] or "")
        data_version(record.get("data_version") or "")  # a materialization failure has none
        description(record["description"] or "")
        texts, kinds = metadata_maps(record["metadata"])
        metadata_(texts)
        metadata_types(kinds)
        tags(record["tags"])
        if event_type == "check_evaluation":
            check_name(record["check_name"])
            check_passed(record["passed"])
            check_severity(record["severity"])
        else:
            check_name("")
            check_passed(None)
            check_severity(None)
        if event_type == "materialization_failure":
            failure_type(record["failure_type"])
            failure_reason(record["reason"])
        else:
            failure_type(None)
            failure_reason(None)
        timestamp(record["timestamp"])
        source = record["source"]
        source_(source["kind"])
        host(source["host"])
        run_id(record.get("run_id") or "")
        dedup_key_(dedup_key)
        kafka_partition(partition)
        kafka_offset(offset)
