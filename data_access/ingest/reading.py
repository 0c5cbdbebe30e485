"""Reading export files in bounded batches, every value as text.

CSV: delimiter, encoding (UTF-8 with or without BOM, else Windows-1252) and quoting are
detected; a Windows-1252 file is transcoded to UTF-8 in a temporary file, streaming.
JSON Lines, JSON arrays and Parquet are read as they are. Each batch carries ``_line``:
the line of a CSV file counting the header as line 1, or the record number of the others.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl

from data_access.ingest.profiles import Profile

BATCH_ROWS = 100_000
BATCH_BYTES = 8 * 1024 * 1024  # a CSV chunk: about 50 000 contact rows
SNIFF_BYTES = 256 * 1024


class FileError(ValueError):
    """A file that cannot be processed at all; the message is one plain sentence."""


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        with path.open("rb") as handle:
            head = handle.read(64).lstrip()
        return "json" if head.startswith(b"[") else "jsonl"
    return "csv"


def _encoding(path: Path, declared: str | None) -> str:
    """UTF-16 by its byte-order mark; else UTF-8 when the whole file decodes as UTF-8 (an
    incremental decoder, so a character cut between chunks is not an error), else
    Windows-1252. The first 256 KB were not enough: a file whose first "ä" came later was
    refused as invalid UTF-8, and a one-row file ending "kyllä\r\n" was taken for UTF-8
    cut short."""
    if declared:
        return declared.lower().replace("-", "").replace("windows1252", "cp1252")
    with path.open("rb") as handle:
        if handle.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return "utf-16"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(SNIFF_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf8"


def _cr_only(path: Path, encoding: str) -> bool:
    """Old Mac line endings: carriage returns and no line feed (read as one line, the rows
    were lost behind the header)."""
    source = "utf-8-sig" if encoding == "utf8" else encoding
    with path.open(encoding=source, errors="replace", newline="") as handle:
        sample = handle.read(64 * 1024)
    return "\r" in sample and "\n" not in sample


@contextmanager
def _utf8_copy(path: Path, encoding: str) -> Iterator[Path]:
    """The file as UTF-8 without BOM, with line feeds (a temporary copy unless it already is)."""
    with path.open("rb") as handle:
        has_bom = handle.read(3) == b"\xef\xbb\xbf"
    cr_only = _cr_only(path, encoding)
    if encoding == "utf8" and not has_bom and not cr_only:
        yield path
        return
    source_encoding = "utf-8-sig" if encoding == "utf8" else encoding
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".csv", delete=False, newline="") as out:
        # Universal newlines only for a file of carriage returns alone: elsewhere a "\r\n"
        # inside a quoted field is the field's own.
        with path.open(encoding=source_encoding, newline=None if cr_only else "") as src:
            shutil.copyfileobj(src, out, length=1024 * 1024)
        temp = Path(out.name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


DELIMITERS = (";", ",", "\t", "|")


def _delimiter(path: Path) -> str:
    """The separator that splits the header into the most names (ties: in DELIMITERS' order).

    Decided from the header alone: column names hold no separators, data does. csv.Sniffer over
    the first rows took the semicolon of a comma file whose free text held more semicolons
    than commas, and the file then had none of the required columns."""
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(64 * 1024)

    def names(delimiter: str) -> int:
        header = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
        return sum(1 for name in header if name.strip())

    counts = {d: names(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


@contextmanager
def open_batches(path: Path, profile: Profile, *, batch_rows: int = BATCH_ROWS, batch_bytes: int | None = None
) -> Iterator[tuple[list[str], Iterator[pl.DataFrame]]]:
    """(column names, batches of text frames) for a file, or FileError before anything is read."""
    if not path.exists():
        raise FileError(f"{path}: the file does not exist")
    if path.stat().st_size == 0:
        raise FileError(f"{path}: the file is empty")
    kind = file_format(path)
    try:
        if kind == "csv":
            with _utf8_copy(path, _encoding(path, profile.encoding)) as utf8:
                separator = profile.delimiter or _delimiter(utf8)
                columns = _header(utf8, separator, shown=path)
                yield columns, _checked(_csv_batches(utf8, separator, columns, batch_bytes or BATCH_BYTES), path)
            return
        if kind == "parquet":
            lazy = pl.scan_parquet(path).with_row_index("_line", offset=1)
            lazy = lazy.select(pl.col("_line"), pl.all().exclude("_line").cast(pl.String))
        elif kind == "jsonl":
            lazy = pl.scan_ndjson(path, infer_schema_length=None).with_row_index("_line", offset=1)
            lazy = lazy.select(pl.col("_line"), pl.all().exclude("_line").cast(pl.String))
        else:
            frame = _read_json_array(path)
            lazy = frame.lazy()
        columns = [c for c in lazy.collect_schema().names() if c not in ("_line", "_error")]
        _one_name_each(columns, path)
        yield columns, _checked(lazy.collect_batches(chunk_size=batch_rows), path)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise FileError(f"{path}: the file cannot be read as {kind.upper()} ({str(exc).splitlines()[0]})") from exc
    except RecursionError:  # json.load on arrays nested thousands deep
        raise FileError(f"{path}: the file cannot be read as {kind.upper()} (its values are nested too deep)") from None


def _header(path: Path, separator: str, *, shown: Path) -> list[str]:
    """The header row of ``path`` (perhaps a temporary UTF-8 copy); errors name ``shown``,
    the user's own file."""
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle, delimiter=separator), None)
    if not header or not any(name.strip() for name in header):
        raise FileError(f"{shown}: the file has no header row")
    _one_name_each(header, shown)
    return header


