"""Reporter construction errors (raised before any Kafka client exists) and the package's exports."""

from __future__ import annotations

import pytest

import assetpipe
from assetpipe.schemas.errors import AssetpipeError, ConfigError
from assetpipe.schemas.settings import Settings


def test_bootstrap_servers_and_settings_together_are_refused() -> None:
    settings = Settings.model_validate({"kafka_bootstrap_servers": "b:9092"})
    with pytest.raises(ConfigError, match="pass bootstrap_servers or settings, not both"):
        assetpipe.Reporter("a:9092", settings=settings)


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown event source"):
        assetpipe.Reporter("a:9092", source="cron")  # type: ignore[arg-type]


def test_from_env_reports_bad_variables() -> None:
    with pytest.raises(ConfigError, match="ASSETPIPE_PRODUCER_LINGER_MS"):
        assetpipe.Reporter.from_env({"ASSETPIPE_PRODUCER_LINGER_MS": "soon"})


def test_sdk_users_need_one_import() -> None:
    for name in ("Reporter", "Receipt", "MetadataValue", "AssetMaterialization", "TableSchema", "AssetKey"):
        assert name in assetpipe.__all__
        assert getattr(assetpipe, name) is not None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (assetpipe.PublishError, "publish_failed"),
        (assetpipe.PublisherClosedError, "publisher_closed"),
        (assetpipe.QueueFullError, "queue_full"),
        (assetpipe.DeliveryError, "delivery_failed"),
        (assetpipe.PublishTimeoutError, "publish_timeout"),
    ],
)
def test_errors_sit_in_the_one_tree_with_stable_codes(error: type[AssetpipeError], code: str) -> None:
    assert issubclass(error, assetpipe.PublishError)
    assert issubclass(error, AssetpipeError)
    assert error.code == code


def test_delivery_error_message_counts_and_names_failures() -> None:
    failures = [(f"e{i}", "Local: Message timed out") for i in range(5)]
    error = assetpipe.DeliveryError(failures, remaining=2)
    assert str(error) == (
        "5 events were not delivered: e0 (Local: Message timed out), e1 (Local: Message timed out), "
        "e2 (Local: Message timed out) and 2 more; 2 more still queued"
    )
    assert error.event_ids == ("e0", "e1", "e2", "e3", "e4")
