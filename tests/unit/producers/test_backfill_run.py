"""A backfill run without a broker (``dry_run``): rejects, --max-errors, the summary, the process pool."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from assetpipe.producers.backfill.run import BackfillOptions, Summary, run_backfill
from assetpipe.producers.exceptions import BackfillError
from assetpipe.schemas.settings import Settings


def events_file(path: Path, n: int, bad: dict[int, bytes] | None = None) -> Path:
    lines = [orjson.dumps({"asset_key": ["a", str(i)], "metadata": {"i": i}}) for i in range(n)]
    for index, line in (bad or {}).items():
        lines[index] = line
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def dry_run(tmp_path: Path, *paths: Path, **options: Any) -> tuple[Summary, str]:
    stderr = io.StringIO()
    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    opts = BackfillOptions(paths=paths, event_type="materialization", dry_run=True, **options)
    return run_backfill(settings, opts, stderr=stderr, watch_signals=False), stderr.getvalue()


BAD = {3: b"{not json", 10: b'{"asset_key": []}', 20: b'{"metadata": {}}'}


def test_bad_records_are_reported_with_their_line_and_the_rest_validated(tmp_path: Path) -> None:
    path = events_file(tmp_path / "events.jsonl", 100, BAD)
    summary, stderr = dry_run(tmp_path, path, max_errors=5)
    assert summary.exit_code == 0
    assert (summary.published, summary.rejected) == (97, 3)
    assert f"rejected {path}:4: not valid JSON" in stderr
    assert f"rejected {path}:11: asset_key: must be a non-empty list of path parts" in stderr
    assert f"rejected {path}:21: Missing required field: asset_key" in stderr
    rejects = [
        orjson.loads(line) for line in (tmp_path / "data" / "backfill" / "rejects.jsonl").read_bytes().splitlines()
    ]
    assert [(r["line"], r["code"], r["text"]) for r in rejects] == [
        (4, "malformed_record", "{not json"),
        (11, "invalid_event", '{"asset_key": []}'),
        (21, "invalid_field", '{"metadata": {}}'),
    ]
    assert rejects[1]["field"] == "asset_key"
    rendered = summary.render()
    assert "validated 97 events" in rendered and "dry run: nothing was published" in rendered
    assert not list((tmp_path / "data" / "backfill").glob("*.json"))  # no checkpoint in a dry run


def test_more_rejects_than_max_errors_stop_the_run_with_status_1(tmp_path: Path) -> None:
    path = events_file(tmp_path / "events.jsonl", 100, BAD)
    rejects = tmp_path / "bad.jsonl"
    summary, _ = dry_run(tmp_path, path, max_errors=1, rejects=rejects)
    assert summary.exit_code == 1
    assert (summary.published, summary.rejected) == (9, 2)  # stopped at line 11, the second bad one
    assert len(rejects.read_bytes().splitlines()) == 2
    assert "stopped: 2 rejected records, more than --max-errors 1" in summary.render()


def test_several_files_run_in_a_pool_of_processes(tmp_path: Path) -> None:
    paths = [events_file(tmp_path / f"part-{i}.jsonl", 500 + i) for i in range(3)]
    summary, _ = dry_run(tmp_path, *paths, jobs=2)
    assert summary.exit_code == 0
    assert [(f.path, f.published, f.status) for f in summary.files] == [
        (str(p), 500 + i, "done") for i, p in enumerate(paths)
    ]


def test_a_directory_means_its_files_and_a_missing_path_fails_first(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    events_file(tmp_path / "in" / "b.jsonl", 2)
    events_file(tmp_path / "in" / "a.jsonl", 3)
    summary, _ = dry_run(tmp_path, tmp_path / "in")
    assert [Path(f.path).name for f in summary.files] == ["a.jsonl", "b.jsonl"]
    with pytest.raises(BackfillError, match="no such file"):
        dry_run(tmp_path, tmp_path / "in", tmp_path / "missing.jsonl")


def test_a_file_that_cannot_be_read_fails_the_run_with_status_2(tmp_path: Path) -> None:
    good = events_file(tmp_path / "good.jsonl", 10)
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    summary, _ = dry_run(tmp_path, damaged, good, good, jobs=1)
    assert summary.exit_code == 2
    assert [f.status for f in summary.files] == ["failed", "not started"]  # one job per file, even named twice
    assert "[unreadable_file]" in summary.errors[0] and "damaged.jsonl.gz" in summary.errors[0]


@pytest.mark.parametrize("option", [{"max_errors": -1}, {"rate": 0.0}, {"jobs": 0}])
def test_options_out_of_range_are_refused(tmp_path: Path, option: dict[str, Any]) -> None:
    with pytest.raises(BackfillError, match="expected"):
        BackfillOptions(paths=(tmp_path,), **option)
