"""Typed metadata: every kind survives Avro and ClickHouse's string form; raw values normalize as Dagster's."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetpipe import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    LocalFileCodeReference,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableConstraints,
    TableRecord,
    TableSchema,
    UrlCodeReference,
    ValidationError,
)
from assetpipe.schemas.codec import Codec
from assetpipe.schemas.metadata import (
    INT64_MAX,
    INT64_MIN,
    KINDS,
    from_text,
    from_wire,
    metadata_to_wire,
    normalize,
    to_text,
    to_wire,
)
from assetpipe.schemas.model import build_record, event_from_record

SCHEMA = TableSchema(
    [
        TableColumn(
            "id",
            "int",
            "surrogate key",
            TableColumnConstraints(nullable=False, unique=True, other=("> 0",)),
            {"pii": "no", "source": "crm"},
        ),
        TableColumn("email", description="contact address", tags={"pii": "yes"}),
        TableColumn("score", "float", constraints=TableColumnConstraints(other=("between 0 and 1",))),
    ],
    TableConstraints(other=("id unique across regions", "email lowercased")),
)
LINEAGE = TableColumnLineage(
    {
        "id": [TableColumnDep("crm/users", "user_id")],
        "email": [TableColumnDep(["crm", "users"], "email"), TableColumnDep(AssetKey(["raw", "signups"]), "mail")],
    }
)

# One entry per value shape worth proving; the test below checks every kind appears.
EVERY_KIND: dict[str, MetadataValue] = {
    "text": MetadataValue.text("hello, wörld ✓"),
    "text_empty": MetadataValue.text(""),
    "url": MetadataValue.url("https://example.com/dash?q=1&r=2"),
    "path": MetadataValue.path(Path("/data/sales/2024-01-01.parquet")),
    "notebook_path": MetadataValue.notebook("notebooks/explore.ipynb"),
    "json_object": MetadataValue.json({"rows": [1, 2.5, None, True, "x"], "nested": {"k": []}}),
    "json_list": MetadataValue.json([{"a": 1}, []]),
    "md": MetadataValue.md("# Title\n\n* item with `code`"),
    "int": MetadataValue.int(-42),
    "int_max": MetadataValue.int(INT64_MAX),
    "int_min": MetadataValue.int(INT64_MIN),
    "float": MetadataValue.float(0.1),
    "float_neg_zero": MetadataValue.float(-0.0),
    "float_inf": MetadataValue.float(float("inf")),
    "bool_true": MetadataValue.bool(True),
    "bool_false": MetadataValue.bool(False),
    "timestamp": MetadataValue.timestamp(1_700_000_000.123456),
    "timestamp_datetime": MetadataValue.timestamp(datetime(2024, 5, 6, 7, 8, 9, 500_000, tzinfo=UTC)),
    "null": MetadataValue.null(),
    "asset": MetadataValue.asset(["warehouse", "sales", "daily"]),
    "table": MetadataValue.table(
        [TableRecord({"id": 1, "email": "a@x.io", "score": 0.5}), TableRecord({"id": 2, "email": None, "score": 1.0})],
        SCHEMA,
    ),
    "table_inferred": MetadataValue.table(
        [TableRecord({"n": 7, "name": "x", "ok": True, "ratio": 0.25, "missing": None})]
    ),
    "table_no_records": MetadataValue.table([], SCHEMA),
    "table_schema": MetadataValue.table_schema(SCHEMA),
    "column_lineage": MetadataValue.column_lineage(LINEAGE),
    "code_references": MetadataValue.code_references(
        [
            LocalFileCodeReference("/src/pipelines/sales.py", line_number=12, label="definition"),
            LocalFileCodeReference("/src/pipelines/util.py"),
            UrlCodeReference("https://github.com/o/r/blob/main/sales.py#L12", label="on GitHub"),
            UrlCodeReference("https://example.com/doc"),
        ]
    ),
}

EVENTS = [
    pytest.param(AssetMaterialization, {}, id="materialization"),
    pytest.param(AssetObservation, {}, id="observation"),
    pytest.param(AssetCheckEvaluation, {"check_name": "not_null", "passed": False}, id="check_evaluation"),
]


def test_the_fixture_covers_every_metadata_kind() -> None:
    assert {mv.kind for mv in EVERY_KIND.values()} == set(KINDS)


@pytest.mark.parametrize(("event_class", "extra"), EVENTS)
def test_every_kind_survives_encode_and_decode(codec: Codec, event_class: Any, extra: dict[str, Any]) -> None:
    event = event_class(
        "warehouse/sales",
        metadata=EVERY_KIND,
        timestamp=datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC),
        event_id="0d4f5f5e-8e63-4f0e-9a3c-0f8c2a1b7e11",
        **extra,
    )

    event_type, record = codec.decode(codec.encode(event.event_type, event.to_record()))
    decoded = event_from_record(event_type, record)

    assert event_type == event.event_type
    assert dict(decoded.metadata) == dict(event.metadata)
    assert decoded == event


def test_inferred_table_schema_types_follow_the_first_record() -> None:
    _, schema = EVERY_KIND["table_inferred"].value
    assert [(c.name, c.type) for c in schema.columns] == [
        ("n", "int"),
        ("name", "string"),
        ("ok", "bool"),
        ("ratio", "float"),
        ("missing", "string"),
    ]


@pytest.mark.parametrize("key", list(EVERY_KIND))
def test_clickhouse_text_form_round_trips(codec: Codec, key: str) -> None:
    mv = EVERY_KIND[key]
    text = to_text(to_wire(key, mv))

    assert isinstance(text, str)
    assert from_text(mv.kind, text) == mv
    # The consumer sees decoded records (structured values as plain dicts): same text, same value.
    record = AssetMaterialization("a", metadata={key: mv}).to_record()
    _, decoded = codec.decode(codec.encode("materialization", record))
    assert to_text(decoded["metadata"][key]) == text


@pytest.mark.parametrize(
    ("mv", "text"),
    [
        (MetadataValue.text("hello"), "hello"),
        (MetadataValue.url("https://x.io"), "https://x.io"),
        (MetadataValue.int(1000), "1000"),
        (MetadataValue.float(0.25), "0.25"),
        (MetadataValue.bool(True), "true"),
        (MetadataValue.bool(False), "false"),
        (MetadataValue.timestamp(1_700_000_000.5), "1700000000.5"),
        (MetadataValue.null(), ""),
        (MetadataValue.asset(["a", "b"]), "a/b"),
        (MetadataValue.json({"a": [1, "é"]}), '{"a":[1,"é"]}'),
    ],
)
def test_text_form_is_what_a_clickhouse_user_reads(mv: MetadataValue, text: str) -> None:
    assert to_text(to_wire("k", mv)) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("rows", MetadataValue.text("rows"), id="str->text"),
        pytest.param(1.5, MetadataValue.float(1.5), id="float->float"),
        pytest.param(True, MetadataValue.bool(True), id="bool->bool"),
        pytest.param(False, MetadataValue.bool(False), id="false->bool"),
        pytest.param(1000, MetadataValue.int(1000), id="int->int"),
        pytest.param({"a": [1, 2]}, MetadataValue.json({"a": [1, 2]}), id="dict->json"),
        pytest.param([1, "two"], MetadataValue.json([1, "two"]), id="list->json"),
        pytest.param(None, MetadataValue.null(), id="None->null"),
        pytest.param(PurePosixPath("/data/f.csv"), MetadataValue.path("/data/f.csv"), id="PathLike->path"),
        pytest.param(AssetKey(["up", "stream"]), MetadataValue.asset(["up", "stream"]), id="AssetKey->asset"),
        pytest.param(SCHEMA, MetadataValue.table_schema(SCHEMA), id="TableSchema->table_schema"),
        pytest.param(LINEAGE, MetadataValue.column_lineage(LINEAGE), id="TableColumnLineage->column_lineage"),
        pytest.param(MetadataValue.md("# x"), MetadataValue.md("# x"), id="MetadataValue kept"),
    ],
)
def test_raw_values_normalize_as_dagster(raw: Any, expected: MetadataValue) -> None:
    assert normalize("k", raw) == expected
    assert AssetMaterialization("a", metadata={"k": raw}).metadata["k"] == expected
    # The HTTP path builds records from raw values with a fast path: it must agree with normalize.
    assert metadata_to_wire({"k": raw})["k"] == to_wire("k", expected)


def test_bool_is_not_normalized_as_int() -> None:
    wire = metadata_to_wire({"flag": True, "count": 1})
    assert wire["flag"] == {"kind": "bool", "value": True}
    assert wire["count"] == {"kind": "int", "value": 1}
    assert normalize("flag", True).kind == "bool"


class _CustomPath(os.PathLike[str]):
    def __fspath__(self) -> str:
        return "/mnt/custom"


def test_any_pathlike_normalizes_to_its_fspath() -> None:
    assert normalize("p", _CustomPath()) == MetadataValue.path("/mnt/custom")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(object(), id="object"),
        pytest.param({1, 2}, id="set"),
        pytest.param((1, 2), id="tuple"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param(datetime(2024, 1, 1, tzinfo=UTC), id="datetime (must be wrapped in timestamp)"),
    ],
)
def test_unknown_raw_type_is_rejected_naming_the_key(raw: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        AssetMaterialization("a", metadata={"row_info": raw})
    assert exc.value.field == "metadata.row_info"
    assert type(raw).__name__ in str(exc.value)


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**100], ids=["max+1", "min-1", "2**100"])
def test_int_outside_64_bits_is_rejected(value: int) -> None:
    with pytest.raises(ValidationError) as raw_exc:
        AssetMaterialization("a", metadata={"big": value}).to_record()
    with pytest.raises(ValidationError) as typed_exc:
        build_record("materialization", ["a"], source="http", host="h", metadata={"big": MetadataValue.int(value)})
    assert raw_exc.value.field == typed_exc.value.field == "metadata.big"
    assert "64-bit" in raw_exc.value.reason


@pytest.mark.parametrize(
    "value",
    [{"when": datetime(2024, 1, 1)}, [float("nan")], {"s": {1, 2}}],
    ids=["datetime inside", "NaN", "set inside"],
)
def test_json_that_does_not_serialize_is_rejected(value: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        AssetMaterialization("a", metadata={"payload": MetadataValue.json(value)}).to_record()
    assert exc.value.field == "metadata.payload"
    assert "JSON" in exc.value.reason


def test_naive_datetime_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        MetadataValue.timestamp(datetime(2024, 1, 1, 12, 0))


def test_aware_datetime_timestamp_is_seconds_since_epoch_in_any_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert MetadataValue.timestamp(datetime(1970, 1, 1, 2, 0, 1, tzinfo=plus_two)).value == 1.0


def test_table_records_with_different_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="same fields"):
        MetadataValue.table([TableRecord({"a": 1}), TableRecord({"a": 2, "b": 3})])


def test_empty_table_without_schema_is_rejected() -> None:
    with pytest.raises(ValidationError, match="schema"):
        MetadataValue.table([])


def test_duplicate_lineage_deps_are_rejected_naming_the_column() -> None:
    with pytest.raises(ValidationError) as exc:
        TableColumnLineage({"out": [TableColumnDep("src", "c"), TableColumnDep(["src"], "c")]})
    assert exc.value.field == "column_lineage.out"


def test_lineage_deps_compare_regardless_of_order() -> None:
    one = TableColumnLineage({"out": [TableColumnDep("b", "x"), TableColumnDep("a", "y")]})
    other = TableColumnLineage({"out": [TableColumnDep("a", "y"), TableColumnDep("b", "x")]})
    assert one == other


# -- property: scalar and JSON values through both producer paths, the codec and the text form --

_json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
_json_values = st.recursive(
    _json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_raw_values = (
    st.text()
    | st.integers(min_value=INT64_MIN, max_value=INT64_MAX)
    | st.floats()
    | st.booleans()
    | st.lists(_json_values, max_size=5)
    | st.dictionaries(st.text(max_size=8), _json_values, max_size=5)
)


def _assert_same_value(got: MetadataValue, expected: MetadataValue) -> None:
    assert got.kind == expected.kind
    if expected.kind == "float":
        if math.isnan(expected.value):
            assert math.isnan(got.value)
        else:
            assert got.value == expected.value
            assert math.copysign(1, got.value) == math.copysign(1, expected.value)
    else:
        assert got == expected
        assert type(got.value) is type(expected.value)


@settings(deadline=None)
@given(raw=_raw_values)
def test_raw_scalars_and_json_round_trip(raw: Any) -> None:
    codec = Codec()
    expected = normalize("v", raw)
    http_record = build_record("observation", ["a"], source="http", host="h", metadata={"v": raw})
    sdk_record = AssetObservation("a", metadata={"v": raw}).to_record()

    for record in (http_record, sdk_record):
        _, decoded = codec.decode(codec.encode("observation", record))
        entry = decoded["metadata"]["v"]
        _assert_same_value(from_wire(entry), expected)
        _assert_same_value(from_text(entry["kind"], to_text(entry)), expected)
