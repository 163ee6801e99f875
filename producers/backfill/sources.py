"""Readers of backfill files, one per format: JSON Lines (plain, gzip, zstd), CSV (plain, gzip, zstd),
Parquet and Avro object container files.

Every reader streams: it holds one line, one CSV row, one Parquet record batch or one Avro block at a
time, so memory stays flat whatever the file size. ``records(after)`` yields ``(position, line,
payload)``:

- ``position``: the record's place in its file, 1-based and stable across runs (JSON Lines: the line
  number; CSV: the data row; Parquet and Avro: the row). Event ids are derived from it and checkpoints
  count in it; records at or before ``after`` are passed over without being parsed (``skipped``).
- ``line``: where a person finds the record (the file line for JSON Lines and CSV, else the row).
- ``payload``: the raw line (bytes) for JSON Lines, the list of cells for CSV, a dict for Parquet and
  Avro. ``parse`` turns it into a mapping, so that a malformed record is rejected on its own.

The format comes from the file's first bytes (gzip, zstd, Parquet and Avro have magic numbers), then
its name (``.csv`` under any compression suffix is CSV, anything else JSON Lines).
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, NamedTuple, cast

import orjson

from assetpipe.producers.backfill import bounds
from assetpipe.producers.exceptions import MalformedRecordError, SourceError

_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"PAR1": "parquet", b"Obj\x01": "avro"}
_BUFFER = 1 << 20
_PARQUET_BATCH = 8192
csv.field_size_limit(64 << 20)  # an event may be up to max_event_bytes: no CSV cell limit below that


def detect_format(path: Path) -> tuple[str, str | None]:
    """-> (format, compression): format one of jsonl, csv, parquet, avro; compression gzip, zstd or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise SourceError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    magic = _MAGIC.get(head) or _MAGIC.get(head[:2])
    if magic in ("parquet", "avro"):
        return magic, None
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in (".gz", ".gzip", ".zst", ".zstd"):
        suffixes.pop()
    if suffixes and suffixes[-1] in (".parquet", ".pq", ".avro"):
        raise SourceError(f"{path}: named {suffixes[-1]} but is not a {suffixes[-1][1:]} file")
    return ("csv" if suffixes and suffixes[-1] in (".csv", ".tsv") else "jsonl"), magic


def open_source(path: Path) -> Source:
    """The reader for ``path``, chosen by ``detect_format``."""
    fmt, compression = detect_format(path)
    if fmt == "parquet":
        return ParquetSource(path)
    if fmt == "avro":
        return AvroSource(path)
    if fmt == "csv":
        return CsvSource(path, compression)
    return JsonLinesSource(path, compression)


