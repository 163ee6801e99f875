"""``assetpipe backfill`` end to end, on the real broker and ClickHouse engine: a million events exactly
once, SIGINT then ``--resume``, bad lines, every file format giving the same rows, dry run, rate cap.

The backfill runs as the command users run (a subprocess); the ingest worker runs in a thread of the
test process, which holds the ClickHouse engine.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from assetpipe import Reporter
from assetpipe.broker import free_port
from assetpipe.consumers.warehouse import Warehouse
from assetpipe.producers.backfill import job as backfill_job
from assetpipe.producers.backfill.checkpoint import CheckpointStore
from assetpipe.producers.backfill.records import derived_event_id
from assetpipe.producers.backfill.run import BackfillOptions, run_backfill
from assetpipe.schemas.settings import Settings
from tests.integration.helpers import cli_env, count_rows, read_topic, run_cli, running_worker, start_cli, wait_until

EPOCH_2024 = datetime(2024, 1, 1, tzinfo=UTC)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_jsonl(path: Path, events: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> Path:
    data = b"".join(orjson.dumps(e) + b"\n" for e in events)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    elif path.suffix == ".zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def plain_events(prefix: str, n: int) -> Iterator[dict[str, Any]]:
    """The reference event: 5 metadata entries and a partition; every fourth has a data version."""
    for i in range(n):
        event: dict[str, Any] = {
            "type": "materialization",
            "asset_key": [prefix, f"t{i % 500}"],
            "partition": f"2024-01-{i % 28 + 1:02d}",
            "timestamp": 1_704_067_200 + i,
            "metadata": {"rows": i, "size_mb": i / 7, "owner": "team", "ok": i % 2 == 0, "dash": f"https://d/{i}"},
        }
        if i % 4 == 0:
            event["data_version"] = f"v{i}"
        yield event


def events_in(warehouse: Warehouse, prefix: str) -> int:
    sql = f"SELECT count() FROM {warehouse.database}.asset_events WHERE asset_key_path[1] = {{p:String}}"
    return count_rows(warehouse, sql, p=prefix)


def backfill(env: dict[str, str], tmp_path: Path, *args: str, timeout: float = 300) -> Any:
    return run_cli(["backfill", *args, "--checkpoint-dir", str(tmp_path / "ck")], env, timeout=timeout)


@pytest.mark.slow
def test_a_million_events_land_exactly_once_and_a_second_run_adds_nothing(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    n, prefix = 1_000_000, f"m{uuid.uuid4().hex[:8]}"
    path = write_jsonl(tmp_path / "history.jsonl", plain_events(prefix, n))
    env = cli_env(settings)
    with running_worker(settings, warehouse) as worker:
        first = backfill(env, tmp_path, str(path), timeout=600)
        assert first.returncode == 0, first.stderr
        assert "published 1,000,000 events" in first.stdout
        wait_until(lambda: events_in(warehouse, prefix) >= n, 600, "a million rows")
        again = backfill(env, tmp_path, str(path), timeout=600)  # no --resume: everything is published again
        assert again.returncode == 0, again.stderr
        assert "published 1,000,000 events" in again.stdout
        wait_until(lambda: worker.metrics.consumed >= 2 * n, 600, "the second run consumed")
    assert events_in(warehouse, prefix) == n
    sql = f"SELECT uniqExact(event_id) FROM {warehouse.database}.asset_events WHERE asset_key_path[1] = {{p:String}}"
    assert count_rows(warehouse, sql, p=prefix) == n


def test_sigint_mid_file_then_resume_loses_and_duplicates_nothing(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    n, prefix = 40_000, f"s{uuid.uuid4().hex[:8]}"
    events = list(plain_events(prefix, n))
    for e in events:
        e.pop("data_version", None)  # only the event ids can keep events apart: the strictest case
    path = write_jsonl(tmp_path / "events.jsonl", events)
    env, log, checkpoints = cli_env(settings), tmp_path / "backfill.log", tmp_path / "ck"

    def checkpointed() -> int:
        files = list(checkpoints.glob("*.json"))
        return int(json.loads(files[0].read_text())["position"]) if files else 0

    process = start_cli(["backfill", str(path), "--rate", "4000", "--checkpoint-dir", str(checkpoints)], env, log)
    wait_until(lambda: checkpointed() > 0, 60, "a first checkpoint")
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130, log.read_text()
    stopped_at = checkpointed()
    assert 0 < stopped_at < n, "the interruption must land mid-file"
    assert f"stopped after position {stopped_at:,}" in log.read_text()
    assert [p.name for p in checkpoints.iterdir()] == [p.name for p in checkpoints.glob("*.json")]  # no temp files

    resumed = backfill(env, tmp_path, str(path), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"published {n - stopped_at:,} events" in resumed.stdout
    assert f"skipped as already published {stopped_at:,}" in resumed.stdout

    messages = read_topic(settings, settings.topics.events, n)
    content = sha256(path)
    assert len(messages) == n  # nothing published twice, nothing missing
    from assetpipe.schemas.codec import Codec

    codec = Codec()
    ids = {codec.decode(m.value() or b"")[1]["event_id"] for m in messages}
    assert ids == {derived_event_id(content, position) for position in range(1, n + 1)}
    with running_worker(settings, warehouse):
        wait_until(lambda: events_in(warehouse, prefix) >= n, 120, "every row")
    assert events_in(warehouse, prefix) == n


def test_bad_lines_are_reported_with_their_line_number_and_the_rest_ingested(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}"
    lines = [orjson.dumps(e) for e in plain_events(prefix, 2000)]
    lines[99] = b'{"type": "materialization", "asset_key": ["x"'  # line 100: cut short
    lines[999] = orjson.dumps({"type": "materialization", "partition": "p"})  # line 1000: no asset key
    lines[1499] = orjson.dumps({"type": "check", "asset_key": [prefix, "t"], "passed": True})  # line 1500
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rejects, env = tmp_path / "rejects.jsonl", cli_env(settings)
    with running_worker(settings, warehouse):
        result = backfill(env, tmp_path, str(path), "--max-errors", "3", "--rejects", str(rejects))
        assert result.returncode == 0, result.stderr
        wait_until(lambda: events_in(warehouse, prefix) >= 1997, 120, "the good rows")
    assert events_in(warehouse, prefix) == 1997
    assert f"{path}:100: not valid JSON" in result.stderr
    assert f"{path}:1000: Missing required field: asset_key" in result.stderr
    assert f"{path}:1500: Missing required field: check_name" in result.stderr
    reported = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["text"]) for r in reported] == [(i + 1, lines[i].decode()) for i in (99, 999, 1499)]
    assert "rejected 3" in result.stdout

    strict = backfill(env, tmp_path, str(path), "--max-errors", "1")
    assert strict.returncode == 1
    assert "stopped: 2 rejected records, more than --max-errors 1" in strict.stdout


def varied_events(prefix: str, n: int) -> list[dict[str, Any]]:
    """Every event type and field the formats must carry alike; timestamps to the microsecond."""
    events = []
    for i in range(n):
        moment = EPOCH_2024 + timedelta(seconds=i, microseconds=i * 7919 % 1_000_000)
        event: dict[str, Any] = {
            "type": ("materialization", "observation", "check")[i % 3],
            "asset_key": [prefix, "sales", f"t{i % 7}"],
            "timestamp": moment.isoformat(),
            "metadata": {"rows": i, "ratio": i / 3, "owner": "team", "ok": i % 2 == 0,
                         "link": {"type": "url", "value": f"https://d/{i}"}, "cfg": {"a": [i, None]}},
            "tags": {"team": "sales", "tier": str(i % 3)},
        }  # fmt: skip
        if i % 3 == 2:
            event.update(check_name="row_count", passed=i % 2 == 0, severity=("WARN", "ERROR")[i % 2])
        else:
            event.update(partition=f"2024-01-{i % 28 + 1:02d}", description=f"load {i}" if i % 5 else None)
        events.append({k: v for k, v in event.items() if v is not None})
    return events


COLUMNS = ["type", "asset_key", "partition", "description", "timestamp", "metadata", "tags", "check_name", "passed",
           "severity"]  # fmt: skip


def write_csv(path: Path, events: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for e in events:
            passed = "" if "passed" not in e else "true" if e["passed"] else "false"
            row = {**e, "asset_key": "/".join(e["asset_key"]), "metadata": json.dumps(e["metadata"]),
                   "tags": json.dumps(e["tags"]), "passed": passed}  # fmt: skip
            writer.writerow([row.get(c, "") for c in COLUMNS])
    return path


def as_columns(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "timestamp": datetime.fromisoformat(e["timestamp"]), "metadata": json.dumps(e["metadata"])}


def write_parquet(path: Path, events: list[dict[str, Any]]) -> Path:
    schema = pa.schema(
        [("type", pa.string()), ("asset_key", pa.list_(pa.string())), ("partition", pa.string()),
         ("description", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")), ("metadata", pa.string()),
         ("tags", pa.map_(pa.string(), pa.string())), ("check_name", pa.string()), ("passed", pa.bool_()),
         ("severity", pa.string())]
    )  # fmt: skip
    rows = [{**as_columns(e), "tags": list(e["tags"].items())} for e in events]
    pq.write_table(pa.Table.from_pylist(rows, schema), path, row_group_size=50)
    return path


def write_avro(path: Path, events: list[dict[str, Any]]) -> Path:
    optional = ["null", "string"]
    schema = fastavro.parse_schema(
        {"type": "record", "name": "Event", "fields": [
            {"name": "type", "type": "string"}, {"name": "asset_key", "type": {"type": "array", "items": "string"}},
            {"name": "partition", "type": optional, "default": None},
            {"name": "description", "type": optional, "default": None},
            {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "metadata", "type": "string"}, {"name": "tags", "type": {"type": "map", "values": "string"}},
            {"name": "check_name", "type": optional, "default": None},
            {"name": "passed", "type": ["null", "boolean"], "default": None},
            {"name": "severity", "type": optional, "default": None}]}
    )  # fmt: skip
    with open(path, "wb") as f:
        fastavro.writer(f, schema, [as_columns(e) for e in events], sync_interval=4000)
    return path


def test_every_format_gives_the_same_rows_as_json_lines(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    n, prefix = 150, f"f{uuid.uuid4().hex[:8]}"
    events = varied_events(prefix, n)
    files = [
        write_jsonl(tmp_path / "events.jsonl", events),
        write_jsonl(tmp_path / "events.jsonl.gz", events),
        write_jsonl(tmp_path / "events.jsonl.zst", events),
        write_csv(tmp_path / "events.csv", events),
        write_parquet(tmp_path / "events.parquet", events),
        write_avro(tmp_path / "events.avro", events),
    ]
    with running_worker(settings, warehouse):
        result = backfill(cli_env(settings), tmp_path, *map(str, files), "--jobs", "2")
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: events_in(warehouse, prefix) >= n * len(files), 120, "the rows of every file")
    columns = ("event_type, asset_key_path, partition, data_version, description, metadata, metadata_types, tags, "
               "check_name, check_passed, check_severity, timestamp, source, run_id")  # fmt: skip

    def rows_of(path: Path) -> list[tuple[Any, ...]]:
        ids = [derived_event_id(sha256(path), position) for position in range(1, n + 1)]
        result = warehouse.query(
            f"SELECT toString(event_id), {columns} FROM {warehouse.database}.asset_events "
            "WHERE event_id IN {ids:Array(UUID)}",
            parameters={"ids": ids},
        )
        by_id = {row[0]: row[1:] for row in result.rows}
        assert len(by_id) == n, f"{path.name}: {len(by_id)} rows"
        return [by_id[i] for i in ids]  # in file order

    expected = rows_of(files[0])
    assert expected[2][0] == "check_evaluation" and expected[0][11].microsecond == 0
    assert expected[1][11].replace(tzinfo=UTC) == EPOCH_2024 + timedelta(seconds=1, microseconds=7919)
    for path in files[1:]:
        assert rows_of(path) == expected, path.name


def test_dry_run_validates_and_publishes_nothing(settings: Settings, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", plain_events(f"d{uuid.uuid4().hex[:8]}", 500))
    result = backfill(cli_env(settings), tmp_path, str(path), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "validated 500 events" in result.stdout
    with Reporter(settings=settings) as reporter:
        reporter.report_materialization("sentinel").result(30)
    assert len(read_topic(settings, settings.topics.events, 1)) == 1  # the sentinel alone
    assert not list((tmp_path / "ck").glob("*.json"))


def test_rate_caps_events_per_second(settings: Settings, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "events.jsonl", plain_events(f"r{uuid.uuid4().hex[:8]}", 300))
    result = backfill(cli_env(settings), tmp_path, str(path), "--rate", "100")
    assert result.returncode == 0, result.stderr
    stamps = [m.timestamp()[1] for m in read_topic(settings, settings.topics.events, 300)]
    # 300 events at 100/s: the producer stamped them over at least ~3 s (the first few go at once)
    assert (max(stamps) - min(stamps)) / 1000 >= 2.5


def test_events_the_broker_never_acknowledges_fail_the_run_and_keep_the_checkpoint_before_them(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing answers at the bootstrap address: every event times out. The checkpoint's flush is the
    barrier that reports it, the run fails naming the events, and a resume would start from the top."""
    monkeypatch.setitem(backfill_job._PRODUCER_OVERRIDES, "message.timeout.ms", 300)
    monkeypatch.setattr(backfill_job, "_CHECKPOINT_EVERY_S", 0.0)  # a barrier every 1,024 records
    nowhere = settings.model_copy(update={"kafka_bootstrap_servers": f"127.0.0.1:{free_port()}"})
    events = list(plain_events(f"x{uuid.uuid4().hex[:8]}", 3000))
    path = write_jsonl(tmp_path / "events.jsonl", events)
    options = BackfillOptions(paths=(path,), checkpoint_dir=tmp_path / "ck", rejects=tmp_path / "rejects.jsonl")
    summary = run_backfill(nowhere, options, stderr=io.StringIO(), watch_signals=False)
    assert summary.exit_code != 0
    [result] = summary.files
    assert result.status == "failed"
    assert result.error is not None and "not delivered" in result.error and "Message timed out" in result.error
    ids = {derived_event_id(sha256(path), position) for position in range(1, len(events) + 1)}
    assert any(event_id in result.error for event_id in ids)  # the failure names the events by their ids
    checkpoint = CheckpointStore(tmp_path / "ck").load(path)
    assert checkpoint is None  # nothing acknowledged: nothing to resume from


