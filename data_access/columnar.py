"""Reading query results straight into polars frames.

The fact store reads millions of rows when a server starts. Going row by row through a
Python DBAPI cursor cost 68 s for 5 million contacts on SQLite; ADBC drivers (Apache
Arrow's database connectivity) build Arrow columns in C. Bulk reads use them; small reads
(the tail of changes a refresh picks up) use the DBAPI cursor of the pooled connection.

SQLite: the ADBC driver carries its own copy of the SQLite library, and two copies of
SQLite in one process release each other's file locks (sqlite.org/howtocorrupt.html,
2.2.1; seen here as "disk I/O error"). So bulk reads run in a child process that writes
Arrow IPC to temporary files (BulkReader).
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import shutil
import subprocess  # nosec B404
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access.bulk import raw_connection

FETCH_ROWS = 200_000
# A tmpfs on Linux; the bulk reads' files go into a directory of their own there, made by
# tempfile (mode 0700, an unguessable name), when it has room for them.
MEMORY_FOLDER = "/dev/shm"  # noqa: S108  # nosec B108
# A month of contacts at 15 M a county is a file of about 130 MB, and the child may be a file
# ahead: a container's tmpfs is often 64 MB, where a read would fail for want of space.
MEMORY_FOLDER_ROOM = 1 << 30
SCRATCH_PREFIX = "ohjaustaulu-"
# A reading folder untouched this long, whose process is gone, was left by a server that was
# killed mid-read (a first read touches its folder every few seconds).
ORPHAN_SECONDS = 600


def fetch_frame(
    conn: sa.Connection, select: sa.Select[Any], schema: dict[str, pl.DataType], parameters: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Run ``select`` through the connection's DBAPI cursor (no per-row SQLAlchemy objects);
    used inside a transaction, where the rows it must see may not be committed yet.
    ``parameters`` fill the select's bind parameters (large values are not inlined)."""
    cursor = raw_connection(conn).cursor()
    try:
        if parameters is None:
            cursor.execute(_sql(select, conn.dialect))
        else:
            compiled = select.compile(dialect=conn.dialect)
            values = compiled.construct_params(parameters)
            cursor.execute(str(compiled), tuple(values[n] for n in compiled.positiontup or ()) if compiled.positional else values)
        chunks = []
        while rows := cursor.fetchmany(FETCH_ROWS):
            chunks.append(pl.DataFrame(rows, schema=schema, orient="row"))
    finally:
        cursor.close()
    return pl.concat(chunks) if chunks else pl.DataFrame(schema=schema)


Query = tuple[sa.Select[Any], dict[str, pl.DataType]]


Finish = Callable[[str, pl.DataFrame], pl.DataFrame]


def read_frames(
    engine: Engine, queries: dict[str, Query], *, bulk: bool = False, finish: Finish | None = None,
) -> dict[str, pl.DataFrame]:
    """Committed rows of each (select, schema) as a frame with that schema, then ``finish``ed
    (name, frame): row by row work, done a batch at a time where the rows arrive in batches.
    ``bulk`` reads go through ADBC where it can (other databases and in-memory SQLite use the
    cursor); a run of bulk reads goes through one BulkReader."""
    finish = finish or (lambda _name, frame: frame)
    if bulk and BulkReader.applies(engine):
        with BulkReader(engine) as once:
            return once.read(queries, finish)
    with engine.connect() as conn:
        return {name: finish(name, fetch_frame(conn, select, schema)) for name, (select, schema) in queries.items()}


def _sql(select: sa.Select[Any], dialect: sa.Dialect, **options: bool) -> str:
    return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True, **options}))


