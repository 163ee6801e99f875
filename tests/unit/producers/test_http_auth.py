"""API keys: the configured form, checking presented keys, scopes, and the loopback rule."""

from __future__ import annotations

import pytest

from assetpipe.producers.http.auth import Authenticator, hash_key, is_loopback, new_key, parse_api_keys
from assetpipe.producers.http.exceptions import AuthenticationError, PermissionDeniedError
from assetpipe.schemas.errors import ConfigError


def test_a_new_key_hashes_to_an_entry_that_parses() -> None:
    key = new_key()
    assert key.startswith("apk_") and len(key) > 40 and new_key() != key
    entry = hash_key(key)
    assert entry.startswith("sha256:") and len(entry) == 7 + 64
    (parsed,) = parse_api_keys(f"{entry}:name=etl:types=materialization,check:prefixes=sales/, ops/daily")
    assert parsed.name == "etl"
    assert parsed.types == frozenset({"materialization", "check_evaluation"})
    assert parsed.prefixes == (("sales",), ("ops", "daily"))


def test_entries_split_on_semicolons_and_new_lines() -> None:
    text = f"{hash_key('a')} ;\n{hash_key('b')}:name=b\n\n;{hash_key('c')}"
    assert [k.name for k in parse_api_keys(text)] == [None, "b", None]
    assert parse_api_keys(None) == [] and parse_api_keys("  ") == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("plain-key", "must start with sha256:<64 hex digits>"),
        ("sha256:abc", "must start with sha256"),
        (hash_key("k") + ":colour=blue", "bad option 'colour=blue'"),
        (hash_key("k") + ":types=runs", "Invalid event type 'runs'"),
        (hash_key("k") + ":name=has space", "name must be"),
        (hash_key("k") + ":name=a:name=b", "bad option"),
    ],
)
def test_malformed_entries_are_config_errors_that_do_not_print_the_digest(entry: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_api_keys(entry)
    assert hash_key("k")[7:] not in str(err.value)


def test_keys_from_either_header_and_refusals() -> None:
    auth = Authenticator(parse_api_keys(f"{hash_key('k1')}:name=one;{hash_key('k2')}"))
    assert auth.enabled
    assert auth.authenticate("k1", None).name == "one"  # type: ignore[union-attr]
    assert auth.authenticate(None, "Bearer k2") is not None
    assert auth.authenticate(None, "bearer  k2 ") is not None
    with pytest.raises(AuthenticationError, match="Missing API key"):
        auth.authenticate(None, None)
    with pytest.raises(AuthenticationError, match="Missing API key"):
        auth.authenticate(None, "Basic dXNlcjpwYXNz")
    with pytest.raises(AuthenticationError, match=r"^Invalid API key$"):
        auth.authenticate("k3", None)
    assert Authenticator([]).authenticate(None, None) is None


def test_scopes_by_event_type_and_whole_key_parts() -> None:
    (key,) = parse_api_keys(hash_key("k") + ":name=etl:types=materialization:prefixes=sales/")
    Authenticator.authorize(key, "materialization", ["sales", "daily"])
    Authenticator.authorize(None, "check_evaluation", ["anything"])
    with pytest.raises(PermissionDeniedError, match=r"'etl' may not report check events \(allowed: materialization\)"):
        Authenticator.authorize(key, "check_evaluation", ["sales", "daily"])
    with pytest.raises(PermissionDeniedError, match=r"asset 'salesforce/x' \(allowed prefixes: sales/\)"):
        Authenticator.authorize(key, "materialization", ["salesforce", "x"])


def test_a_materialization_failure_is_reported_under_the_materialization_scope() -> None:
    (mat,) = parse_api_keys(hash_key("k") + ":name=etl:types=materialization:prefixes=sales/")
    (check,) = parse_api_keys(hash_key("k") + ":name=qa:types=check")
    Authenticator.authorize(mat, "materialization_failure", ["sales", "daily"])
    with pytest.raises(PermissionDeniedError, match=r"'qa' may not report materialization failure events \(allowed: "):
        Authenticator.authorize(check, "materialization_failure", ["sales", "daily"])
    with pytest.raises(PermissionDeniedError, match=r"asset 'ops/x' \(allowed prefixes: sales/\)"):
        Authenticator.authorize(mat, "materialization_failure", ["ops", "x"])
    with pytest.raises(ConfigError, match="materialization failure is not a type of its own: list materialization"):
        parse_api_keys(hash_key("k") + ":types=check,materialization_failure")


def test_auth_is_required_beyond_loopback() -> None:
    open_api = Authenticator([])
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert is_loopback(host)
        open_api.require_for(host)
    for host in ("0.0.0.0", "::", "10.0.0.5", "api.example.com"):
        assert not is_loopback(host)
        with pytest.raises(ConfigError, match="beyond loopback, without API keys"):
            open_api.require_for(host)
    Authenticator(parse_api_keys(hash_key("k"))).require_for("0.0.0.0")