def test_a_bad_csv_publishes_its_good_rows_and_rejects_the_rest_with_line_numbers(
    settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    """A metadata cell nested 5,000 deep, a NaN, then a quote never closed: the good rows before land,
    each bad line is in the rejects file, and nothing is published as another event."""
    prefix = f"c{uuid.uuid4().hex[:8]}"
    deep = '{"x": ' * 5000 + "1" + "}" * 5000
    rows = [[f"{prefix}/t{i}", f"p{i}", f'{{"n": {i}}}'] for i in range(8)]
    rows[1][2], rows[3][2] = deep, '{"x": NaN}'
    path = tmp_path / "events.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["asset_key", "partition", "metadata"])
        writer.writerows(rows)
        f.write(f'{prefix}/late,"p8\n{prefix}/t9,p9,{{}}\n{prefix}/t10,p10,{{}}\n')  # lines 10-12
    rejects, env = tmp_path / "rejects.jsonl", cli_env(settings)
    with running_worker(settings, warehouse):
        result = backfill(env, tmp_path, str(path), "--type", "materialization", "--max-errors", "1000",
                          "--rejects", str(rejects))  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        wait_until(lambda: events_in(warehouse, prefix) >= 6, 120, "the good rows")
    assert "Traceback" not in result.stderr
    assert "published 6 events" in result.stdout and "rejected 5" in result.stdout
    sql = (f"SELECT asset_key_path[2], partition FROM {warehouse.database}.asset_events "
           "WHERE asset_key_path[1] = {p:String} ORDER BY partition")  # fmt: skip
    landed = warehouse.query(sql, parameters={"p": prefix}).rows
    assert [tuple(r) for r in landed] == [(f"t{i}", f"p{i}") for i in (0, 2, 4, 5, 6, 7)]
    reported = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["line"], r["code"]) for r in reported] == [
        (3, "limit_exceeded"), (5, "invalid_field"), (10, "malformed_record"), (11, "malformed_record"),
        (12, "malformed_record"),
    ]  # fmt: skip
    assert "nests deeper than 32 levels" in reported[0]["reason"]
    assert "not valid JSON" in reported[1]["reason"]
    assert reported[2]["reason"] == "unterminated quoted field: the quote opened on line 10 is not closed"


def test_garbage_under_the_avro_magic_is_unreadable_with_status_2(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "events.avro"
    path.write_bytes(b"Obj\x01" + bytes(range(256)) * 8)
    result = backfill(cli_env(settings), tmp_path, str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: {path}: [unreadable_file]" in result.stdout and "cannot read as Avro" in result.stdout
