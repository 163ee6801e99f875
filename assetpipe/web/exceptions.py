"""Errors of the web catalog's reads and writes. They answer as the HTTP API's do (``producers.http.errors``
maps them by their ancestors): a bad filter or cursor is a 400, a sensor, schedule or run not found a 404."""

from __future__ import annotations

from assetpipe.producers.http.exceptions import RequestError, UnknownAssetError
from assetpipe.schemas.errors import AssetpipeError


class BadQueryError(RequestError):
    """A filter, cursor or limit of a list that cannot be read."""

    code = "bad_query"


class NotFoundError(UnknownAssetError):
    """A sensor, schedule or run that does not exist (answered 404, as an unknown asset is)."""

    code = "not_found"

    def __init__(self, message: str) -> None:
        AssetpipeError.__init__(self, message)
        self.asset_key = ""
