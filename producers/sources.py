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
import zlib
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar, cast

import orjson

from producers.exceptions import MalformedRecordError, SourceError

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
        return cast(Mapping[str, Any], payload)

    def text(self, payload: Any) -> str:
        """The record as the file has it, for the rejects file."""
        return orjson.dumps(payload, default=str).decode()

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


def _stream_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """What reading a (decompressed) stream raises when the file is damaged, plus ``more``."""
    import zstandard

    return (OSError, EOFError, zlib.error, UnicodeDecodeError, zstandard.ZstdError, *more)


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
        except _stream_errors() as exc:
            raise self._unreadable(f"past line {lineno}", exc) from exc
        finally:
            self._finish()

    def parse(self, payload: Any) -> Mapping[str, Any]:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise MalformedRecordError(f"not valid JSON: {exc}") from exc
        if type(value) is not dict:
            raise MalformedRecordError(f"not a JSON object: a JSON {type(value).__name__}")
        return value

    def text(self, payload: Any) -> str:
        return bytes(payload).decode("utf-8", "replace").rstrip("\r\n")


class CsvSource(Source):
    """A header row naming the fields, then one event per row. Position = data row; line = file line
    where the row starts. Values are strings: ``metadata`` and ``tags`` as JSON text, ``passed`` as
    ``true``/``false``, an empty cell as absent."""

    form = "strings"

    def __init__(self, path: Path, compression: str | None = None) -> None:
        super().__init__(path, compression)
        self.header: list[str] = []

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        row_number, line = 0, 0
        text = io.TextIOWrapper(self._open(), encoding="utf-8-sig", newline="")
        delimiter = "\t" if ".tsv" in [s.lower() for s in self.path.suffixes] else ","
        try:
            with text:
                reader = csv.reader(text, delimiter=delimiter)
                for cells in reader:
                    start, line = line + 1, reader.line_num
                    if not cells:
                        continue
                    if not self.header:
                        self.header = [name.strip() for name in cells]
                        continue
                    row_number += 1
                    if row_number <= after:
                        self.skipped += 1
                        continue
                    yield row_number, start, cells
        except _stream_errors(csv.Error) as exc:
            raise self._unreadable(f"past line {line}", exc) from exc
        finally:
            self._finish()

    def parse(self, payload: Any) -> Mapping[str, Any]:
        if len(payload) != len(self.header):
            raise MalformedRecordError(f"the row has {len(payload)} fields, the header {len(self.header)}")
        return dict(zip(self.header, payload, strict=True))

    def text(self, payload: Any) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(payload)
        return out.getvalue()


class ParquetSource(Source):
    """Rows of a Parquet file, read one record batch at a time. Position = row. Columns keep their
    types: a list column is a list, a map or struct a dict, a timestamp a datetime (a timestamp
    without a zone is taken as UTC); a string ``metadata`` or ``tags`` column holds JSON text."""

    unit = "row"
    json_text = True
    rows = 0  # in the file, known once reading starts
    _rows_read = 0

    def records(self, after: int = 0) -> Generator[tuple[int, int, Any], None, None]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path, memory_map=False)
        except (OSError, pa.ArrowException) as exc:
            raise self._unreadable("as Parquet", exc) from exc
        with parquet:
            meta = parquet.metadata
            self.rows = meta.num_rows
            groups: list[int] = []
            position = 0
            for i in range(meta.num_row_groups):
                n = meta.row_group(i).num_rows
                if not groups and position + n <= after:  # a published group: do not read it
                    position += n
                    self.skipped += n
                else:
                    groups.append(i)
            self._rows_read = position
            schema = _utc_timestamps(parquet.schema_arrow)
            try:
                for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, row_groups=groups):
                    rows = batch.cast(schema).to_pylist(maps_as_pydicts="strict")
                    for row in rows:
                        position += 1
                        if position <= after:
                            self.skipped += 1
                            continue
                        yield position, position, row
                    self._rows_read = position
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise self._unreadable(f"past row {position}", exc) from exc

    def bytes_read(self) -> int:
        return self.size * self._rows_read // self.rows if self.rows else 0


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
                for block in fastavro.block_reader(raw):
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
        except _stream_errors(ValueError, TypeError) as exc:
            raise self._unreadable(f"past row {position}", exc) from exc
        finally:
            self._finish()
