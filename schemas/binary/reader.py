"""The compiled Avro reader: ``compile_reader`` turns a parsed schema into a function that reads one
record's binary encoding, the same record fastavro reads (see ``schemas.binary``)."""

from __future__ import annotations

from typing import Any

from assetpipe.schemas.binary.writer import TIMESTAMP_MICROS, Reader, SchemaCompiler, UnsupportedSchemaError, avro_type

_READ_ORDER = {"null": 0, "string": 1, "long": 2, "double": 3, "boolean": 4}  # test the common branches first


class _ReaderCompiler(SchemaCompiler):
    def __init__(self, named: dict[str, Any], *, micros_as_int: bool) -> None:
        super().__init__(named)
        self.micros_as_int = micros_as_int
        self.inlining: list[str] = []

    def record_function(self, schema: Any) -> str:
        name = schema["name"]
        if name in self.functions:
            return self.functions[name]
        fn = self.functions[name] = self.var("_r_")
        result = self.var("r")
        lines = [f"def {fn}(b, p, n):", *self.record_body(schema, result, "    "), f"    return {result}, p"]
        self.sources.append("\n".join(lines))
        return fn

    def record_body(self, schema: Any, v: str, ind: str) -> list[str]:
        """Statements that read the record's fields, then build the dict in local ``v``."""
        self.inlining.append(schema["name"])
        lines = []
        values = []
        for field in schema["fields"]:
            value = self.var("v")
            lines += self.emit(field["type"], value, ind)
            values.append(f"{field['name']!r}: {value}")
        self.inlining.pop()
        return [*lines, f"{ind}{v} = {{{', '.join(values)}}}"]

    def read_long(self, target: str, ind: str) -> list[str]:
        # One-byte varints (small values, most lengths) skip the call.
        return [
            f"{ind}{target} = b[p]",
            f"{ind}if {target} < 0x80:",
            f"{ind}    {target} = ({target} >> 1) ^ -({target} & 1)",
            f"{ind}    p += 1",
            f"{ind}else:",
            f"{ind}    {target}, p = _read_long(b, p)",
        ]

    def read_size(self, target: str, ind: str) -> list[str]:
        # A length under 64 is one even byte: a table gives it; anything else takes the call.
        return [
            f"{ind}{target} = _sizes[b[p]]",
            f"{ind}if {target} < 0:",
            f"{ind}    {target}, p = _read_size(b, p)",
            f"{ind}else:",
            f"{ind}    p += 1",
        ]

    def emit(self, schema: Any, v: str, ind: str) -> list[str]:
        """Statements that read one value into local ``v``, advancing ``p`` (``n`` = data length)."""
        schema = self.resolve(schema)
        kind = avro_type(schema)
        if kind == "null":
            return [f"{ind}{v} = None"]
        if kind == "boolean":
            return [f"{ind}{v} = b[p] != 0", f"{ind}p += 1"]
        if kind in ("int", "long"):
            return self.read_long(v, ind)
        if kind == TIMESTAMP_MICROS:
            lines = self.read_long(v, ind)
            if not self.micros_as_int:
                lines.append(f"{ind}{v} = _epoch + _timedelta(microseconds={v})")
            return lines
        if kind in ("float", "double"):
            size = 4 if kind == "float" else 8
            return [f"{ind}{v} = _read_{kind}(b, p)[0]", f"{ind}p += {size}"]
        if kind in ("string", "bytes"):
            end = self.var("e")
            lines = self.read_size(end, ind)
            lines += [
                f"{ind}{end} += p",
                f"{ind}if {end} > n: raise ValueError('length past the end of the data')",
                f"{ind}{v} = b[p:{end}]{'.decode()' if kind == 'string' else ''}",
                f"{ind}p = {end}",
            ]
            return lines
        if kind == "fixed":
            size = int(schema["size"])
            return [
                f"{ind}if p + {size} > n: raise ValueError('fixed past the end of the data')",
                f"{ind}{v} = b[p:p + {size}]",
                f"{ind}p += {size}",
            ]
        if kind == "enum":
            # An index under 64 is one byte; the raw byte picks the symbol (KeyError if it is no index).
            symbols = self.const(dict(zip((2 * i for i in range(64)), schema["symbols"], strict=False)))
            if len(schema["symbols"]) > 64:
                raise UnsupportedSchemaError("an enum of more than 64 symbols")
            return [f"{ind}{v} = {symbols}[b[p]]", f"{ind}p += 1"]
        if kind == "record":
            if schema["name"] in self.inlining:  # recursive: a function calls itself
                return [f"{ind}{v}, p = {self.record_function(schema)}(b, p, n)"]
            return self.record_body(schema, v, ind)
        if kind in ("array", "map"):
            return self.emit_container(schema, kind, v, ind)
        if kind == "union":
            if len(schema) > 64:
                raise UnsupportedSchemaError("a union of more than 64 branches")
            index = self.var("x")
            lines = [f"{ind}{index} = b[p]", f"{ind}p += 1"]  # the raw byte: branch i is written 2 * i
            order = sorted(range(len(schema)), key=lambda i: _READ_ORDER.get(avro_type(self.resolve(schema[i])), 9))
            for rank, i in enumerate(order):
                lines.append(f"{ind}{'if' if rank == 0 else 'elif'} {index} == {2 * i}:")
                lines += self.emit(schema[i], v, ind + "    ")
            lines.append(f"{ind}else: raise ValueError('bad union index')")
            return lines
        raise UnsupportedSchemaError(f"type {kind!r}")

    def emit_container(self, schema: Any, kind: str, v: str, ind: str) -> list[str]:
        count, item, skip = self.var("c"), self.var("i"), self.var("z")
        lines = [f"{ind}{v} = {'[]' if kind == 'array' else '{}'}", *self.read_long(count, ind)]
        lines.append(f"{ind}while {count}:")
        inner = ind + "    "
        lines += [
            f"{inner}if {count} < 0:",  # a negative count is followed by the block's size in bytes
            f"{inner}    {count} = -{count}",
            *self.read_long(skip, inner + "    "),
            f"{inner}for _ in range({count}):",
        ]
        if kind == "array":
            lines += self.emit(schema["items"], item, inner + "    ")
            lines.append(f"{inner}    {v}.append({item})")
        else:
            key = self.var("k")
            lines += self.emit("string", key, inner + "    ")
            lines += self.emit(schema["values"], item, inner + "    ")
            lines.append(f"{inner}    {v}[{key}] = {item}")
        lines += self.read_long(count, inner)
        return lines


def compile_reader(schema: Any, *, micros_as_int: bool = False) -> Reader:
    """``reader(data, pos) -> (record, end)``: read one record written with the parsed ``schema``.

    ``timestamp-micros`` values come back as UTC datetimes, as fastavro gives them, or with
    ``micros_as_int`` as the integer microseconds on the wire.
    """
    compiler = _ReaderCompiler(dict(schema.get("__named_schemas", {})), micros_as_int=micros_as_int)
    if avro_type(schema) != "record":
        raise UnsupportedSchemaError("the root of an event schema is a record")
    root = compiler.record_function(schema)
    compiler.sources.append(f"def read(b, p):\n    return {root}(b, p, len(b))")
    return compiler.build()["read"]  # type: ignore[no-any-return]
