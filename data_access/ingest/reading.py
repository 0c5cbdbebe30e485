"""Reading export files in bounded batches, every value as text.

CSV: delimiter, encoding (UTF-8 with or without BOM, else Windows-1252) and quoting are
detected; a Windows-1252 file is transcoded to UTF-8 in a temporary file, streaming.
JSON Lines, JSON arrays and Parquet are read as they are. Each batch carries ``_line``:
the line of a CSV file counting the header as line 1, or the record number of the others.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from data_access.ingest.profiles import Profile

BATCH_ROWS = 100_000
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
    if declared:
        return declared.lower().replace("-", "").replace("windows1252", "cp1252")
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    try:
        head.decode("utf-8")
        return "utf8"
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still UTF-8.
        if exc.start >= len(head) - 3:
            return "utf8"
        return "cp1252"


@contextmanager
def _utf8_copy(path: Path, encoding: str) -> Iterator[Path]:
    """The file as UTF-8 without BOM (a temporary copy unless it already is)."""
    with path.open("rb") as handle:
        has_bom = handle.read(3) == b"\xef\xbb\xbf"
    if encoding == "utf8" and not has_bom:
        yield path
        return
    source_encoding = "utf-8-sig" if encoding == "utf8" else encoding
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".csv", delete=False) as out:
        with path.open(encoding=source_encoding, newline="") as src:
            shutil.copyfileobj(src, out, length=1024 * 1024)
        temp = Path(out.name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _delimiter(path: Path) -> str:
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        sample = handle.read(64 * 1024)
    first = sample.splitlines()[0] if sample else ""
    try:
        return csv.Sniffer().sniff(sample, delimiters=";,\t|").delimiter
    except csv.Error:
        counts = {d: first.count(d) for d in (";", ",", "\t", "|")}
        return max(counts, key=counts.get) if any(counts.values()) else ","


@contextmanager
def open_batches(path: Path, profile: Profile, *, batch_rows: int = BATCH_ROWS) -> Iterator[tuple[list[str], Iterator[pl.DataFrame]]]:
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
                columns = _header(utf8, separator)
                yield columns, _checked(_csv_batches(utf8, separator, columns, batch_rows), path)
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
        columns = [c for c in lazy.collect_schema().names() if c != "_line"]
        yield columns, _checked(lazy.collect_batches(chunk_size=batch_rows), path)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
        raise FileError(f"{path}: the file cannot be read as {kind.upper()} ({str(exc).splitlines()[0]})") from exc


def _header(path: Path, separator: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle, delimiter=separator), None)
    if not header or not any(name.strip() for name in header):
        raise FileError(f"{path}: the file has no header row")
    if len(set(header)) != len(header):
        raise FileError(f"{path}: the header names a column twice")
    return header


def _csv_batches(path: Path, separator: str, columns: list[str], batch_rows: int) -> Iterator[pl.DataFrame]:
    """Stream a CSV with the csv module: exact line numbers (quoted newlines included) and
    rows with the wrong number of fields kept, with the reason, instead of being dropped or
    cut. (Polars' batched reader buffers the whole file when the database is the slower
    side; pyarrow's streaming reader cannot say on which line a bad row was.)"""
    width = len(columns)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=separator)
        next(reader, None)
        while True:
            lines, values, errors, ragged = [], [], [], []
            for row in reader:
                lines.append(reader.line_num)
                if len(row) == width:
                    values.append(row)
                    errors.append(None)
                    ragged.append(None)
                elif not row:
                    lines.pop()  # a blank line is not a record
                    continue
                else:
                    values.append([None] * width)
                    errors.append(f"row: expected {width} fields, found {len(row)}")
                    ragged.append(json.dumps({"fields": row}, ensure_ascii=False))
                if len(lines) >= batch_rows:
                    break
            if not lines:
                return
            frame = pl.DataFrame(values, schema={c: pl.String for c in columns}, orient="row")
            yield frame.with_columns(
                pl.Series("_line", lines, dtype=pl.Int64),
                pl.Series("_error", errors, dtype=pl.String),
                pl.Series("_ragged", ragged, dtype=pl.String),
            ).with_columns(pl.col(c).replace("", None) for c in columns)
            if len(lines) < batch_rows:
                return


def _read_json_array(path: Path) -> pl.DataFrame:
    with path.open(encoding="utf-8-sig") as handle:
        records = json.load(handle)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise FileError(f"{path}: a JSON file must hold an array of objects")
    if not records:
        raise FileError(f"{path}: the file has no records")
    columns = list(dict.fromkeys(key for record in records for key in record))
    data = {c: [None if r.get(c) is None else str(r.get(c)) for r in records] for c in columns}
    return pl.DataFrame(data, schema={c: pl.String for c in columns}).with_row_index("_line", offset=1)


def _checked(batches: Iterator[pl.DataFrame], path: Path) -> Iterator[pl.DataFrame]:
    seen = False
    try:
        for batch in batches:
            seen = seen or batch.height > 0
            yield batch.with_columns(pl.col("_line").cast(pl.Int64))
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise FileError(f"{path}: the file cannot be read ({str(exc).splitlines()[0]})") from exc
    if not seen:
        raise FileError(f"{path}: the file has a header but no rows")
