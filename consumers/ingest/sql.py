"""The SQL the ingest worker runs over a staged batch: the checks that send rows to Python, the dedup
verdicts, the insert into ``asset_events``, and the repeats' into ``asset_report_state``.

Validation stays Python's (``schemas.validation``): the check here is a filter built from the same
patterns and names, true for every row that Python could reject (and for rows whose bytes Python would
refuse, such as invalid UTF-8). Those rows are decoded and validated in Python, which has the last word.
Metadata text is rendered here exactly as ``schemas.metadata.to_text`` renders it, for the kinds where
ClickHouse can (strings, ints, bools, assets, floats where Python's repr and ClickHouse's shortest form
agree up to a trailing ``.0``, and a table schema or column lineage as ClickHouse's JSON of the record,
which is Python's compact JSON unless a string needs a ``\\u`` escape or a map repeats a key); an event
with any other entry is rendered in Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from assetpipe.consumers.ingest.staging import (
    EVENT_TYPE_CODES,
    FLAGS,
    LOOKUP,
    STAGE,
    VERDICTS,
    clickhouse_type,
    sql_string,
)
from assetpipe.schemas.codec import AVRO_DIR
from assetpipe.schemas.metadata import STRING_KINDS
from assetpipe.schemas.validation import (
    _UUID,
    SYSTEM_TAG_PREFIXES,
    SYSTEM_TAGS,
    TAG_KEY,
    TAG_VALUE,
    TIMESTAMP_MAX_US,
    TIMESTAMP_MIN_US,
)

NEW, REDELIVERED, DUPLICATE = 0, 1, 2


def _strings(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


EVENT_TYPE_NAME = f"transform(code, {list(EVENT_TYPE_CODES.values())}, {_strings(list(EVENT_TYPE_CODES))}, '')"
FAILURE_CODE = EVENT_TYPE_CODES["materialization_failure"]


def dedup_key_expr(
    event_type: str, asset_key: str, partition: str, data_version: str, event_id: str, run_id: str
) -> str:
    """The UInt64 identity of an event (see ``consumers.ingest``), over SQL expressions for its parts:
    (type, asset key, partition, data version) when a data version is set; a materialization failure's
    (type, asset key, partition, run id) when a run id is set (the run failed to materialize that
    partition once, however often it is reported); else the event id."""
    return (
        f"multiIf({data_version} != '', "
        f"xxh3(concat('v', char(0), {event_type}, char(0), {asset_key}, char(0), {partition}, char(0), "
        f"{data_version})), {event_type} = 'materialization_failure' AND {run_id} != '', "
        f"xxh3(concat('r', char(0), {event_type}, char(0), {asset_key}, char(0), {partition}, char(0), {run_id})), "
        f"xxh3(concat('e', char(0), lower({event_id}))))"
    )


STAGED_DEDUP_KEY = dedup_key_expr(
    EVENT_TYPE_NAME,
    "arrayStringConcat(asset_key, '/')",
    "ifNull(partition, '')",
    "ifNull(data_version, '')",
    "event_id",
    "ifNull(run_id, '')",
)


def _record_type(name: str) -> str:
    """The ClickHouse type that the staged rows hold the record ``name`` of the contract in."""
    named: dict[str, Any] = {}
    for path in sorted(AVRO_DIR.glob("*.avsc")):
        schema = json.loads(path.read_text())
        named[f"{schema['namespace']}.{schema['name']}"] = schema
    return clickhouse_type(named[name], named)


_STRING_KINDS = _strings(sorted(STRING_KINDS | {"json"}))
_FLOAT = "variantElement(e.value, 'Float64')"
_SCHEMA_TYPE = _record_type("assetpipe.TableSchema")
_LINEAGE_TYPE = _record_type("assetpipe.TableColumnLineage")
_SCHEMA = f"variantElement(e.value, {sql_string(_SCHEMA_TYPE)})"
_LINEAGE = f"variantElement(e.value, {sql_string(_LINEAGE_TYPE)})"
# ClickHouse's JSON of a record is Python's compact JSON (json.dumps with ensure_ascii off), but for the
# escapes written \uXXXX (control characters: upper-case digits; U+2028 and U+2029, which Python leaves be)
# and for a map that repeats a key (Python's dict keeps one): those records are rendered in Python.
# Invalid UTF-8 in any of its strings is in its JSON too (JSON adds ASCII only): Python refuses it.
_JSON_AS_PYTHON = "position(t, '\\\\u') = 0 AND isValidUTF8(t)"
_UNIQUE_KEYS = "length(mapKeys({m})) = length(arrayDistinct(mapKeys({m})))"
# The settings under which toJSONString writes Python's form: the staging insert's, which renders the text
RENDER_SETTINGS = {"output_format_json_escape_forward_slashes": 0, "output_format_json_named_tuples_as_objects": 1}
# Python's repr and ClickHouse's toString both print the shortest round-trip digits; they differ in
# form only outside [1e-4, 1e16), for -0.0 and NaN, and by Python's ".0" on integral values.
_FLOAT_AGREES = (
    f"(isInfinite({_FLOAT}) OR ({_FLOAT} = 0 AND NOT bitTest(reinterpretAsUInt64({_FLOAT}), 63)) "
    f"OR (abs({_FLOAT}) >= 1e-4 AND abs({_FLOAT}) < 1e16))"
)
_SQL_RENDERS = (
    f"multiIf(e.kind IN {_STRING_KINDS}, variantType(e.value) = 'String', "
    "e.kind = 'int', variantType(e.value) = 'Int64', "
    f"e.kind IN ('float', 'timestamp'), variantType(e.value) = 'Float64' AND {_FLOAT_AGREES}, "
    "e.kind = 'bool', variantType(e.value) = 'Bool', "
    "e.kind = 'null', true, "
    "e.kind = 'asset', variantType(e.value) = 'Array(String)', "
    f"e.kind = 'table_schema', variantType(e.value) = {sql_string(_SCHEMA_TYPE)} AND {_JSON_AS_PYTHON} "
    f"AND arrayAll(c -> {_UNIQUE_KEYS.format(m='c.tags')}, {_SCHEMA}.columns), "
    f"e.kind = 'column_lineage', variantType(e.value) = {sql_string(_LINEAGE_TYPE)} AND {_JSON_AS_PYTHON} "
    f"AND {_UNIQUE_KEYS.format(m=_LINEAGE + '.deps_by_column')}, "
    "false)"
)
_TEXT = (
    f"ifNull(multiIf(e.kind IN {_STRING_KINDS}, variantElement(e.value, 'String'), "
    "e.kind = 'int', toString(variantElement(e.value, 'Int64')), "
    f"e.kind IN ('float', 'timestamp'), if(isFinite({_FLOAT}) AND {_FLOAT} = floor({_FLOAT}), "
    f"concat(toString({_FLOAT}), '.0'), toString({_FLOAT})), "
    "e.kind = 'bool', if(variantElement(e.value, 'Bool'), 'true', 'false'), "
    "e.kind = 'asset', arrayStringConcat(variantElement(e.value, 'Array(String)'), '/'), "
    "e.kind IN ('table_schema', 'column_lineage'), toJSONString(e.value), "
    "''), '')"
)
# Computed once per staged row, as it is loaded (with RENDER_SETTINGS): the dedup key, the CRC32 of the asset
# key (librdkafka's default partitioner sends a message to CRC32(its key, the asset key) % partitions), and
# each metadata entry's text as ClickHouse renders it (the filter checks it, the insert writes it).
STAGED_COMPUTED = (
    f"dk UInt64 MATERIALIZED {STAGED_DEDUP_KEY}",
    "crc UInt32 MATERIALIZED CRC32(arrayStringConcat(asset_key, '/'))",
    f"metadata_text Map(String, String) MATERIALIZED mapApply((k, e) -> (k, {_TEXT}), metadata)",
)
PYTHON_RENDERS = (
    f"arrayExists((e, t) -> NOT {_SQL_RENDERS}, mapValues(metadata), mapValues(metadata_text)) "
    "OR length(mapKeys(metadata)) != length(arrayDistinct(mapKeys(metadata))) "
    "OR length(mapKeys(tags)) != length(arrayDistinct(mapKeys(tags)))"
)

_SYSTEM_TAG = " OR ".join(
    [f"k IN {_strings(sorted(SYSTEM_TAGS))}"] + [f"startsWith(k, {sql_string(p)})" for p in SYSTEM_TAG_PREFIXES]
)
_UTF8 = (  # each string on its own: two invalid halves can join into a valid character
    "arrayAll(x -> isValidUTF8(x), asset_key) AND isValidUTF8(ifNull(partition, '')) "
    "AND isValidUTF8(ifNull(data_version, '')) AND isValidUTF8(ifNull(description, '')) "
    "AND isValidUTF8(ifNull(run_id, '')) AND isValidUTF8(check_name) AND isValidUTF8(source.host) "
    "AND arrayAll(x -> isValidUTF8(x), mapKeys(metadata)) AND arrayAll(x -> isValidUTF8(x), mapKeys(tags)) "
    "AND arrayAll(x -> isValidUTF8(x), mapValues(tags)) "
    "AND arrayAll(e -> multiIf(variantType(e.value) = 'String', isValidUTF8(variantElement(e.value, 'String')), "
    "variantType(e.value) = 'Array(String)', arrayAll(x -> isValidUTF8(x), variantElement(e.value, 'Array(String)')), "
    "true), mapValues(metadata))"
)
MAY_BE_INVALID = (
    f"NOT match(event_id, {sql_string(_UUID.pattern.replace(chr(92) + 'Z', '$'))}) "
    "OR empty(asset_key) OR has(asset_key, '') "
    "OR ifNull(partition = '', false) OR ifNull(data_version = '', false) "
    "OR has(mapKeys(metadata), '') "
    f"OR arrayExists((k, v) -> NOT ({_SYSTEM_TAG}) AND NOT (match(k, {sql_string(TAG_KEY.pattern)}) "
    f"AND match(v, {sql_string(TAG_VALUE.pattern)})), mapKeys(tags), mapValues(tags)) "
    f"OR toUnixTimestamp64Micro(timestamp) NOT BETWEEN {TIMESTAMP_MIN_US} AND {TIMESTAMP_MAX_US} "
    "OR (code = 3 AND check_name = '') "
    f"OR NOT ({_UTF8})"
)


def framing_sql(nonce: bytes) -> str:
    """-> one row: rows staged, rows whose trailer carries the nonce, distinct positions, the largest."""
    carries = f"substring(_x, 1, 8) = unhex('{nonce.hex()}')"
    return f"SELECT count(), countIf({carries}), uniqExact(i), max(i) FROM {STAGE}"


def flagged_sql() -> str:
    """-> (position, may be invalid, rendered in Python) for the rows Python must look at."""
    return f"SELECT i, ({MAY_BE_INVALID}) AS suspect, ({PYTHON_RENDERS}) AS python FROM {STAGE} WHERE suspect OR python"


def probe_sql() -> str:
    """-> per staged row: its dedup key, the CRC32 of its asset key and the partition it came from."""
    return f"SELECT dk, crc, kafka_partition FROM {STAGE}"


def in_window(days: int) -> str:
    """The condition on ``asset_event_keys`` of the keys in the dedup window: those of the events ingested
    today or on the ``days`` days before (UTC, by ClickHouse's clock); 0: every key. It names the table's
    partition key, so a query reads the window's partitions only."""
    return f"ingested_on >= toDate(now('UTC')) - {days}" if days else "1"


# The owner stored with a key hashed from its event's id (migration 0034): the key names its event already
_DERIVED_OWNER = "toUUID('00000000-0000-0000-0000-000000000000')"


def verdicts_sql(database: str, *, filtered: bool = False, window_days: int = 0) -> str:
    """Dedup verdicts of the staged rows (less the rejected ones in FLAGS): NEW for the first holder of
    an identity not stored in the dedup window (``window_days``, see ``in_window``); REDELIVERED for an
    event that is itself the stored (or first) holder; DUPLICATE otherwise. ``filtered``: only the keys
    in LOOKUP may be stored (the key filter ruled out the rest), so only they are looked up."""
    candidates = f"SELECT dk FROM {LOOKUP}" if filtered else f"SELECT dk FROM {STAGE}"
    return (
        f"INSERT INTO {VERDICTS} (i, dedup_key, verdict) "
        f"SELECT i, dk, multiIf(k.known = 1, "
        f"if(k.owner = uid OR k.owner = {_DERIVED_OWNER}, {REDELIVERED}, {DUPLICATE}), nth = 1, {NEW}, "
        f"if(first_uid = uid, {REDELIVERED}, {DUPLICATE})) "
        "FROM (SELECT i, dk, uid, row_number() OVER w AS nth, first_value(uid) OVER w AS first_uid "
        f"FROM (SELECT i, dk, toUUIDOrZero(event_id) AS uid FROM {STAGE} "
        f"WHERE i NOT IN (SELECT i FROM {FLAGS} WHERE rejected)) "
        "WINDOW w AS (PARTITION BY dk ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) AS b "
        f"LEFT JOIN (SELECT dedup_key, any(event_id) AS owner, 1 AS known FROM {database}.asset_event_keys "
        f"WHERE dedup_key IN ({candidates}) AND {in_window(window_days)} GROUP BY dedup_key) AS k "
        "ON b.dk = k.dedup_key"
    )


INSERT_COLUMNS = (
    "event_id", "event_type", "asset_key", "asset_key_path", "partition", "data_version", "description",
    "metadata", "metadata_types", "tags", "check_name", "check_passed", "check_severity", "failure_type",
    "failure_reason", "timestamp", "source", "producer_host", "run_id", "dedup_key", "kafka_partition", "kafka_offset",
)  # fmt: skip
_INSERT_EXPRESSIONS = (
    "toUUID(s.event_id)", EVENT_TYPE_NAME, "arrayStringConcat(s.asset_key, '/')", "s.asset_key",
    "ifNull(s.partition, '')", "ifNull(s.data_version, '')", "ifNull(s.description, '')",
    "s.metadata_text", "mapApply((k, e) -> (k, e.kind), s.metadata)",
    "s.tags", "s.check_name", "if(code = 3, s.passed, NULL)", "if(code = 3, toString(s.severity), NULL)",
    f"if(code = {FAILURE_CODE}, toString(s.failure_type), NULL)",
    f"if(code = {FAILURE_CODE}, toString(s.reason), NULL)",
    "s.timestamp", "toString(s.source.kind)", "s.source.host", "ifNull(s.run_id, '')", "v.dedup_key",
    "s.kafka_partition", "s.kafka_offset",
)  # fmt: skip


def insert_sql(database: str) -> str:
    """The NEW rows that ClickHouse renders (not in FLAGS) into ``asset_events``."""
    return (
        f"INSERT INTO {database}.asset_events ({', '.join(INSERT_COLUMNS)}) "
        f"SELECT {', '.join(_INSERT_EXPRESSIONS)} FROM {STAGE} AS s "
        f"INNER JOIN (SELECT i, dedup_key FROM {VERDICTS} WHERE verdict = {NEW}) AS v ON s.i = v.i "
        f"WHERE s.i NOT IN (SELECT i FROM {FLAGS})"
    )


REPEAT_COLUMNS = (
    "asset_key", "event_type", "partition", "data_version", "first_reported_at", "last_reported_at", "repeats",
    "last_repeat_at", "last_repeat_id",
)  # fmt: skip
_REPEAT_EXPRESSIONS = (
    "arrayStringConcat(s.asset_key, '/')", EVENT_TYPE_NAME, "ifNull(s.partition, '')", "assumeNotNull(s.data_version)",
    "s.timestamp", "s.timestamp", "toUInt64(1)", "s.timestamp",
    "initializeAggregation('argMaxState', toUUID(s.event_id), s.timestamp)",
)  # fmt: skip


def repeats_sql(database: str) -> str:
    """The DUPLICATE rows with a data version into ``asset_report_state`` (migration ``0018_report_state``), each a
    repeat of its identity: its time and event id, not its metadata. ``stored_event_id`` is left at its default,
    the zero UUID, below any id: the stored event's row (written by the view on ``asset_events``) holds it."""
    return (
        f"INSERT INTO {database}.asset_report_state ({', '.join(REPEAT_COLUMNS)}) "
        f"SELECT {', '.join(_REPEAT_EXPRESSIONS)} FROM {STAGE} AS s "
        f"INNER JOIN (SELECT i FROM {VERDICTS} WHERE verdict = {DUPLICATE}) AS v ON s.i = v.i "
        "WHERE ifNull(s.data_version, '') != ''"
    )
