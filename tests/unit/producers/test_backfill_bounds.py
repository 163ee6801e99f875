"""One set of rules for every producer: a backfill record is held to the HTTP body's bounds (nesting
depth, string length, metadata entries, strict JSON), whatever the file format."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assetpipe.producers.backfill.run import BackfillOptions, Summary, run_backfill
from assetpipe.producers.http.exceptions import RequestError
from assetpipe.producers.http.payload import Limits, parse_object
from assetpipe.schemas.settings import Settings

DEPTH, CHARS, ENTRIES = 32, 65_536, 1000  # the settings' defaults, as the README documents them


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


def dry_run(path: Path, env: dict[str, str] | None = None) -> tuple[Summary, str, list[dict[str, Any]]]:
    stderr = io.StringIO()
    settings = Settings.from_env(env or {}, data_dir=path.parent / "data")
    options = BackfillOptions(paths=(path,), event_type="materialization", dry_run=True, max_errors=1000)
    summary = run_backfill(settings, options, stderr=stderr, watch_signals=False)
    rejects = path.parent / "data" / "backfill" / "rejects.jsonl"
    written = [orjson.loads(line) for line in rejects.read_bytes().splitlines()] if rejects.exists() else []
    return summary, stderr.getvalue(), written


def write_csv(path: Path, metadata_cells: list[str]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["asset_key", "metadata"])
        for i, cell in enumerate(metadata_cells):
            writer.writerow([f"a/t{i}", cell])
    return path


def test_a_csv_metadata_cell_nested_5000_deep_is_a_reject_and_the_rows_after_it_go_on(tmp_path: Path) -> None:
    deep = '{"x": ' * 5000 + "1" + "}" * 5000
    path = write_csv(tmp_path / "events.csv", ['{"n": 1}', deep, '{"n": 2}', '{"n": 3}'])
    summary, stderr, rejects = dry_run(path)
    assert (summary.exit_code, summary.published, summary.rejected) == (0, 3, 1)
    reason = f"Field 'metadata' nests deeper than {DEPTH} levels (ASSETPIPE_HTTP_MAX_JSON_DEPTH)"
    assert f"rejected {path}:3: {reason}" in stderr
    assert [(r["line"], r["reason"], r["code"], r["field"]) for r in rejects] == [
        (3, reason, "limit_exceeded", "metadata")
    ]
    assert next(csv.reader([rejects[0]["text"]])) == ["a/t1", deep]  # the row as CSV, to fix and load again


def csv_file(path: Path, metadata: str) -> Path:
    return write_csv(path.with_suffix(".csv"), [metadata])


def jsonl_file(path: Path, metadata: str) -> Path:
    path = path.with_suffix(".jsonl")
    path.write_text('{"asset_key": ["a"], "metadata": ' + metadata + "}\n")
    return path


def parquet_file(path: Path, metadata: str) -> Path:
    path = path.with_suffix(".parquet")
    pq.write_table(pa.table({"asset_key": [["a"]], "metadata": [metadata]}), path)
    return path


WRITERS = {"csv": csv_file, "jsonl": jsonl_file, "parquet": parquet_file}
METADATA = {
    "nan": ('{"x": NaN}', "not valid JSON"),
    "infinity": ('{"x": Infinity}', "not valid JSON"),
    "minus infinity": ('{"x": -Infinity}', "not valid JSON"),
    "overflowing number": ('{"x": 1e999}', "not valid JSON"),
    "too deep": (orjson.dumps(nested(DEPTH)).decode(), f"nests deeper than {DEPTH} levels"),
    "long string": (orjson.dumps({"x": "y" * (CHARS + 1)}).decode(), f"is longer than {CHARS} characters"),
    "long key": (orjson.dumps({"k" * (CHARS + 1): 1}).decode(), f"is longer than {CHARS} characters"),
    "too many entries": (orjson.dumps({f"k{i}": i for i in range(ENTRIES + 1)}).decode(), "1001 entries"),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("case", sorted(METADATA))
def test_metadata_the_http_api_refuses_is_rejected_in_every_format(tmp_path: Path, fmt: str, case: str) -> None:
    text, reason = METADATA[case]
    with pytest.raises(RequestError):  # the HTTP body's rule, the reference
        parse_object(('{"metadata": ' + text + "}").encode(), Limits.from_settings(Settings.from_env({})))
    path = WRITERS[fmt](tmp_path / "events", text)
    summary, _, rejects = dry_run(path)
    assert (summary.published, summary.rejected) == (0, 1), summary.render()
    if fmt == "jsonl" and reason == "not valid JSON":  # the whole line is the JSON text
        assert rejects[0]["code"] == "malformed_record"
    else:
        assert reason in rejects[0]["reason"]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_metadata_within_the_bounds_passes_in_every_format(tmp_path: Path, fmt: str) -> None:
    text = orjson.dumps({"deep": nested(DEPTH - 3), "s": "y" * CHARS, **{f"k{i}": i for i in range(ENTRIES - 2)}})
    summary, _, _ = dry_run(WRITERS[fmt](tmp_path / "events", text.decode()))
    assert (summary.published, summary.rejected) == (1, 0), summary.render()


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_an_integer_beyond_64_bits_is_out_of_range_never_a_float(tmp_path: Path, fmt: str) -> None:
    summary, _, rejects = dry_run(WRITERS[fmt](tmp_path / "events", '{"x": 123456789012345678901234567890}'))
    assert (summary.published, summary.rejected) == (0, 1), summary.render()
    assert rejects[0]["field"] == "metadata.x" and "out of range" in rejects[0]["reason"]


def test_a_csv_cell_longer_than_the_string_bound_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(f"asset_key,partition\na/b,{'p' * (CHARS + 1)}\na/c,p\n")
    summary, _, rejects = dry_run(path)
    assert (summary.published, summary.rejected) == (1, 1)
    assert rejects[0]["reason"] == (
        f"Field 'partition' is longer than {CHARS} characters (ASSETPIPE_HTTP_MAX_STRING_CHARS)"
    )


def test_a_csv_asset_key_given_as_a_deeply_nested_list_is_a_reject(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("asset_key\n" + "[" * 5000 + "]" * 5000 + "\na/c\n")
    summary, _, rejects = dry_run(path)
    assert (summary.published, summary.rejected) == (1, 1)
    assert rejects[0]["reason"].startswith("Field 'asset_key' nests deeper than")


def test_the_bounds_are_the_http_settings(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "events.csv", [orjson.dumps(nested(3)).decode()])
    summary, _, rejects = dry_run(path, {"ASSETPIPE_HTTP_MAX_JSON_DEPTH": "3"})
    assert summary.rejected == 1
    assert rejects[0]["reason"] == "Field 'metadata.x.x' nests deeper than 3 levels (ASSETPIPE_HTTP_MAX_JSON_DEPTH)"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_parquet_number_json_cannot_hold_is_a_reject(tmp_path: Path, value: float) -> None:
    path = tmp_path / "events.parquet"
    metadata = pa.array([[("ok", 1.5)], [("x", value)]], pa.map_(pa.string(), pa.float64()))
    pq.write_table(pa.table({"asset_key": [["a"], ["b"]], "metadata": metadata}), path)
    summary, _, rejects = dry_run(path)
    assert (summary.published, summary.rejected) == (1, 1)
    assert rejects[0]["row"] == 2
    assert rejects[0]["reason"] == "Field 'metadata.x' is a number out of range (NaN and infinities have no JSON form)"
