"""The OpenAPI 3.1 document of the HTTP API, written by hand: every endpoint, body, parameter and error.

Served at ``/openapi.json`` and rendered by ``/docs``. It is data, built once per app from the table of
report endpoints, so a new event type's endpoint is documented by the same table entry that routes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assetpipe.producers.http.payload import MAX_IDEMPOTENCY_KEY
from assetpipe.producers.openlineage.document import OPENLINEAGE_PATHS, OPENLINEAGE_SCHEMAS
from assetpipe.schemas.metadata import INT64_MAX, INT64_MIN, KINDS, STRING_KINDS
from assetpipe.schemas.model import EventType
from assetpipe.schemas.validation import (
    ASSET_KEY_MAX_CHARS,
    FAILURE_REASONS,
    FAILURE_TYPES,
    TIMESTAMP_MAX_US,
    TIMESTAMP_MIN_US,
)

Schema = dict[str, Any]

_REF = "#/components/schemas/"


def _ref(name: str) -> Schema:
    return {"$ref": _REF + name}


def _error(description: str, example: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error"), "example": {"status": "error", "error": example}}},
    }


RESPONSES: dict[str, Schema] = {
    "BadRequest": _error(
        "A missing or invalid field, malformed JSON, a body that is not an object, an invalid tag or metadata "
        "value, or a request over a shape limit (depth, string length, metadata entries), query string included; "
        "a request the HTTP parser refuses ('Malformed HTTP request: ...'). The message names it; echoed values "
        "are cut to 200 characters.",
        "Missing required field: check_name",
    ),
    "Unauthorized": {
        **_error("No API key, or an invalid one (only when API keys are configured).", "Invalid API key"),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    "Forbidden": _error(
        "The API key's scope does not cover this event type or asset key.",
        "API key 'etl' may not report check events (allowed: materialization)",
    ),
    "NotFound": _error(
        "An observation, check evaluation or materialization failure for an asset never materialized and not defined.",
        "Asset key 'invalid/asset' not found",
    ),
    "TooLarge": _error(
        "The body is over the limit (the rest of the upload is read and dropped, within bounds, so the client reads "
        "this answer), or the event's message, asset key included, is over ASSETPIPE_MAX_EVENT_BYTES.",
        "Request body is 2000000 bytes, over the limit of 1048576 bytes",
    ),
    "UnsupportedMediaType": _error(
        "A content type other than application/json (or NDJSON on /report_asset_events).",
        "Unsupported content type 'text/plain': send application/json or no body",
    ),
    "Unavailable": {
        **_error(
            "The broker is unavailable, the producer queue is full, or the broker did not acknowledge the event "
            "in time. Nothing is confirmed stored: retry after Retry-After seconds (with the same Idempotency-Key).",
            "Event not stored: the broker is unavailable (1/1 brokers are down)",
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    "InternalError": _error("A bug; the body holds no internals.", "Failed to process asset event: internal error"),
}

_STRING = {"type": "string"}
# An identifier (asset key part, partition, data version, check name, run id): no control characters.
_PRINTABLE = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
_IDENTIFIER = {"type": "string", "minLength": 1, "pattern": _PRINTABLE}
_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# ISO 8601 with a zone, in years that stay within the range whatever the zone (1901-2289).
_ISO = (
    "^(19(0[1-9]|[1-9][0-9])|2[01][0-9][0-9]|22[0-8][0-9])-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
)
_NULLABLE_IDENTIFIER = {"anyOf": [_IDENTIFIER, {"type": "null"}]}
_COMMON_PROPERTIES: Schema = {
    "asset_key": _ref("AssetKey"),
    "partition": _NULLABLE_IDENTIFIER,
    "description": {"type": ["string", "null"]},
    "metadata": {"anyOf": [_ref("Metadata"), {"type": "null"}]},
    "tags": {"anyOf": [_ref("Tags"), {"type": "null"}]},
    "timestamp": {"anyOf": [_ref("Timestamp"), {"type": "null"}], "description": "Default: now."},
    "event_id": {
        "anyOf": [{"type": "string", "format": "uuid", "pattern": _UUID}, {"const": ""}, {"type": "null"}],
        "description": "A UUID. Default (absent, null or empty): random, or derived from the Idempotency-Key "
        "header (the backfill: from the file and the line)",
    },
    "run_id": {"type": ["string", "null"], "pattern": _PRINTABLE},
}
_ASSET_PROPERTIES: Schema = {**_COMMON_PROPERTIES, "data_version": _NULLABLE_IDENTIFIER}
_CHECK_PROPERTIES: Schema = {
    **_COMMON_PROPERTIES,
    "check_name": _NULLABLE_IDENTIFIER,
    "passed": {"type": ["boolean", "null"]},
    "severity": {"type": ["string", "null"], "enum": ["WARN", "ERROR", None], "default": "ERROR"},
}
_FAILURE_PROPERTIES: Schema = {
    **_COMMON_PROPERTIES,
    "description": {"type": ["string", "null"], "description": "What went wrong (an error message)."},
    "failure_type": {"type": ["string", "null"], "enum": [*FAILURE_TYPES, None], "default": "FAILED"},
    "reason": {"type": ["string", "null"], "enum": [*FAILURE_REASONS, None], "default": "UNKNOWN"},
}
_TABLE_SCHEMA: Schema = {
    "type": "object",
    "properties": {
        "columns": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": _STRING,
                    "type": _STRING,
                    "description": {"type": ["string", "null"]},
                    "constraints": {
                        "type": ["object", "null"],
                        "properties": {
                            "nullable": {"type": "boolean"},
                            "unique": {"type": "boolean"},
                            "other": {"type": "array", "items": _STRING},
                        },
                    },
                    "tags": {"type": ["object", "null"], "additionalProperties": _STRING},
                },
                "required": ["name"],
            },
        },
        "constraints": {
            "type": ["object", "null"],
            "properties": {"other": {"type": "array", "items": _STRING}},
        },
    },
    "required": ["columns"],
}
_LONG = {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}
_TYPED_VALUES: dict[str, Schema] = {
    **{kind: _STRING for kind in sorted(STRING_KINDS)},
    "json": {},
    "int": _LONG,
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "timestamp": _ref("Timestamp"),
    "null": {"description": "ignored"},
    "asset": {"anyOf": [_STRING, {"type": "array", "items": _STRING}]},
    "table_schema": _TABLE_SCHEMA,
    "table": {
        "type": "object",
        "description": "Records share one set of keys; a table without records needs a schema.",
        "properties": {
            "records": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": {"anyOf": [_LONG, {"type": ["string", "number", "boolean", "null"]}]},
                },
            },
            "schema": {"anyOf": [_TABLE_SCHEMA, {"type": "null"}]},
        },
        "required": ["records"],
    },
    "column_lineage": {
        "type": "object",
        "description": "column -> its dependencies (unique by asset key and column name)",
        "additionalProperties": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "asset_key": {"anyOf": [_STRING, {"type": "array", "items": _STRING}]},
                    "column_name": _STRING,
                },
                "required": ["asset_key", "column_name"],
            },
        },
    },
    "code_references": {
        "type": "array",
        "items": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "file_path": _STRING,
                        "line_number": {"type": ["integer", "null"], "minimum": 0, "maximum": INT64_MAX},
                        "label": {"type": ["string", "null"]},
                    },
                    "required": ["file_path"],
                    "not": {"required": ["url"]},
                },
                {
                    "type": "object",
                    "properties": {"url": _STRING, "label": {"type": ["string", "null"]}},
                    "required": ["url"],
                    "not": {"required": ["file_path"]},
                },
            ]
        },
    },
}

SCHEMAS: dict[str, Schema] = {
    "AssetKey": {
        "description": "A list of parts, or a string taken as one part; no control characters, at most "
        f"{ASSET_KEY_MAX_CHARS} characters written a/b. The URL path wins over the body, the body over the "
        "query string.",
        "oneOf": [
            {
                "type": "array",
                "items": {**_IDENTIFIER, "maxLength": ASSET_KEY_MAX_CHARS},
                "minItems": 1,
            },
            {**_IDENTIFIER, "maxLength": ASSET_KEY_MAX_CHARS},
        ],
    },
    "Timestamp": {
        "description": "Seconds since the epoch, or ISO 8601 with a zone; between 1900-01-01 and 2299-12-31 UTC.",
        "anyOf": [
            {"type": "number", "minimum": TIMESTAMP_MIN_US // 1_000_000, "maximum": TIMESTAMP_MAX_US // 1_000_000},
            {"type": "string", "pattern": _ISO},
        ],
    },
    "TypedMetadataValue": {
        "description": "An explicitly typed metadata value: exactly the keys type and value, the value as its "
        "type takes it (text/url/path/notebook_path/md a string; json anything; int a 64-bit integer; float a "
        "number; bool a boolean; timestamp a Timestamp; null anything, ignored; asset a list of parts or a/b; "
        "table_schema, table, column_lineage and code_references objects as shown).",
        "oneOf": [
            {
                "type": "object",
                "properties": {"type": {"const": kind}, "value": value},
                "required": ["type", "value"],
                "additionalProperties": False,
            }
            for kind, value in _TYPED_VALUES.items()
        ],
    },
    "MetadataValue": {
        "description": "A plain JSON value (string -> text, integer -> int, number -> float, boolean -> bool, "
        "object/array -> json, null -> null), or a TypedMetadataValue (an object of exactly the keys type, "
        "naming a metadata type, and value).",
        "anyOf": [
            _ref("TypedMetadataValue"),
            {"type": ["string", "number", "boolean", "null", "array"]},
            {
                "type": "object",
                "not": {
                    "required": ["type", "value"],
                    "maxProperties": 2,
                    "properties": {"type": {"enum": list(KINDS)}},
                },
            },
        ],
    },
    "Metadata": {
        "type": "object",
        "propertyNames": {"minLength": 1},
        "additionalProperties": _ref("MetadataValue"),
    },
    "Tags": {
        "description": "Dagster's asset-event tag rules: key [namespace/]name, value up to 63 of [A-Za-z0-9_.-]. "
        "dagster/reporting_user is set by the server (to the API key's name): a request may only repeat it.",
        "type": "object",
        "propertyNames": {"pattern": "^([A-Za-z0-9_.-]{1,63}/)?[A-Za-z0-9_.-]{1,63}$"},
        "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{0,63}$"},
    },
    "MaterializationBody": {"type": "object", "properties": _ASSET_PROPERTIES},
    "ObservationBody": {"type": "object", "properties": _ASSET_PROPERTIES},
    "CheckBody": {
        "description": "check_name and passed are required, from the body or the query string.",
        "type": "object",
        "properties": _CHECK_PROPERTIES,
    },
    "FailureBody": {
        "description": "A materialization that did not happen (Dagster's AssetMaterializationFailure). failure_type "
        "FAILED makes the asset (its partition) failed until materialized again; SKIPPED was expected and changes "
        "nothing. A failure wrote no data: no data_version. Stored once per (run_id, asset key, partition) when "
        "run_id is given.",
        "type": "object",
        "properties": _FAILURE_PROPERTIES,
    },
    "Event": {
        "description": "One event of a batch: its type and the fields of its single-event endpoint.",
        "oneOf": [
            {
                "type": "object",
                "properties": {"type": {"enum": ["materialization", "observation"]}, **_ASSET_PROPERTIES},
                "required": ["type", "asset_key"],
            },
            {
                "type": "object",
                "properties": {
                    "type": {"const": "check"},
                    **_CHECK_PROPERTIES,
                    "check_name": _IDENTIFIER,
                    "passed": {"type": "boolean"},
                },
                "required": ["type", "asset_key", "check_name", "passed"],
            },
            {
                "type": "object",
                "properties": {"type": {"const": "materialization_failure"}, **_FAILURE_PROPERTIES},
                "required": ["type", "asset_key"],
            },
        ],
    },
    "Success": {
        "type": "object",
        "properties": {
            "status": {"const": "success"},
            "event_id": {"type": "string", "format": "uuid"},
            "message": _STRING,
        },
        "required": ["status", "event_id", "message"],
    },
    "Error": {
        "type": "object",
        "properties": {"status": {"const": "error"}, "error": _STRING},
        "required": ["status", "error"],
    },
    "EventResult": {
        "oneOf": [
            {
                "type": "object",
                "properties": {"status": {"const": "success"}, "event_id": {"type": "string", "format": "uuid"}},
                "required": ["status", "event_id"],
            },
            {
                "type": "object",
                "properties": {
                    "status": {"const": "error"},
                    "error": _STRING,
                    "code": {"type": "integer", "description": "the status the single-event endpoint would give"},
                },
                "required": ["status", "error", "code"],
            },
        ]
    },
    "BatchResult": {
        "type": "object",
        "properties": {
            "status": {"enum": ["success", "error"]},
            "accepted": {"type": "integer"},
            "rejected": {"type": "integer"},
            "results": {"type": "array", "items": _ref("EventResult")},
        },
        "required": ["status", "accepted", "rejected", "results"],
    },
}

_QUERY_DOC = {
    "asset_key": "Asset key when the path has none: a JSON list, or a string split on characters outside "
    "[A-Za-z0-9_] (warehouse.customers.daily has three parts).",
    "data_version": "Data version of the asset after this event.",
    "description": "Free text.",
    "partition": "Partition key.",
    "metadata": "Metadata as a JSON object (text).",
    "tags": "Tags as a JSON object (text).",
    "check_name": "Name of the check (required for checks, here or in the body).",
    "passed": "true or false (required for checks, here or in the body).",
    "severity": "WARN or ERROR (default ERROR).",
    "failure_type": "FAILED or SKIPPED (default FAILED).",
    "reason": ", ".join(FAILURE_REASONS) + " (default UNKNOWN).",
}
_QUERY_SCHEMAS: dict[str, Schema] = {
    "passed": {"type": "string", "enum": ["true", "false"]},
    "severity": {"type": "string", "enum": ["WARN", "ERROR"]},
    "failure_type": {"type": "string", "enum": list(FAILURE_TYPES)},
    "reason": {"type": "string", "enum": list(FAILURE_REASONS)},
    "partition": {"type": "string", "pattern": _PRINTABLE},
    "data_version": {"type": "string", "pattern": _PRINTABLE},
    "check_name": {"type": "string", "pattern": _PRINTABLE},
}
_QUERY_JSON: dict[str, Schema] = {"metadata": _ref("Metadata"), "tags": _ref("Tags")}
_PATH_KEY = "^[^/\\x00-\\x1f\\x7f-\\x9f]+(/[^/\\x00-\\x1f\\x7f-\\x9f]+)*$"
_FIELDS: dict[EventType, tuple[str, ...]] = {
    "materialization": ("asset_key", "data_version", "description", "partition", "metadata", "tags"),
    "observation": ("asset_key", "data_version", "description", "partition", "metadata", "tags"),
    "check_evaluation": ("asset_key", "check_name", "passed", "severity", "partition", "metadata", "tags"),
    "materialization_failure": ("asset_key", "failure_type", "reason", "description", "partition", "metadata", "tags"),
}
_BODIES: dict[EventType, str] = {
    "materialization": "MaterializationBody",
    "observation": "ObservationBody",
    "check_evaluation": "CheckBody",
    "materialization_failure": "FailureBody",
}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the event id deterministic, so a retried request is stored once.",
    "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
}
_ERRORS = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "413": "TooLarge",
    "415": "UnsupportedMediaType",
    "503": "Unavailable",
    "500": "InternalError",
}


_ASSET_KEY_STRING = {"type": "string", "pattern": _PATH_KEY}
_CAUSE = {
    "type": "object",
    "properties": {
        "category": {"enum": ["CODE", "DATA", "DEPENDENCIES"]},
        "dependency": {"type": "string", "description": "the dependency concerned ('' for CODE)"},
        "reason": _STRING,
    },
    "required": ["category", "dependency", "reason"],
}
ASSET_SCHEMAS: dict[str, Schema] = {
    "AssetSpecBody": {
        "description": "An asset spec (Dagster's AssetSpec fields), registered with source http. Unknown fields are "
        "refused; the spec's own rules apply (Dagster's messages), e.g. at most ten kinds, standard metadata keys "
        "(dagster/row_count: int, ...) of their type.",
        "type": "object",
        "properties": {
            "code_location": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.-]*$",
                "description": "Default '': the spec is registered under this code location (over HTTP).",
            },
            "description": {"type": ["string", "null"]},
            "deps": {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                _ASSET_KEY_STRING,
                                {"type": "array", "items": _IDENTIFIER, "minItems": 1},
                            ]
                        },
                    },
                    {"type": "null"},
                ],
                "description": "Upstream assets: 'a/b' strings or lists of parts.",
            },
            "owners": {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {
                            "type": "string",
                            "pattern": "^([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,7}|team:.+)$",
                        },
                    },
                    {"type": "null"},
                ],
                "description": "Email addresses, or team names prefixed with 'team:'.",
            },
            "tags": {
                "anyOf": [
                    {
                        "type": "object",
                        "propertyNames": {"pattern": "^([A-Za-z0-9_.-]{1,63}/|dagster/kind/)?[A-Za-z0-9_.-]{1,63}$"},
                        "additionalProperties": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{0,63}$"},
                    },
                    {"type": "null"},
                ],
                "description": "Dagster's strict definition tags; dagster/kind/<kind> keys are kinds.",
            },
            "kinds": {
                "anyOf": [{"type": "array", "items": {"type": "string", "minLength": 1}}, {"type": "null"}],
                "description": "At most ten, tags dagster/kind/<kind> included.",
            },
            "group_name": {
                "anyOf": [{"type": "string", "pattern": "^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$"}, {"type": "null"}]
            },
            "code_version": {"type": ["string", "null"]},
            "metadata": {"anyOf": [_ref("Metadata"), {"type": "null"}]},
            "freshness_policy": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "time_window"},
                            "fail_window_seconds": {"type": "number", "exclusiveMinimum": 0},
                            "warn_window_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0},
                        },
                        "required": ["type", "fail_window_seconds"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": "cron"},
                            "deadline_cron": {"type": "string", "minLength": 1},
                            "lower_bound_delta_seconds": {"type": "number", "exclusiveMinimum": 0},
                            "timezone": {"type": "string", "minLength": 1},
                        },
                        "required": ["type", "deadline_cron", "lower_bound_delta_seconds"],
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ],
                "description": "FreshnessPolicy.time_window(...) or .cron(...) as JSON: the check worker evaluates "
                "it (check name 'freshness'); a warn window shorter than the fail window, a valid cron and zone.",
            },
        },
        "additionalProperties": False,
    },
    "AssetRegistered": {
        "type": "object",
        "properties": {
            "asset_key": _STRING,
            "version": {"type": "integer", "minimum": 1, "description": "versions of this spec registered so far"},
            "changed": {"type": "boolean", "description": "false: the same spec was registered already"},
        },
        "required": ["asset_key", "version", "changed"],
    },
    "AssetStatus": {
        "type": "object",
        "properties": {
            "asset_key": _STRING,
            "status": {"enum": ["MISSING", "FRESH", "STALE"]},
            "causes": {"type": "array", "items": _CAUSE},
            "materialized_at": {"type": ["string", "null"], "description": "its latest materialization (ISO 8601)"},
            "data_version": {"type": "string", "description": "the current data version: NULL, INITIAL or a version"},
            "definition": {
                "type": ["object", "null"],
                "description": "The current definition (columns of latest_asset_definitions); null: only reported.",
            },
        },
        "required": ["asset_key", "status", "causes", "definition"],
    },
}
_ASSET_PATH_PARAMETER = {
    "name": "asset_key",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": _PATH_KEY, "maxLength": ASSET_KEY_MAX_CHARS},
    "description": "The asset key, parts separated by / (percent-encoded UTF-8; no control characters).",
}
_REGISTRY_UNAVAILABLE = {
    "description": "No warehouse to keep the registry in: the API runs under `assetpipe serve` against an embedded "
    "ClickHouse engine and no stack runs with its data directory, or ClickHouse is unreachable.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": _ref("Error")}},
}
ASSET_PATHS: dict[str, Schema] = {
    "/api/assets/{asset_key}": {
        "put": {
            "summary": "Define an asset: register its spec (idempotent; needs the API key scope define)",
            "description": "A key whose last part is 'status' cannot be defined here (PUT on the status path is a "
            "405): define it from a spec file.",
            "operationId": "put_asset",
            "parameters": [_ASSET_PATH_PARAMETER],
            "requestBody": {"required": False, "content": {"application/json": {"schema": _ref("AssetSpecBody")}}},
            "responses": {
                "200": {
                    "description": "Registered (or registered already: changed false).",
                    "content": {"application/json": {"schema": _ref("AssetRegistered")}},
                },
                **{
                    code: {"$ref": f"#/components/responses/{name}"}
                    for code, name in _ERRORS.items()
                    if code not in ("503",)
                },
                "503": _REGISTRY_UNAVAILABLE,
            },
        }
    },
    "/api/assets/{asset_key}/status": {
        "get": {
            "summary": "An asset's status (MISSING, FRESH, STALE) and why, with its current definition",
            "operationId": "get_asset_status",
            "parameters": [_ASSET_PATH_PARAMETER],
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": _ref("AssetStatus")}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "404": _error("An asset neither defined nor ever reported.", "Asset key 'invalid/asset' not found"),
                "500": {"$ref": "#/components/responses/InternalError"},
                "503": _REGISTRY_UNAVAILABLE,
            },
        }
    },
}


def _responses(success: Schema, codes: Mapping[str, str] = _ERRORS) -> Schema:
    return {"200": success, **{code: {"$ref": f"#/components/responses/{name}"} for code, name in codes.items()}}


def _report_operation(event_type: EventType, summary: str, with_path: bool) -> Schema:
    parameters: list[Schema] = []
    if with_path:
        parameters.append(
            {
                "name": "asset_key",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": _PATH_KEY, "maxLength": ASSET_KEY_MAX_CHARS},
                "description": "The asset key, parts separated by / (percent-encoded UTF-8; no control characters).",
            }
        )
    for name in _FIELDS[event_type]:
        parameter: Schema = {"name": name, "in": "query", "required": False, "description": _QUERY_DOC[name]}
        if name in _QUERY_JSON:
            parameter["content"] = {"application/json": {"schema": _QUERY_JSON[name]}}
        else:
            parameter["schema"] = _QUERY_SCHEMAS.get(name, _STRING)
        parameters.append(parameter)
    parameters.append(_IDEMPOTENCY)
    codes = {**_ERRORS, "404": "NotFound"} if event_type != "materialization" else _ERRORS
    success = {
        "description": "Stored: the broker acknowledged the event.",
        "content": {"application/json": {"schema": _ref("Success")}},
    }
    return {
        "post": {
            "summary": summary + ("" if with_path else " (asset key in the body or the query string)"),
            "operationId": f"report_{event_type}" + ("" if with_path else "_without_path_key"),
            "parameters": parameters,
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref(_BODIES[event_type])}},
            },
            "responses": _responses(success, dict(sorted(codes.items()))),
        }
    }


def _get(summary: str, content_type: str, schema: Schema, extra: Mapping[str, Schema] | None = None) -> Schema:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": "OK", "content": {content_type: {"schema": schema}}}, **(extra or {})},
        }
    }


def build_document(
    endpoints: Mapping[EventType, tuple[str, str]], version: str, extra_paths: Mapping[str, Schema] | None = None
) -> Schema:
    """``endpoints``: event type -> (path without key, summary); ``extra_paths``: routes the app serves
    besides (``ASSET_PATHS`` when it has the asset registry's)."""
    paths: dict[str, Schema] = {}
    for event_type, (path, summary) in endpoints.items():
        paths[path + "/{asset_key}"] = _report_operation(event_type, summary, with_path=True)
        paths[path + "/"] = _report_operation(event_type, summary, with_path=False)
    batch_success = {
        "description": "Every event stored.",
        "content": {"application/json": {"schema": _ref("BatchResult")}},
    }
    batch_errors = {
        code: {
            "description": f"{code}: see results (or the error of the whole request)",
            "content": {"application/json": {"schema": {"anyOf": [_ref("BatchResult"), _ref("Error")]}}},
        }
        for code in ("400", "403", "404", "503")
    }
    paths["/report_asset_events"] = {
        "post": {
            "summary": "Report many events (mixed types) at once; answered per event, in order",
            "operationId": "report_asset_events",
            "parameters": [{**_IDEMPOTENCY, "description": "Event i of the batch gets the key '<value>/<i>'."}],
            "requestBody": {
                "required": False,
                "description": "No body is an empty batch.",
                "content": {
                    "application/json": {"schema": {"type": "array", "items": _ref("Event")}},
                    "application/x-ndjson": {"schema": {"type": "string", "description": "one Event per line"}},
                },
            },
            "responses": {
                **_responses(
                    batch_success,
                    {"401": "Unauthorized", "413": "TooLarge", "415": "UnsupportedMediaType", "500": "InternalError"},
                ),
                **batch_errors,
            },
        }
    }
    status = {"type": "object", "properties": {"status": _STRING}, "required": ["status"]}
    paths["/healthz"] = _get("Liveness: the process serves requests", "application/json", status)
    paths["/readyz"] = _get(
        "Readiness: the broker answers and the producer queue has room",
        "application/json",
        status,
        {"503": {"description": "Not ready", "content": {"application/json": {"schema": status}}}},
    )
    paths["/metrics"] = _get("Prometheus metrics", "text/plain", _STRING)
    paths["/openapi.json"] = _get("This document", "application/json", {"type": "object"})
    paths["/docs"] = _get("This document as a web page", "text/html", _STRING)
    paths.update(OPENLINEAGE_PATHS)
    paths.update(extra_paths or {})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "assetpipe asset reporting API",
            "version": version,
            "description": "Dagster-compatible endpoints to report asset materializations, observations and "
            "check evaluations, one for materialization failures, plus a batch endpoint. A 200 is sent only after "
            "the broker acknowledged the event.",
        },
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **OPENLINEAGE_SCHEMAS, **(ASSET_SCHEMAS if extra_paths else {})},
            "responses": RESPONSES,
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{}, {"ApiKeyHeader": []}, {"Bearer": []}],
    }


