"""The asset events' Avro writer, specialized to their one layout: the producers' hot path.

``compile_writer`` (``schemas.binary``) writes any record from its schema. ``EventWriter`` knows the
layout the three asset event schemas share (checked against the parsed schema, else it is not built)
and keeps, in bounded caches keyed by the exact values, what repeats in real traffic: encoded asset keys,
metadata keys with their kind, constant text, tag maps, the source, and the encoding of each
``SharedEntry`` (a structured entry many events hold as one object). It writes a wire record:

- as a ``Writer`` (``writer(record, prefix)``), for the codec;
- ``checked(record)``: checking it by ``validate_record``'s rules in the same pass (records built from an
  HTTP body or a backfill line).

It writes the bytes of the compiled writer, so of fastavro (the tests compare them). A record off the
common shape (a datetime timestamp, a missing field, an invalid value) is handed back: the writer passes
it to the compiled writer, ``checked`` returns None. ``schemas.report_writer`` builds on it to write a
report from its arguments, and ``schemas.form_writer`` an event from its JSON form, with no record in
between.
"""

from __future__ import annotations

import struct
from typing import Any, TypeVar

from assetpipe.schemas.binary.writer import Writer, avro_type, compile_writer, encode_long, time_long
from assetpipe.schemas.metadata import SharedEntry
from assetpipe.schemas.validation import (
    _UUID,
    ASSET_KEY_MAX_CHARS,
    TIMESTAMP_MAX_US,
    TIMESTAMP_MIN_US,
    unprintable,
    validate_tags,
)

K = TypeVar("K")
V = TypeVar("V")
CACHE_MAX = 4096  # entries per cache; a full cache is emptied, so memory stays bounded whatever the traffic
SHARED_MAX = 1024  # shared entries whose encoding is kept (each may be a table schema of many columns)
BASE_FIELDS = ("event_id", "asset_key", "partition", "data_version", "description", "metadata", "tags",
               "timestamp", "source", "run_id")  # fmt: skip
CHECK_FIELDS = ("check_name", "passed", "severity")
_OPTIONAL = ["null", "string"]
ONE = tuple(bytes((i,)) for i in range(128))  # a varint (a zig-zagged long) under 128, by value
NONE = b"\x00"  # the null branch of an optional value; an empty map or array
_SOME = b"\x02"
_SOME_SIZE = tuple(_SOME + ONE[n << 1] for n in range(64))  # an optional string's branch and short length
double = struct.Struct("<d").pack
# By 14-bit groups, low first: two varint bytes both marked "more to follow", and the varint of a last group.
VARINT_PAIRS = tuple(bytes(((g & 0x7F) | 0x80, (g >> 7) | 0x80)) for g in range(1 << 14))
VARINT_LAST = tuple(ONE[g] if g < 0x80 else bytes(((g & 0x7F) | 0x80, g >> 7)) for g in range(1 << 14))
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def remember(cache: dict[K, V], key: K, value: V) -> V:
    """``cache[key] = value``, emptying a full cache first (see ``CACHE_MAX``); returns ``value``."""
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def long(n: int) -> bytes:
    """``encode_long`` (a zig-zag varint), by table lookups instead of a loop: what a timestamp of
    history or a large metadata number needs (``time_long`` is for clock readings, alike but for the
    last bits). Raises ``OverflowError`` outside the 64-bit range, as ``encode_long`` does."""
    if not _LONG_MIN <= n <= _LONG_MAX:
        return encode_long(n)
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return VARINT_LAST[z]
    if z < 0x10000000:
        return VARINT_PAIRS[z & 0x3FFF] + VARINT_LAST[z >> 14]
    if z < 0x40000000000:
        return VARINT_PAIRS[z & 0x3FFF] + VARINT_PAIRS[(z >> 14) & 0x3FFF] + VARINT_LAST[z >> 28]
    low = VARINT_PAIRS[z & 0x3FFF] + VARINT_PAIRS[(z >> 14) & 0x3FFF] + VARINT_PAIRS[(z >> 28) & 0x3FFF]
    if z < 0x100000000000000:
        return low + VARINT_LAST[z >> 42]
    return low + VARINT_PAIRS[(z >> 42) & 0x3FFF] + VARINT_LAST[z >> 56]


def string(value: str) -> bytes:
    """An Avro string: its length, then its UTF-8 bytes."""
    raw = value.encode()
    n = len(raw)
    return (ONE[n << 1] if n < 64 else encode_long(n)) + raw


