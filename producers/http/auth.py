"""API keys: their configured form, checking a request's key, and key scopes.

Keys are configured as hashes, never in clear (``ASSETPIPE_API_KEYS``): entries separated by ``;`` or
new lines, each ``sha256:<64 hex digits>`` followed by optional ``:name=<label>``,
``:types=<event types and scopes>`` and ``:prefixes=<asset key prefixes>`` (lists separated by ``,``)::

    sha256:9f86d0...:name=etl:types=materialization,check:prefixes=sales/,ops/
    sha256:2c26b4...:name=catalog:types=define:prefixes=sales/

A request sends its key as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``. The key's SHA-256
digest is compared with every configured digest in constant time (``hmac.compare_digest``). A scoped
key may report only the listed event types (``materialization``, ``observation``, ``check``; a
materialization failure is reported under ``materialization``, not a type of its own) and only
asset keys under one of the prefixes (whole parts: ``sales/`` covers ``sales/daily`` but not
``salesforce``); outside its scope the answer is 403. A named key's events carry the tag
``dagster/reporting_user=<name>``. Defining assets (``PUT /api/assets/...``) is the scope ``define``:
only keys that list it may, under their prefixes; a key without ``types`` reports every event type but
defines nothing. Two more scopes are listed among the types the same way: ``read`` (the catalog's JSON
under ``/api`` and its web pages) and ``run`` (starting and stopping sensors and schedules, requesting
runs of assets under the key's prefixes). Like ``define``, only keys that list them have them::

    sha256:4e07408...:name=alice:types=read,run
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from assetpipe.producers.http.exceptions import AuthenticationError, PermissionDeniedError
from assetpipe.schemas import jsonform
from assetpipe.schemas.errors import ConfigError, FieldError
from assetpipe.schemas.model import EventType

KEY_PREFIX = "apk_"
_ENTRY_SPLIT = re.compile(r"[;\n]+")
_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,63}$")
_TYPE_LABELS: dict[EventType, str] = {
    "materialization": "materialization",
    "observation": "observation",
    "check_evaluation": "check",
    "materialization_failure": "materialization failure",
}
# The type a key lists to report an event type: a failure to materialize comes with materializing.
_SCOPE_OF: dict[EventType, EventType] = {"materialization_failure": "materialization"}


DEFINE = "define"  # the scope of defining assets, listed among a key's types
READ = "read"  # reading the catalog (/api and the web pages)
RUN = "run"  # starting and stopping sensors and schedules, requesting runs
SCOPES = (DEFINE, READ, RUN)  # listed among a key's types, never granted without


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One configured key: its digest and scope (types and prefixes None: unrestricted reports)."""

    digest: bytes
    name: str | None = None
    types: frozenset[EventType] | None = None
    prefixes: tuple[tuple[str, ...], ...] | None = None
    define: bool = False
    read: bool = False
    run: bool = False

    @property
    def id(self) -> str:
        """A short public id of the key (the start of its digest): what a browser session names."""
        return self.digest.hex()[:16]

    def allows(self, event_type: EventType, parts: Sequence[str]) -> bool:
        if self.types is not None and _SCOPE_OF.get(event_type, event_type) not in self.types:
            return False
        return self.covers(parts)

    def covers(self, parts: Sequence[str]) -> bool:
        return self.prefixes is None or any(tuple(parts[: len(p)]) == p for p in self.prefixes)


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The configured form of ``key``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def parse_api_keys(text: str | None) -> list[ApiKey]:
    """``ASSETPIPE_API_KEYS`` -> keys; a malformed entry is a ``ConfigError`` naming it."""
    return [_parse_entry(entry.strip()) for entry in _ENTRY_SPLIT.split(text or "") if entry.strip()]


