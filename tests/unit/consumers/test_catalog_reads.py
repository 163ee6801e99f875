"""The catalog's reads without ClickHouse: what they send (user input only as parameters, never in the SQL
text), how they read rows in either form a query answers with (clickhouse-connect's, or JSON through the
control socket), cursors and the refusals of bad query strings."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from assetpipe.consumers.catalog import (
    AssetQuery,
    EventQuery,
    SeriesQuery,
    StalenessSnapshot,
    asset_events,
    cursor,
    depth_of,
    list_assets,
    partitions,
    series,
)
from assetpipe.consumers.catalog.series import DAY_US, HOUR_US, RAW_MAX_VALUES, grain_for
from assetpipe.consumers.warehouse import QueryResult
from assetpipe.schemas.errors import FieldError

HOSTILE = "x' OR 1=1) UNION SELECT * FROM system.users --"


class Recorder:
    """A ``Query`` that records what it was sent and answers each query from ``answers`` (matched on a
    fragment of its SQL), else no rows."""

    def __init__(self, answers: Mapping[str, list[tuple[Any, ...]]] | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.answers = dict(answers or {})

    def __call__(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        self.sent.append((sql, dict(parameters)))
        for fragment, rows in self.answers.items():
            if fragment in sql:
                return QueryResult((), rows)
        return QueryResult((), [])


def test_every_filter_of_the_list_is_a_parameter_never_sql_text() -> None:
    query = Recorder()
    params = {name: HOSTILE for name in ("prefix", "search", "owner", "group", "kind", "location")}
    tag = "t' OR '1'='1"
    list_assets(query, AssetQuery.parse({**params, "tag": f"{tag}=v'--", "status": "stale", "sort": "updated"}))
    sql, values = query.sent[0]
    assert HOSTILE not in sql and "OR '1'" not in sql and "system.users" not in sql
    assert values["search"] == HOSTILE and values["tag"] == "t' OR '1'" and values["tag_value"] == "'1=v'--"
    assert values["prefix"] == HOSTILE and values["status"] == "STALE"
    assert "ORDER BY a.updated_us DESC, a.key DESC" in sql


def test_a_label_is_any_value_of_its_tag_and_prefixes_are_whole_parts() -> None:
    label = AssetQuery.parse({"tag": "pii", "prefix": "/sales/"})
    assert label.filters == {"tag": "pii", "prefix": "sales"}
    assert AssetQuery.parse({"tag": "domain=sales"}).filters == {"tag": "domain", "tag_value": "sales"}
    assert AssetQuery.parse({"tag": "empty="}).filters == {"tag": "empty", "tag_value": ""}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "ROTTEN"}, "status"),
        ({"sort": "size"}, "sort"),
        ({"defined": "yes"}, "defined"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
def test_bad_list_parameters_are_400s_naming_them(params: dict[str, str], field: str) -> None:
    with pytest.raises(FieldError) as refused:
        AssetQuery.parse(params)
    assert refused.value.field == field and f"'{field}'" in str(refused.value)


def test_a_page_of_the_list_and_its_cursor_read_rows_from_json_too() -> None:
    rows = [
        ("a/one", True, "first", ["team:x"], ["python"], "g", "loc", {"dagster/kind/python": "", "pii": ""},
         "materialization", 1_700_000_000_000_000),
        ("a/two", False, "", [], [], "", "", {}, "external", 0),
        ("a/three", False, "", [], [], "", "", {}, "external", 0),
    ]  # fmt: skip
    latest = [
        ["a/one", "materialization", "", 1_700_000_000_000_000, "2024-01-01", "v1", "id-1", "", None, "", None],
        ["a/one", "check_evaluation", "fresh", 1_700_000_000_000_000, "", "", "c1", "", False, "ERROR", None],
        ["a/one", "check_evaluation", "rows", 1, "", "", "c2", "", True, "WARN", None],
        ["a/one", "materialization_failure", "", 1_700_000_000_000_000, "2024-01-02", "", "f1", "r9", None, "",
         "RUN_TERMINATED"],
    ]  # fmt: skip
    staleness = [["a/one", "STALE", [["CODE", "", "has a new code version"]]], ["a/two", "FRESH", []]]
    failed = [("a/one", 1)]  # one partition whose latest attempt to materialize failed
    query = Recorder({"FROM (SELECT if(": rows, "GROUP BY p.asset_key, p.event_type": latest,
                      "FROM asset_staleness AS s": staleness, "'materialization_failure' GROUP": failed})  # fmt: skip
    page = list_assets(query, AssetQuery.parse({"limit": "2"}))
    one, two = page["items"]
    assert one["tags"] == {"pii": ""} and one["status"] == "STALE" and two["status"] == "FRESH"
    assert one["latest_materialization"] == {"timestamp": "2023-11-14T22:13:20Z", "partition": "2024-01-01",
                                             "data_version": "v1", "event_id": "id-1", "run_id": None}  # fmt: skip
    assert one["latest_failure"] == {"timestamp": "2023-11-14T22:13:20Z", "partition": "2024-01-02",
                                     "data_version": None, "event_id": "f1", "run_id": "r9",
                                     "reason": "RUN_TERMINATED"}  # fmt: skip
    assert (one["failed"], two["failed"], two["latest_failure"]) == (True, False, None)
    assert one["checks"] == {"total": 2, "passed": {"WARN": 1, "ERROR": 0}, "failed": {"WARN": 0, "ERROR": 1}}
    assert two["code_location"] is None and two["last_updated"] is None and two["latest_materialization"] is None
    assert cursor.decode(page["next_cursor"], "assets:key", (str,)) == ["a/two"]
    assert query.sent[0][1]["limit"] == 3  # one beyond the page: is there a next one?
    following = Recorder()
    list_assets(following, AssetQuery.parse({"cursor": page["next_cursor"]}))
    assert "a.key > {after_key:String}" in following.sent[0][0] and following.sent[0][1]["after_key"] == "a/two"


def test_a_cursor_of_another_list_or_sort_is_refused() -> None:
    by_key = cursor.encode("assets:key", "a/b")
    with pytest.raises(FieldError, match="cursor"):
        list_assets(Recorder(), AssetQuery.parse({"sort": "updated", "cursor": by_key}))
    with pytest.raises(FieldError, match="cursor"):
        partitions(Recorder(), "a", {"cursor": by_key})
    with pytest.raises(FieldError, match="cursor"):
        asset_events(Recorder(), "a", EventQuery.parse({"cursor": "not-a-cursor!"}))
    with pytest.raises(FieldError, match="cursor"):
        asset_events(Recorder(), "a", EventQuery.parse({"cursor": cursor.encode("events", 1, "no-uuid")}))


def test_events_filters_are_parameters_and_runs_are_looked_up_by_uuid_only() -> None:
    run = "0b7e3f4c-1234-4abc-8def-0123456789ab"
    row = ("e1", "check_evaluation", 1_000_000, "p1", "", "", {"n": "3"}, {"n": "int"}, {}, "fresh", False, "WARN",
           run, "http", None, None)  # fmt: skip
    other = ("e2", "materialization", 1, "", "v", "d", {}, {}, {}, "", None, "", "outside-run", "sdk", None, None)
    failure = ("e3", "materialization_failure", 0, "p1", "", "boom", {}, {}, {}, "", None, "", "", "openlineage",
               "SKIPPED", "RUN_TERMINATED")  # fmt: skip
    query = Recorder({"FROM asset_events AS e": [row, other, failure], "FROM runs AS r FINAL": [(run, "succeeded")]})
    wanted = EventQuery.parse({"type": "check", "partition": HOSTILE, "after": "2024-01-01T00:00:00Z", "before": "0"})
    page = asset_events(query, HOSTILE, wanted)
    sql, values = query.sent[0]
    assert HOSTILE not in sql and values["partition"] == HOSTILE and values["key"] == HOSTILE
    assert values["type"] == "check_evaluation" and values["after"] == 1_704_067_200_000_000 and values["before"] == 0
    check, plain, failed = page["items"]
    assert check["metadata"] == {"n": {"type": "int", "value": 3}} and check["passed"] is False
    assert check["run"] == {"run_id": run, "status": "succeeded"}
    assert plain["run"] == {"run_id": "outside-run", "status": None} and "check_name" not in plain
    assert "failure_type" not in plain and "reason" not in check
    assert (failed["failure_type"], failed["reason"], failed["description"], failed["run"]) == (
        "SKIPPED", "RUN_TERMINATED", "boom", None)  # fmt: skip
    assert EventQuery.parse({"type": "materialization_failure"}).type == "materialization_failure"
    assert query.sent[1][1] == {"ids": [run]}
    with pytest.raises(FieldError, match="'after'"):
        EventQuery.parse({"after": "yesterday"})
    with pytest.raises(FieldError, match="'type'"):
        EventQuery.parse({"type": "run"})


def test_a_series_by_time_gives_each_point_its_event_and_by_partition_its_bucket() -> None:
    reduced = [(1_000_000.0, 1.5), (2_000_000.0, 2.5)]
    query = Recorder({"FROM asset_metadata_daily AS d": [(10, 1_000_000, 2_000_000, 5_000_000, 0)],
                      "largestTriangleThreeBuckets": [(10, 1_000_000, 2_000_000, reduced)],
                      "LIMIT 1 BY t": [(1_000_000, "e1", "p1"), (2_000_000, "e2", "")]})  # fmt: skip
    shown = series(query, "a", HOSTILE, SeriesQuery.parse({"points": "3", "after": "1"}))
    assert all(HOSTILE not in sql and values["label"] == HOSTILE for sql, values in query.sent[:2])
    assert query.sent[2][1]["times"] == [1_000_000, 2_000_000]
    assert (shown["count"], shown["downsampled"], shown["grain"], shown["raw_since"]) == (10, True, "raw", None)
    assert shown["points"][0] == {"x": "1970-01-01T00:00:01Z", "y": 1.5, "event_id": "e1", "partition": "p1"}
    buckets = [(0, "p1", "p2", 2, 1.0, 3.0, 2.0, 3.0, "e2", 3), (1, "p3", "p3", 1, 5.0, 5.0, 5.0, 5.0, "e3", 3)]
    by_partition = series(Recorder({"row_number()": buckets, "now64": [(5 * DAY_US, 2)]}), "a", "n",
                          SeriesQuery.parse({"x": "partition"}))  # fmt: skip
    assert by_partition["count"] == 3 and by_partition["downsampled"] is True
    assert (by_partition["grain"], by_partition["raw_since"]) == ("raw", "1970-01-04T00:00:00Z")
    assert by_partition["points"][0] == {"first_partition": "p1", "last_partition": "p2", "partitions": 2, "min": 1.0,
                                         "max": 3.0, "avg": 2.0, "last": 3.0, "event_id": "e2"}  # fmt: skip
    for params, field in (({"x": "size"}, "x"), ({"points": "2"}, "points"), ({"points": "10001"}, "points"),
                          ({"before": "Infinity"}, "before"), ({"after": "nan"}, "after"), ({"grain": "week"}, "grain"),
                          ({"x": "partition", "grain": "day"}, "grain")):  # fmt: skip
        with pytest.raises(FieldError, match=f"'{field}'"):
            SeriesQuery.parse(params)


def test_a_long_series_or_one_past_the_raw_window_is_read_from_a_rollup_in_groups_of_buckets() -> None:
    """Three years of values from 2000-01-01 05:00, raw points kept for the last 30 days: the daily rollup, its
    buckets merged two by two into at most 1,000 groups from the first value's day; each group its mean, min, max,
    last value and count."""
    day0 = 10_957 * DAY_US  # 2000-01-01
    first, now = day0 + 5 * HOUR_US, day0 + 3 * 365 * DAY_US + 7 * HOUR_US
    groups = [(day0, 48, 1.0, 9.0, 4.5, 8.0, first, day0 + DAY_US), (day0 + 2 * DAY_US, 20, 2.0, 4.0, 3.0, 2.5,
              day0 + 2 * DAY_US, now)]  # fmt: skip
    query = Recorder({"FROM asset_metadata_daily AS d": [(68, first, now, now, 30)],
                      "FROM asset_metadata_daily AS b": groups})  # fmt: skip
    shown = series(query, "a", HOSTILE, SeriesQuery())
    sql, values = query.sent[1]
    assert HOSTILE not in sql and (values["origin"], values["width"]) == (day0 // 1_000_000, 2 * 86_400)
    assert (shown["grain"], shown["count"], shown["downsampled"]) == ("day", 68, True)
    assert (shown["raw_since"], shown["first"], shown["last"]) == (
        "2002-12-01T07:00:00Z", "2000-01-01T05:00:00Z", "2002-12-31T07:00:00Z")  # fmt: skip
    assert shown["points"][0] == {"x": "2000-01-01T00:00:00Z", "y": 4.5, "min": 1.0, "max": 9.0, "last": 8.0,
                                  "count": 48, "event_id": None, "partition": None}  # fmt: skip
    hourly = series(query, "a", "n", SeriesQuery.parse({"grain": "hour"}))
    assert hourly["grain"] == "hour" and "FROM asset_metadata_hourly AS b" in query.sent[-1][0]
    assert query.sent[-1][1]["width"] == 27 * 3600  # 26,287 hours in at most 1,000 groups
    empty = series(Recorder({"FROM asset_metadata_daily AS d": [(0, 0, 0, now, 0)]}), "a", "n", SeriesQuery())
    assert (empty["count"], empty["points"], empty["grain"]) == (0, [], "raw")


def test_the_grain_is_raw_for_few_values_all_kept_else_the_coarsest_rollup_with_enough_buckets() -> None:
    year = 365 * DAY_US
    assert grain_for(RAW_MAX_VALUES, 5 * year, 0, None, 1000) == "raw"
    assert grain_for(RAW_MAX_VALUES + 1, 5 * year, 0, None, 1000) == "day"
    assert grain_for(RAW_MAX_VALUES + 1, 999 * DAY_US, 0, None, 1000) == "hour"
    assert grain_for(RAW_MAX_VALUES + 1, 999 * DAY_US, 0, None, 100) == "day"
    assert grain_for(10, DAY_US, year, year, 1000) == "raw"  # every raw point of the range is kept
    assert grain_for(10, DAY_US, year - 1, year, 1000) == "hour"  # some were dropped


def test_partitions_gather_each_partitions_latest_events_and_checks() -> None:
    rows = [
        ("p1", "check_evaluation", "fresh", 5, "c1", "", "", False, "ERROR", None),
        ("p1", "materialization", "", 3, "m1", "v1", "r1", None, "", None),
        ("p1", "materialization_failure", "", 2, "f1", "", "r0", None, "", "UNKNOWN"),  # before: materialized since
        ("p2", "observation", "", 4, "o2", "", "", None, "", None),
        ("p2", "materialization", "", 4, "m2", "", "", None, "", None),
        ("p2", "materialization_failure", "", 7, "f2", "", "r2", None, "", "UPSTREAM_FAILED_TO_MATERIALIZE"),
        ("p3", "check_evaluation", "fresh", 6, "c3", "", "", True, "WARN", None),
    ]
    page = partitions(Recorder({"asset_partition_state": rows}), "a", {"limit": "2"})
    p1, p2 = page["items"]
    assert (p1["status"], p1["failed_checks"], p1["materialization"]["event_id"]) == ("MATERIALIZED", 1, "m1")
    assert p1["failure"] == {"timestamp": "1970-01-01T00:00:00.000002Z", "event_id": "f1", "run_id": "r0",
                             "reason": "UNKNOWN"}  # fmt: skip
    assert (p2["status"], p2["observation"]["event_id"], p2["failure"]["reason"]) == (
        "FAILED", "o2", "UPSTREAM_FAILED_TO_MATERIALIZE")  # fmt: skip
    assert cursor.decode(page["next_cursor"], "partitions", (str,)) == ["p2"]


def test_depth_is_bounded() -> None:
    assert depth_of(None) == 2 and depth_of("10") == 10
    for text in ("0", "11", "-1", "two"):
        with pytest.raises(FieldError, match="'depth'"):
            depth_of(text)


def test_the_staleness_snapshot_is_read_whole_at_most_once_a_period_and_asks_the_view_for_new_assets() -> None:
    now = [0.0]
    rows = [("a", "STALE", [("CODE", "", "has a new code version")]), ("b", "FRESH", [])]
    query = Recorder({"WHERE s.asset_key IN": [("new", "MISSING", [])], "FROM asset_staleness AS s": rows})
    snapshot = StalenessSnapshot(query, max_age=5.0, clock=lambda: now[0])
    assert snapshot(["a"]) == {"a": {"status": "STALE", "causes": [{"category": "CODE", "dependency": "",
                                                                   "reason": "has a new code version"}]}}  # fmt: skip
    now[0] = 4.0
    assert snapshot(["b"])["b"]["status"] == "FRESH" and len(query.sent) == 1  # still the first read
    assert snapshot(["b", "new"])["new"] == {"status": "MISSING", "causes": []}  # unknown to it: the view, for it
    assert query.sent[-1][1] == {"keys": ["new"]}
    rows[1] = ("b", "STALE", [])
    now[0] = 6.0
    assert snapshot(["b"])["b"]["status"] == "FRESH"  # answered from the last read, the next one started
    deadline = time.monotonic() + 5
    while snapshot(["b"])["b"]["status"] != "STALE" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert snapshot(["b"])["b"]["status"] == "STALE"
    assert sum("IN {keys" not in sql for sql, _ in query.sent) == 2