def optional(value: str | None) -> bytes:
    """A ``["null", "string"]`` union; raises ``TypeError`` for anything but None or a ``str``."""
    if value is None:
        return NONE
    if type(value) is not str:
        raise TypeError("not a string")
    raw = value.encode()
    n = len(raw)
    return (_SOME_SIZE[n] if n < 64 else _SOME + encode_long(n)) + raw


def count(n: int) -> bytes:
    """The block count of a map or an array."""
    return ONE[n << 1] if n < 64 else encode_long(n)


class EventWriter:
    """The writer of one asset event schema. Build it with ``event_writer``; threads may share it (a
    cache is a dict, and what two threads store under one key is the same bytes)."""

    def __init__(self, schema: Any, generic: Writer) -> None:
        named = schema.get("__named_schemas", {})
        self.generic = generic
        self.check = len(schema["fields"]) > len(BASE_FIELDS)
        entry = _resolve(named, schema["fields"][5]["type"]["values"])
        kinds = _resolve(named, entry["fields"][0]["type"])["symbols"]
        self.kinds = {kind: ONE[i << 1] for i, kind in enumerate(kinds)}
        union = [avro_type(_resolve(named, branch)) for branch in entry["fields"][1]["type"]]
        self.branches: dict[type, bytes] = {
            python_type: ONE[union.index(avro) << 1]
            for python_type, avro in (
                (type(None), "null"),
                (bool, "boolean"),
                (int, "long"),
                (float, "double"),
                (str, "string"),
                (list, "array"),
            )
        }
        self.entry_writer = compile_writer({**entry, "__named_schemas": named})
        source = _resolve(named, schema["fields"][8]["type"])
        self._source_kinds = {
            k: ONE[i << 1] for i, k in enumerate(_resolve(named, source["fields"][0]["type"])["symbols"])
        }
        self.severities: dict[str, bytes] = {}
        if self.check:
            symbols = _resolve(named, schema["fields"][12]["type"])["symbols"]
            self.severities = {s: ONE[i << 1] for i, s in enumerate(symbols)}
        self.time = time_long()
        # Caches, each bounded by CACHE_MAX.
        self._keys: dict[str, bytes] = {}  # metadata key -> its encoding
        self._texts: dict[str, tuple[str, str, bytes]] = {}  # metadata key -> (kind, last string, its entry)
        self._numbers: dict[str, tuple[str, type, bytes]] = {}  # metadata key -> (kind, value type, entry head)
        self._asset_arrays: dict[Any, bytes] = {}  # asset key parts (tuple) -> the array's encoding
        self._tags: dict[tuple[tuple[str, str], ...], bytes] = {}  # tag items -> the map's encoding
        self._sources: dict[tuple[str, str], bytes] = {}  # (kind, host) -> the EventSource's encoding
        self._valid_assets: dict[tuple[str, ...], tuple[bytes, bytes]] = {}  # parts -> (message key, array)
        self._valid_tags: dict[tuple[tuple[str, str], ...], bytes] = {}  # tag items that passed validation
        # id of a SharedEntry -> (the entry, kept alive so that its id is not reused; its encoding)
        self._shared: dict[int, tuple[SharedEntry, bytes]] = {}

    # -- the codec's Writer: a wire record -------------------------------------------------------

    def __call__(self, d: Any, prefix: bytes = b"") -> bytes:
        try:
            body = self._record(d, False)
        except Exception:  # anything off the common shape: the compiled writer decides
            body = None
        if body is None:
            return self.generic(d, prefix)
        return prefix + body[1]

    def checked(self, d: Any) -> tuple[bytes, bytes] | None:
        """``validate_record`` and the write in one pass: (message key, body) of a record that passes
        every rule of ``validate_record``; None where the record must go that way (it raises, naming the
        field) and then to the codec."""
        try:
            return self._record(d, True)
        except Exception:  # off the common shape, or invalid
            return None

    def _record(self, d: Any, check: bool) -> tuple[bytes, bytes] | None:
        """-> (message key, body); the key only when ``check`` (empty otherwise)."""
        if type(d) is not dict or type(d.get("timestamp")) is not int:  # a datetime: the compiled writer
            return None
        get = d.get
        parts = d["asset_key"]
        if check:
            event_id = get("event_id")
            if type(event_id) is not str or _UUID.match(event_id) is None:
                return None
            if type(parts) is not list and type(parts) is not tuple:
                return None
            asset = self._valid_assets.get(tuple(parts)) or self._valid_asset(parts)
            if asset is None:
                return None
            message_key, asset_array = asset
        else:
            message_key = b""
            key = tuple(parts)
            asset_array = self._asset_arrays.get(key) or remember(self._asset_arrays, key, array(parts))
        partition, data_version, description, run_id = (
            get("partition"),
            get("data_version"),
            get("description"),
            get("run_id"),
        )
        metadata = get("metadata")
        tags = get("tags")
        timestamp = d["timestamp"]
        source = d["source"]
        if type(timestamp) is not int or type(source) is not dict:
            return None
        if check and (
            partition == ""
            or data_version == ""
            or (metadata and "" in metadata)
            or not TIMESTAMP_MIN_US <= timestamp <= TIMESTAMP_MAX_US
            or (type(partition) is str and unprintable(partition))
            or (type(data_version) is str and unprintable(data_version))
            or (type(run_id) is str and unprintable(run_id))
        ):
            return None  # validate_record names the field
        source_key = (source["kind"], source.get("host", ""))
        out = [
            string(d["event_id"]),
            asset_array,
            optional(partition),
            optional(data_version),
            optional(description),
            self._wire_metadata(metadata) if metadata else NONE,
            (self.checked_tags(tags) if check else self._tag_map(tags)) if tags else NONE,
            self.time(timestamp),
            self._sources.get(source_key) or self._source(*source_key),
            optional(run_id),
        ]
        if self.check:
            passed = d["passed"]
            check_name = d["check_name"]
            if type(passed) is not bool or (
                check and (type(check_name) is not str or not check_name or unprintable(check_name))
            ):
                return None
            severity = get("severity", "ERROR")
            if check and type(severity) is not str:
                return None
            out += (string(check_name), b"\x01" if passed else b"\x00", self.severities[severity])
        return message_key, b"".join(out)

    def _valid_asset(self, parts: list[str] | tuple[str, ...]) -> tuple[bytes, bytes] | None:
        if not parts or any(type(part) is not str or not part for part in parts):
            return None
        joined = "/".join(parts)
        if len(joined) > ASSET_KEY_MAX_CHARS or unprintable(joined):
            return None
        return remember(self._valid_assets, tuple(parts), (joined.encode(), array(parts)))

    def checked_tags(self, tags: Any) -> bytes:
        """The map of tags that pass ``validate_tags`` (raises for the rest)."""
        if type(tags) is not dict:
            raise TypeError("tags is not a dict")
        items = tuple(tags.items())
        encoded = self._valid_tags.get(items)
        if encoded is None:
            for k, v in items:
                if type(k) is not str or type(v) is not str:
                    raise TypeError("a tag is not a string")
            validate_tags(tags)
            encoded = remember(self._valid_tags, items, self._tag_map(tags))
        return encoded

    def _wire_metadata(self, metadata: Any) -> bytes:
        if type(metadata) is not dict:
            raise TypeError("metadata is not a dict")
        texts, numbers = self._texts, self._numbers
        out = [count(len(metadata))]
        append = out.append
        for key, entry in metadata.items():
            kind = entry["kind"]
            value = entry["value"]
            t = type(value)
            if t is str:
                cached = texts.get(key)
                if cached is not None and cached[1] == value and cached[0] == kind:
                    append(cached[2])
                else:
                    append(self._text_entry(key, kind, value))
            elif t is int or t is float or t is bool:
                head = numbers.get(key)
                if head is None or head[0] != kind or head[1] is not t:
                    head = self._number_head(key, kind, t)
                if t is int:
                    append(head[2] + (ONE[(value << 1) ^ (value >> 63)] if -64 <= value < 64 else long(value)))
                elif t is float:
                    append(head[2] + double(value))
                else:
                    append(head[2] + (b"\x01" if value else b"\x00"))
            elif type(entry) is SharedEntry:
                shared = self._shared.get(id(entry))
                if shared is None or shared[0] is not entry:
                    shared = self._share(entry)
                append((self._keys.get(key) or self._key(key)) + shared[1])
            else:
                append((self._keys.get(key) or self._key(key)) + self.entry_writer(entry, b""))
        append(NONE)
        return b"".join(out)

    def _share(self, entry: SharedEntry) -> tuple[SharedEntry, bytes]:
        shared = self._shared
        if len(shared) >= SHARED_MAX:
            shared.clear()
        encoded = shared[id(entry)] = (entry, self.entry_writer(entry, b""))
        return encoded

    def _text_entry(self, key: str, kind: str, value: str) -> bytes:
        entry = (self._keys.get(key) or self._key(key)) + self.kinds[kind] + self.branches[str] + string(value)
        remember(self._texts, key, (kind, value, entry))
        return entry

    def _number_head(self, key: str, kind: str, t: type) -> tuple[str, type, bytes]:
        return remember(
            self._numbers, key, (kind, t, (self._keys.get(key) or self._key(key)) + self.kinds[kind] + self.branches[t])
        )

    def _tag_map(self, tags: Any) -> bytes:
        if type(tags) is not dict:
            raise TypeError("tags is not a dict")
        items = tuple(tags.items())
        encoded = self._tags.get(items)
        if encoded is None:
            body = b"".join(string(k) + string(v) for k, v in items)
            encoded = remember(self._tags, items, count(len(items)) + body + NONE)
        return encoded

    def _key(self, key: str) -> bytes:
        return remember(self._keys, key, string(key))

    def _source(self, kind: str, host: str) -> bytes:
        return remember(self._sources, (kind, host), self._source_kinds[kind] + string(host))

    def source(self, kind: str, host: str) -> bytes:
        """The encoded ``EventSource`` of (kind, host)."""
        return self._sources.get((kind, host)) or self._source(kind, host)