def _parse_entry(entry: str) -> ApiKey:
    algorithm, _, rest = entry.partition(":")
    digest, *options = rest.split(":")
    shown = f"{algorithm}:{digest[:8]}..."
    if algorithm != "sha256" or not _DIGEST.match(digest):
        raise ConfigError(
            f"ASSETPIPE_API_KEYS: entry '{shown}' must start with sha256:<64 hex digits> (see `assetpipe api-key hash`)"
        )
    values: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep or name not in ("name", "types", "prefixes") or name in values or not value:
            raise ConfigError(
                f"ASSETPIPE_API_KEYS: entry '{shown}': bad option {option!r}; expected name=, types= or prefixes="
            )
        values[name] = value
    if "name" in values and not _NAME.match(values["name"]):
        raise ConfigError(f"ASSETPIPE_API_KEYS: entry '{shown}': name must be 1-63 of [A-Za-z0-9_.@-]")
    types = None
    names: list[str] = []
    if "types" in values:
        names = [t.strip() for t in values["types"].split(",")]
        try:
            types = frozenset(jsonform.event_type(t) for t in names if t not in SCOPES)
        except FieldError as exc:
            raise ConfigError(
                f"ASSETPIPE_API_KEYS: entry '{shown}': {exc} (or a scope: {DEFINE} to define assets, {READ} to read "
                f"the catalog, {RUN} to start and stop sensors and schedules and request runs)"
            ) from exc
        covered = sorted(types & _SCOPE_OF.keys())
        if covered:
            raise ConfigError(
                f"ASSETPIPE_API_KEYS: entry '{shown}': {_TYPE_LABELS[covered[0]]} is not a type of its own: "
                f"list {_SCOPE_OF[covered[0]]}, which covers it"
            )
    prefixes = None
    if "prefixes" in values:
        prefixes = tuple(tuple(p.strip().strip("/").split("/")) for p in values["prefixes"].split(",") if p.strip())
    return ApiKey(
        bytes.fromhex(digest), values.get("name"), types, prefixes, DEFINE in names, READ in names, RUN in names
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Authenticator:
    """Checks requests against the configured keys. With no keys configured every request is let in
    (allowed only on loopback: see ``require_for``)."""

    def __init__(self, keys: Sequence[ApiKey]) -> None:
        self.keys = tuple(keys)

    @classmethod
    def from_config(cls, api_keys: str | None) -> Authenticator:
        return cls(parse_api_keys(api_keys))

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def require_for(self, host: str) -> None:
        """Refuse to serve beyond loopback without keys."""
        if not self.enabled and not is_loopback(host):
            raise ConfigError(
                f"the HTTP API would listen on {host}, beyond loopback, without API keys: set ASSETPIPE_API_KEYS "
                "(create one with `assetpipe api-key new`) or listen on 127.0.0.1 (ASSETPIPE_HTTP_HOST)"
            )

    def authenticate(self, x_api_key: str | None, authorization: str | None) -> ApiKey | None:
        """The matching key, or None when auth is off; ``AuthenticationError`` (401) otherwise."""
        if not self.keys:
            return None
        presented = x_api_key
        if presented is None and authorization is not None:
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented = credentials.strip()
        if not presented:
            raise AuthenticationError("Missing API key: send it as X-API-Key: <key> or Authorization: Bearer <key>")
        digest = hashlib.sha256(presented.encode()).digest()
        found: ApiKey | None = None
        for key in self.keys:  # every key is compared: the time taken does not depend on which matched
            if hmac.compare_digest(digest, key.digest):
                found = key
        if found is None:
            raise AuthenticationError("Invalid API key")
        return found

    @staticmethod
    def authorize(key: ApiKey | None, event_type: EventType, parts: Sequence[str]) -> None:
        if key is None or key.allows(event_type, parts):
            return
        label = f"API key '{key.name}'" if key.name else "This API key"
        if key.types is not None and _SCOPE_OF.get(event_type, event_type) not in key.types:
            allowed = ", ".join(sorted(_TYPE_LABELS[t] for t in key.types))
            raise PermissionDeniedError(
                f"{label} may not report {_TYPE_LABELS[event_type]} events (allowed: {allowed})"
            )
        prefixes = ", ".join("/".join(p) + "/" for p in key.prefixes or ())
        raise PermissionDeniedError(
            f"{label} may not report events for asset '{'/'.join(parts)}' (allowed prefixes: {prefixes})"
        )

    @staticmethod
    def authorize_define(key: ApiKey | None, parts: Sequence[str]) -> None:
        """Defining an asset needs the scope ``define``, and the key's prefixes must cover the asset."""
        if key is None or (key.define and key.covers(parts)):
            return
        label = f"API key '{key.name}'" if key.name else "This API key"
        if not key.define:
            raise PermissionDeniedError(f"{label} may not define assets: its types must include {DEFINE}")
        prefixes = ", ".join("/".join(p) + "/" for p in key.prefixes or ())
        raise PermissionDeniedError(f"{label} may not define asset '{'/'.join(parts)}' (allowed prefixes: {prefixes})")

    def key_by_id(self, key_id: str) -> ApiKey | None:
        """The configured key with this public id (``ApiKey.id``), if it is still configured."""
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.id.encode(), key_id.encode()):
                found = key
        return found

    @staticmethod
    def authorize_read(key: ApiKey | None) -> None:
        """Reading the catalog (``/api``, the web pages) needs the scope ``read``."""
        if key is None or key.read:
            return
        label = f"API key '{key.name}'" if key.name else "This API key"
        raise PermissionDeniedError(f"{label} may not read the catalog: its types must include {READ}")

    @staticmethod
    def authorize_run(key: ApiKey | None, parts: Sequence[str] | None = None) -> None:
        """Starting or stopping a sensor or schedule, or requesting a run, needs the scope ``run``; for a
        run of assets (``parts``: an asset key), the key's prefixes must cover it."""
        if key is None or (key.run and (parts is None or key.covers(parts))):
            return
        label = f"API key '{key.name}'" if key.name else "This API key"
        if not key.run:
            raise PermissionDeniedError(
                f"{label} may not start or stop sensors and schedules or request runs: its types must include {RUN}"
            )
        prefixes = ", ".join("/".join(p) + "/" for p in key.prefixes or ())
        raise PermissionDeniedError(
            f"{label} may not request runs of asset '{'/'.join(parts or ())}' (allowed prefixes: {prefixes})"
        )
