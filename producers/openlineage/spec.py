"""The OpenLineage JSON schema, as the ``openlineage-python`` package models it, compiled once.

The package's model (``openlineage.client.generated``) is generated from the specification's JSON
files: one attrs class per definition, each field typed, defaulted when optional, with a validator where
the specification gives a format (a run id is a UUID, an event time an ISO 8601 date-time with a time).
``event_schema`` turns those classes back into a JSON schema, one definition each: a field without a
default is required, and so is one that the package always fills in (``producer``, ``schemaURL``, a
facet's ``_producer`` and ``_schemaURL``); every object stays open to properties the package does not
know, as the specification's are; a field's own validator is its format. fastjsonschema compiles it to
Python code once per process.

Facets are checked by the ``_schemaURL`` they carry: one that names a facet the package models (its file
and definition, any version) is checked against that facet's schema; any other is a custom facet, kept
with only the base facet's fields checked. ``required`` facets are checked by the key they sit under,
whatever they claim, since the translation reads them by key.
"""

from __future__ import annotations

import enum
import functools
import importlib
import pkgutil
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attr
import jsonschema_rs
import openlineage.client.generated as generated
from openlineage.client.generated import base

from assetpipe.schemas.errors import FieldError

EVENT_KINDS = ("RunEvent", "DatasetEvent", "JobEvent")
SPEC_VERSION = base.BaseEvent._get_schema().split("/spec/")[1].split("/")[0]  # "2-0-2"
_FACET_BASES = (base.RunFacet, base.JobFacet, base.DatasetFacet, base.InputDatasetFacet, base.OutputDatasetFacet)
_PRIMITIVES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    Any: {},
}


def _definition_name(cls: type) -> str:
    """``SchemaDatasetFacet`` from ``.../SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet``."""
    get = getattr(cls, "_get_schema", None)
    if get is None:  # a structure inside a facet (an assertion, a column's metrics): named by its module
        return f"{cls.__module__.rpartition('.')[2]}.{cls.__name__}"
    url: str = get()
    file, _, definition = _schema_file(url).partition("#")
    return definition if file == "OpenLineage.json" or file == f"{definition}.json" else f"{file[:-5]}.{definition}"


def _schema_file(url: str) -> str:
    """The file and definition a schema URL names, without its version: ``SchemaDatasetFacet.json#...``."""
    path, _, fragment = url.partition("#")
    return path.rpartition("/")[2] + "#" + fragment.rpartition("/")[2]


def _modules() -> Iterator[types.ModuleType]:
    for info in pkgutil.iter_modules(generated.__path__):
        yield importlib.import_module(f"{generated.__name__}.{info.name}")


def _namespace() -> dict[str, Any]:
    """Every name of the generated modules, to resolve their string annotations."""
    names: dict[str, Any] = {}
    for module in _modules():
        names.update(vars(module))
    return names


def facet_classes() -> dict[str, type]:
    """Every facet the package models, by the file and definition of its schema URL."""
    found: dict[str, type] = {}
    for module in _modules():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, _FACET_BASES) and value not in _FACET_BASES:
                found[_schema_file(value._get_schema())] = value
    return found


def _always_written(cls: type) -> set[str]:
    """The optional fields an instance of ``cls`` always has filled in (the package sets them itself)."""
    if not issubclass(cls, (base.BaseFacet, base.BaseEvent)):
        return set()
    probe = base.BaseFacet() if issubclass(cls, base.BaseFacet) else base.RunEvent(
        eventTime="2000-01-01T00:00:00Z", run=base.Run("00000000-0000-0000-0000-000000000000"), job=base.Job("n", "n")
    )  # fmt: skip
    names = {f.name for f in attr.fields(type(probe))}
    return {f.name for f in attr.fields(cls) if f.name in names and getattr(probe, f.name)}