class Source:
    """A file of records. ``form`` says how its values read: ``body`` (JSON types) or ``strings`` (every
    value a string, as in an HTTP query string); ``json_text`` fields may hold their JSON as text."""

    form: ClassVar[str] = "body"
    unit: ClassVar[str] = "line"
    json_text: ClassVar[bool] = False

    def __init__(self, path: Path, compression: str | None = None) -> None:
        self.path = path
        self.compression = compression
        self.size = path.stat().st_size
        self.skipped = 0  # records at or before ``after``, passed over
        self._raw: IO[bytes] | None = None
        self._finished = False

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        raise NotImplementedError

    def parse(self, payload: Any) -> Mapping[str, Any]:
        if type(payload) is _Broken:
            raise MalformedRecordError(payload.reason)
        return cast(Mapping[str, Any], payload)

    def text(self, payload: Any) -> str:
        """The record as the file has it, for the rejects file."""
        if type(payload) is _Broken:
            return payload.text
        return orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS).decode()

    def bytes_read(self) -> int:
        """Bytes of the file on disk read so far (compressed bytes for a compressed file)."""
        if self._finished:
            return self.size
        return 0 if self._raw is None else self._raw.tell()

    def _open(self) -> IO[bytes]:
        """The file's bytes, decompressed."""
        try:
            self._raw = raw = open(self.path, "rb", buffering=_BUFFER)  # noqa: SIM115 - closed by records()
        except OSError as exc:
            raise SourceError(f"{self.path}: cannot open: {exc.strerror or exc}") from exc
        if self.compression == "gzip":
            return cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb"))
        if self.compression == "zstd":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            return cast(IO[bytes], io.BufferedReader(reader, _BUFFER))
        return raw

    def _finish(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._finished = True

    def _unreadable(self, where: str, exc: BaseException) -> SourceError:
        return SourceError(f"{self.path}: cannot read {where}: {type(exc).__name__}: {exc}")


# What a reader library raises on a damaged file is not a closed list (gzip, zstandard, the csv module,
# pyarrow and fastavro raise OSError, EOFError, zlib.error, ValueError, KeyError, IndexError,
# OverflowError, MemoryError...): each reader takes any ``Exception`` from its library as "this file cannot
# be read", ``unreadable_file``, naming the place it got to. Records that are read but do not make events
# are rejected one by one, later.
_READ_ERRORS = (Exception,)


class JsonLinesSource(Source):
    """One JSON object per line; blank lines are not records. Position = line number."""

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        lineno = 0
        stream = self._open()
        try:
            with stream:
                for line in stream:
                    lineno += 1
                    if line[0] <= 32 and not line.strip():  # a blank line (a record starts with "{")
                        continue
                    if lineno <= after:
                        self.skipped += 1
                        continue
                    yield lineno, lineno, line
        except _READ_ERRORS as exc:
            raise self._unreadable(f"past line {lineno}", exc) from exc
        finally:
            self._finish()

    def parse(self, payload: Any) -> Mapping[str, Any]:
        try:
            value = bounds.loads(payload)  # as an HTTP body is read: integers beyond 64 bits exact
        except ValueError as exc:
            raise MalformedRecordError(f"not valid JSON: {exc}") from exc
        if type(value) is not dict:
            raise MalformedRecordError(f"not a JSON object: a JSON {type(value).__name__}")
        return value

    def text(self, payload: Any) -> str:
        return bytes(payload).decode("utf-8", "replace").rstrip("\r\n")


class CsvSource(Source):
    """A header row naming the fields, then one event per row. Position = data row; line = file line
    where the row starts. Values are strings: ``metadata`` and ``tags`` as JSON text, ``passed`` as
    ``true``/``false``, an empty cell as absent.

    Malformed CSV is rejected, never read as another event. The file is parsed strictly (RFC 4180): a
    quoted field may run over several lines, but text after a closing quote (``"a"b``) makes its row a
    reject, and reading goes on at the next line. A quote that is never closed would swallow every line
    after it into one field: when the file ends inside a quoted field (or the field passes 64 MB), every
    line from the one the field opened on to the end of the file is a reject of its own, with its line
    number; the rows before it stand. A row that is not valid UTF-8 is a reject too.
    """

    form = "strings"

    def __init__(self, path: Path, compression: str | None = None) -> None:
        super().__init__(path, compression)
        self.header: list[str] = []

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        row_number = 0
        text = io.TextIOWrapper(self._open(), encoding="utf-8-sig", errors="surrogateescape", newline="")
        delimiter = "\t" if ".tsv" in [s.lower() for s in self.path.suffixes] else ","
        lines: list[str] = []  # the file lines of the row being read
        undecodable = False

        def recorded() -> Iterator[str]:
            nonlocal undecodable
            for line in text:
                lines.append(line)
                if not line.isascii() and _SURROGATE.search(line):
                    undecodable = True
                yield line

        def record(start: int, cells: Any) -> Iterator[tuple[int, int, Any]]:
            nonlocal row_number
            row_number += 1
            if row_number <= after:
                self.skipped += 1
            else:
                yield row_number, start, cells

        reader = csv.reader(recorded(), delimiter=delimiter, strict=True)
        line = 0
        try:
            with text:
                while True:
                    try:
                        cells: Any = next(reader)
                    except StopIteration:
                        break
                    except csv.Error as exc:
                        start, line = line + 1, reader.line_num
                        if not self.header:
                            raise self._unreadable("the header row", exc) from exc
                        if _RUNAWAY.match(str(exc)):
                            yield from self._runaway(start, lines, text, record)
                            break
                        cells = _Broken(_raw(lines), f"malformed CSV: {exc}")
                    else:
                        start, line = line + 1, reader.line_num
                        if not cells:
                            lines.clear()
                            continue
                        if not self.header:
                            if undecodable:
                                raise SourceError(f"{self.path}: the header row is not valid UTF-8")
                            self.header = [name.strip() for name in cells]
                            lines.clear()
                            continue
                        if undecodable:
                            cells = _Broken(_raw(lines), "not valid UTF-8")
                    undecodable = False
                    lines.clear()
                    yield from record(start, cells)
        except SourceError:
            raise
        except _READ_ERRORS as exc:
            raise self._unreadable(f"past line {line}", exc) from exc
        finally:
            self._finish()

    def _runaway(
        self,
        start: int,
        lines: list[str],
        rest: Iterator[str],
        record: Callable[[int, Any], Iterator[tuple[int, int, Any]]],
    ) -> Iterator[tuple[int, int, Any]]:
        """Every line from ``start`` on, each a reject: a quoted field opened there and never closed."""
        first = f"unterminated quoted field: the quote opened on line {start} is not closed"
        inside = f"inside the unterminated quoted field opened on line {start}"
        number = start - 1
        for line in itertools.chain(list(lines), rest):
            number += 1
            if line.strip("\r\n"):
                yield from record(number, _Broken(_raw([line]), first if number == start else inside))
        lines.clear()

    def parse(self, payload: Any) -> Mapping[str, Any]:
        if type(payload) is _Broken:
            raise MalformedRecordError(payload.reason)
        if len(payload) != len(self.header):
            raise MalformedRecordError(f"the row has {len(payload)} fields, the header {len(self.header)}")
        return dict(zip(self.header, payload, strict=True))

    def text(self, payload: Any) -> str:
        if type(payload) is _Broken:
            return payload.text
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(payload)
        return out.getvalue()


class _Broken(NamedTuple):
    """A CSV record that is not a row: its text as the file has it, and why."""

    text: str
    reason: str


# What the csv module says when a quoted field runs to the end of the file or past the field limit.
_RUNAWAY = re.compile(r"unexpected end of data|field larger than field limit")
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as surrogateescape keeps them


def _raw(lines: list[str]) -> str:
    """File lines as text for the rejects file (bytes that are not UTF-8 as U+FFFD)."""
    text = "".join(lines).rstrip("\r\n")
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class ParquetSource(Source):
    """Rows of a Parquet file, read one record batch at a time. Position = row. Columns keep their
    types: a list column is a list, a map or struct a dict, a timestamp a datetime (a timestamp
    without a zone is taken as UTC); a string ``metadata`` or ``tags`` column holds JSON text."""

    unit = "row"
    json_text = True
    rows = 0  # in the file, known once reading starts
    _rows_read = 0

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path, memory_map=False)
        except _READ_ERRORS as exc:
            raise self._unreadable("as Parquet", exc) from exc
        with parquet:
            position = 0
            try:
                meta = parquet.metadata
                self.rows = meta.num_rows
                groups: list[int] = []
                for i in range(meta.num_row_groups):
                    n = meta.row_group(i).num_rows
                    if not groups and position + n <= after:  # a published group: do not read it
                        position += n
                        self.skipped += n
                    else:
                        groups.append(i)
                self._rows_read = position
                schema = _utc_timestamps(parquet.schema_arrow)
                batches = parquet.iter_batches(batch_size=_PARQUET_BATCH, row_groups=groups)
                for batch in batches:
                    for row in _rows(batch.cast(schema)):
                        position += 1
                        if position <= after:
                            self.skipped += 1
                            continue
                        yield position, position, row
                    self._rows_read = position
            except _READ_ERRORS as exc:
                raise self._unreadable(f"past row {position}", exc) from exc

    def bytes_read(self) -> int:
        return self.size * self._rows_read // self.rows if self.rows else 0