# -- the web catalog's sensors, schedules and runs (assetpipe.web.ops_api) ------------------------------
_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
_TEXT_OR_NULL = {"anyOf": [_STRING, {"type": "null"}]}
_STATE = {
    "status": {"enum": ["running", "stopped"]},
    "status_source": {"enum": ["default", "override"], "description": "the definition's default, or set by hand"},
    "default_status": {"enum": ["running", "stopped"]},
    "override": {
        "anyOf": [
            {
                "type": "object",
                "properties": {"status": {"enum": ["running", "stopped"]}, "by": _STRING, "at": _TIME},
                "required": ["status", "by", "at"],
            },
            {"type": "null"},
        ]
    },
    "last_tick": {
        "anyOf": [
            {"type": "object", "properties": {"at": _TIME, "status": _STRING}, "required": ["at", "status"]},
            {"type": "null"},
        ]
    },
    "ticks": {"type": "integer", "minimum": 0},
    "ticks_24h": {
        "type": "object",
        "properties": {k: {"type": "integer", "minimum": 0} for k in ("success", "skipped", "failure")},
        "required": ["success", "skipped", "failure"],
    },
}
_SENSOR = {
    "type": "object",
    "properties": {
        "code_location": _STRING,
        "name": _STRING,
        "type": {"enum": ["asset", "multi_asset"]},
        "event_type": {"enum": ["materialization", "observation", "check_evaluation", "materialization_failure"]},
        "asset_keys": {"type": "array", "items": _STRING},
        "job_name": _TEXT_OR_NULL,
        "start_at": {"enum": ["latest", "earliest"]},
        "description": _TEXT_OR_NULL,
        "registered_at": _TIME,
        **_STATE,
    },
    "required": ["code_location", "name", "type", "asset_keys", "status", "status_source", "override", "last_tick"],
}
_SCHEDULE = {
    "type": "object",
    "properties": {
        "code_location": _STRING,
        "name": _STRING,
        "cron_schedules": {"type": "array", "items": _STRING},
        "interval_seconds": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "execution_timezone": _STRING,
        "job_name": _TEXT_OR_NULL,
        "description": _TEXT_OR_NULL,
        "tags": {"type": "object", "additionalProperties": _STRING},
        "registered_at": _TIME,
        "next_tick": _TIME,
        **_STATE,
    },
    "required": ["code_location", "name", "cron_schedules", "status", "status_source", "override", "next_tick"],
}
_TICK_RUN = {
    "type": "object",
    "properties": {"run_id": _STRING, "run_key": _TEXT_OR_NULL, "job_name": _STRING},
    "required": ["run_id", "run_key", "job_name"],
}
_TICK_COMMON = {
    "tick_id": _STRING,
    "status": {"enum": ["success", "skipped", "failure"]},
    "runs": {"type": "array", "items": _TICK_RUN},
    "skip_reason": _TEXT_OR_NULL,
    "error": _TEXT_OR_NULL,
    "traceback": _TEXT_OR_NULL,
    "evaluated_at": _TIME,
    "duration_ms": {"type": "number"},
}
_SENSOR_TICK = {
    "type": "object",
    "properties": {
        **_TICK_COMMON,
        "trigger": {
            "type": "object",
            "properties": {
                "event_id": _STRING,
                "event_type": _STRING,
                "asset_key": _STRING,
                "partition": _TEXT_OR_NULL,
                "data_version": _TEXT_OR_NULL,
                "timestamp": _TIME,
            },
            "required": ["event_id", "event_type", "asset_key"],
        },
        "skipped_run_keys": {"type": "array", "items": _STRING},
        "logs": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"time": _TIME, "level": _STRING, "message": _STRING},
                "required": ["time", "level", "message"],
            },
        },
    },
    "required": ["tick_id", "status", "evaluated_at", "trigger", "runs", "logs"],
}
_SCHEDULE_TICK = {
    "type": "object",
    "properties": {**_TICK_COMMON, "scheduled_at": _TIME, "catch_up": {"type": "boolean"}},
    "required": ["tick_id", "status", "scheduled_at", "catch_up", "runs"],
}
_RUN_STATUS = {"enum": ["queued", "started", "launched", "succeeded", "failed"]}
_RUN_PROPERTIES: Schema = {
    "run_id": _STRING,
    "job_name": _STRING,
    "code_location": _STRING,
    "status": _RUN_STATUS,
    "run_key": _TEXT_OR_NULL,
    "partition_key": _TEXT_OR_NULL,
    "sensor_name": _TEXT_OR_NULL,
    "schedule_name": _TEXT_OR_NULL,
    "tick_id": _TEXT_OR_NULL,
    "asset_selection": {"type": "array", "items": _STRING},
    "requested_at": _TIME,
    "started_at": _TIME,
    "finished_at": _TIME,
    "duration_ms": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    "attempts": {"type": "integer", "minimum": 0},
}
_RUN_REQUIRED = ["run_id", "job_name", "code_location", "status", "requested_at", "error"]
_RUN = {"type": "object", "properties": _RUN_PROPERTIES, "required": _RUN_REQUIRED}
_RUN_EVENT = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "timestamp": _TIME,
        "event_type": _STRING,
        "op_name": _TEXT_OR_NULL,
        "attempt": {"type": "integer"},
        "message": _TEXT_OR_NULL,
        "asset_key": _TEXT_OR_NULL,
        "metadata": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"key": _STRING, "type": _STRING, "value": _STRING},
                "required": ["key", "type", "value"],
            },
        },
    },
    "required": ["seq", "timestamp", "event_type", "metadata"],
}
_RUN_DETAIL = {
    "type": "object",
    "properties": {
        **_RUN_PROPERTIES,
        "run_config": _STRING,
        "tags": {"type": "object", "additionalProperties": _STRING},
        "events": {"type": "array", "items": _RUN_EVENT},
        "events_total": {"type": "integer", "minimum": 0},
    },
    "required": [*_RUN_REQUIRED, "events", "events_total", "tags"],
}


