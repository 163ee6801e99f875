"""The HTTP API's settings: defaults, parsing from the environment, and refusals that name the variable."""

from __future__ import annotations

import pytest

from assetpipe import Settings
from assetpipe.schemas.errors import ConfigError


def test_defaults() -> None:
    s = Settings()
    assert (s.http_host, s.http_port, s.http_workers, s.api_keys) == ("127.0.0.1", 3000, 1, None)
    assert s.http_max_body_bytes == 1_048_576 and s.http_max_batch_bytes == 16 * 1_048_576
    assert (s.http_max_json_depth, s.http_max_metadata_entries, s.http_max_string_chars) == (32, 1000, 65_536)
    assert s.http_publish_timeout_s == 10.0 and s.http_require_known_assets is True


def test_from_the_environment() -> None:
    s = Settings.from_env(
        environ={
            "ASSETPIPE_HTTP_HOST": "0.0.0.0",
            "ASSETPIPE_HTTP_PORT": "8080",
            "ASSETPIPE_HTTP_WORKERS": "4",
            "ASSETPIPE_API_KEYS": "sha256:" + "ab" * 32 + ":name=etl",
            "ASSETPIPE_HTTP_MAX_BODY_BYTES": "2048",
            "ASSETPIPE_HTTP_MAX_JSON_DEPTH": "8",
            "ASSETPIPE_HTTP_MAX_METADATA_ENTRIES": "50",
            "ASSETPIPE_HTTP_MAX_STRING_CHARS": "1000",
            "ASSETPIPE_HTTP_PUBLISH_TIMEOUT_S": "2.5",
            "ASSETPIPE_HTTP_REQUIRE_KNOWN_ASSETS": "false",
        }
    )
    assert (s.http_host, s.http_port, s.http_workers) == ("0.0.0.0", 8080, 4)
    assert s.api_keys is not None and s.api_keys.endswith(":name=etl")
    assert (s.http_max_body_bytes, s.http_max_json_depth, s.http_max_metadata_entries) == (2048, 8, 50)
    assert s.http_max_string_chars == 1000 and s.http_publish_timeout_s == 2.5
    assert s.http_require_known_assets is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASSETPIPE_HTTP_PORT", "70000"),
        ("ASSETPIPE_HTTP_WORKERS", "0"),
        ("ASSETPIPE_HTTP_MAX_BODY_BYTES", "10"),
        ("ASSETPIPE_HTTP_MAX_JSON_DEPTH", "1"),
        ("ASSETPIPE_HTTP_PUBLISH_TIMEOUT_S", "0"),
        ("ASSETPIPE_HTTP_REQUIRE_KNOWN_ASSETS", "maybe"),
    ],
)
def test_out_of_range_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(environ={name: value})
