"""A report written from its arguments: the SDK's hot path, with no record in between.

``ReportWriter(writer, ...).report(asset_key, partition, ...)`` builds, checks and writes one event of
``writer``'s type in one pass, to the bytes the general path (``build_record``, ``validate_fields``, the
codec) would give it. It takes only what that path accepts, so it raises nothing: anything unusual or
invalid returns None, and the caller goes the general way, which raises the same errors as ever.
Metadata keys with their heads, the last text of each key and asset keys are cached here, checked tag
maps by the ``EventWriter``; each cache is bounded by ``CACHE_MAX`` and keyed by exact values. Numbers
are written afresh every time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from assetpipe.schemas.asset_key import AssetKey
from assetpipe.schemas.binary.event import (
    NONE,
    ONE,
    VARINT_LAST,
    VARINT_PAIRS,
    EventWriter,
    array,
    count,
    double,
    long,
    optional,
    remember,
    string,
)
from assetpipe.schemas.errors import ValidationError
from assetpipe.schemas.metadata import INT64_MAX, INT64_MIN, STRING_KINDS, MetadataValue, normalize, to_wire
from assetpipe.schemas.model import DATA_VERSION_TAG, LOGICAL_VERSION_TAG, event_id_for, new_event_id
from assetpipe.schemas.validation import ASSET_KEY_MAX_CHARS, unprintable

# (asset key, partition, data version, description, metadata, tags, idempotency key, check name, passed,
# severity) -> (event id, message key, message value), or None for the general path.
Report = Callable[..., "tuple[str, bytes, bytes] | None"]


def _none(*_args: Any) -> None:
    return None


class _Declined(Exception):
    """A report this writer leaves to its fallback."""


class ReportWriter:
    """Build, check and write one report in one pass. Accepts only what the general path (``build_record``,
    ``validate_fields``, the codec) accepts, and writes the same bytes; anything else goes to its fallback."""

    __slots__ = ("_assets", "_bools", "_check", "_checked_tags", "_event_type", "_fallback", "_floats", "_header",
                 "_heads", "_ints", "_labels", "_max", "_seen", "_severities", "_shapes", "_source", "_texts", "_time",
                 "_writer", "report")  # fmt: skip

    def __init__(
        self,
        writer: EventWriter,
        event_type: str,
        header: bytes,
        source: bytes,
        max_bytes: int,
        fallback: Report | None = None,
    ) -> None:
        """``fallback`` takes, with the same arguments, every report this writer does not write itself (the
        encoder's general path); without one, such a report answers None."""
        self._writer = writer
        self._fallback: Report = fallback or _none
        self._event_type = event_type
        self._header = header
        self._source = source
        self._max = max_bytes
        self._check = writer.check
        self._checked_tags = writer.checked_tags
        self._severities = writer.severities if writer.check else {}
        self._time = writer.time
        kinds, branches = writer.kinds, writer.branches
        self._ints = kinds["int"] + branches[int]
        self._floats = kinds["float"] + branches[float]
        self._bools = (kinds["bool"] + branches[bool] + b"\x00", kinds["bool"] + branches[bool] + b"\x01")
        # Bounded caches. An asset key string -> (message key, the array's encoding, the key string).
        self._assets: dict[str, tuple[bytes, bytes, str]] = {}
        # A metadata key -> (its encoding, head of an int entry, of a float entry, (false entry, true entry)).
        self._heads: dict[str, tuple[bytes, bytes, bytes, tuple[bytes, bytes]]] = {}
        self._texts: dict[str, tuple[str, str, bytes]] = {}  # a metadata key -> (kind, last string, its entry)
        self._labels: dict[str, bytes] = {}  # a partition -> its encoding
        # Metadata keys in order -> the writer of their values (``_shape_writer``), and keys seen once.
        self._shapes: dict[tuple[str, ...], Callable[..., bytes | None]] = {}
        self._seen: dict[tuple[str, ...], None] = {}
        self.report: Report = self._report

    def _report(
        self,
        asset_key: Any,
        partition: Any = None,
        data_version: Any = None,
        description: Any = None,
        metadata: Any = None,
        tags: Any = None,
        idempotency_key: Any = None,
        check_name: Any = None,
        passed: Any = None,
        severity: Any = "ERROR",
    ) -> tuple[str, bytes, bytes] | None:
        # Whatever this writer does not write itself (``_Declined``, raised at no cost to the reports it
        # writes) goes to the fallback with the same arguments: the general path, which raises what it raises.
        try:
            asset = self._assets.get(asset_key) if type(asset_key) is str else None
            if asset is None:
                asset = self._asset(asset_key)
                if asset is None:
                    raise _Declined
            p: bytes | None
            if partition is None:
                p = NONE
            else:
                p = self._labels.get(partition) if type(partition) is str else None
                if p is None:
                    p = self._label(partition)
                    if p is None:
                        raise _Declined  # validate_fields names the field
            if data_version is None:
                v = NONE
            elif type(data_version) is str and data_version and unprintable(data_version) is None:
                v = optional(data_version)  # often a hash, new with every report: not kept
            else:
                raise _Declined
            if description is None:
                d = NONE
            elif type(description) is str:
                d = optional(description)
            else:
                raise _Declined
            if metadata:
                m = self._metadata(metadata)
                if m is None:
                    raise _Declined
            else:
                m = NONE
            if tags:
                t = self._tag_map(tags)
                if t is None:
                    raise _Declined
            else:
                t = NONE
            now = time.time_ns() // 1000
            if idempotency_key is None:
                event_id = new_event_id(now // 1000)
            elif type(idempotency_key) is str:
                event_id = event_id_for(self._event_type, asset[2], idempotency_key)
            else:
                raise _Declined
            # The header, the length of a canonical UUID (36) and the id, ..., no run_id (a report has none).
            time_ = self._time(now)
            fields: tuple[bytes, ...] = (self._header, b"\x48", event_id.encode(), asset[1], p, v, d, m, t, time_,
                                         self._source, NONE)  # fmt: skip
            if self._check:
                if type(check_name) is not str or not check_name or type(passed) is not bool or unprintable(check_name):
                    raise _Declined
                code = self._severities.get(severity) if type(severity) is str else None
                if code is None:
                    raise _Declined
                fields += (string(check_name), b"\x01" if passed else b"\x00", code)
            value = b"".join(fields)
            if len(value) + len(asset[0]) > self._max:  # the whole message counts: its key too
                raise _Declined
            return event_id, asset[0], value
        except _Declined:
            return self._fallback(
                asset_key,
                partition,
                data_version,
                description,
                metadata,
                tags,
                idempotency_key,
                check_name,
                passed,
                severity,
            )

    def _label(self, label: Any) -> bytes | None:
        """The encoding of a partition that ``validate_fields`` accepts (a non-empty string), kept for
        the next report (partitions repeat: a day's, a region's); None for any other value."""
        if type(label) is not str or not label or unprintable(label):
            return None
        return remember(self._labels, label, optional(label))

    def _metadata(self, metadata: Any) -> bytes | None:
        """The metadata map: by the writer of its keys' shape where there is one and its values fit it,
        else entry by entry (``_entries``), which makes that writer the second time a shape comes."""
        if type(metadata) is not dict:
            return None
        shape = tuple(metadata)
        write = self._shapes.get(shape)
        if write is not None:
            encoded = write(*metadata.values())
            if encoded is not None:
                return encoded
        encoded = self._entries(metadata)
        if encoded is not None and write is None and len(shape) <= SHAPE_MAX:
            if shape in self._seen:
                made = self._shape_writer(metadata)
                if made is not None:
                    remember(self._shapes, shape, made)
            else:
                remember(self._seen, shape, None)
        return encoded

    def _shape_writer(self, metadata: dict[str, Any]) -> Callable[..., bytes | None] | None:
        """The writer of ``metadata``'s shape: its keys in order, each with the type of its value (an int,
        a float, a bool, text, or a ``MetadataValue`` of a string kind). None for other values."""
        signature = []
        constants: list[Any] = []
        for key, raw in metadata.items():
            head = self._heads.get(key) or self._head(key)
            if head is None:
                return None
            t = type(raw)
            if t is int:
                signature.append("i")
                constants.append(head[1])
            elif t is float:
                signature.append("f")
                constants.append(head[2])
            elif t is bool:
                signature.append("b")
                constants.append(head[3])
            elif t is str or (t is MetadataValue and raw.kind in STRING_KINDS and type(raw.value) is str):
                kind = "text" if t is str else raw.kind
                signature.append("s" if t is str else "m")
                text_head = head[0] + self._writer.kinds[kind] + self._writer.branches[str]
                constants.append((kind, *_text_cell(text_head)))
            else:
                return None
        return _shape_factory("".join(signature))(count(len(metadata)), *constants)

    def _entries(self, metadata: dict[Any, Any]) -> bytes | None:
        heads, texts = self._heads, self._texts
        out = [count(len(metadata))]
        append = out.append
        for key, raw in metadata.items():
            t = type(raw)
            if t is str:
                cached = texts.get(key)
                if cached is not None and cached[1] == raw and cached[0] == "text":
                    append(cached[2])
                    continue
            elif t is MetadataValue:
                cached = texts.get(key)
                if cached is not None and cached[1] == raw.value and cached[0] == raw.kind and type(raw.value) is str:
                    append(cached[2])
                    continue
            head = heads.get(key)
            if head is None:
                head = self._head(key)
                if head is None:
                    return None
            if t is int:
                if -64 <= raw < 64:
                    append(head[1] + ONE[(raw << 1) ^ (raw >> 63)])
                elif INT64_MIN <= raw <= INT64_MAX:
                    append(head[1] + long(raw))
                else:
                    return None
            elif t is float:
                append(head[2] + double(raw))
            elif t is bool:
                append(head[3][raw])
            elif t is str:
                append(self._text(key, head[0], "text", raw))
            else:
                entry = self._other(key, head[0], raw)
                if entry is None:
                    return None
                append(entry)
        append(NONE)
        return b"".join(out)

    def _head(self, key: Any) -> tuple[bytes, bytes, bytes, tuple[bytes, bytes]] | None:
        if type(key) is not str or not key:
            return None
        k = string(key)
        bools = (k + self._bools[0], k + self._bools[1])
        return remember(self._heads, key, (k, k + self._ints, k + self._floats, bools))

    def _other(self, key: str, encoded_key: bytes, raw: Any) -> bytes | None:
        """The entry of any other value: typed strings (url, path, ...) are cached per key with their
        value, as text is; the rest is normalized and written as the general path would."""
        if type(raw) is MetadataValue and raw.kind in STRING_KINDS and type(raw.value) is str:
            return self._text(key, encoded_key, raw.kind, raw.value)
        try:
            return encoded_key + self._writer.entry_writer(to_wire(key, normalize(key, raw)), b"")
        except Exception:  # the general path raises it, with its message
            return None

    def _text(self, key: str, encoded_key: bytes, kind: str, value: str) -> bytes:
        """The entry of a string of ``kind`` (text, url, ...), kept as the last one of ``key``."""
        writer = self._writer
        entry = encoded_key + writer.kinds[kind] + writer.branches[str] + string(value)
        remember(self._texts, key, (kind, value, entry))
        return entry

    def _tag_map(self, tags: Any) -> bytes | None:
        """The encoding of valid tags (``EventWriter.checked_tags``, which caches them); None otherwise, and
        for tags holding a data version, which the general path makes the event's (``tagged_data_version``)."""
        try:
            if DATA_VERSION_TAG in tags or LOGICAL_VERSION_TAG in tags:
                return None
            return self._checked_tags(tags)
        except (TypeError, ValidationError):
            return None

    def _asset(self, asset_key: Any) -> tuple[bytes, bytes, str] | None:
        """A valid asset key (``a/b``, a list or tuple of non-empty strings, an ``AssetKey``) -> (message
        key, the array's encoding, the key string)."""
        if type(asset_key) is str:
            parts: Any = asset_key.split("/")
        elif type(asset_key) is list or type(asset_key) is tuple:
            parts = asset_key
        elif type(asset_key) is AssetKey:
            parts = asset_key.path
        else:
            return None
        if not parts or any(type(part) is not str or not part for part in parts):
            return None
        joined = "/".join(parts)
        if len(joined) > ASSET_KEY_MAX_CHARS or unprintable(joined):
            return None
        asset = (joined.encode(), array(parts), joined)
        if type(asset_key) is str:
            remember(self._assets, asset_key, asset)
        return asset


SHAPE_MAX = 32  # metadata of more entries is written entry by entry
_FACTORIES: dict[str, Callable[..., Callable[..., bytes | None]]] = {}  # signature -> its factory


def _text_cell(head: bytes) -> tuple[list[tuple[str | None, bytes]], Callable[[str], bytes]]:
    """The last string of one entry with its encoding (one tuple in a list, swapped whole: threads may
    share it), and the function that encodes a new string after ``head`` and keeps it there."""
    cell: list[tuple[str | None, bytes]] = [(None, b"")]

    def text(value: str) -> bytes:
        entry = head + string(value)
        cell[0] = (value, entry)
        return entry

    return cell, text


def _shape_factory(signature: str) -> Callable[..., Callable[..., bytes | None]]:
    """Straight-line code for metadata whose values have the types of ``signature``, a letter per entry:
    ``i`` int, ``f`` float, ``b`` bool, ``s`` text, ``m`` a ``MetadataValue`` of a string kind. The
    factory takes the map's count, then per entry its constant: the head of a number entry, the (false,
    true) entries of a bool, (kind, cell, encoder) of a string (``_text_cell``). Its function takes the
    values and returns the map's encoding, or None where one does not fit (the caller goes entry by entry).
    The source is built from the signature alone, never from a key or a value."""
    factory: Callable[..., Callable[..., bytes | None]] | None = _FACTORIES.get(signature)
    if factory is not None:
        return factory
    names = [f"c{i}" for i in range(len(signature))]
    checks, prelude, parts = [], [], ["COUNT"]
    for i, letter in enumerate(signature):
        v = f"v{i}"
        if letter == "i":  # a varint of up to four bytes (|value| < 2**27) inline, else ``long``
            checks.append(f"type({v}) is not int or not MIN <= {v} <= MAX")
            z = f"z{i}"
            parts += [names[i], f"(LAST[{z}] if ({z} := ({v} << 1) ^ ({v} >> 63)) < 0x4000 else PAIRS[{z} & 0x3FFF] + "
                                f"LAST[{z} >> 14] if {z} < 0x10000000 else long({v}))"]  # fmt: skip
        elif letter == "f":
            checks.append(f"type({v}) is not float")
            parts += [names[i], f"double({v})"]
        elif letter == "b":
            checks.append(f"type({v}) is not bool")
            parts.append(f"{names[i]}[{v}]")
        else:
            if letter == "m":
                checks.append(f"type({v}) is not MV or {v}.kind != {names[i]}[0] or type({v}.value) is not str")
                prelude.append(f"        {v} = {v}.value")
            else:
                checks.append(f"type({v}) is not str")
            prelude.append(f"        last{i} = {names[i]}[1][0]")
            parts.append(f"(last{i}[1] if {v} == last{i}[0] else {names[i]}[2]({v}))")
    args = ", ".join(f"v{i}" for i in range(len(signature)))
    source = "\n".join([
        f"def factory(COUNT, {', '.join(names)}):",
        f"    def write({args}):",
        f"        if {' or '.join(f'({c})' for c in checks)}:",
        "            return None",
        *prelude,
        f"        return b''.join(({', '.join(parts)}, END))",
        "    return write",
    ])  # fmt: skip
    namespace: dict[str, Any] = {"MIN": INT64_MIN, "MAX": INT64_MAX, "MV": MetadataValue, "long": long,
                                 "LAST": VARINT_LAST, "PAIRS": VARINT_PAIRS, "double": double, "END": NONE}  # fmt: skip
    exec(source, namespace)  # generated from the signature alone
    factory = namespace["factory"]
    return remember(_FACTORIES, signature, factory)