def _page_of(item: Schema) -> Schema:
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": item}, "next_cursor": _TEXT_OR_NULL},
        "required": ["items", "next_cursor"],
    }


def _query(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema or _STRING}


def _count(minimum: int, maximum: int) -> Schema:
    """A whole number in a range, or empty (the default), as the routes read a count and the pages' forms send it."""
    return {"anyOf": [{"type": "integer", "minimum": minimum, "maximum": maximum}, {"const": ""}]}


_LOCATION = _query("location", "the code location (needed only when several have this name)")
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[^/]+$"}}
_PAGING = [
    _query("cursor", "next_cursor of the previous page"),
    _query("limit", "items per page (default 50)", _count(1, 200)),
]
_READ_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "500": {"$ref": "#/components/responses/InternalError"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}
_NOT_FOUND = _error("No such sensor, schedule or run.", "Sensor 'daily' not found")


def _ok(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _instigator_paths(plural: str, kind: str, item: Schema, tick: Schema) -> dict[str, Schema]:
    title = kind.capitalize()
    switched = {**item, "properties": {**item["properties"], "changed": {"type": "boolean"}}}

    def switch(action: str, status: str) -> Schema:
        return {
            "post": {
                "summary": f"{action.capitalize()} a {kind} (API key scope run); the workers follow within a second",
                "description": f"Stored as an override of its default status. Already {status}: nothing is written "
                "(changed false). A browser's POST must come from this server's pages (Origin).",
                "operationId": f"{action}_{kind}",
                "parameters": [_NAME, _LOCATION],
                "responses": {"200": _ok(switched, f"The {kind}, now {status}"), "404": _NOT_FOUND, **_READ_ERRORS},
            }
        }

    status_filter = _query(
        "status", "only ticks of this status (empty: any)", {"enum": ["", "success", "skipped", "failure"]}
    )
    return {
        f"/api/{plural}": {
            "get": {
                "summary": f"Every {kind} of every code location: status (default or set by hand), last tick, counts",
                "operationId": f"list_{plural}",
                "parameters": [_LOCATION],
                "responses": {
                    "200": _ok(
                        {
                            "type": "object",
                            "properties": {"items": {"type": "array", "items": item}},
                            "required": ["items"],
                        }
                    ),
                    **_READ_ERRORS,
                },
            }
        },
        f"/api/{plural}/{{name}}": {
            "get": {
                "summary": f"One {kind}",
                "operationId": f"get_{kind}",
                "parameters": [_NAME, _LOCATION],
                "responses": {"200": _ok(item), "404": _NOT_FOUND, **_READ_ERRORS},
            }
        },
        f"/api/{plural}/{{name}}/ticks": {
            "get": {
                "summary": f"{title} ticks, newest first, a page at a time",
                "operationId": f"list_{kind}_ticks",
                "parameters": [_NAME, _LOCATION, status_filter, *_PAGING],
                "responses": {
                    "200": _ok(
                        {
                            **_page_of(tick),
                            "properties": {**_page_of(tick)["properties"], "code_location": _STRING, "name": _STRING},
                        }
                    ),
                    "404": _NOT_FOUND,
                    **_READ_ERRORS,
                },
            }
        },
        f"/api/{plural}/{{name}}/start": switch("start", "running"),
        f"/api/{plural}/{{name}}/stop": switch("stop", "stopped"),
    }


OPS_PATHS: dict[str, Schema] = {
    **_instigator_paths("sensors", "sensor", _SENSOR, _SENSOR_TICK),
    **_instigator_paths("schedules", "schedule", _SCHEDULE, _SCHEDULE_TICK),
    "/api/runs": {
        "get": {
            "summary": "Runs, newest requested first, a page at a time",
            "operationId": "list_runs",
            "parameters": [
                _query("job", "only runs of this job"),
                _query("status", "only runs in this status (empty: any)", {"enum": ["", *_RUN_STATUS["enum"]]}),
                _query("asset", "only runs triggered by, selecting or recording events of this asset (a/b)"),
                _LOCATION,
                *_PAGING,
            ],
            "responses": {"200": _ok(_page_of(_RUN)), **_READ_ERRORS},
        }
    },
    "/api/runs/{run_id}": {
        "get": {
            "summary": "One run with everything it recorded: logs, step outputs, asset events, retries, failure",
            "operationId": "get_run",
            "parameters": [{"name": "run_id", "in": "path", "required": True, "schema": _STRING}],
            "responses": {"200": _ok(_RUN_DETAIL), "404": _NOT_FOUND, **_READ_ERRORS},
        }
    },
}


# -- the asset catalog (assetpipe.catalog_api) -----------------------------------------------------------
_NUMBER_OR_NULL = {"anyOf": [{"type": "number"}, {"type": "null"}]}
_TYPED = {
    "type": "object",
    "additionalProperties": {
        "type": "object",
        "properties": {"type": {"enum": list(KINDS)}, "value": {}},
        "required": ["type", "value"],
    },
    "description": "Each entry typed: numbers as numbers, bool as a boolean, timestamp as epoch seconds, json and "
    "structured types decoded, other types as text.",
}
_LATEST = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "timestamp": _TIME,
                "partition": _TEXT_OR_NULL,
                "data_version": _TEXT_OR_NULL,
                "event_id": _STRING,
                "run_id": _TEXT_OR_NULL,
            },
            "required": ["timestamp", "partition", "data_version", "event_id"],
        },
        {"type": "null"},
    ]
}
_EVENT_FILTERS = ("materialization", "observation", "check", "check_evaluation", "materialization_failure")
_LATEST_FAILURE = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "timestamp": _TIME,
                "partition": _TEXT_OR_NULL,
                "event_id": _STRING,
                "run_id": _TEXT_OR_NULL,
                "reason": {"enum": list(FAILURE_REASONS)},
            },
            "required": ["timestamp", "partition", "event_id", "reason"],
        },
        {"type": "null"},
    ],
    "description": "The latest failure to materialize (of type FAILED: a SKIPPED one changes no state).",
}
_FAILED = {
    "type": "boolean",
    "description": "The latest attempt to materialize the asset (in some partition) failed: a FAILED failure and no "
    "materialization since.",
}
_SEVERITY_COUNTS = {
    "type": "object",
    "properties": {"WARN": {"type": "integer"}, "ERROR": {"type": "integer"}},
    "required": ["WARN", "ERROR"],
}
_CHECK_SUMMARY = {
    "type": "object",
    "properties": {"total": {"type": "integer"}, "passed": _SEVERITY_COUNTS, "failed": _SEVERITY_COUNTS},
    "required": ["total", "passed", "failed"],
}
_STALENESS = {"anyOf": [{"enum": ["MISSING", "FRESH", "STALE"]}, {"type": "null"}]}
_CATALOG_ROW = {
    "type": "object",
    "properties": {
        "asset_key": _STRING,
        "defined": {"type": "boolean"},
        "description": _TEXT_OR_NULL,
        "owners": {"type": "array", "items": _STRING},
        "kinds": {"type": "array", "items": _STRING},
        "group": _TEXT_OR_NULL,
        "code_location": _TEXT_OR_NULL,
        "tags": {"type": "object", "additionalProperties": _STRING},
        "execution_type": {"enum": ["materialization", "observation", "external"]},
        "last_updated": _TIME,
        "latest_materialization": _LATEST,
        "latest_observation": _LATEST,
        "latest_failure": _LATEST_FAILURE,
        "failed": _FAILED,
        "checks": _CHECK_SUMMARY,
        "status": _STALENESS,
    },
    "required": [
        "asset_key",
        "defined",
        "latest_materialization",
        "latest_observation",
        "latest_failure",
        "failed",
        "checks",
        "status",
    ],
}
_CATALOG_EVENT = {
    "type": "object",
    "properties": {
        "event_id": _STRING,
        "event_type": {"enum": ["materialization", "observation", "check_evaluation", "materialization_failure"]},
        "timestamp": _TIME,
        "partition": _TEXT_OR_NULL,
        "data_version": _TEXT_OR_NULL,
        "description": _TEXT_OR_NULL,
        "metadata": _TYPED,
        "tags": {"type": "object", "additionalProperties": _STRING},
        "run_id": _TEXT_OR_NULL,
        "run": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"run_id": _STRING, "status": {"anyOf": [_RUN_STATUS, {"type": "null"}]}},
                    "required": ["run_id", "status"],
                },
                {"type": "null"},
            ]
        },
        "check_name": _STRING,
        "passed": {"type": "boolean"},
        "severity": {"anyOf": [{"enum": ["WARN", "ERROR"]}, {"type": "null"}]},
        "failure_type": {"enum": list(FAILURE_TYPES)},
        "reason": {"enum": list(FAILURE_REASONS)},
        "expired": {
            "type": "boolean",
            "description": "true: a latest event older than the raw history kept (ASSETPIPE_RETENTION_DAYS), shown "
            "from the latest state without its metadata, tags and description",
        },
    },
    "required": ["event_id", "event_type", "timestamp", "metadata", "tags", "run_id"],
}
_CATALOG_DETAIL = {
    "type": "object",
    "properties": {
        "asset_key": _STRING,
        "defined": {"type": "boolean"},
        "definition": {
            "anyOf": [{"type": "object", "properties": {"versions": {"type": "integer"}}}, {"type": "null"}],
            "description": "The current definition (latest_asset_definitions' columns, metadata typed, partitions "
            "decoded) and its number of versions; null for an asset only reported.",
        },
        "status": _STALENESS,
        "causes": {"type": "array", "items": _CAUSE},
        "latest_materialization": {"anyOf": [_CATALOG_EVENT, {"type": "null"}]},
        "latest_observation": {"anyOf": [_CATALOG_EVENT, {"type": "null"}]},
        "latest_failure": {"anyOf": [_CATALOG_EVENT, {"type": "null"}], "description": _LATEST_FAILURE["description"]},
        "failed": _FAILED,
        "column_schema": {"type": "array", "items": {"type": "object"}},
        "column_lineage": {"type": "object"},
        "code_references": {"type": "array", "items": {"type": "object"}},
        "upstream": {"type": "array", "items": _STRING},
        "downstream": {"type": "array", "items": _STRING},
        "checks": {"type": "array", "items": _CATALOG_EVENT},
        "check_summary": _CHECK_SUMMARY,
        "partitions": {
            "type": "object",
            "properties": {
                "partitioned": {"type": "boolean"},
                "materialized": {"type": "integer"},
                "observed": {"type": "integer"},
                "failed": {"type": "integer", "description": "partitions whose latest attempt to materialize failed"},
                "failed_checks": {"type": "integer"},
                "latest": _TEXT_OR_NULL,
            },
            "required": ["partitioned", "materialized", "observed", "failed", "failed_checks", "latest"],
        },
    },
    "required": [
        "asset_key",
        "defined",
        "definition",
        "status",
        "causes",
        "latest_materialization",
        "latest_failure",
        "failed",
        "partitions",
    ],
}
_SERIES = {
    "type": "object",
    "properties": {
        "asset_key": _STRING,
        "label": _STRING,
        "x": {"enum": ["time", "partition"]},
        "grain": {
            "enum": ["raw", "hour", "day"],
            "description": "raw points, or the hourly or daily rollups (docs/retention.md); x=partition: raw",
        },
        "raw_since": {
            **_TIME,
            "description": "every raw point from this time on is kept (ASSETPIPE_RETENTION_DAYS); null: all are",
        },
        "count": {"type": "integer", "description": "values in the range (before downsampling)"},
        "first": _TEXT_OR_NULL,
        "last": _TEXT_OR_NULL,
        "downsampled": {"type": "boolean"},
        "points": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "x=time, grain raw: {x, y, event_id, partition}; grain hour or day: consecutive "
                "buckets from x {x, y (the average), min, max, last, count, event_id (null), partition (null)}; "
                "x=partition: a bucket of consecutive partitions "
                "{first_partition, last_partition, partitions, min, max, avg, last, event_id (of the last)}",
            },
        },
    },
    "required": ["asset_key", "label", "x", "grain", "raw_since", "count", "downsampled", "points"],
}
_LATEST_IN_PARTITION = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"timestamp": _TIME, "event_id": _STRING, "data_version": _TEXT_OR_NULL},
            "required": ["timestamp", "event_id"],
        },
        {"type": "null"},
    ]
}
_PARTITION = {
    "type": "object",
    "properties": {
        "partition": _STRING,
        "status": {
            "enum": ["MATERIALIZED", "OBSERVED", "MISSING", "FAILED"],
            "description": "FAILED: its latest failure to materialize is newer than its latest materialization",
        },
        "materialization": _LATEST_IN_PARTITION,
        "observation": _LATEST_IN_PARTITION,
        "failure": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "timestamp": _TIME,
                        "event_id": _STRING,
                        "run_id": _TEXT_OR_NULL,
                        "reason": {"enum": list(FAILURE_REASONS)},
                    },
                    "required": ["timestamp", "event_id", "reason"],
                },
                {"type": "null"},
            ]
        },
        "checks": {"type": "array", "items": {"type": "object"}},
        "failed_checks": {"type": "integer"},
    },
    "required": ["partition", "status", "materialization", "observation", "failure", "checks", "failed_checks"],
}
_LINEAGE = {
    "type": "object",
    "properties": {
        "root": _STRING,
        "depth": {"type": "integer"},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "asset_key": _STRING,
                    "defined": {"type": "boolean"},
                    "kinds": {"type": "array", "items": _STRING},
                    "group": _TEXT_OR_NULL,
                    "execution_type": _STRING,
                    "status": _STALENESS,
                    "distance": {"type": "integer", "description": "negative upstream, positive downstream"},
                },
                "required": ["asset_key", "defined", "status", "distance"],
            },
        },
        "edges": {
            "type": "array",
            "items": {"type": "object", "properties": {"from": _STRING, "to": _STRING}, "required": ["from", "to"]},
        },
    },
    "required": ["root", "depth", "nodes", "edges"],
}
_CATALOG_KEY = {
    **_ASSET_PATH_PARAMETER,
    "description": "The asset key, a/b (percent-encoded UTF-8). A key whose last part is events, partitions, status, "
    "materialize or observe, or that has a part metadata, is written as a JSON list of its parts.",
}
_UNKNOWN_ASSET = _error("An asset neither defined nor ever reported.", "Asset key 'invalid/asset' not found")
_TIME_QUERY = {"type": "string", "description": "ISO 8601 (with a zone, else UTC) or epoch seconds"}
_RUN_REQUESTED = {
    "type": "object",
    "properties": {
        "asset_key": _STRING,
        "action": {"enum": ["materialize", "observe"]},
        "partition": _TEXT_OR_NULL,
        "run_ids": {"type": "array", "items": _STRING},
        "runs": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["asset_key", "action", "run_ids", "runs"],
}


def _catalog_get(summary: str, operation: str, schema: Schema, parameters: list[Schema], keyed: bool = True) -> Schema:
    responses = {"200": _ok(schema), **_READ_ERRORS}
    if keyed:
        responses["404"] = _UNKNOWN_ASSET
    return {
        "get": {
            "summary": summary,
            "operationId": operation,
            "parameters": [_CATALOG_KEY, *parameters] if keyed else parameters,
            "responses": responses,
        }
    }


def _run_request(action: str, what: str) -> Schema:
    return {
        "post": {
            "summary": f"Request a run that {what} the asset (API key scope run, under its prefixes)",
            "description": "As `assetpipe assets " + action + "`: one run request per code location, to its run "
            "worker. 400 when no code location computes the asset this way (only reported, an external asset, an "
            "observable source asked to materialize, ...). A browser's POST must come from this server's pages.",
            "operationId": f"{action}_asset",
            "parameters": [_CATALOG_KEY],
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"partition": {"type": "string", "minLength": 1, "pattern": _PRINTABLE}},
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "202": _ok(_RUN_REQUESTED, "Requested: the run ids"),
                "404": _UNKNOWN_ASSET,
                "413": {"$ref": "#/components/responses/TooLarge"},
                "415": {"$ref": "#/components/responses/UnsupportedMediaType"},
                **_READ_ERRORS,
            },
        }
    }


