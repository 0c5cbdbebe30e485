"""Reading query results straight into polars frames.

The fact store reads millions of rows when a server starts. Going row by row through a
Python DBAPI cursor cost 68 s for 5 million contacts on SQLite; ADBC drivers (Apache
Arrow's database connectivity) build Arrow columns in C. Bulk reads use them; small reads
(the tail of changes a refresh picks up) use the DBAPI cursor of the pooled connection.

SQLite: the ADBC driver carries its own copy of the SQLite library, and two copies of
SQLite in one process release each other's file locks (sqlite.org/howtocorrupt.html,
2.2.1; seen here as "disk I/O error"). So the bulk read runs in a child process that
writes Arrow IPC to a temporary file.
"""

from __future__ import annotations

import json
import subprocess  # nosec B404
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access.bulk import raw_connection

FETCH_ROWS = 200_000


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


def read_frames(engine: Engine, queries: dict[str, Query], *, bulk: bool = False) -> dict[str, pl.DataFrame]:
    """Committed rows of each (select, schema) as a frame with that schema; ``bulk`` reads
    go through ADBC where it can (other databases and in-memory SQLite use the cursor)."""
    url = engine.url
    if bulk and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return _read_sqlite(url.database, {name: (_sql(select, engine.dialect), schema) for name, (select, schema) in queries.items()})
    if bulk and url.get_backend_name() == "postgresql":
        import adbc_driver_postgresql.dbapi as adbc

        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        frames = {}
        with adbc.connect(uri) as conn, conn.cursor() as cursor:
            for name, (select, schema) in queries.items():
                cursor.execute(_sql(select, engine.dialect))
                arrow = pl.from_arrow(cursor.fetch_arrow_table())
                assert isinstance(arrow, pl.DataFrame)
                frames[name] = _typed(arrow, schema)
        return frames
    with engine.connect() as conn:
        return {name: fetch_frame(conn, select, schema) for name, (select, schema) in queries.items()}


def _sql(select: sa.Select[Any], dialect: sa.Dialect) -> str:
    return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _read_sqlite(path: str, queries: dict[str, tuple[str, dict[str, pl.DataType]]]) -> dict[str, pl.DataFrame]:
    """SQLite has no column types, so the ADBC driver infers them from the first rows and
    fails when a column starts with nulls. A first row of typed placeholders fixes the
    types; it is marked and dropped. One child process reads every query."""
    with tempfile.TemporaryDirectory(prefix="ohjaustaulu-") as folder:
        jobs = []
        for name, (sql, schema) in queries.items():
            placeholders = ", ".join(f'{_placeholder(dtype)} AS "{column}"' for column, dtype in schema.items())
            columns = ", ".join(f'q."{column}"' for column in schema)
            # The query is compiled from our own models: no value from outside.
            typed_sql = f"SELECT 0 AS _placeholder, {placeholders} UNION ALL SELECT 1, {columns} FROM ({sql}) AS q"  # nosec B608
            jobs.append({"sql": typed_sql, "out": str(Path(folder) / f"{name}.arrow")})
        # Our own interpreter and module, the input as JSON on stdin.
        child = subprocess.run(  # nosec B603
            [sys.executable, "-m", "data_access.columnar"],
            input=json.dumps({"path": path, "jobs": jobs}), text=True, capture_output=True, check=False,
        )
        if child.returncode != 0:
            last = (child.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"reading {path} failed: {last}")
        return {
            name: _typed(pl.read_ipc(job["out"]).filter(pl.col("_placeholder") == 1).drop("_placeholder"), schema)
            for (name, (_sql_text, schema)), job in zip(queries.items(), jobs, strict=True)
        }


def _sqlite_child() -> None:
    """Child process: run each query through ADBC SQLite, streaming the batches to IPC."""
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    request = json.loads(sys.stdin.read())
    with adbc.connect(request["path"]) as conn, conn.cursor() as cursor:
        for job in request["jobs"]:
            cursor.execute(job["sql"])
            reader = cursor.fetch_record_batch()
            with pa.OSFile(job["out"], "wb") as sink, pa.ipc.new_file(
                # Compressed, so the parent decompresses into its own memory instead of keeping
                # a memory map of a deleted file.
                sink, reader.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")
            ) as writer:
                for batch in reader:
                    writer.write_batch(batch)


def _placeholder(dtype: pl.DataType) -> str:
    if dtype == pl.String:
        return "''"
    if dtype.is_float():
        return "0.0"
    return "0"


def _typed(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


if __name__ == "__main__":
    _sqlite_child()
