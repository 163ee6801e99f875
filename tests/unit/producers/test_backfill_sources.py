"""Backfill readers on small generated files: positions, line numbers, resume, formats, damage."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from assetpipe.producers.backfill.sources import (
    AvroSource,
    CsvSource,
    JsonLinesSource,
    ParquetSource,
    detect_format,
    open_source,
)
from assetpipe.producers.exceptions import MalformedRecordError, SourceError

LINES = [b'{"asset_key": ["a"], "n": 1}', b"", b'{"asset_key": ["b"]}', b"  ", b"{oops", b'{"asset_key": ["c"]}']


def compress(data: bytes, compression: str | None) -> bytes:
    if compression == "gzip":
        return gzip.compress(data)
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


@pytest.mark.parametrize(("name", "compression"), [("e.jsonl", None), ("e.jsonl.gz", "gzip"), ("e.ndjson.zst", "zstd")])
def test_json_lines_positions_are_line_numbers_and_blank_lines_are_not_records(
    tmp_path: Path, name: str, compression: str | None
) -> None:
    path = tmp_path / name
    path.write_bytes(compress(b"\n".join(LINES) + b"\n", compression))
    source = open_source(path)
    assert isinstance(source, JsonLinesSource)
    assert source.compression == compression
    records = list(source.records())
    assert [(pos, line) for pos, line, _ in records] == [(1, 1), (3, 3), (5, 5), (6, 6)]
    assert source.parse(records[0][2]) == {"asset_key": ["a"], "n": 1}
    with pytest.raises(MalformedRecordError, match="not valid JSON"):
        source.parse(records[2][2])
    assert source.text(records[2][2]) == "{oops"
    assert source.bytes_read() == path.stat().st_size


def test_resume_passes_over_records_at_or_before_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"\n".join(LINES))  # no final newline: the last line is a record all the same
    source = open_source(path)
    assert [pos for pos, _, _ in source.records(after=3)] == [5, 6]
    assert source.skipped == 2  # lines 1 and 3; blank lines are not records


def test_a_json_value_that_is_not_an_object_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"[1, 2]\n")
    source = open_source(path)
    (_, _, payload), *_ = source.records()
    with pytest.raises(MalformedRecordError, match="not a JSON object: a JSON list"):
        source.parse(payload)


def test_csv_rows_count_from_the_header_and_report_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    text = '\ufeffasset_key,description,passed\na/b,"two\nlines",true\n\nc,plain,false\nd,too,many,cells\n'
    path.write_text(text, encoding="utf-8")
    source = open_source(path)
    assert isinstance(source, CsvSource) and source.form == "strings"
    records = list(source.records())
    assert [(pos, line) for pos, line, _ in records] == [(1, 2), (2, 5), (3, 6)]
    assert source.parse(records[0][2]) == {"asset_key": "a/b", "description": "two\nlines", "passed": "true"}
    with pytest.raises(MalformedRecordError, match="the row has 4 fields, the header 3"):
        source.parse(records[2][2])
    assert source.text(records[2][2]) == "d,too,many,cells"
    resumed = open_source(path)
    assert [pos for pos, _, _ in resumed.records(after=1)] == [2, 3] and resumed.skipped == 1


def test_compressed_csv(tmp_path: Path) -> None:
    path = tmp_path / "e.csv.gz"
    path.write_bytes(gzip.compress(b"asset_key\nx\ny\n"))
    source = open_source(path)
    assert isinstance(source, CsvSource)
    assert [source.parse(p) for _, _, p in source.records()] == [{"asset_key": "x"}, {"asset_key": "y"}]


def test_parquet_rows_keep_their_types_and_zoneless_timestamps_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    table = pa.table(
        {
            "asset_key": pa.array([["a", "b"], ["c"], ["d"], ["e"], ["f"]], pa.list_(pa.string())),
            "timestamp": pa.array([datetime(2024, 6, 1, 0, 0, 0, i) for i in range(5)], pa.timestamp("us")),
            "tags": pa.array([[("team", "x")]] * 5, pa.map_(pa.string(), pa.string())),
            "metadata": ['{"n": 1}'] * 5,
        }
    )
    pq.write_table(table, path, row_group_size=2)
    source = open_source(path)
    assert isinstance(source, ParquetSource) and source.json_text
    rows = list(source.records())
    assert [(pos, line) for pos, line, _ in rows] == [(i, i) for i in range(1, 6)]
    first = rows[0][2]
    assert first["asset_key"] == ["a", "b"]
    assert first["timestamp"] == datetime(2024, 6, 1, tzinfo=UTC)
    assert first["tags"] == {"team": "x"}
    assert source.bytes_read() == path.stat().st_size
    resumed = open_source(path)
    assert [pos for pos, _, _ in resumed.records(after=3)] == [4, 5]
    assert resumed.skipped == 3  # two in a row group not read at all, one in the group read


def test_parquet_resume_reads_every_row_group_after_the_first_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "e.parquet"
    writer = pq.ParquetWriter(path, pa.schema([("n", pa.int64())]))
    for sizes in ([0], list(range(1, 11)), [11]):  # row groups of 1, 10 and 1 rows
        writer.write_table(pa.table({"n": sizes}))
    writer.close()
    source = open_source(path)
    assert [row["n"] for _, _, row in source.records(after=5)] == [5, 6, 7, 8, 9, 10, 11]


def avro_file(path: Path, records: list[dict[str, Any]], sync_interval: int = 16_000) -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Event",
            "fields": [
                {"name": "asset_key", "type": {"type": "array", "items": "string"}},
                {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "metadata", "type": ["null", "string"]},
            ],
        }
    )
    with open(path, "wb") as f:
        fastavro.writer(f, schema, records, sync_interval=sync_interval)


def test_avro_records_keep_their_types_and_resume_skips_whole_blocks(tmp_path: Path) -> None:
    path = tmp_path / "e.avro"
    moment = datetime(2024, 6, 1, tzinfo=UTC)
    avro_file(path, [{"asset_key": [f"a{i}"], "timestamp": moment, "metadata": None} for i in range(50)], 64)
    source = open_source(path)
    assert isinstance(source, AvroSource) and source.unit == "row"
    rows = list(source.records())
    assert len(rows) == 50 and rows[-1][0] == 50
    assert rows[0][2] == {"asset_key": ["a0"], "timestamp": moment, "metadata": None}
    assert orjson.loads(source.text(rows[0][2]))["asset_key"] == ["a0"]
    resumed = open_source(path)
    assert [pos for pos, _, _ in resumed.records(after=47)] == [48, 49, 50]
    assert resumed.skipped == 47


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("events.log", gzip.compress(b"{}\n", mtime=0), ("jsonl", "gzip")),
        ("events.CSV.zst", zstandard.ZstdCompressor().compress(b"a\n1\n"), ("csv", "zstd")),
        ("events.tsv", b"a\tb\n", ("csv", None)),
        ("events.json", b"{}\n", ("jsonl", None)),
        ("renamed.jsonl", b"PAR1", ("parquet", None)),
        ("renamed.bin", b"Obj\x01", ("avro", None)),
    ],
)
def test_the_format_comes_from_magic_bytes_then_the_name(
    tmp_path: Path, name: str, content: bytes, expected: tuple[str, str | None]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert detect_format(path) == expected


def test_unreadable_files_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        detect_format(tmp_path / "missing.jsonl")
    fake = tmp_path / "fake.parquet"
    fake.write_bytes(b'{"a": 1}\n')
    with pytest.raises(SourceError, match=r"named \.parquet but is not a parquet file"):
        open_source(fake)
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(gzip.compress(b"".join(b'{"n": %d}\n' % (i * 7919) for i in range(10_000)))[:20_000])
    with pytest.raises(SourceError, match=r"cannot read past line \d+: EOFError"):
        list(open_source(damaged).records())