CATALOG_PATHS: dict[str, Schema] = {
    "/api/assets": _catalog_get(
        "Every asset defined or ever reported: filtered, sorted by key or last update, a cursor page at a time",
        "list_assets",
        _page_of(_CATALOG_ROW),
        [
            _query("prefix", "keys equal to it or under it, by whole parts (sales: sales and sales/...)"),
            _query("search", "text in the key or the description (any case)"),
            _query("tag", "k=v, or k: the definition has tag k (any value; a label)"),
            _query("owner", "an owner of the definition (team:sales, ana@example.com)"),
            _query("group", "the definition's group"),
            _query("kind", "a kind of the definition"),
            _LOCATION,
            _query(
                "status",
                "staleness, a check whose latest evaluation failed, or FAILED: a failed materialization",
                {"enum": ["", "FRESH", "STALE", "MISSING", "FAILED_CHECK", "FAILED"]},
            ),
            _query(
                "defined",
                "true: only defined assets; false: only assets reported and never defined",
                {"enum": ["", "true", "false"]},
            ),
            _query("sort", "key (default), or updated: the latest event first", {"enum": ["", "key", "updated"]}),
            _query("cursor", "next_cursor of the previous page"),
            _query("limit", "items per page (default 50)", _count(1, 500)),
        ],
        keyed=False,
    ),
    "/api/assets/{asset_key}": {
        **ASSET_PATHS["/api/assets/{asset_key}"],
        **_catalog_get(
            "One asset in full: definition, latest events with typed metadata, columns, lineage, checks, status",
            "get_asset",
            _CATALOG_DETAIL,
            [],
        ),
    },
    "/api/assets/{asset_key}/events": _catalog_get(
        "The asset's events, newest first, a cursor page at a time, each with its run",
        "list_asset_events",
        _page_of(_CATALOG_EVENT),
        [
            _query(
                "type",
                "only events of this type",
                {"enum": ["", *_EVENT_FILTERS]},
            ),
            _query("partition", "only events of this partition"),
            _query("after", "only events at or after this time", _TIME_QUERY),
            _query("before", "only events before this time", _TIME_QUERY),
            _query("cursor", "next_cursor of the previous page"),
            _query("limit", "items per page (default 50)", _count(1, 500)),
        ],
    ),
    "/api/assets/{asset_key}/metadata/{label}": _catalog_get(
        "A numeric metadata label over the whole history (or a range), downsampled in ClickHouse to at most points",
        "get_asset_metadata_series",
        _SERIES,
        [
            {
                "name": "label",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": _PRINTABLE},
                "description": "the metadata key (may hold /: dagster/row_count)",
            },
            _query(
                "x",
                "time (default): largestTriangleThreeBuckets; partition: buckets of partitions in key order",
                {"enum": ["", "time", "partition"]},
            ),
            _query("after", "x=time: from this time (inclusive); x=partition: from this partition key (inclusive)"),
            _query("before", "x=time: to this time (exclusive); x=partition: to this partition key (inclusive)"),
            _query("points", "at most this many points (default 1000)", _count(3, 10_000)),
            _query(
                "grain",
                "x=time: auto (default: raw points when at most 100,000 values, all kept, are in the range, else the "
                "coarsest rollup with points buckets in it), raw, hour or day; x=partition: auto or raw",
                {"enum": ["", "auto", "raw", "hour", "day"]},
            ),
        ],
    ),
    "/api/assets/{asset_key}/partitions": _catalog_get(
        "The asset's partitions in key order, a cursor page at a time: latest materialization, observation, failure, "
        "checks",
        "list_asset_partitions",
        _page_of(_PARTITION),
        [
            _query("cursor", "next_cursor of the previous page"),
            _query("limit", "items per page (default 100)", _count(1, 1000)),
        ],
    ),
    "/api/assets/{asset_key}/materialize": _run_request("materialize", "materializes"),
    "/api/assets/{asset_key}/observe": _run_request("observe", "observes"),
    "/api/lineage": {
        "get": {
            "summary": "The asset graph around an asset, from the current definitions' dependencies",
            "operationId": "get_lineage",
            "parameters": [
                {
                    "name": "root",
                    "in": "query",
                    "required": True,
                    "schema": _ASSET_KEY_STRING,
                    "description": "the asset key, a/b (or a JSON list of its parts)",
                },
                _query("depth", "steps up and down (default 2)", _count(1, 10)),
            ],
            "responses": {"200": _ok(_LINEAGE), "404": _UNKNOWN_ASSET, **_READ_ERRORS},
        }
    },
}


