"""Fast bulk writes of polars frames into a table: COPY on PostgreSQL, executemany on SQLite.

Bypasses ORM objects on purpose (a million rows through the ORM take minutes). Datetime
columns must be timezone-aware UTC; they are written in each dialect's storage form.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl
import sqlalchemy as sa

_SQLITE_TS = "%Y-%m-%d %H:%M:%S.%6f"


def write_frame(conn: sa.Connection, table: sa.Table, frame: pl.DataFrame, *, chunk_rows: int = 100_000) -> int:
    """Insert every row of ``frame`` (columns named as the table's) and return the count."""
    if frame.is_empty():
        return 0
    unknown = set(frame.columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"columns not in {table.name}: {sorted(unknown)}")
    for start in range(0, frame.height, chunk_rows):
        chunk = frame.slice(start, chunk_rows)
        if conn.dialect.name == "postgresql":
            _copy_postgresql(conn, table, chunk)
        else:
            _executemany(conn, table, chunk)
    return frame.height


def _copy_postgresql(conn: sa.Connection, table: sa.Table, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.with_columns(
        pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%S.%6f+00:00"),
    ).write_csv(buffer, include_header=False, null_value="")
    columns = ", ".join(f'"{name}"' for name in frame.columns)
    dbapi = raw_connection(conn)
    # Empty fields load as NULL; polars quotes empty strings, which stay empty strings.
    with dbapi.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN WITH (FORMAT csv)') as copy:
        copy.write(buffer.getvalue())


def _executemany(conn: sa.Connection, table: sa.Table, frame: pl.DataFrame) -> None:
    frame = frame.with_columns(
        pl.col(pl.Datetime).dt.convert_time_zone("UTC").dt.strftime(_SQLITE_TS),
        pl.col(pl.Boolean).cast(pl.Int8),
    )
    placeholders = ", ".join("?" for _ in frame.columns)
    columns = ", ".join(f'"{name}"' for name in frame.columns)
    # Our own table and column names; the values are bound.
    sql = f'INSERT INTO "{table.name}" ({columns}) VALUES ({placeholders})'  # nosec B608
    raw_connection(conn).cursor().executemany(sql, frame.iter_rows())


def raw_connection(conn: sa.Connection) -> Any:
    """The DBAPI connection under a SQLAlchemy one (psycopg's or sqlite3's: their own types,
    which DBAPI's protocol does not describe, so Any)."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise RuntimeError("the connection is closed")
    return raw
