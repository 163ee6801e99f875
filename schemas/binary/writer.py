"""Avro binary encoding compiled from a parsed schema: the codec's hot path.

``compile_writer`` (here) and ``compile_reader`` (``schemas.binary_reader``) turn a parsed (fastavro)
schema into straight-line Python functions, generated once per schema, that write and read the Avro
binary encoding of one record.
fastavro interprets the schema on every call (a dispatch per field, and a validation pass per union
branch until one fits); the compiled functions know each field's type up front, which makes them several
times faster on an asset event. The bytes are the same as fastavro's: the tests compare them.

They cover what the event schemas use: records, enums, arrays, maps, unions, fixed, every primitive,
and the ``timestamp-micros`` logical type. Anything else (another logical type) raises
``UnsupportedSchemaError`` at compile time, and the codec keeps fastavro for that schema. A writer that fails
on a datum raises; the codec then lets fastavro encode it, for fastavro's rules and error messages.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro.write import LOGICAL_WRITERS

from assetpipe.schemas.errors import AssetpipeError

Writer = Callable[[Any, bytes], bytes]  # (record, prefix) -> prefix + the record's encoding
Reader = Callable[[bytes, int], tuple[Any, int]]

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_ONE_BYTE = tuple(bytes((i,)) for i in range(128))
_CONTINUED = tuple(bytes((i | 0x80,)) for i in range(128))  # a varint byte with more to follow
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TIMESTAMP_MICROS = "timestamp-micros"
_TYPE_ORDER = (str, int, float, bool, type(None), list, bytes, dict)  # most common metadata values first


class UnsupportedSchemaError(AssetpipeError):
    """The schema uses a construct the compiler does not cover; the codec keeps fastavro for it."""

    code = "unsupported_schema"


def encode_long(n: int) -> bytes:
    """Zig-zag varint, as Avro writes ``int`` and ``long``."""
    z = (n << 1) ^ (n >> 63)
    if 0 <= z < 0x80:
        return _ONE_BYTE[z]
    if 0 < z < 0x4000:
        return bytes(((z & 0x7F) | 0x80, z >> 7))
    if 0 < z < 0x200000:
        return bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80, z >> 14))
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise OverflowError(f"{n} does not fit in a 64-bit Avro long")
    return _unsigned_varint(z)


def decode_long(data: bytes, pos: int) -> tuple[int, int]:
    """-> (value, position after it)."""
    b = data[pos]
    z = b & 0x7F
    shift = 7
    pos += 1
    while b & 0x80:
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
        b = data[pos]
        z |= (b & 0x7F) << shift
        shift += 7
        pos += 1
    return (z >> 1) ^ -(z & 1), pos


def time_long() -> Callable[[int], bytes]:
    """``encode_long`` for clock readings. Consecutive readings share all but their low 14 varint bits, so
    the encoding of the rest is kept from the last call (one tuple, swapped whole: threads may share it)."""
    last_high: list[tuple[int | None, bytes]] = [(None, b"")]  # only ever holds n >> 13 >= 1

    def write(n: int) -> bytes:
        last = last_high[0]
        if n >> 13 != last[0]:  # z = 2n, so z >> 14 == n >> 13 for n >= 0
            if n < 0x2000 or n > _LONG_MAX:
                return encode_long(n)
            last = last_high[0] = (n >> 13, _unsigned_varint(n >> 13))
        z = n << 1
        return _CONTINUED[z & 0x7F] + _CONTINUED[(z >> 7) & 0x7F] + last[1]

    return write


def _unsigned_varint(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


# Byte -> the length it encodes as a one-byte varint, or -1 (a longer varint, or a negative length).
_SIZES = tuple(b >> 1 if b < 0x80 and not b & 1 else -1 for b in range(256))


def _decode_size(data: bytes, pos: int) -> tuple[int, int]:
    size, pos = decode_long(data, pos)
    if size < 0:
        raise ValueError("negative length")
    return size, pos


def _timestamp_micros(value: Any, schema: Any) -> int:
    return int(LOGICAL_WRITERS["long-timestamp-micros"](value, schema))


class SchemaCompiler:
    """Emits one Python function per named record (and one for the root), then ``exec``s them."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.ns: dict[str, Any] = {
            "_long": encode_long,
            "_time_long": time_long(),
            "_read_long": decode_long,
            "_read_size": _decode_size,
            "_sizes": _SIZES,
            "_double": struct.Struct("<d").pack,
            "_float": struct.Struct("<f").pack,
            "_read_double": struct.Struct("<d").unpack_from,
            "_read_float": struct.Struct("<f").unpack_from,
            "_ts_micros": _timestamp_micros,
            "_one": _ONE_BYTE,
            "_epoch": _EPOCH,
            "_timedelta": timedelta,
            "_datetime": datetime,
        }
        self.functions: dict[str, str] = {}
        self.sources: list[str] = []
        self._n = 0

    def const(self, value: Any) -> str:
        self._n += 1
        name = f"_c{self._n}"
        self.ns[name] = value
        return name

    def var(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in PRIMITIVES:
            if schema not in self.named:
                raise UnsupportedSchemaError(f"unknown named type {schema!r}")
            return self.named[schema]
        return schema

    def build(self) -> dict[str, Any]:
        exec("\n\n".join(self.sources), self.ns)  # source generated from the schema alone
        return self.ns


def avro_type(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, str):
        return schema
    logical = schema.get("logicalType")
    if logical is not None and not (logical == TIMESTAMP_MICROS and schema["type"] == "long"):
        raise UnsupportedSchemaError(f"logical type {logical!r}")
    return str(schema["type"]) if logical is None else TIMESTAMP_MICROS


# -- writer --------------------------------------------------------------------------------------


class _WriterCompiler(SchemaCompiler):
    def __init__(self, named: dict[str, Any]) -> None:
        super().__init__(named)
        self.inlining: list[str] = []

    def record_function(self, schema: Any) -> str:
        name = schema["name"]
        if name in self.functions:
            return self.functions[name]
        fn = self.functions[name] = self.var("_w_")
        body = self.record_body(schema, "d", "    ")
        self.sources.append("\n".join([f"def {fn}(d, _w):", *body, "    pass"]))
        return fn

    def record_body(self, schema: Any, d: str, ind: str) -> list[str]:
        self.inlining.append(schema["name"])
        lines = []
        for field in schema["fields"]:
            value = self.var("v")
            if "default" in field:
                lines.append(f"{ind}{value} = {d}.get({field['name']!r}, {self.const(field['default'])})")
            else:
                lines.append(f"{ind}{value} = {d}[{field['name']!r}]")
            lines += self.emit(field["type"], value, ind)
        self.inlining.pop()
        return lines

    def length(self, size: str, v: str, ind: str) -> list[str]:
        # Lengths under 64 are one byte: a table lookup instead of a call.
        return [f"{ind}{size} = len({v})", f"{ind}_w(_one[{size} << 1] if {size} < 64 else _long({size}))"]

    def emit(self, schema: Any, v: str, ind: str) -> list[str]:
        """Statements that append the encoding of expression ``v`` (a local name) to ``out``."""
        schema = self.resolve(schema)
        kind = avro_type(schema)
        if kind == "null":
            return [f"{ind}if {v} is not None: raise TypeError('expected null, got %r' % ({v},))"]
        if kind == "boolean":
            return [f"{ind}_w(b'\\x01' if {v} else b'\\x00')"]
        if kind in ("int", "long"):
            return [f"{ind}_w(_long({v}))"]
        if kind == TIMESTAMP_MICROS:
            schema_const = self.const(schema)
            return [
                f"{ind}_w(_time_long({v} if type({v}) is int else _ts_micros({v}, {schema_const})))",
            ]
        if kind == "float":
            return [f"{ind}_w(_float({v}))"]
        if kind == "double":
            return [f"{ind}_w(_double({v}))"]
        if kind == "string":
            raw, size = self.var("s"), self.var("n")
            return [f"{ind}{raw} = {v}.encode()", *self.length(size, raw, ind), f"{ind}_w({raw})"]
        if kind == "bytes":
            size = self.var("n")
            return [*self.length(size, v, ind), f"{ind}_w({v})"]
        if kind == "fixed":
            width = int(schema["size"])
            return [f"{ind}if len({v}) != {width}: raise ValueError('fixed size {width}')", f"{ind}_w({v})"]
        if kind == "enum":
            table = self.const({s: encode_long(i) for i, s in enumerate(schema["symbols"])})
            return [f"{ind}_w({table}[{v}])"]
        if kind == "record":
            if schema["name"] in self.inlining:  # recursive: a function calls itself
                return [f"{ind}{self.record_function(schema)}({v}, _w)"]
            return self.record_body(schema, v, ind)
        if kind in ("array", "map"):
            item = self.var("i")
            lines = [f"{ind}if {v}:", f"{ind}    _w(_one[len({v}) << 1] if len({v}) < 64 else _long(len({v})))"]
            if kind == "array":
                lines.append(f"{ind}    for {item} in {v}:")
            else:
                key = self.var("k")
                lines.append(f"{ind}    for {key}, {item} in {v}.items():")
                lines += self.emit("string", key, ind + "        ")
            lines += self.emit(schema["items" if kind == "array" else "values"], item, ind + "        ")
            lines.append(f"{ind}_w(b'\\x00')")
            return lines
        if kind == "union":
            return self.emit_union(schema, v, ind)
        raise UnsupportedSchemaError(f"type {kind!r}")

    def emit_union(self, branches: list[Any], v: str, ind: str) -> list[str]:
        kinds = [avro_type(self.resolve(b)) for b in branches]
        if len(branches) == 2 and "null" in kinds:  # an optional value: the common case
            null = kinds.index("null")
            other = 1 - null
            resolved = self.resolve(branches[other])
            name = resolved["name"] if kinds[other] in ("record", "enum", "fixed") else kinds[other]
            lines = [
                f"{ind}if {v} is None:",
                f"{ind}    _w({encode_long(null)!r})",
                f"{ind}else:",
                f"{ind}    if type({v}) is tuple:",  # tuple notation: (branch name, value)
                f"{ind}        if {v}[0] != {name!r}: raise TypeError('no union branch named %r' % ({v}[0],))",
                f"{ind}        {v} = {v}[1]",
                f"{ind}    _w({encode_long(other)!r})",
            ]
            return lines + self.emit(branches[other], v, ind + "    ")
        # Tuple notation (branch name, value) picks a branch by name; otherwise the value's exact Python
        # type does, for the types that map to one branch. Anything else raises: fastavro decides.
        python_types: dict[str, tuple[type, ...]] = {
            "string": (str,), "long": (int,), "int": (int,), "double": (float,), "float": (float,),
            "boolean": (bool,), "null": (type(None),), "bytes": (bytes,), "array": (list,), "map": (dict,),
        }  # fmt: skip
        by_name: dict[str, int] = {}
        by_type: dict[type, int] = {}
        for index, (branch, kind) in enumerate(zip(branches, kinds, strict=True)):
            resolved = self.resolve(branch)
            by_name.setdefault(resolved["name"] if kind in ("record", "enum", "fixed") else kind, index)
            for python_type in python_types.get(kind, ()):
                by_type.setdefault(python_type, index)
        if "map" in kinds or "record" in kinds:
            by_type.pop(dict, None)  # a dict could be either: only tuple notation decides
        t = self.var("t")
        lines = [f"{ind}{t} = type({v})"]
        for python_type, index in sorted(by_type.items(), key=lambda item: _TYPE_ORDER.index(item[0])):
            lines.append(f"{ind}{'if' if len(lines) == 1 else 'elif'} {t} is {self.const(python_type)}:")
            lines.append(f"{ind}    _w({encode_long(index)!r})")
            lines += self.emit(branches[index], v, ind + "    ")
        index_var = self.var("u")
        lines += [
            f"{ind}{'if' if len(lines) == 1 else 'elif'} {t} is tuple:",
            f"{ind}    {index_var} = {self.const(by_name)}[{v}[0]]",
            f"{ind}    {v} = {v}[1]",
            f"{ind}    _w({self.const(tuple(encode_long(i) for i in range(len(branches))))}[{index_var}])",
        ]
        for index, branch in enumerate(branches):
            lines.append(f"{ind}    {'if' if index == 0 else 'elif'} {index_var} == {index}:")
            lines += self.emit(branch, v, ind + "        ")
        lines.append(f"{ind}else:")
        lines.append(f"{ind}    raise TypeError('no union branch for %r' % ({t},))")
        return lines


def compile_writer(schema: Any) -> Writer:
    """``writer(record, prefix=b"") -> bytes``: ``prefix`` (a message header) followed by the Avro
    binary body of ``record`` under the parsed ``schema``."""
    compiler = _WriterCompiler(dict(schema.get("__named_schemas", {})))
    root = compiler.record_function(schema) if avro_type(schema) == "record" else None
    if root is None:
        raise UnsupportedSchemaError("the root of an event schema is a record")
    compiler.sources.append(
        f"def write(d, prefix=b''):\n    out = [prefix]\n    {root}(d, out.append)\n    return b''.join(out)"
    )
    return compiler.build()["write"]  # type: ignore[no-any-return]
