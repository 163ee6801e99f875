"""``report_state`` without ClickHouse: filters go as parameters, and each identity's row reads the same from
clickhouse-connect and from JSON, with its count of reports and its latest report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from assetpipe.consumers.catalog.reports import report_state
from assetpipe.consumers.warehouse import QueryResult
from assetpipe.schemas.errors import FieldError

HOSTILE = "x' OR 1=1 --"
STORED, REPEAT = "018d11b8-7dc0-7cbf-88c7-e4b38b58559a", "018d11eb-c2c0-765e-8c83-2012f607655f"
NONE = "00000000-0000-0000-0000-000000000000"
T_1002, T_1058 = 1_705_399_320_000_000, 1_705_402_680_000_000  # 2024-01-16 10:02 and 10:58 UTC


class Answer:
    """A ``Query`` answering ``rows`` to anything, recording what it was sent."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, sql: str, parameters: Mapping[str, Any]) -> QueryResult:
        self.sent.append((sql, dict(parameters)))
        return QueryResult((), self.rows)


def test_filters_are_parameters_never_sql_text() -> None:
    query = Answer([])
    assert report_state(query, HOSTILE, event_type="check", partition=HOSTILE, data_version=HOSTILE, limit=5) == []
    sql, values = query.sent[0]
    assert HOSTILE not in sql and "OR 1=1" not in sql
    assert values == {"key": HOSTILE, "type": "check_evaluation", "partition": HOSTILE, "data_version": HOSTILE,
                      "limit": 5}  # fmt: skip
    assert "FROM asset_report_state" in sql and "ORDER BY last_us DESC" in sql


def test_an_identity_reported_twice_reads_the_same_from_clickhouse_and_from_json() -> None:
    native = ("observation", "", "2024-01-15", T_1002, T_1058, 1, T_1058, REPEAT, STORED)
    as_json = ("observation", "", "2024-01-15", str(T_1002), str(T_1058), "1", str(T_1058), REPEAT, STORED)
    expected = {
        "event_type": "observation",
        "partition": None,
        "data_version": "2024-01-15",
        "first_reported_at": "2024-01-16T10:02:00Z",
        "last_reported_at": "2024-01-16T10:58:00Z",
        "reports": 2,
        "repeats": 1,
        "stored_event_id": STORED,
        "last_event_id": REPEAT,
    }
    assert report_state(Answer([native]), "reports/daily_kpis") == [expected]
    assert report_state(Answer([as_json]), "reports/daily_kpis") == [expected]


def test_the_latest_report_is_the_stored_event_unless_a_repeat_came_at_the_last_time() -> None:
    never = ("materialization", "p", "v1", T_1002, T_1002, 0, None, NONE, STORED)
    older_repeat = ("materialization", "p", "v2", T_1002 - 60_000_000, T_1058, 1, T_1002 - 60_000_000, REPEAT, STORED)
    found = report_state(Answer([never, older_repeat]), "a")
    assert [(f["partition"], f["reports"], f["last_event_id"]) for f in found] == [("p", 1, STORED), ("p", 2, STORED)]


@pytest.mark.parametrize(("arguments", "field"), [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
                                                  ({"event_type": "run"}, "type")])  # fmt: skip
def test_bad_arguments_are_field_errors(arguments: dict[str, Any], field: str) -> None:
    with pytest.raises(FieldError) as raised:
        report_state(Answer([]), "a", **arguments)
    assert raised.value.field == field
