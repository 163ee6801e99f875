"""The one exception tree of assetpipe.

Every error a user can meet is an ``AssetpipeError`` with a stable ``code``; vendor exceptions are
wrapped at the module that talks to the vendor (``raise ... from exc``) so code above never imports them.
Producers and consumers add their own classes under this root in their ``exceptions.py``.
"""

from __future__ import annotations


class AssetpipeError(Exception):
    """Root of every assetpipe error. ``code`` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AssetpipeError):
    code = "invalid_config"


class ValidationError(AssetpipeError):
    """An event breaks the contract. ``field`` names the offending field (dotted path)."""

    code = "invalid_event"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class FieldError(ValidationError):
    """A field of a request or file record is missing or malformed; the message names it on its own
    (``Missing required field: check_name``), as the HTTP API and backfill reports show it."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        AssetpipeError.__init__(self, message)
        self.field = field
        self.reason = message


class EventTooLargeError(ValidationError):
    code = "event_too_large"


class DecodeError(AssetpipeError):
    """Bytes on the wire are not an event this codec can read."""

    code = "undecodable"


class UnknownSchemaError(DecodeError):
    """The writer schema named by a message's fingerprint or id is not known."""

    code = "unknown_schema"


class SchemaRegistryError(AssetpipeError):
    code = "schema_registry_unavailable"