def _one_name_each(columns: list[str], path: Path) -> None:
    """Refuse a header that names a column twice, also in another case or with spaces around
    ("contact_id" and "CONTACT_ID"): which one is meant cannot be told, and the other would
    be silently ignored."""
    seen: dict[str, str] = {}
    for name in columns:
        key = name.strip().casefold()
        if key in seen:
            raise FileError(f"{path}: the header names a column twice ({seen[key]!r} and {name!r}), so which one is meant cannot be told")
        seen[key] = name


def _csv_batches(path: Path, separator: str, columns: list[str], batch_bytes: int) -> Iterator[pl.DataFrame]:
    """Stream a CSV in chunks of whole records, with exact line numbers (the header is line 1,
    quoted newlines and blank lines counted) and rows with the wrong number of fields kept with
    the reason instead of being dropped or cut.

    A chunk without quote characters whose every line has the right number of fields is
    parsed by polars (about ten times faster); any other chunk goes through the csv module.
    (Polars' batched reader buffers the whole file when the database is the slower side, and
    neither it nor pyarrow's streaming reader can say on which line a bad row was.)"""
    with path.open("rb") as handle:
        header_lines = _header_lines(path, separator)
        for _ in range(header_lines):
            handle.readline()
        line = header_lines + 1
        chunks = _record_chunks(handle, batch_bytes)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except _RecordTooLong:
                raise csv.Error(
                    f"line {line}: a record runs over more than {MAX_RECORD_LINES} lines or "
                    f"{MAX_RECORD_BYTES // 1024 // 1024} MB (a quote left open?)"
                ) from None
            frame, lines = _simple_chunk(chunk, separator, columns, line)
            if frame is None:
                frame, lines = _quoted_chunk(chunk, separator, columns, line)
            line += lines
            if frame.height:
                yield _bounded(frame, columns)


# No field of any kind is longer than this: a longer one is a broken export (a 50 MB field took
# 1.27 GB to load). Its row goes to quarantine with the field cut to this length.
MAX_FIELD_CHARS = 100_000


