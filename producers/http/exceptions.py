"""Errors of the HTTP API, under the one ``AssetpipeError`` root.

Each class names what went wrong with a request; the HTTP status it earns is decided in one place,
``producers.http.errors``. Errors of the event itself (``schemas.errors.FieldError`` and other
``ValidationError``) and of publishing (``producers.exceptions.PublishError``) are raised as they are.
"""

from __future__ import annotations

from assetpipe.producers.exceptions import PublishError
from assetpipe.schemas.errors import AssetpipeError


class RequestError(AssetpipeError):
    """The request itself is unusable (its body, its content type, its size)."""

    code = "bad_request"


class MalformedBodyError(RequestError):
    """The body is not JSON, or not the JSON shape the endpoint takes."""

    code = "malformed_body"


class LimitExceededError(RequestError):
    """A bound on the request's shape was crossed: nesting depth, string length, metadata entries."""

    code = "limit_exceeded"


class BodyTooLargeError(RequestError):
    code = "body_too_large"


class UnsupportedMediaTypeError(RequestError):
    code = "unsupported_media_type"


class AuthenticationError(AssetpipeError):
    """No API key, or one that matches no configured hash."""

    code = "unauthenticated"


class PermissionDeniedError(AssetpipeError):
    """The API key is valid but its scope excludes this event type or asset key."""

    code = "forbidden"


class UnknownAssetError(AssetpipeError):
    """An observation or check evaluation for an asset that was never materialized and is not defined."""

    code = "unknown_asset"

    def __init__(self, asset_key: str) -> None:
        super().__init__(f"Asset key '{asset_key}' not found")
        self.asset_key = asset_key


class BrokerUnavailableError(PublishError):
    """The broker cannot be reached (or the API is not started): nothing was published."""

    code = "broker_unavailable"


class NotAcknowledgedError(PublishError):
    """The event was handed to the producer but the broker did not acknowledge it in time, or refused it."""

    code = "not_acknowledged"


class ListenError(AssetpipeError):
    """The API cannot listen where it is configured to (port in use, address not available)."""

    code = "port_in_use"
