"""Freshness policies in the registry without ClickHouse: the spec field as ``PUT /api/assets`` and spec files
give it, refused with the field named, and the policy in a stored definition, its row and its hash."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from assetpipe import AssetSpec, DailyPartitionsDefinition, FreshnessPolicy
from assetpipe.consumers.registry import SPEC_FIELDS, SpecError, StoredDefinition, spec_entry, spec_from_json
from assetpipe.consumers.registry.definition import DEFINITION_COLUMNS, removal_row

WINDOW = {"type": "time_window", "fail_window_seconds": 7200, "warn_window_seconds": 3600}
CRON = {"type": "cron", "deadline_cron": "0 9 * * *", "lower_bound_delta_seconds": 2700, "timezone": "Europe/Paris"}


def test_a_spec_takes_a_freshness_policy_in_its_json_form() -> None:
    assert "freshness_policy" in SPEC_FIELDS
    spec = spec_from_json(["sales", "orders"], {"freshness_policy": WINDOW})
    assert spec.freshness_policy == FreshnessPolicy.time_window(timedelta(hours=2), timedelta(hours=1))
    entry = spec_entry({"key": "sales/orders", "freshness_policy": CRON}, "entry 1")
    assert entry.freshness_policy == FreshnessPolicy.cron("0 9 * * *", timedelta(minutes=45), "Europe/Paris")
    assert spec_from_json(["a"], {"freshness_policy": None}).freshness_policy is None


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("2h", 'field \'freshness_policy\' must be an object ("type": "time_window" or "cron"), got string'),
        ({"type": "sla"}, "freshness_policy.type must be 'time_window' or 'cron', got 'sla'"),
        ({**WINDOW, "warn_window_seconds": 7200}, "freshness_policy: warn_window must be less than fail_window"),
        ({**WINDOW, "fail_window": 1}, "freshness_policy has unknown field 'fail_window': a time_window policy has "
                                       "fail_window_seconds, warn_window_seconds"),
        ({"type": "time_window"}, "freshness_policy.fail_window_seconds is required"),
        ({**CRON, "deadline_cron": "9am"}, "freshness_policy: Invalid cron string. deadline_cron '9am' must have five "
                                           "fields"),
        ({**CRON, "timezone": "Paris"}, "freshness_policy: Invalid IANA timezone: Paris"),
        ({**CRON, "lower_bound_delta_seconds": 90000}, "freshness_policy: lower_bound_delta must be less than or "
                                                       "equal to the smallest cron interval of (86400.0 seconds"),
    ],
)  # fmt: skip
def test_a_bad_policy_is_refused_naming_the_field(policy: Any, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        spec_from_json(["sales", "orders"], {"freshness_policy": policy})
    assert str(raised.value).startswith(message)
    with pytest.raises(SpecError) as in_file:
        spec_entry({"key": "sales/orders", "freshness_policy": policy}, "entry 3")
    assert str(in_file.value).startswith(f"entry 3 (sales/orders): {message}")


def test_the_policy_is_stored_as_its_canonical_json_and_is_part_of_the_hash() -> None:
    plain = StoredDefinition.of(AssetSpec("sales/orders"))
    window = StoredDefinition.of(AssetSpec("sales/orders", freshness_policy=FreshnessPolicy.from_json(WINDOW)))
    cron = StoredDefinition.of(AssetSpec("sales/orders", freshness_policy=FreshnessPolicy.from_json(CRON)))
    assert plain.freshness_policy == ""
    assert window.freshness_policy == '{"fail_window_seconds":7200,"type":"time_window","warn_window_seconds":3600}'
    assert len({plain.definition_hash, window.definition_hash, cron.definition_hash}) == 3
    same = AssetSpec("sales/orders", freshness_policy=FreshnessPolicy.time_window(timedelta(seconds=7200.0),
                                                                                    timedelta(minutes=60)))  # fmt: skip
    assert StoredDefinition.of(same).definition_hash == window.definition_hash
    row = dict(zip(DEFINITION_COLUMNS, window.row("loc", "code", 7), strict=True))
    assert DEFINITION_COLUMNS[-1] == "freshness_policy" and row["freshness_policy"] == window.freshness_policy
    removed = dict(zip(DEFINITION_COLUMNS, removal_row("a", ["a"], "h", "loc", "code", 8), strict=True))
    assert removed["freshness_policy"] == ""


def test_a_definition_without_a_policy_keeps_the_hash_it_had_before_policies() -> None:
    """Registering a location again after the upgrade writes nothing for its assets without a policy."""
    spec = AssetSpec(
        "sales/orders",
        deps=["up/a"],
        owners=["team:sales"],
        tags={"x": "1"},
        kinds=["python"],
        metadata={"rows": 12},
        code_version="3",
        partitions_def=DailyPartitionsDefinition("2024-01-01"),
    )
    assert StoredDefinition.of(spec).definition_hash == (
        "bc61228265e7e884052619521fbb03c39986a4344ba236b0005fda67391a75c2"  # the hash before this version
    )