def _bounded(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Rows with a field over ``MAX_FIELD_CHARS``: the field cut, the row marked with the reason
    (before validation, the raw row and the quarantine copy it again)."""
    longest = frame.select(pl.col(c).str.len_chars().max().fill_null(0) for c in columns).row(0)
    long = [c for c, size in zip(columns, longest, strict=True) if size > MAX_FIELD_CHARS]
    if not long:
        return frame
    too_long = pl.any_horizontal(pl.col(c).str.len_chars() > MAX_FIELD_CHARS for c in long)
    reason = pl.lit(f"row: a field longer than {MAX_FIELD_CHARS} characters")
    return frame.with_columns(
        *(pl.col(c).str.slice(0, MAX_FIELD_CHARS) for c in long),
        pl.when(too_long).then(pl.coalesce(pl.col("_error"), reason)).otherwise(pl.col("_error")).alias("_error"),
    )


def _header_lines(path: Path, separator: str) -> int:
    """Physical lines the header record takes (more than one if a name holds a newline)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=separator)
        next(reader, None)
        return reader.line_num


# One record is never longer than this: a longer one is a broken export, and reading on to find
# its end would hold the whole file in memory.
MAX_RECORD_BYTES = 64 * 1024 * 1024


class _RecordTooLong(Exception):
    """The record at the start of the unread part is longer than a record can be."""


def _record_chunks(handle: BinaryIO, size: int) -> Iterator[bytes]:
    """Byte chunks of about ``size`` that end at a record boundary: after a newline with an
    even number of quote characters before it (a doubled quote inside a field counts two).

    A record still open after ``MAX_RECORD_LINES`` lines or ``MAX_RECORD_BYTES`` raises
    _RecordTooLong before the rest of the file is read (a stray quote near the start of a
    2 GB file would otherwise be read whole into memory)."""
    rest = b""
    while True:
        block = handle.read(size)
        if not block:
            if rest:
                yield rest
            return
        buffer = rest + block
        cut = _record_end(buffer) if b'"' in buffer else buffer.rfind(b"\n") + 1
        if cut == 0:  # one record longer than the chunk (a long quoted field): read on
            if len(buffer) > MAX_RECORD_BYTES or buffer.count(b"\n") > MAX_RECORD_LINES:
                raise _RecordTooLong
            rest = buffer
            continue
        rest = buffer[cut:]
        yield buffer[:cut]


def _record_end(buffer: bytes) -> int:
    """The position just after the last newline outside quotes (0 when there is none), in one
    vectorised pass: looking back newline by newline and counting the quotes before each took
    minutes for a chunk after a stray quote (a count of the whole chunk per line)."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    newlines = np.flatnonzero(data == NEWLINE)
    if not newlines.size:
        return 0
    inside = np.bitwise_xor.accumulate((data == QUOTE).view(np.uint8))  # 1 inside quotes
    outside = newlines[inside[newlines] == 0]
    return int(outside[-1]) + 1 if outside.size else 0


NEWLINE, QUOTE = ord("\n"), ord('"')


def _simple_chunk(chunk: bytes, separator: str, columns: list[str], first_line: int) -> tuple[pl.DataFrame | None, int]:
    """(frame, physical lines) for a chunk with no quotes, no blank lines and no ragged rows;
    (None, 0) for any other chunk."""
    if b'"' in chunk:
        return None, 0
    body = chunk[:-1] if chunk.endswith(b"\n") else chunk
    lines = body.split(b"\n")
    sep = separator.encode()
    width = len(columns) - 1
    if any(text.count(sep) != width or not text.rstrip(b"\r") for text in lines):
        return None, 0
    schema = {c: pl.String for c in columns}
    frame = pl.read_csv(body, has_header=False, schema=schema, separator=separator, quote_char=None, encoding="utf8")
    if frame.height != len(lines):
        return None, 0
    return frame.with_columns(
        pl.int_range(first_line, first_line + len(lines), dtype=pl.Int64).alias("_line"),
        pl.lit(None, pl.String).alias("_error"),
        pl.lit(None, pl.String).alias("_ragged"),
    ), len(lines)


def _quoted_chunk(chunk: bytes, separator: str, columns: list[str], first_line: int) -> tuple[pl.DataFrame, int]:
    """The csv module's reading of a chunk: quoted fields, blank lines and ragged rows."""
    width = len(columns)
    # strict: a quote not followed by a separator or a line end, or one never closed, is an
    # error rather than a field that swallows the records after it.
    reader = csv.reader(io.StringIO(chunk.decode("utf-8"), newline=""), delimiter=separator, strict=True)
    lines: list[int] = []
    values: list[list[str | None]] = []
    errors: list[str | None] = []
    ragged: list[str | None] = []
    end = 0
    for row in _strict_rows(reader, first_line=first_line):
        start, end = end + 1, reader.line_num
        if not row:
            continue  # a blank line is not a record
        if end > start:
            _check_spanning(row, separator=separator, width=width, line=first_line + start - 1, spans=end - start + 1)
        lines.append(first_line + reader.line_num - 1)
        if len(row) == width:
            values.append(list(row))
            errors.append(None)
            ragged.append(None)
        else:
            values.append([None] * width)
            errors.append(f"row: expected {width} fields, found {len(row)}")
            ragged.append(json.dumps({"fields": row}, ensure_ascii=False))
    frame = pl.DataFrame(values, schema={c: pl.String for c in columns}, orient="row").with_columns(
        pl.Series("_line", lines, dtype=pl.Int64),
        pl.Series("_error", errors, dtype=pl.String),
        pl.Series("_ragged", ragged, dtype=pl.String),
    ).with_columns(pl.col(c).replace("", None) for c in columns)
    return frame, reader.line_num


