"""Settings of the sensor and run workers, from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetpipe.schemas.errors import ConfigError
from assetpipe.schemas.settings import Settings


def test_sensor_and_run_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ASSETPIPE_DEFS": "defs/team_a.py",
            "ASSETPIPE_CODE_LOCATION": "team_a",
            "ASSETPIPE_SENSOR_BATCH_MAX_SECONDS": "0.05",
            "ASSETPIPE_RUN_WEBHOOK_URL": "https://jobs.example.com/runs",
            "ASSETPIPE_RUN_WEBHOOK_ATTEMPTS": "3",
        }
    )
    assert settings.defs == Path("defs/team_a.py") and settings.code_location == "team_a"
    assert settings.sensor_batch_max_seconds == 0.05 and settings.run_webhook_attempts == 3
    assert settings.run_webhook_url == "https://jobs.example.com/runs"
    defaults = Settings.from_env({})
    assert (defaults.code_location, defaults.run_webhook_url, defaults.run_timeout_s) == (None, None, 3600.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ASSETPIPE_CODE_LOCATION", "team a"),
        ("ASSETPIPE_RUN_WEBHOOK_URL", "ftp://jobs.example.com"),
        ("ASSETPIPE_SENSOR_BATCH_MAX_SECONDS", "0"),
        ("ASSETPIPE_RUN_WEBHOOK_ATTEMPTS", "0"),
    ],
)
def test_invalid_sensor_and_run_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
