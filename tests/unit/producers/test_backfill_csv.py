"""Malformed CSV is rejected with its line numbers, never read as another event."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from assetpipe.producers.backfill.run import BackfillOptions, Summary, run_backfill
from assetpipe.producers.backfill.sources import open_source
from assetpipe.producers.exceptions import SourceError
from assetpipe.schemas.settings import Settings


def dry_run(path: Path, max_errors: int = 1000) -> tuple[Summary, str, list[dict[str, Any]]]:
    stderr = io.StringIO()
    settings = Settings.from_env({}, data_dir=path.parent / "data")
    rejects = path.parent / "rejects.jsonl"
    opts = BackfillOptions(
        paths=(path,), event_type="materialization", dry_run=True, rejects=rejects, max_errors=max_errors
    )
    summary = run_backfill(settings, opts, stderr=stderr, watch_signals=False)
    written = [orjson.loads(line) for line in rejects.read_bytes().splitlines()] if rejects.exists() else []
    return summary, stderr.getvalue(), written


def test_an_unterminated_quote_rejects_every_line_from_it_and_keeps_the_rows_before(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text('asset_key,partition\na/a,p1\na/b,"p2\na/c,p3\na/d,p4\n\na/e,p5\na/f,p6\n')
    summary, stderr, rejects = dry_run(path)
    assert (summary.exit_code, summary.published, summary.rejected) == (0, 1, 5)
    assert [(r["line"], r["code"], r["text"]) for r in rejects] == [
        (3, "malformed_record", 'a/b,"p2'),
        (4, "malformed_record", "a/c,p3"),
        (5, "malformed_record", "a/d,p4"),
        (7, "malformed_record", "a/e,p5"),  # line 6 is blank: not a record
        (8, "malformed_record", "a/f,p6"),
    ]
    assert f"rejected {path}:3: unterminated quoted field: the quote opened on line 3 is not closed" in stderr
    assert f"rejected {path}:8: inside the unterminated quoted field opened on line 3" in stderr


def test_an_unterminated_quote_counts_each_line_against_max_errors(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("asset_key,partition\n" + "a/a,p\n" * 10 + 'a/b,"open\n' + "a/c,p\n" * 100)
    summary, _, rejects = dry_run(path, max_errors=1)
    assert summary.exit_code == 1  # 101 lines are rejects: the run stops at the second
    assert summary.published == 10 and [r["line"] for r in rejects] == [12, 13]


def test_text_after_a_closing_quote_rejects_that_row_alone(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text('asset_key,partition\na/a,"p1"x\na/b,p2\n')
    summary, stderr, rejects = dry_run(path)
    assert (summary.published, summary.rejected) == (1, 1)
    assert [(r["line"], r["text"]) for r in rejects] == [(2, 'a/a,"p1"x')]
    assert f"rejected {path}:2: malformed CSV: ',' expected after '\"'" in stderr


def test_a_quoted_field_over_several_lines_is_one_legal_row(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text('asset_key,description\na/a,"two\nlines"\na/b,plain\n')
    summary, _, rejects = dry_run(path)
    assert (summary.published, summary.rejected, rejects) == (2, 0, [])


def test_a_row_that_is_not_utf8_is_rejected_and_the_next_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"asset_key,partition\na/a,p\xff1\na/b,p2\n")
    summary, stderr, rejects = dry_run(path)
    assert (summary.published, summary.rejected) == (1, 1)
    assert [(r["line"], r["reason"], r["text"]) for r in rejects] == [(2, "not valid UTF-8", "a/a,p\ufffd1")]
    assert f"rejected {path}:2: not valid UTF-8" in stderr


def test_a_header_row_that_cannot_be_read_makes_the_file_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text('asset_key,"partition\na/a,p1\n')
    summary, _, _ = dry_run(path)
    assert summary.exit_code == 2
    assert "[unreadable_file]" in summary.errors[0] and "header row" in summary.errors[0]
    with pytest.raises(SourceError, match="header row"):
        list(open_source(path).records())