def _strict_rows(reader: Any, *, first_line: int) -> Iterator[list[str]]:
    """The reader's rows; its error says on which line the failing record starts."""
    done = 0
    try:
        for row in reader:
            done = reader.line_num
            yield row
    except csv.Error as exc:
        raise csv.Error(f"line {first_line + done}: a quote is left open or misplaced ({exc})") from exc


MIN_RECORD_WIDTH = 5
# A quoted field may hold line breaks (free text), but not this many.
MAX_RECORD_LINES = 100


def _check_spanning(row: list[str], *, separator: str, width: int, line: int, spans: int) -> None:
    """A record over several lines: refuse the file when a stray quote has run a field on into
    the records after it (a line inside the field with a record's worth of separators), or
    over more lines than free text takes. Read, such a file stored one contact inside another's
    field and lost the rest."""
    if spans > MAX_RECORD_LINES:
        raise csv.Error(f"line {line}: a quote is left open (a quoted field runs over {spans} lines)")
    # A line inside the field with exactly a record's separators is a record swallowed. Every
    # contract kind has at least five columns, so free text would need as many separators on
    # one line to be taken for one (docs/ingestion.md).
    if width < MIN_RECORD_WIDTH:
        return
    for value in row:
        if any(part.count(separator) == width - 1 for part in value.splitlines()[1:]):
            raise csv.Error(f"line {line}: a quote is left open (a quoted field runs on into the next record)")


def _read_json_array(path: Path) -> pl.DataFrame:
    with path.open(encoding="utf-8-sig") as handle:
        records = json.load(handle)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise FileError(f"{path}: a JSON file must hold an array of objects")
    if not records:
        raise FileError(f"{path}: the file has no records")
    columns = list(dict.fromkeys(key for record in records for key in record))
    data = {c: [_json_text(r.get(c)) for r in records] for c in columns}
    # A value that is an object or a list is not one value: the row goes to quarantine with
    # that reason (its Python form was stored before).
    errors = [
        next((f"{key}: a JSON object or list, not a single value" for key, value in r.items() if isinstance(value, (dict, list))), None)
        for r in records
    ]
    frame = pl.DataFrame(data, schema={c: pl.String for c in columns})
    if any(errors):
        frame = frame.with_columns(pl.Series("_error", errors, dtype=pl.String))
    return frame.with_row_index("_line", offset=1)


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _checked(batches: Iterator[pl.DataFrame], path: Path) -> Iterator[pl.DataFrame]:
    """The batches with their line numbers as integers. A file with a header and no rows gives
    none: a quiet source's nightly export is a valid batch of zero rows (a zero-byte file is
    refused before this)."""
    try:
        for batch in batches:
            yield batch.with_columns(pl.col("_line").cast(pl.Int64))
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FileError(f"{path}: the file cannot be read ({str(exc).splitlines()[0]})") from exc