class BulkReader:
    """Bulk reads through ADBC, one after another (a first read goes a quarter at a time):
    on SQLite one child process serves them all (starting one with its imports costs about
    1.2 s, which a first read paid for each of its thirteen quarters), on PostgreSQL one
    connection. Use as a context manager; not for use from two threads at once.

    SQLite has no column types, so the ADBC driver infers them from the first rows and
    fails when a column starts with nulls. A first row of typed placeholders fixes the
    types; it is marked and dropped."""

    @staticmethod
    def applies(engine: Engine) -> bool:
        url = engine.url
        return url.get_backend_name() == "postgresql" or (
            url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
        )

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._child: subprocess.Popen[str] | None = None
        self._errors: Any = None
        self._adbc: Any = None
        self._reads = 0

    def __enter__(self) -> BulkReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def read(self, queries: dict[str, Query], finish: Finish) -> dict[str, pl.DataFrame]:
        return self.read_many([queries], finish)[0]

    def read_many(self, runs: list[dict[str, Query]], finish: Finish) -> list[dict[str, pl.DataFrame]]:
        """Several reads in order (a quarter's months): on SQLite the child is given them all
        at once and reads the next while this process takes in the last one."""
        if self.engine.url.get_backend_name() == "postgresql":
            return [self._read_postgresql(queries, finish) for queries in runs]
        return self._read_sqlite(runs, finish)

    def _read_postgresql(self, queries: dict[str, Query], finish: Finish) -> dict[str, pl.DataFrame]:
        if self._adbc is None:
            import adbc_driver_postgresql.dbapi as adbc

            # Autocommit: each query its own snapshot, no transaction held open between reads.
            self._adbc = adbc.connect(self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True)
        frames = {}
        with self._adbc.cursor() as cursor:
            for name, (select, schema) in queries.items():
                cursor.execute(_sql(select, self.engine.dialect))
                # Batch by batch, each finished (codes to categories) before the next: the
                # whole result as one Arrow table, then wide in polars, took a 15 M first read
                # to a peak of 2.5 GB.
                batches = cursor.fetch_record_batch()
                parts = [finish(name, _typed(_polars(batch), schema)) for batch in batches]
                # Copied into polars' own memory, so the driver's buffers can go.
                frames[name] = pl.concat(parts, rechunk=True) if parts else finish(name, _typed(_polars(batches.schema.empty_table()), schema))
                del parts
        _give_back()
        return frames

    def _read_sqlite(self, runs: list[dict[str, Query]], finish: Finish) -> list[dict[str, pl.DataFrame]]:
        path = str(self.engine.url.database)
        if self._child is None:
            folder = scratch_folder()
            remove_orphaned_scratch(folder)
            # Named with this process's id: a folder whose process is gone can be told apart.
            self._folder = tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=folder)
            self._errors = tempfile.TemporaryFile(mode="w+")  # closed in close()
            # Our own interpreter and module; each request a line of JSON on stdin.
            self._child = subprocess.Popen(  # nosec B603
                [sys.executable, "-m", "data_access.columnar", path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, text=True,
            )
        assert self._folder is not None and self._child.stdin is not None and self._child.stdout is not None
        jobs = []
        for queries in runs:
            self._reads += 1
            for name, (select, schema) in queries.items():
                placeholders = ", ".join(f'{_placeholder(dtype)} AS "{column}"' for column, dtype in schema.items())
                columns = ", ".join(f'q."{column}"' for column in schema)
                # The query is compiled from our own models: no value from outside. The child's
                # SQLite is ADBC's own (3.53), which has unixepoch().
                sql = _sql(select, self.engine.dialect, unixepoch=True)
                typed_sql = f"SELECT 0 AS _placeholder, {placeholders} UNION ALL SELECT 1, {columns} FROM ({sql}) AS q"  # nosec B608
                jobs.append({"sql": typed_sql, "out": str(Path(self._folder.name) / f"{self._reads}-{name}.arrow")})
        try:
            self._child.stdin.write(json.dumps(jobs) + "\n")
            self._child.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            pending = iter(jobs)
            return [self._take(queries, pending, finish, path) for queries in runs]
        except BaseException:
            # The child may still be answering this request's other jobs: the next read must
            # not take their answers for its own.
            self.close()
            raise

    def _take(self, queries: dict[str, Query], jobs: Iterator[dict[str, str]], finish: Finish, path: str) -> dict[str, pl.DataFrame]:
        """One read's frames, each as the child says its file is written."""
        assert self._child is not None and self._child.stdout is not None
        frames = {}
        for name, (_select, schema) in queries.items():
            job = next(jobs)
            answer = self._child.stdout.readline()
            if answer.strip() != "ok":
                problem = answer.strip() or self._last_error() or "the reading process ended"
                raise RuntimeError(f"reading {path} failed: {problem}")
            out = Path(job["out"])
            # Read into this process's memory (not a map of a file about to be deleted).
            arrow = pl.read_ipc(io.BytesIO(out.read_bytes()))
            out.unlink()
            frames[name] = finish(name, _typed(arrow.filter(pl.col("_placeholder") == 1).drop("_placeholder"), schema))
        return frames

    def _last_error(self) -> str:
        if self._errors is None:
            return ""
        if self._child is not None:
            self._child.wait(timeout=10)
        self._errors.seek(0)
        text: str = self._errors.read()
        return (text.strip().splitlines() or [""])[-1]

    def close(self) -> None:
        if self._child is not None:
            child, self._child = self._child, None
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
        if self._errors is not None:
            self._errors.close()
            self._errors = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None
        if self._adbc is not None:
            self._adbc.close()
            self._adbc = None


def scratch_folder() -> str | None:
    """Where the bulk reads' files go: the tmpfs when there is one with room (writing them to
    a disk made the kernel write back what was read once and deleted), else the system's
    temporary folder (None)."""
    try:
        found = os.statvfs(MEMORY_FOLDER)
    except OSError:
        return None
    return MEMORY_FOLDER if found.f_bavail * found.f_frsize >= MEMORY_FOLDER_ROOM else None


def remove_orphaned_scratch(folder: str | None) -> list[Path]:
    """Remove the reading folders that a killed server left in ``folder`` (default: the
    system's temporary folder): named with a process id that is no longer running, and
    untouched for ``ORPHAN_SECONDS``. Up to a month of contacts (130 MB at 15 M) stayed on the
    tmpfs until a reboot. The age is also the guard when another container shares the folder
    and its process ids are not this one's. Returns what was removed."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        number = path.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not number.isdigit() or not path.is_dir() or _running(int(number)):
            continue
        try:
            if time.time() - path.stat().st_mtime < ORPHAN_SECONDS:
                continue
        except OSError:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts: signalling it is refused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _sqlite_child(path: str) -> None:
    """Child process: for each request (a line of JSON: the queries and their files), run
    each query through ADBC SQLite, streaming the batches to Arrow IPC, and answer ``ok`` on
    stdout as each file is written, or the error and end."""
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    # Autocommit: no read transaction held between requests (it would hold back the WAL's checkpoints).
    with adbc.connect(path, autocommit=True) as conn:
        for line in sys.stdin:
            try:
                for job in json.loads(line):
                    with conn.cursor() as cursor:
                        cursor.execute(job["sql"])
                        reader = cursor.fetch_record_batch()
                        # Not compressed: compressing took about a third of the child's time
                        # for each month of contacts at 15 M (0.5 of 1.3 s), and it is the
                        # child that a first read waits for.
                        with pa.OSFile(job["out"], "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
                            for batch in reader:
                                writer.write_batch(batch)
                    print("ok", flush=True)
            except Exception as error:  # said to the parent, which raises it
                print(f"{type(error).__name__}: {error}".replace("\n", " "), flush=True)
                return


def _placeholder(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "''"
    if dtype.is_float():
        return "0.0"
    return "0"


def _give_back() -> None:
    """Return to the system what the PostgreSQL driver freed: glibc keeps freed memory of a
    thread's arena for reuse, and after a quarter read (15 M contacts) it held about 220 MB
    the frames no longer used. Nothing happens where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _polars(arrow: Any) -> pl.DataFrame:
    frame = pl.from_arrow(arrow)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _typed(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


if __name__ == "__main__":
    _sqlite_child(sys.argv[1])
