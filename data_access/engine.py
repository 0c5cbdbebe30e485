"""Engines, migrations and the data version."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlmodel import col

from data_access.config import Settings
from data_access.models import DataVersion, table_of

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached."""


class DatabaseNeedsUpgrade(RuntimeError):
    """The schema is older than this version of the code."""


def create_db_engine(url: str, *, create_missing: bool = True) -> Engine:
    """An engine on ``url``. With ``create_missing=False`` an SQLite file that is not there
    is an error, not a new empty database: a dashboard whose file was deleted must say so,
    not show an empty database under the old one's name."""
    if url.startswith("sqlite"):
        path = sqlite_file(url)
        if path is not None and create_missing:
            path.parent.mkdir(parents=True, exist_ok=True)
        if path is not None and not create_missing:
            target = path.resolve().as_uri() + "?mode=rw"
            engine = sa.create_engine(
                url, creator=lambda: sqlite3.connect(target, uri=True, timeout=30, check_same_thread=False)
            )
        else:
            engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = sa.engine.make_url(url).database
    return Path(path) if path and path != ":memory:" else None


def unavailable(exc: sa.exc.DBAPIError, database: Engine | str) -> DatabaseUnavailable:
    """A database error as the one sentence a user reads: which database, and what is wrong
    (the password never shown)."""
    url = database.url if isinstance(database, Engine) else sa.engine.make_url(database)
    shown = url.render_as_string(hide_password=True)
    file = sqlite_file(shown)
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    where = f"the database file {file}" if file is not None else f"the database at {shown}"
    return DatabaseUnavailable(f"{where} cannot be used: {reason}")


def engine_from_settings(settings: Settings) -> Engine:
    return create_db_engine(settings.resolved_database_url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config(sa.create_engine("sqlite://"))).get_current_head()
    assert head is not None, "the migrations have a head"
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as exc:
        raise unavailable(exc, engine) from exc


def upgrade_database(engine: Engine) -> None:
    command.upgrade(_alembic_config(engine), "head")


def check_schema(engine: Engine) -> None:
    """Raise DatabaseNeedsUpgrade with a plain message when migrations are pending."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        raise DatabaseNeedsUpgrade(
            f"The database schema is at revision {current or 'empty'}, this version needs {head}. "
            "Run: ohjaustaulu db upgrade"
        )


def data_version(engine: Engine) -> int:
    """The highest change sequence: one indexed single-row read."""
    with engine.connect() as conn:
        value = conn.execute(sa.select(col(DataVersion.seq)).where(col(DataVersion.id) == 1)).scalar()
    return int(value or 0)


def database_identity(engine: Engine) -> tuple[str | None, int]:
    """The database's random identity and its data version, read together."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(col(DataVersion.database_id), col(DataVersion.seq)).where(col(DataVersion.id) == 1)).first()
    return (row[0], int(row[1] or 0)) if row else (None, 0)


def reserve_change_seq(conn: sa.Connection, count: int) -> int:
    """Reserve ``count`` sequence numbers; returns the first. Serialises writers briefly."""
    table = table_of(DataVersion)
    updated = conn.execute(
        sa.update(table).where(table.c.id == 1).values(seq=table.c.seq + count).returning(table.c.seq)
    ).scalar()
    if updated is None:
        conn.execute(sa.insert(table).values(id=1, seq=count, database_id=uuid.uuid4().hex))
        updated = count
    return int(updated) - count + 1


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970 UTC of a UTCDateTime column, computed by the database alike on
    both: the time to the millisecond (as SQLite reads it), then the fraction of a second
    dropped, so 23:59:59.6 stays in its day."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    """``strftime('%s')`` on any SQLite; with the compile option ``unixepoch`` (SQLite 3.38
    and newer, as ADBC's own SQLite) the same whole seconds at a quarter of the cost."""
    if kw.get("unixepoch"):
        return f"unixepoch({compiler.process(element.clauses, **kw)})"
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    """SQLite's reading: rounded to the millisecond, then floored to the second. The numeric
    ``EXTRACT`` cast to an integer rounded to the nearest second instead (.6 went to the next
    second, and at 23:59:59 to the next day), and cost the database more: about 0.09 µs a
    value against 0.07 µs for this (double precision, exact to well under a
    microsecond for these times)."""
    seconds = f"date_part('epoch', {compiler.process(element.clauses, **kw)})"
    return f"CAST(FLOOR(ROUND({seconds} * 1000) / 1000) AS BIGINT)"
