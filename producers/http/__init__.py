"""The HTTP producer: Dagster-compatible asset reporting endpoints and a batch endpoint, on Starlette."""

from assetpipe.producers.http.app import ENDPOINTS, Api, create_app
from assetpipe.producers.http.auth import ApiKey, Authenticator, hash_key, new_key, parse_api_keys
from assetpipe.producers.http.server import ApiServer, serve

__all__ = [
    "ENDPOINTS",
    "Api",
    "ApiKey",
    "ApiServer",
    "Authenticator",
    "create_app",
    "hash_key",
    "new_key",
    "parse_api_keys",
    "serve",
]
