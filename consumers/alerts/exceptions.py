"""Errors of the alert worker's channels. A ``AlertDeliveryError`` says whether trying again may help."""

from __future__ import annotations

from assetpipe.schemas.errors import AssetpipeError


class AlertDeliveryError(AssetpipeError):
    """An alert could not be handed to a channel. ``retryable``: a connection error, a timeout, or an
    answer that says "later" (HTTP 408, 425, 429, 5xx; SMTP 4xx); otherwise the receiver refused it."""

    code = "alert_delivery_failed"

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
