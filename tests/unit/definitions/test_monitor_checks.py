"""Monitor checks: the builders (Dagster's names, parameters and messages), their specs as the registry stores
them, ``Definitions(asset_checks=...)``, and each pure decision: last update, bounds, volume anomaly (no
sockets)."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from assetpipe import (
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetSpec,
    DefinitionError,
    Definitions,
    MetadataValue,
    MonitorSpec,
    asset,
    build_last_update_freshness_checks,
    build_metadata_anomaly_checks,
    build_metadata_bounds_checks,
    load_definitions,
)
from assetpipe.definitions.checks import (
    AnomalyBaseline,
    anomaly_baseline,
    evaluate_anomaly,
    evaluate_bounds,
    evaluate_last_update,
)

S = 1_000_000


def us(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * S  # type: ignore[misc]


@asset(key=["sales", "orders"])
def orders() -> None: ...


def only(checks: list[AssetChecksDefinition]) -> list[MonitorSpec]:
    (definition,) = checks
    return list(definition.specs)


def test_each_builder_makes_one_spec_per_asset_with_its_check_name() -> None:
    freshness = only(
        build_last_update_freshness_checks(
            assets=[orders, AssetSpec("ledger"), AssetKey(["raw", "files"]), "only/reported"],
            lower_bound_delta=timedelta(minutes=45),
            deadline_cron="0 9 * * *",
            timezone="Europe/Paris",
        )
    )
    assert [(s.kind, s.asset_key, s.check_name, s.severity) for s in freshness] == [
        ("last_update", "sales/orders", "freshness_check", "WARN"),
        ("last_update", "ledger", "freshness_check", "WARN"),
        ("last_update", "raw/files", "freshness_check", "WARN"),
        ("last_update", "only/reported", "freshness_check", "WARN"),
    ]
    assert freshness[0].params == {"lower_bound_delta_seconds": 2700.0, "deadline_cron": "0 9 * * *",
                                   "timezone": "Europe/Paris"}  # fmt: skip
    (bounds,) = only(
        build_metadata_bounds_checks(
            assets=[orders], metadata_key="dagster/row_count", min_value=1, max_value=10**6, exclusive_max=True,
            severity=AssetCheckSeverity.ERROR,
        )
    )  # fmt: skip
    assert (bounds.kind, bounds.check_name, bounds.severity) == ("bounds", "dagster/row_count_bounds", "ERROR")
    assert bounds.params == {"metadata_key": "dagster/row_count", "min_value": 1, "max_value": 10**6,
                             "exclusive_min": False, "exclusive_max": True}  # fmt: skip
    (anomaly,) = only(build_metadata_anomaly_checks(assets=[orders]))
    assert (anomaly.kind, anomaly.check_name, anomaly.severity) == ("anomaly", "dagster/row_count_anomaly", "WARN")
    assert anomaly.params == {"metadata_key": "dagster/row_count", "sensitivity": 3.0, "lookback_days": 28,
                              "min_history": 14}  # fmt: skip
    (lag,) = only(build_metadata_anomaly_checks(assets=[orders], metadata_key="lag_minutes", sensitivity=2))
    assert (lag.check_name, lag.params["sensitivity"]) == ("lag_minutes_anomaly", 2.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: build_metadata_bounds_checks(assets=[orders], metadata_key="k"),
         "At least one of `min_value` or `max_value` must be set"),
        (lambda: build_metadata_bounds_checks(assets=[orders], metadata_key="k", min_value=2, max_value=1),
         "`min_value` may not be greater than `max_value`"),
        (lambda: build_metadata_bounds_checks(assets=[orders], metadata_key="k", min_value=True),
         "min_value must be a finite number, got True"),
        (lambda: build_metadata_bounds_checks(assets=[orders], metadata_key="", min_value=1),
         "metadata_key must be a non-empty string, got ''"),
        (lambda: build_last_update_freshness_checks(assets=[orders], lower_bound_delta=timedelta(hours=1),
                                                    deadline_cron="0 9 * *"), "Invalid cron string."),
        (lambda: build_last_update_freshness_checks(assets=[orders], lower_bound_delta=timedelta(hours=1),
                                                    timezone="Nowhere/Else"), "Invalid IANA timezone: Nowhere/Else"),
        (lambda: build_last_update_freshness_checks(assets=[orders], lower_bound_delta=3600),
         "lower_bound_delta must be a timedelta, got int"),
        (lambda: build_last_update_freshness_checks(assets=[orders, "sales/orders"],
                                                    lower_bound_delta=timedelta(hours=1)),
         "Found duplicate assets in the provided list of assets: ['sales/orders']. Please ensure that each asset "
         "is unique."),
        (lambda: build_metadata_anomaly_checks(assets=[orders], sensitivity=0), "sensitivity must be positive"),
        (lambda: build_metadata_anomaly_checks(assets=[orders], min_history=0),
         "min_history must be a positive integer, got 0"),
        (lambda: build_metadata_anomaly_checks(assets=[orders], lookback_days=7.5),
         "lookback_days must be a positive integer, got 7.5"),
        (lambda: build_metadata_anomaly_checks(assets="sales/orders"), "assets must be a list"),
        (lambda: build_metadata_anomaly_checks(assets=[orders], severity="FATAL"),
         "severity must be AssetCheckSeverity.WARN or .ERROR, got 'FATAL'"),
    ],
)  # fmt: skip
def test_builders_refuse_with_dagsters_messages(build: Any, message: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        build()
    assert message in str(raised.value)


def test_a_spec_round_trips_through_json_and_its_params_are_checked() -> None:
    specs = [
        *only(build_last_update_freshness_checks(assets=[orders], lower_bound_delta=timedelta(seconds=2))),
        *only(build_metadata_bounds_checks(assets=[orders], metadata_key="rows", max_value=2.5, exclusive_max=True)),
        *only(build_metadata_anomaly_checks(assets=[orders], severity=AssetCheckSeverity.ERROR)),
    ]
    for spec in specs:
        assert MonitorSpec.from_json(spec.to_json()) == spec
        text = __import__("json").dumps(spec.to_json())
        assert MonitorSpec.from_json(text) == spec
        assert MonitorSpec.from_json({**spec.to_json(), "params": spec.params_json()}) == spec
    assert specs[0].params_json() == '{"deadline_cron":null,"lower_bound_delta_seconds":2.0,"timezone":"UTC"}'
    refusals = {
        "a monitor's kind is one of last_update, bounds, anomaly, got 'volume'": {"kind": "volume"},
        "a monitor's severity is WARN or ERROR, got 'INFO'": {"severity": "INFO"},
        "the params of a bounds monitor are metadata_key, min_value, max_value, exclusive_min, exclusive_max "
        "(metadata_key required), got metadata_key, max": {"params": {"metadata_key": "rows", "max": 1}},
        "At least one of `min_value` or `max_value` must be set": {"params": {"metadata_key": "rows"}},
        "a monitor spec needs 'check_name'": {"check_name": None},
    }
    for message, change in refusals.items():
        form = {**specs[1].to_json(), **change}
        form = {k: v for k, v in form.items() if v is not None}
        with pytest.raises(DefinitionError) as raised:
            MonitorSpec.from_json(form)
        assert str(raised.value) == message


def test_definitions_take_asset_checks_and_list_their_monitors(tmp_path: Path) -> None:
    freshness = build_last_update_freshness_checks(assets=[orders, "only/reported"], lower_bound_delta=timedelta(1))
    bounds = build_metadata_bounds_checks(assets=[orders], metadata_key="dagster/row_count", min_value=1)
    defs = Definitions(assets=[orders], asset_checks=[*freshness, *bounds])
    assert [(m.asset_key, m.check_name) for m in defs.monitors()] == [
        ("sales/orders", "freshness_check"),
        ("only/reported", "freshness_check"),
        ("sales/orders", "dagster/row_count_bounds"),
    ]
    assert Definitions(assets=[orders]).monitors() == []
    assert len(Definitions(asset_checks=[*freshness, *freshness]).monitors()) == 2  # the same checks twice
    stricter = build_last_update_freshness_checks(assets=[orders], lower_bound_delta=timedelta(hours=1))
    with pytest.raises(DefinitionError, match="Duplicate asset check key: check 'freshness_check' of asset"):
        Definitions(asset_checks=[*freshness, *stricter])
    with pytest.raises(DefinitionError, match="asset_checks must be what build_last_update_freshness_checks"):
        Definitions(asset_checks=[orders])
    module = tmp_path / "monitored.py"
    module.write_text(
        "from datetime import timedelta\n"
        "from assetpipe import AssetSpec, build_last_update_freshness_checks, build_metadata_bounds_checks\n"
        "ledger = AssetSpec('ledger')\n"
        "fresh = build_last_update_freshness_checks(assets=[ledger], lower_bound_delta=timedelta(hours=2))\n"
        "(bounded,) = build_metadata_bounds_checks(assets=[ledger], metadata_key='rows', max_value=5)\n"
    )
    loaded = load_definitions(module)
    assert [(m.kind, m.asset_key) for m in loaded.monitors()] == [("last_update", "ledger"), ("bounds", "ledger")]


# -- last update (freshness_check) --------------------------------------------------------------------------


def test_a_last_update_check_without_a_cron_passes_up_to_the_lower_bound_included() -> None:
    (spec,) = only(build_last_update_freshness_checks(assets=[orders], lower_bound_delta=timedelta(seconds=2)))
    last = us(2024, 5, 1, 12)
    at_bound = evaluate_last_update(spec.params, last, last + 2 * S)  # Dagster: updated at or after the bound
    assert (at_bound.passed, at_bound.next_change_us) == (True, last + 2 * S + 1)
    assert at_bound.metadata["dagster/fresh_until_timestamp"].value == (last + 2 * S) / S
    assert at_bound.description == (
        "Asset is currently fresh. The last update was 2 seconds ago, within the allowed time range of 2 seconds."
    )
    past = evaluate_last_update(spec.params, last, last + 2 * S + 1)
    assert (past.passed, past.next_change_us) == (False, None)
    assert past.metadata["dagster/overdue_deadline_timestamp"].value == (last + 2 * S) / S
    assert past.metadata["dagster/overdue_seconds"].value == pytest.approx(1e-6)
    assert past.description == (
        "Asset is overdue for an update. The last update was 2 seconds ago, which is past the allowed distance of "
        "2 seconds ago."
    )
    never = evaluate_last_update(spec.params, None, last)
    assert (never.passed, never.description) == (False, "Asset has never been observed/materialized.")
    assert set(never.metadata) == {"dagster/freshness_params", "dagster/freshness_lower_bound_timestamp"}
    assert never.metadata["dagster/freshness_params"].value == spec.params


def test_a_last_update_check_with_a_cron_judges_the_latest_tick() -> None:
    (spec,) = only(
        build_last_update_freshness_checks(
            assets=[orders], lower_bound_delta=timedelta(minutes=45), deadline_cron="0 9 * * *"
        )
    )
    fresh = evaluate_last_update(spec.params, us(2024, 5, 1, 8, 15), us(2024, 5, 1, 12))
    assert (fresh.passed, fresh.next_change_us) == (True, us(2024, 5, 2, 9))
    assert {k: v.value for k, v in fresh.metadata.items()} == {
        "dagster/freshness_params": spec.params,
        "dagster/latest_cron_tick_timestamp": us(2024, 5, 1, 9) / S,
        "dagster/freshness_lower_bound_timestamp": us(2024, 5, 1, 8, 15) / S,
        "dagster/last_updated_timestamp": us(2024, 5, 1, 8, 15) / S,
        "dagster/fresh_until_timestamp": us(2024, 5, 2, 9) / S,
    }
    early = evaluate_last_update(spec.params, us(2024, 5, 1, 8, 14), us(2024, 5, 1, 12))
    assert (early.passed, early.metadata["dagster/overdue_seconds"].value) == (False, 3 * 3600.0)


# -- bounds -------------------------------------------------------------------------------------------------


def test_bounds_with_dagsters_messages() -> None:
    (spec,) = only(build_metadata_bounds_checks(assets=[orders], metadata_key="rows", min_value=10, max_value=20))
    assert (evaluate_bounds(10, spec.params).passed, evaluate_bounds(20, spec.params).passed) == (True, True)
    assert evaluate_bounds(15, spec.params).description == "Value `15` is within range"
    assert evaluate_bounds(9, spec.params).description == "Value `9` is less than 10"
    assert evaluate_bounds(20.5, spec.params).description == "Value `20.5` is greater than 20"
    assert evaluate_bounds(None, spec.params).description == "Metadata key `rows` not found"
    assert evaluate_bounds("12", spec.params).description == "Value `12` is not a number"
    assert evaluate_bounds(MetadataValue.text("x"), spec.params).description == "Value `x` is not a number"
    assert evaluate_bounds(float("nan"), spec.params).passed is False
    typed = evaluate_bounds(MetadataValue.int(12), spec.params)
    assert (typed.passed, {k: (v.kind, v.value) for k, v in typed.metadata.items()}) == (
        True, {"value": ("int", 12), "min_value": ("int", 10), "max_value": ("int", 20)},
    )  # fmt: skip
    (exclusive,) = only(
        build_metadata_bounds_checks(
            assets=[orders], metadata_key="rows", min_value=10, max_value=20, exclusive_min=True, exclusive_max=True
        )
    )
    assert evaluate_bounds(10, exclusive.params).description == "Value `10` is less than or equal to 10"
    assert evaluate_bounds(20, exclusive.params).description == "Value `20` is greater than or equal to 20"
    assert evaluate_bounds(10.000001, exclusive.params).passed is True
    (floor,) = only(build_metadata_bounds_checks(assets=[orders], metadata_key="rows", min_value=0))
    assert evaluate_bounds(10**12, floor.params).passed is True
    assert evaluate_bounds(MetadataValue.timestamp(1.0), floor.params).passed is True


# -- anomalies ----------------------------------------------------------------------------------------------


def anomaly_params(**changes: Any) -> dict[str, Any]:
    (spec,) = only(build_metadata_anomaly_checks(assets=[orders], **changes))
    return dict(spec.params)


def test_below_min_history_an_anomaly_check_passes_saying_more_data_is_needed() -> None:
    params = anomaly_params()
    for baseline in (None, AnomalyBaseline(median=1000, mad=10, history=13)):
        result = evaluate_anomaly(5, baseline, params)
        assert result.passed is True
        assert "Passing until more data is collected." in result.description
    assert evaluate_anomaly(5, None, params).description.startswith(
        "Not enough history to judge `dagster/row_count`: 0 values in the last 28 days, 14 needed."
    )
    assert evaluate_anomaly(5, AnomalyBaseline(1000, 10, 14), params).passed is False


def test_an_anomaly_is_outside_sensitivity_robust_deviations_of_the_median() -> None:
    params = anomaly_params(sensitivity=2.0)
    baseline = AnomalyBaseline(median=1000.0, mad=100.0, history=20)
    spread = 148.26
    inside = evaluate_anomaly(1000 + 2 * spread, baseline, params)  # the bound itself is expected
    assert inside.passed is True
    assert {k: v.value for k, v in inside.metadata.items()} == pytest.approx(
        {"value": 1000 + 2 * spread, "history_size": 20, "min_history": 14, "median": 1000.0, "spread": spread,
         "lower_bound": 1000 - 2 * spread, "upper_bound": 1000 + 2 * spread, "sensitivity": 2.0, "weekly": False}
    )  # fmt: skip
    high = evaluate_anomaly(1300, baseline, params)
    assert high.passed is False
    assert high.description.startswith("Value `1300` is an anomaly: above the expected range [703.48, 1296.52]")
    assert evaluate_anomaly(700, baseline, params).description.startswith("Value `700` is an anomaly: below")
    assert evaluate_anomaly(None, baseline, params).description == "Metadata key `dagster/row_count` not found"


def test_the_spread_is_at_least_five_percent_of_the_median() -> None:
    params = anomaly_params()
    constant = AnomalyBaseline(median=500.0, mad=0.0, history=28)
    assert evaluate_anomaly(500, constant, params).passed is True
    assert evaluate_anomaly(575, constant, params).passed is True  # within 3 x 5% of 500
    assert evaluate_anomaly(424, constant, params).passed is False
    assert evaluate_anomaly(499, constant, anomaly_params(sensitivity=0.01)).passed is False  # within 0.25
    assert evaluate_anomaly(1, AnomalyBaseline(0.0, 0.0, 28), params).passed is False


def weekly_history(days: int, seed: int) -> list[tuple[int, float]]:
    """(weekday, row count): about 10,000 rows on weekdays and 3,000 at weekends, 4% noise."""
    draw = random.Random(seed)
    start = datetime(2024, 4, 1, tzinfo=UTC)  # a Monday
    out = []
    for day in range(days):
        weekday = (start + timedelta(days=day)).weekday()
        level = 3_000 if weekday >= 5 else 10_000
        out.append((weekday, level * (1 + draw.uniform(-0.04, 0.04))))
    return out


def test_a_weekly_baseline_stays_quiet_on_a_weekly_pattern_and_fires_on_a_ninety_percent_drop() -> None:
    params = anomaly_params()
    for seed in range(20):
        history = weekly_history(30, seed=seed)
        next_week = weekly_history(37, seed=seed + 100)[30:]
        for weekday, value in next_week:
            baseline = anomaly_baseline(history, weekday)
            assert baseline is not None and baseline.weekly and baseline.history == 30
            assert evaluate_anomaly(value, baseline, params).passed, (seed, weekday, value)
            dropped = evaluate_anomaly(value * 0.1, baseline, params)
            assert dropped.passed is False and "below the expected range" in dropped.description
    # without the weekday, weekends look like anomalies: why the baseline looks for a weekly pattern
    history = weekly_history(30, seed=1)
    flat = AnomalyBaseline(statistics.median(v for _, v in history), 0.0, 30)
    assert evaluate_anomaly(3_000, flat, params).passed is False


def test_a_history_without_a_weekly_pattern_has_one_median() -> None:
    draw = random.Random(3)
    history = [(day % 7, 500 + draw.uniform(-20, 20)) for day in range(28)]
    baseline = anomaly_baseline(history, 5)
    assert baseline is not None and not baseline.weekly
    assert baseline.median == statistics.median(v for _, v in history)
    assert anomaly_baseline(history[:10], 2) == AnomalyBaseline(
        statistics.median(v for _, v in history[:10]),
        statistics.median(abs(v - statistics.median(x for _, x in history[:10])) for _, v in history[:10]),
        10,
    )  # fewer than two of each weekday: one median
    assert anomaly_baseline([], 0) is None
