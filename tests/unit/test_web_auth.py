"""The web catalog's sign-in and scopes, without sockets: the key scopes read and run next to the report
and define scopes, the signed session cookie (no key inside, expiry, forgery, a key removed), the
cross-site check of POSTs, where a sign-in may send the browser, and the secret kept for sessions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from starlette.requests import Request

from assetpipe.producers.http.auth import Authenticator, hash_key, parse_api_keys
from assetpipe.producers.http.exceptions import AuthenticationError, PermissionDeniedError
from assetpipe.schemas.errors import ConfigError
from assetpipe.web.app import local_target
from assetpipe.web.auth import COOKIE, Visitor, WebAuth, session_secret

READER, OPERATOR, REPORTER = "apk_reader", "apk_operator", "apk_reporter"
KEYS = (
    f"{hash_key(READER)}:name=reader:types=read;"
    f"{hash_key(OPERATOR)}:name=operator:types=read,run,materialization:prefixes=sales/;"
    f"{hash_key(REPORTER)}:name=etl"
)


def request(headers: dict[str, str] | None = None, method: str = "GET", host: str = "127.0.0.1:3000") -> Request:
    raw = [(b"host", host.encode())] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": method, "path": "/", "headers": raw, "query_string": b""})


@pytest.fixture
def auth() -> WebAuth:
    return WebAuth(Authenticator.from_config(KEYS), b"s" * 32)


def test_scopes_read_and_run_are_listed_among_the_types_and_never_granted_without() -> None:
    reader, operator, reporter = parse_api_keys(KEYS)
    assert (reader.read, reader.run, reader.define, reader.types) == (True, False, False, frozenset())
    assert (operator.read, operator.run, operator.types) == (True, True, frozenset({"materialization"}))
    assert (reporter.read, reporter.run, reporter.define, reporter.types) == (False, False, False, None)
    Authenticator.authorize(reporter, "check_evaluation", ["any"])  # a key without types reports as before
    with pytest.raises(PermissionDeniedError, match="may not report materialization events"):
        Authenticator.authorize(reader, "materialization", ["sales", "daily"])
    with pytest.raises(PermissionDeniedError, match=r"^API key 'etl' may not read the catalog: its types must"):
        Authenticator.authorize_read(reporter)
    with pytest.raises(PermissionDeniedError, match="may not start or stop sensors and schedules or request runs"):
        Authenticator.authorize_run(reader)
    Authenticator.authorize_run(operator, ["sales", "daily"])
    with pytest.raises(PermissionDeniedError, match="may not request runs of asset 'ops/x'"):
        Authenticator.authorize_run(operator, ["ops", "x"])
    with pytest.raises(ConfigError, match=r"or a scope: define .* read .* run"):
        parse_api_keys(f"{hash_key('k')}:types=reed")


def test_a_session_names_the_key_signed_and_ends_when_it_expires_is_forged_or_the_key_goes(auth: WebAuth) -> None:
    operator = auth.login(OPERATOR)
    value = auth.session_for(operator)
    assert OPERATOR not in value and value.startswith(operator.id + ".")
    seen = auth.visitor(request({"Cookie": f"{COOKIE}={value}"}))
    assert seen == Visitor(operator, "session") and seen.name == "operator" and seen.can_run

    key_id, expires, signature = value.split(".")
    forged = [
        f"{key_id}.{int(expires) + 3600}.{signature}",  # a later expiry
        f"{key_id}.{expires}.{signature[:-1]}0" if signature[-1] != "0" else f"{key_id}.{expires}.{signature[:-1]}1",
        f"{parse_api_keys(KEYS)[0].id}.{expires}.{signature}",  # another key's id
        "", "garbage", f"{key_id}..",
    ]  # fmt: skip
    for cookie in forged:
        assert auth.visitor(request({"Cookie": f"{COOKIE}={cookie}"})) is None, cookie
    expired = auth.session_for(operator, now=0)
    assert auth.visitor(request({"Cookie": f"{COOKIE}={expired}"})) is None
    other_secret = WebAuth(auth.authenticator, b"t" * 32)
    assert other_secret.visitor(request({"Cookie": f"{COOKIE}={value}"})) is None
    without_the_key = WebAuth(Authenticator.from_config(KEYS.split(";")[0]), b"s" * 32)
    assert without_the_key.visitor(request({"Cookie": f"{COOKIE}={value}"})) is None


def test_signing_in_needs_a_valid_key_with_the_read_scope(auth: WebAuth) -> None:
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        auth.login("apk_nobody")
    with pytest.raises(AuthenticationError, match="Missing API key"):
        auth.login("  ")
    with pytest.raises(PermissionDeniedError, match="may not read the catalog"):
        auth.login(REPORTER)
    assert auth.login(f" {READER}\n").name == "reader"
    with pytest.raises(AuthenticationError, match="no sign-in is needed"):
        WebAuth(Authenticator([]), b"s" * 32).login(READER)


def test_a_request_needs_a_key_or_a_session_with_the_scope(auth: WebAuth) -> None:
    with pytest.raises(AuthenticationError, match="or sign in at /login"):
        auth.require(request(), "read")
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        auth.require(request({"X-API-Key": "apk_wrong"}), "read")
    with pytest.raises(PermissionDeniedError):
        auth.require(request({"X-API-Key": REPORTER}), "read")
    with pytest.raises(PermissionDeniedError):
        auth.require(request({"Authorization": f"Bearer {READER}"}), "run")
    assert auth.require(request({"Authorization": f"Bearer {OPERATOR}"}), "run").via == "header"
    open_auth = WebAuth(Authenticator([]), b"s" * 32)
    assert open_auth.require(request(), "run") == Visitor(None, "open")
    assert Visitor(None, "open").name == "local"


def test_a_post_from_another_site_is_refused(auth: WebAuth) -> None:
    session = Visitor(parse_api_keys(KEYS)[1], "session")
    header = Visitor(parse_api_keys(KEYS)[1], "header")
    auth.check_origin(request({"Origin": "http://127.0.0.1:3000"}, "POST"), session)
    auth.check_origin(request({"Referer": "http://127.0.0.1:3000/sensors/x/y"}, "POST"), session)
    auth.check_origin(request({}, "POST"), header)  # curl with a key: no browser, nothing to forge
    auth.check_origin(request({}, "POST"), Visitor(None, "open"))
    refused = [
        ({"Origin": "http://evil.example"}, session),
        ({"Origin": "http://127.0.0.1:3001"}, session),
        ({"Origin": "null"}, session),
        ({"Referer": "http://evil.example/page"}, session),
        ({"Origin": "http://evil.example"}, Visitor(None, "open")),  # loopback without keys: the only defence
        ({}, session),
    ]
    for headers, visitor in refused:
        with pytest.raises(PermissionDeniedError, match="Cross-site request refused"):
            auth.check_origin(request(headers, "POST"), visitor)


def test_after_signing_in_the_browser_goes_to_a_path_of_this_server_only() -> None:
    assert local_target("/sensors?location=a") == "/sensors?location=a"
    for target in (None, "", "https://evil.example/", "//evil.example/x", "/\\evil.example", "sensors", "javascript:x"):
        assert local_target(target) == "/", target


def test_the_session_secret_is_made_once_private_and_shared_by_every_process(tmp_path: Path) -> None:
    first = session_secret(tmp_path / "data")
    assert len(first) == 32 and session_secret(tmp_path / "data") == first
    assert os.stat(tmp_path / "data" / "web-session.key").st_mode & 0o777 == 0o600
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "web-session.key").write_bytes(b"x")
    assert len(session_secret(tmp_path / "short")) == 32  # unusable: a secret of this process instead
