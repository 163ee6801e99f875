"""Damaged files: whatever the bytes under a supported name, the backfill ends with its documented
outcome (records validated or rejected, or ``unreadable_file`` and status 2), never a traceback."""

from __future__ import annotations

import csv
import gzip
import io
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetpipe.producers.backfill.run import BackfillOptions, Summary, run_backfill
from assetpipe.producers.exceptions import SourceError
from assetpipe.schemas.settings import Settings

EVENTS: list[dict[str, Any]] = [
    {"type": "materialization", "asset_key": ["a", f"t{i}"], "partition": f"p{i}", "metadata": {"n": i, "x": i / 3}}
    for i in range(40)
]


def jsonl_bytes() -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in EVENTS)


def csv_bytes(delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["type", "asset_key", "partition", "metadata"])
    for e in EVENTS:
        writer.writerow([e["type"], "/".join(e["asset_key"]), e["partition"], orjson.dumps(e["metadata"]).decode()])
    return out.getvalue().encode()


def parquet_bytes() -> bytes:
    table = pa.table(
        {
            "type": [e["type"] for e in EVENTS],
            "asset_key": [e["asset_key"] for e in EVENTS],
            "timestamp": pa.array([datetime(2024, 6, 1, tzinfo=UTC)] * len(EVENTS), pa.timestamp("us", tz="UTC")),
            "metadata": pa.array([list(e["metadata"].items()) for e in EVENTS], pa.map_(pa.string(), pa.float64())),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=10)
    return out.getvalue()


def avro_bytes(codec: str = "null") -> bytes:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Event",
            "fields": [
                {"name": "type", "type": "string"},
                {"name": "asset_key", "type": {"type": "array", "items": "string"}},
                {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
                {"name": "metadata", "type": {"type": "map", "values": "double"}},
            ],
        }
    )
    records = [{**e, "timestamp": datetime(2024, 6, 1, tzinfo=UTC)} for e in EVENTS]
    out = io.BytesIO()
    fastavro.writer(out, schema, records, codec=codec, sync_interval=200)
    return out.getvalue()


SEEDS: dict[str, bytes] = {
    "events.jsonl": jsonl_bytes(),
    "events.jsonl.gz": gzip.compress(jsonl_bytes()),
    "events.jsonl.zst": zstandard.ZstdCompressor().compress(jsonl_bytes()),
    "events.csv": csv_bytes(),
    "events.tsv": csv_bytes("\t"),
    "events.csv.gz": gzip.compress(csv_bytes()),
    "events.csv.zst": zstandard.ZstdCompressor().compress(csv_bytes()),
    "events.parquet": parquet_bytes(),
    "events.avro": avro_bytes(),
    "deflated.avro": avro_bytes("deflate"),
}


def backfill(path: Path) -> tuple[Summary, str]:
    stderr = io.StringIO()
    settings_ = Settings.from_env({}, data_dir=path.parent / "data")
    options = BackfillOptions(
        paths=(path,), event_type="materialization", dry_run=True, max_errors=10**9, progress=False
    )
    return run_backfill(settings_, options, stderr=stderr, watch_signals=False), stderr.getvalue()


def backfill_as_documented(path: Path) -> None:
    """Status 0 (every record validated or rejected), or 2 with ``unreadable_file`` naming the file: in
    the summary, or before any file runs (a ``.parquet`` or ``.avro`` name without the format's magic),
    which the command prints as ``error [unreadable_file]: ...`` with status 2."""
    try:
        summary, stderr = backfill(path)
    except SourceError as exc:
        assert exc.code == "unreadable_file" and str(path) in str(exc)
        return
    [result] = summary.files
    if summary.exit_code == 2:
        assert result.status == "failed"
        assert result.error is not None and result.error.startswith("[unreadable_file] ")
    else:
        assert summary.exit_code == 0, summary.render()
        assert result.status == "done"
    assert "Traceback" not in stderr


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_file_is_read_whole(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(SEEDS[name])
    summary, _ = backfill(path)
    assert (summary.exit_code, summary.published, summary.rejected) == (0, len(EVENTS), 0)


def test_garbage_after_the_avro_magic_is_an_unreadable_file_with_status_2(tmp_path: Path) -> None:
    path = tmp_path / "events.avro"
    path.write_bytes(b"Obj\x01" + bytes(range(256)) * 4)
    summary, _ = backfill(path)
    assert summary.exit_code == 2
    assert summary.errors == [f"{path}: [unreadable_file] {path}: cannot read as Avro (not an Avro object "
                              "container file, or damaged): KeyError: 'avro.schema'"]  # fmt: skip


def mutate(seed: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "garbage"]))
    if how == "garbage":
        magic = data.draw(st.sampled_from([b"", b"Obj\x01", b"PAR1", b"\x1f\x8b", b"\x28\xb5\x2f\xfd"]))
        return magic + data.draw(st.binary(max_size=2000))
    if how == "truncate":
        return seed[: data.draw(st.integers(0, len(seed)))]
    out = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(out) - 1))
        if how == "flip":
            out[i] ^= 1 << data.draw(st.integers(0, 7))
        else:
            chunk = data.draw(st.binary(min_size=1, max_size=16))
            out[i : i + len(chunk)] = chunk
    return bytes(out)


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_bytes_under_any_supported_name_end_as_documented(name: str, data: st.DataObject) -> None:
    content = mutate(SEEDS[name], data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        backfill_as_documented(path)


def test_a_parquet_row_python_cannot_hold_is_a_reject_and_the_other_rows_are_read(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    tags = pa.array(
        [[("team", "a")], [("team", "a"), ("team", "b")], [("team", "c")]], pa.map_(pa.string(), pa.string())
    )
    pq.write_table(pa.table({"asset_key": [["a"], ["b"], ["c"]], "tags": tags}), path)
    summary, stderr = backfill(path)
    assert (summary.exit_code, summary.published, summary.rejected) == (0, 2, 1)
    assert f"rejected {path}: row 2: cannot be read as values: " in stderr