# -- alerts (assetpipe.web.alert_pages) ------------------------------------------------------------------
_ALERT = {
    "type": "object",
    "properties": {
        "alert_id": {"type": "string", "pattern": _UUID},
        "delivery_id": {"type": "string", "pattern": _UUID},
        "policy": _STRING,
        "asset_key": _TEXT_OR_NULL,
        "check_name": _TEXT_OR_NULL,
        "subject": {**_STRING, "description": "the check, the job of a run, or the sensor or schedule"},
        "kind": {"enum": ["freshness", "check", "anomaly", "run", "sensor_tick", "schedule_tick"]},
        "transition": {"enum": ["triggered", "resolved"]},
        "severity": {"anyOf": [{"enum": ["WARN", "ERROR"]}, {"type": "null"}]},
        "state": {**_STRING, "description": "PASS, WARN, FAIL for freshness; PASSED or FAILED otherwise"},
        "message": _STRING,
        "channel": _STRING,
        "channel_kind": {"enum": ["webhook", "slack", "email"]},
        "recipient": {**_STRING, "description": "an email address, or the channel's name"},
        "owners": {"type": "array", "items": _STRING},
        "partition": _TEXT_OR_NULL,
        "link": _STRING,
        "status": {"enum": ["sent", "failed"]},
        "attempts": {"type": "integer", "minimum": 0},
        "error": _TEXT_OR_NULL,
        "event_id": _STRING,
        "event_time": _TIME,
        "created_at": _TIME,
        "sent_at": _TIME,
    },
    "required": ["alert_id", "delivery_id", "policy", "kind", "transition", "status", "channel", "created_at"],
}
ALERT_PATHS: dict[str, Schema] = {
    "/api/alerts": {
        "get": {
            "summary": "Alerts sent (or failed), one item per delivery, newest first, a page at a time",
            "operationId": "list_alerts",
            "parameters": [
                _query("asset", "only alerts about this asset (a/b)"),
                _query("status", "only deliveries in this status", {"enum": ["", "sent", "failed"]}),
                _query("policy", "only alerts of this policy"),
                _query(
                    "kind",
                    "only alerts of this kind",
                    {"enum": ["", "freshness", "check", "anomaly", "run", "sensor_tick", "schedule_tick"]},
                ),
                *_PAGING,
            ],
            "responses": {"200": _ok(_page_of(_ALERT)), **_READ_ERRORS},
        }
    }
}
