"""The OpenAPI description of ``POST /api/v1/lineage`` and ``/api/v1/lineage/batch`` (merged into the HTTP
API's document by ``producers.http.openapi.build_document``)."""

from __future__ import annotations

from typing import Any

from assetpipe.producers.openlineage.spec import SPEC_VERSION

Schema = dict[str, Any]
_RESPONSE = "#/components/responses/"
_EVENT = {
    "type": "object",
    "description": f"An OpenLineage RunEvent, DatasetEvent or JobEvent of the specification {SPEC_VERSION} "
    "(checked against openlineage-python's model; facets it does not model are kept).",
}
_ACCEPTED = {
    "type": "object",
    "properties": {
        "status": {"const": "success"},
        "events": {"type": "integer", "description": "assetpipe events stored from it"},
        "edges": {"type": "integer", "description": "lineage edges it observed"},
    },
    "required": ["status", "events", "edges"],
}
_SUMMARY = {
    "type": "object",
    "properties": {n: {"type": "integer"} for n in ("received", "successful", "failed")},
    "required": ["received", "successful", "failed"],
}
_FAILED_EVENTS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"index": {"type": "integer"}, "reason": {"type": "string"}, "retriable": {"type": "boolean"}},
        "required": ["index", "reason", "retriable"],
    },
}
_BATCH = {
    "type": "object",
    "properties": {"status": {"enum": ["success", "partial_success"]}, "summary": _SUMMARY,
                   "failed_events": _FAILED_EVENTS},
    "required": ["status", "summary", "failed_events"],
}  # fmt: skip
_ENCODING = {
    "name": "Content-Encoding",
    "in": "header",
    "required": False,
    "schema": {"enum": ["gzip", "identity", ""]},
    "description": "gzip: the body is gzip-compressed; its size limit applies before and after.",
}


def _errors(codes: dict[str, str]) -> Schema:
    return {code: {"$ref": _RESPONSE + name} for code, name in codes.items()}


_COMMON = {"401": "Unauthorized", "403": "Forbidden", "413": "TooLarge", "415": "UnsupportedMediaType",
           "500": "InternalError", "503": "Unavailable"}  # fmt: skip


_BATCH_ERROR = {
    "allOf": [{"$ref": "#/components/schemas/Error"}],
    "type": "object",
    "properties": {"summary": _SUMMARY, "failed_events": _FAILED_EVENTS},
    "description": "No event was stored: the error names the first refused event; summary and failed_events as in "
    "a batch answer.",
}


def _batch_failure(code: str) -> Schema:
    return {
        "description": f"{code}: no event was stored (see failed_events), or the whole request was refused.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenLineageBatchError"}}},
    }


OPENLINEAGE_SCHEMAS: dict[str, Schema] = {
    "OpenLineageEvent": _EVENT,
    "OpenLineageAccepted": _ACCEPTED,
    "OpenLineageBatch": _BATCH,
    "OpenLineageBatchError": _BATCH_ERROR,
}
OPENLINEAGE_PATHS: dict[str, Schema] = {
    "/api/v1/lineage": {
        "post": {
            "summary": "Receive an OpenLineage event (the default path of OpenLineage's HTTP transport)",
            "operationId": "openlineage_event",
            "parameters": [_ENCODING],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenLineageEvent"}}},
            },
            "responses": {
                "200": {
                    "description": "Every event it maps to, and the event itself, acknowledged by the broker "
                    "(a DatasetEvent's spec registered).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenLineageAccepted"}}},
                },
                "400": {"$ref": _RESPONSE + "BadRequest"},
                **_errors(_COMMON),
            },
        }
    },
    "/api/v1/lineage/batch": {
        "post": {
            "summary": "Receive many OpenLineage events; answered in the OpenLineage batch shape",
            "operationId": "openlineage_batch",
            "parameters": [_ENCODING],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "array", "items": {"$ref": "#/components/schemas/OpenLineageEvent"}}
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "At least one event stored: success, or partial_success with the others in "
                    "failed_events (retriable: sending that event again may succeed).",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenLineageBatch"}}},
                },
                **_errors({k: v for k, v in _COMMON.items() if k not in ("403", "503")}),
                **{code: _batch_failure(code) for code in ("400", "403", "503")},
            },
        }
    },
}
