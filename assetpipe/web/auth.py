"""Who is asking, for the catalog's JSON and pages: the report API's keys, and a browser session.

With ``ASSETPIPE_API_KEYS`` set, a request carries a key as the report endpoints take it (``X-API-Key``,
``Authorization: Bearer``) or a session cookie, which a browser gets once at ``/login`` by giving a key.
The cookie does not hold the key: it names the key's public id (the start of its configured SHA-256
digest) and an expiry, signed with HMAC-SHA256 under a secret kept in ``<data dir>/web-session.key``
(made on first use, mode 0600, so that every worker process of ``assetpipe serve`` and every restart
accepts it; a process that cannot write it signs with a secret of its own, and its sessions end with
it). The key's digest is signed too, so removing a key from the configuration ends its sessions. The
cookie is ``HttpOnly`` and ``SameSite=Strict`` (``Secure`` over HTTPS).

Scopes: reads need ``read``; starting and stopping sensors and schedules and requesting runs need ``run``
(``producers.http.auth``). Without keys (loopback only) everything is open, as the report endpoints are.

Cross-site requests: a POST whose ``Origin`` (or, without one, ``Referer``) is not this server is refused,
and so is a POST carried by the session cookie with neither header (every browser sends ``Origin`` on a
POST); ``SameSite=Strict`` keeps the cookie off requests from other sites besides.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from assetpipe.producers.http.auth import ApiKey, Authenticator
from assetpipe.producers.http.exceptions import AuthenticationError, PermissionDeniedError

log = logging.getLogger(__name__)

COOKIE = "assetpipe_session"
SESSION_S = 12 * 3600
SECRET_FILE = "web-session.key"
Scope = Literal["read", "run"]


@dataclass(frozen=True, slots=True)
class Visitor:
    """Whoever makes a request: ``key`` None when no keys are configured (open on loopback)."""

    key: ApiKey | None
    via: Literal["open", "header", "session"]

    @property
    def name(self) -> str:
        """Who, as recorded on what they change (an override's ``updated_by``)."""
        if self.key is None:
            return "local"
        return self.key.name or f"key {self.key.id}"

    @property
    def can_run(self) -> bool:
        return self.key is None or self.key.run


def session_secret(data_dir: Path) -> bytes:
    """The secret that signs sessions: ``<data_dir>/web-session.key``, made on first use. It is written
    aside and linked into place, so a process starting beside another never reads half of it."""
    path = data_dir / SECRET_FILE
    try:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            aside = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(secrets.token_bytes(32))
            try:
                os.link(aside, path)
            except FileExistsError:
                pass  # another process made it first: theirs is the secret
            finally:
                aside.unlink()
        secret = path.read_bytes()
        if len(secret) < 32:
            raise OSError(f"{path} holds {len(secret)} bytes, fewer than 32")
        return secret
    except OSError as exc:
        log.warning("web sessions are signed with a secret of this process (they end with it): %s", exc)
        return secrets.token_bytes(32)


class WebAuth:
    def __init__(self, authenticator: Authenticator, secret: bytes, session_s: int = SESSION_S) -> None:
        self.authenticator = authenticator
        self._secret = secret
        self.session_s = session_s

    @property
    def enabled(self) -> bool:
        return self.authenticator.enabled

    def visitor(self, request: HTTPConnection) -> Visitor | None:
        """Who asks: None when keys are configured and the request carries neither a key nor a valid
        session; a key that is sent but wrong is a 401 (``AuthenticationError``)."""
        if not self.enabled:
            return Visitor(None, "open")
        headers = request.headers
        if headers.get("x-api-key") is not None or headers.get("authorization") is not None:
            key = self.authenticator.authenticate(headers.get("x-api-key"), headers.get("authorization"))
            return Visitor(key, "header")
        key = self._session_key(request.cookies.get(COOKIE))
        return None if key is None else Visitor(key, "session")

    def require(self, request: HTTPConnection, scope: Scope) -> Visitor:
        """The visitor, allowed ``scope``: else 401 (nobody) or 403 (a key without the scope)."""
        visitor = self.visitor(request)
        if visitor is None:
            raise AuthenticationError(
                "Missing API key: send it as X-API-Key: <key> or Authorization: Bearer <key>, or sign in at /login"
            )
        if scope == "read":
            self.authenticator.authorize_read(visitor.key)
        else:
            self.authenticator.authorize_run(visitor.key)
        return visitor

    def check_origin(self, request: HTTPConnection, visitor: Visitor | None) -> None:
        """A state-changing request must come from this server's own pages (or from no browser at all)."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if source is None:
            if visitor is not None and visitor.via == "session":
                raise PermissionDeniedError("Cross-site request refused: a browser POST must send Origin")
            return
        parts = urlsplit(source)
        host = request.headers.get("host", "")
        if source == "null" or parts.scheme not in ("http", "https") or parts.netloc != host:
            raise PermissionDeniedError(f"Cross-site request refused: {source[:100]!r} is not this server ({host})")

    # -- sessions -------------------------------------------------------------------------------------
    def session_for(self, key: ApiKey, now: float | None = None) -> str:
        """The cookie value of a session of ``key``: ``<key id>.<expiry>.<signature>``."""
        expires = int((time.time() if now is None else now) + self.session_s)
        return f"{key.id}.{expires}.{self._sign(key, expires)}"

    def _session_key(self, value: str | None, now: float | None = None) -> ApiKey | None:
        if not value:
            return None
        key_id, _, rest = value.partition(".")
        expires, _, signature = rest.partition(".")
        if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
            return None
        key = self.authenticator.key_by_id(key_id)
        if key is None or not hmac.compare_digest(signature, self._sign(key, int(expires))):
            return None
        return key

    def _sign(self, key: ApiKey, expires: int) -> str:
        message = f"{key.id}.{expires}.".encode() + key.digest
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def login(self, presented: str) -> ApiKey:
        """The key a browser signs in with: valid (401) and allowed to read (403)."""
        key = self.authenticator.authenticate(presented.strip() or None, None)
        if key is None:  # no keys configured: nothing to sign in to
            raise AuthenticationError("No API keys are configured: the catalog is open, no sign-in is needed")
        self.authenticator.authorize_read(key)
        return key
