"""Errors of the local stack and the command line."""

from __future__ import annotations

from assetpipe.producers.exceptions import PublishError
from assetpipe.schemas.errors import AssetpipeError


class BrokerError(AssetpipeError):
    code = "broker_unavailable"


class PortInUseError(AssetpipeError):
    code = "port_in_use"

    def __init__(self, what: str, port: int, setting: str) -> None:
        super().__init__(f"port {port} for {what} is already in use; free it or set {setting} to another port")
        self.port = port


class StackNotRunningError(AssetpipeError):
    code = "stack_not_running"


class StackAlreadyRunningError(AssetpipeError):
    code = "stack_already_running"


class NotAcceptingError(PublishError):
    """The stack is draining to stop, or recovering its broker: nothing was stored, send it again later."""

    code = "not_accepting"
