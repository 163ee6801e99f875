"""Retention without ClickHouse: the setting, and the days read back from a raw table's definition as ClickHouse
renders it (what decides whether the TTL must change)."""

from __future__ import annotations

import pytest

from assetpipe import Settings
from assetpipe.consumers.retention import RAW_TTL, ttl_days
from assetpipe.schemas.errors import ConfigError

ENGINE = (
    "ReplacingMergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY (asset_key, event_type, partition, dedup_key) "
    "{ttl}SETTINGS non_replicated_deduplication_window = 10000, index_granularity = 8192"
)


def test_the_setting_keeps_everything_unless_given_a_number_of_days() -> None:
    assert Settings.from_env(environ={}).retention_days is None
    assert Settings.from_env(environ={"ASSETPIPE_RETENTION_DAYS": ""}).retention_days is None
    assert Settings.from_env(environ={"ASSETPIPE_RETENTION_DAYS": "90"}).retention_days == 90
    for value in ("0", "-5", "ninety"):
        with pytest.raises(ConfigError, match="ASSETPIPE_RETENTION_DAYS"):
            Settings.from_env(environ={"ASSETPIPE_RETENTION_DAYS": value})


def test_the_days_of_a_raw_tables_ttl_as_clickhouse_renders_it() -> None:
    rendered = "TTL (toStartOfMonth(timestamp) + toIntervalMonth(1)) + toIntervalDay(90) WHERE event_type = 'x' "
    assert ttl_days(ENGINE.format(ttl=rendered)) == 90
    assert ttl_days(ENGINE.format(ttl="")) is None
    assert ttl_days(ENGINE.format(ttl="TTL timestamp + toIntervalMonth(3) ")) == 0  # a TTL set by hand: replaced
    assert "check_evaluation" in RAW_TTL["asset_events"] and "{days} DAY" in RAW_TTL["asset_metadata_points"]