def _rows(batch: Any) -> list[Any]:
    """A record batch as Python rows. A row whose values Python cannot hold (a timestamp past year 9999,
    a map with a key twice) is a ``_Broken`` record of its own: the file is sound, that row is not."""
    try:
        return list(batch.to_pylist(maps_as_pydicts="strict"))
    except _READ_ERRORS:
        pass
    rows: list[Any] = []
    for i in range(batch.num_rows):
        one = batch.slice(i, 1)
        try:
            rows.append(one.to_pylist(maps_as_pydicts="strict")[0])
        except _READ_ERRORS as exc:
            rows.append(_Broken(_row_text(one), f"cannot be read as values: {type(exc).__name__}: {exc}"))
    return rows


def _row_text(row: Any) -> str:
    try:
        return str(row.to_pylist(maps_as_pydicts="lossy")[0])
    except _READ_ERRORS:
        return ""


def _utc_timestamps(schema: Any) -> Any:
    """The schema with every zoneless timestamp column read as UTC (a cast that moves no data)."""
    import pyarrow as pa

    fields = [
        f.with_type(pa.timestamp(f.type.unit, tz="UTC")) if pa.types.is_timestamp(f.type) and f.type.tz is None else f
        for f in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


class AvroSource(Source):
    """Records of an Avro object container file, read one block at a time. Position = row. Values keep
    their Avro types (an array is a list, a map or record a dict, ``timestamp-*`` a UTC datetime); a
    string ``metadata`` or ``tags`` field holds JSON text."""

    unit = "row"
    json_text = True

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        import fastavro

        position = 0
        raw = self._open()
        try:
            with raw:
                try:
                    blocks = fastavro.block_reader(raw)
                except _READ_ERRORS as exc:  # e.g. KeyError 'avro.schema': no schema in the header
                    raise self._unreadable("as Avro (not an Avro object container file, or damaged)", exc) from exc
                for block in blocks:
                    if position + block.num_records <= after:  # published: do not decode it
                        position += block.num_records
                        self.skipped += block.num_records
                        continue
                    for record in block:
                        position += 1
                        if position <= after:
                            self.skipped += 1
                            continue
                        yield position, position, record
        except SourceError:
            raise
        except _READ_ERRORS as exc:
            raise self._unreadable(f"past row {position}", exc) from exc
        finally:
            self._finish()