class _Builder:
    """Definitions for classes and their fields, and the format checks their validators make."""

    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}
        self.formats: dict[str, Callable[[Any], bool]] = {}
        self._names = _namespace()

    def definition(self, cls: type) -> dict[str, Any]:
        name = _definition_name(cls)
        if name not in self.definitions:
            self.definitions[name] = {}  # placed first: a recursive field refers to it
            hints = typing.get_type_hints(
                cls, globalns={**self._names, **vars(importlib.import_module(cls.__module__))}
            )
            properties: dict[str, Any] = {}
            required: list[str] = []
            filled = _always_written(cls)
            for field in attr.fields(cls):
                schema = self.of_type(hints[field.name])
                if field.validator is not None:
                    schema = {**schema, "format": self._format(cls, field)}
                properties[field.name] = schema
                if field.default is attr.NOTHING or field.name in filled:
                    required.append(field.name)
            self.definitions[name] = {"type": "object", "properties": properties, "required": required}
        return {"$ref": f"#/definitions/{name}"}

    def of_type(self, hint: Any) -> dict[str, Any]:
        if hint in _PRIMITIVES:
            return _PRIMITIVES[hint]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            present = [a for a in args if a is not type(None)]
            # optional fields are left out, never null, on the wire (the package's serde drops None)
            return self.of_type(present[0]) if len(present) == 1 else {"anyOf": [self.of_type(a) for a in present]}
        if origin is typing.Literal:
            return {"enum": list(args)}
        if origin is list:
            return {"type": "array", "items": self.of_type(args[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.of_type(args[1])}
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            return {"enum": [member.value for member in hint]}
        if isinstance(hint, type) and attr.has(hint):
            if issubclass(hint, _FACET_BASES):
                hint = next(b for b in hint.__mro__ if b in _FACET_BASES)  # facets: by their own schema, later
            return self.definition(hint)
        raise TypeError(f"no JSON schema for {hint!r}")

    def _format(self, cls: type, field: attr.Attribute[Any]) -> str:
        name = f"{_definition_name(cls)}.{field.name}"
        validator = field.validator

        def check(value: Any) -> bool:
            try:
                validator(None, field, value)  # type: ignore[misc]
            except (ValueError, TypeError, OverflowError):
                return False
            return True

        self.formats[name] = check
        return name


def class_schema(cls: type) -> tuple[dict[str, Any], dict[str, Callable[[Any], bool]]]:
    """The JSON schema of the package's class ``cls`` (a facet, a structure) and its format checks."""
    builder = _Builder()
    builder.definition(cls)
    root = builder.definitions[_definition_name(cls)]
    return {"definitions": builder.definitions, **root}, builder.formats


def event_schema(
    kind: str, required: Mapping[tuple[str, str], type] | None = None
) -> tuple[dict[str, Any], dict[str, Callable[[Any], bool]]]:
    """The JSON schema of an event of ``kind`` (one of ``EVENT_KINDS``), its facets dispatched by
    ``_schemaURL``, and its format checks. ``required``: (slot, key) -> the facet class the key must hold,
    a slot being ``run``, ``job``, ``facets`` (a dataset's), ``inputFacets`` or ``outputFacets``."""
    builder = _Builder()
    root = builder.definition(getattr(base, kind))
    classes = facet_classes()
    for cls in classes.values():
        builder.definition(cls)
    for slot_base in _FACET_BASES:  # a facet naming a modelled schema is checked against it
        builder.definition(slot_base)
        name = _definition_name(slot_base)
        dispatch = [
            {
                "if": {"properties": {"_schemaURL": {"type": "string", "pattern": _url_pattern(file)}},
                       "required": ["_schemaURL"]},
                "then": {"$ref": f"#/definitions/{_definition_name(cls)}"},
            }
            for file, cls in classes.items()
            if issubclass(cls, slot_base)
        ]  # fmt: skip
        builder.definitions[name] = {"allOf": [builder.definitions[name], *dispatch]}
    for (slot, key), cls in (required or {}).items():
        for holder, prop in _holders(builder.definitions, slot):
            facets = builder.definitions[holder]["properties"][prop]
            facets.setdefault("properties", {})[key] = builder.definition(cls)
    return {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": builder.definitions, **root}, {
        name: _memoized(check) for name, check in builder.formats.items()
    }


_SLOT_PROPERTIES = {"run": ("Run", "facets"), "job": ("Job", "facets")}


def _holders(definitions: Mapping[str, Any], slot: str) -> Iterator[tuple[str, str]]:
    """The (definition, property) pairs holding the facets of ``slot``."""
    if slot in _SLOT_PROPERTIES:
        if _SLOT_PROPERTIES[slot][0] in definitions:
            yield _SLOT_PROPERTIES[slot]
        return
    for name in ("Dataset", "InputDataset", "OutputDataset", "StaticDataset"):
        if name in definitions and slot in definitions[name].get("properties", {}):
            yield name, slot


def _url_pattern(file: str) -> str:
    """A ``_schemaURL`` naming ``Name.json#Definition`` in any version."""
    path, _, definition = file.partition("#")
    return "/" + re.escape(path) + r"#/(\$defs|definitions)/" + re.escape(definition) + "$"


def _memoized(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A format check remembered for the last values seen: producers and schema URLs repeat in every event."""
    return functools.lru_cache(maxsize=4096)(check)


class EventValidator:
    """Checks events against the schema of their kind (``event_schema``); ``required`` as there."""

    def __init__(self, required: Mapping[tuple[str, str], type] | None = None) -> None:
        self._kinds = {}
        for kind in EVENT_KINDS:
            schema, formats = event_schema(kind, required)
            self._kinds[kind] = jsonschema_rs.Draft7Validator(schema, formats=formats, validate_formats=True)

    def validate(self, event: Any) -> str:
        """-> the event's kind (``RunEvent``, ``DatasetEvent``, ``JobEvent``); else ``FieldError`` naming
        the field."""
        if type(event) is not dict:
            raise FieldError("event", "An OpenLineage event must be a JSON object")
        kind = "RunEvent" if "run" in event else "DatasetEvent" if "dataset" in event else "JobEvent"
        if kind == "JobEvent" and "job" not in event:
            raise FieldError("event", "Not an OpenLineage event: a RunEvent has run and job, a DatasetEvent dataset, "
                             "a JobEvent job")  # fmt: skip
        validator = self._kinds[kind]
        if not validator.is_valid(event):
            raise _field_error(next(iter(validator.iter_errors(event))))
        return kind


def _field_error(error: jsonschema_rs.ValidationError) -> FieldError:
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path).lstrip(".")
    kind = type(error.kind).__name__
    if kind == "Required":
        missing = ".".join(p for p in (field, str(getattr(error.kind, "property", ""))) if p)
        return FieldError(missing, f"Missing required field: {missing}")
    where = field or "event"
    if kind == "Format":
        return FieldError(where, f"Field '{where}' is not valid: {shown_value(error.instance)}")
    return FieldError(where, f"Field '{where}': {error.message}")


def shown_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "\u2026"