def array(parts: Any) -> bytes:
    """An asset key's parts as an Avro array of strings."""
    if type(parts) is not list and type(parts) is not tuple:
        raise TypeError("asset key is not a list")
    if not parts:
        return NONE
    return count(len(parts)) + b"".join(string(part) for part in parts) + NONE


def _resolve(named: dict[str, Any], schema: Any) -> Any:
    return named[schema] if isinstance(schema, str) and schema in named else schema


def _is_event_layout(schema: Any) -> bool:
    """The three asset event schemas' layout, which ``EventWriter`` writes by hand."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return False
    named = schema.get("__named_schemas", {})
    fields = schema["fields"]
    names = tuple(f["name"] for f in fields)
    if names not in (BASE_FIELDS, BASE_FIELDS + CHECK_FIELDS):
        return False
    types = [_resolve(named, f["type"]) for f in fields]
    entry = _resolve(named, types[5].get("values")) if isinstance(types[5], dict) else None
    source = types[8]
    expected = (
        types[0] == "string"
        and types[1] == {"type": "array", "items": "string"}
        and all(types[i] == _OPTIONAL for i in (2, 3, 4, 9))
        and types[5].get("type") == "map"
        and types[6] == {"type": "map", "values": "string"}
        and types[7] == {"type": "long", "logicalType": "timestamp-micros"}
        and isinstance(entry, dict)
        and [f["name"] for f in entry.get("fields", ())] == ["kind", "value"]
        and isinstance(source, dict)
        and [(f["name"], avro_type(_resolve(named, f["type"]))) for f in source.get("fields", ())]
        == [("kind", "enum"), ("host", "string")]
    )
    if not expected or entry is None:
        return False
    if avro_type(_resolve(named, entry["fields"][0]["type"])) != "enum":
        return False
    union = entry["fields"][1]["type"]
    if not isinstance(union, list):
        return False
    kinds = [avro_type(_resolve(named, branch)) for branch in union]
    arrays = [_resolve(named, b) for b in union if avro_type(_resolve(named, b)) == "array"]
    if sorted(k for k in kinds if k != "record") != sorted(["null", "boolean", "long", "double", "string", "array"]):
        return False
    if arrays != [{"type": "array", "items": "string"}]:
        return False
    if len(fields) > len(BASE_FIELDS):
        check = types[10:]
        return check[0] == "string" and check[1] == "boolean" and avro_type(check[2]) == "enum"
    return True


def event_writer(schema: Any) -> Writer:
    """The writer of a parsed schema: an ``EventWriter`` for the asset event layout, else the compiled
    writer (``compile_writer``, which raises ``UnsupportedSchemaError`` where fastavro must write)."""
    generic = compile_writer(schema)
    if not _is_event_layout(schema):
        return generic
    return EventWriter(schema, generic)
