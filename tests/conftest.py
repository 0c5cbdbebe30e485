"""Fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is found at OHJAUSTAULU_TEST_POSTGRES_URL (default: the local server with
trust auth). Without it the PostgreSQL half is skipped with the reason, except in CI
(CI=true), where an unreachable server fails the run instead of hiding it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from data_access.config import Settings
from data_access.engine import create_db_engine, upgrade_database
from data_access.reference import load_shipped_reference

POSTGRES_ADMIN_URL = os.environ.get(
    "OHJAUSTAULU_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_reason() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}"


_PG_REASON = _postgres_reason()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this test session."""
    if _PG_REASON:
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL: {_PG_REASON}")
        pytest.skip(_PG_REASON)
    name = f"ohjaustaulu_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_postgres(server_url: str) -> str:
    """A new, empty database for one test (cheap with a template-less CREATE)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(server_url: str, url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """An empty database, SQLite or PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server_url")
    url = _fresh_postgres(server)
    yield url
    _drop_postgres(server, url)


@pytest.fixture
def engine(database_url) -> Iterator[sa.Engine]:
    """A migrated database with the shipped reference data."""
    engine = create_db_engine(database_url)
    upgrade_database(engine)
    load_shipped_reference(engine)
    yield engine
    engine.dispose()


# A county's own publication secret (the demo key publishes nothing on PostgreSQL).
COUNTY_SECRET = "a county secret for the tests"  # noqa: S105  # nosec B105  # a test value, not a credential


@pytest.fixture
def settings(database_url, tmp_path, monkeypatch) -> Settings:
    """The settings of a county's database; its publication secret in the environment too,
    for the command line."""
    monkeypatch.setenv("OHJAUSTAULU_PUBLICATION_KEY", COUNTY_SECRET)
    return Settings(database_url=database_url, data_dir=tmp_path / "data", publication_key=COUNTY_SECRET)




def seeded_database(request, tmp_path_factory, *, contacts: int, days: int, seed: int):
    """A migrated, seeded database for a module's tests; yields (url, cleanup)."""
    from sample_data.seed import seed_database

    if request.param == "sqlite":
        url, server = f"sqlite:///{tmp_path_factory.mktemp('seeded') / 'seeded.sqlite3'}", None
    else:
        server = request.getfixturevalue("postgres_server_url")
        url = _fresh_postgres(server)
    engine = create_db_engine(url)
    upgrade_database(engine)
    seed_database(engine, contacts=contacts, days=days, seed=seed)
    engine.dispose()
    return url, (lambda: _drop_postgres(server, url) if server else None)


def seeded_database_fixture(*, contacts: int, days: int, seed: int, doc: str = "") -> object:
    """A module's seeded database on SQLite and on PostgreSQL (its URL), made once per module."""

    @pytest.fixture(scope="module", params=["sqlite", "postgresql"])
    def fixture(request, tmp_path_factory) -> Iterator[str]:
        url, cleanup = seeded_database(request, tmp_path_factory, contacts=contacts, days=days, seed=seed)
        yield url
        cleanup()

    fixture.__doc__ = doc or None
    return fixture


TESTER = "tester@example.fi"


def sign_in_for(url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object] | None:
    """On PostgreSQL the dashboard shows figures only to signed-in users: make the tester an
    administrator of every county and return the identity to give AppTest's ``user``; on
    SQLite the demo mode runs (None)."""
    if not url.startswith("postgresql"):
        monkeypatch.delenv("OHJAUSTAULU_SIGN_IN", raising=False)
        return None
    from tests.factories import admin_of_every_county

    monkeypatch.setenv("OHJAUSTAULU_SIGN_IN", "true")
    engine = create_db_engine(url)
    admin_of_every_county(engine, TESTER, name="Testaaja")
    engine.dispose()
    return {"is_logged_in": True, "email": TESTER, "name": "Testaaja"}


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium, one per test module (tests/browsing.py)."""
    import sys
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from tests.browsing import chromium

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from screenshot import CHROMIUM_ARGS

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def open_tables(at) -> None:
    """Open every chart's table of an AppTest run and run again if one was closed: a table is
    drawn only while its expander is open (dashboard/elements.table_expander), as a user
    opens it."""
    keys = [e.proto.id.split("-", 2)[2] for e in at.expander if e.proto.id.startswith("$$ID-") and "-open_table_" in e.proto.id]
    closed = [key for key in keys if not at.session_state.get(key)]
    for key in closed:
        at.session_state[key] = True
    if closed:
        at.run(timeout=120)
