"""A database that goes away under the dashboard, comes back, or is replaced (issue 17, item 12).

The PostgreSQL server is shared by the whole test run, so it is not stopped here: its
database is renamed away (every connection to it closed) and back, which a client meets as
a server that refuses it. The browser check while the real server was stopped and started
is in docs/ingestion.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from data_access.bootstrap import prepare_database
from data_access.config import Settings, get_settings
from data_access.engine import DatabaseUnavailable, create_db_engine, upgrade_database
from data_access.snapshot import FactStore
from sample_data.seed import seed_database
from tests.conftest import POSTGRES_ADMIN_URL, sign_in_for

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")


def _seeded(url: str, *, contacts: int, seed: int) -> None:
    engine = create_db_engine(url)
    upgrade_database(engine)
    seed_database(engine, contacts=contacts, days=20, seed=seed)
    engine.dispose()


class Outage:
    """Take a database away and bring it back: an SQLite file moved aside, a PostgreSQL
    database renamed (connections closed first, as a restarting server closes them)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.file = Path(sa.engine.make_url(url).database or "") if url.startswith("sqlite") else None

    def begin(self) -> None:
        if self.file is not None:
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{self.file}{suffix}").exists():
                    os.replace(f"{self.file}{suffix}", f"{self.file}{suffix}.away")
            return
        self._rename(sa.engine.make_url(self.url).database, f"{sa.engine.make_url(self.url).database}_away")

    def end(self) -> None:
        if self.file is not None:
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{self.file}{suffix}.away").exists():
                    os.replace(f"{self.file}{suffix}.away", f"{self.file}{suffix}")
            return
        self._rename(f"{sa.engine.make_url(self.url).database}_away", sa.engine.make_url(self.url).database)

    def _rename(self, old: str | None, new: str | None) -> None:
        admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"), {"d": old})
            conn.execute(sa.text(f'ALTER DATABASE "{old}" RENAME TO "{new}"'))
        admin.dispose()


@pytest.fixture
def own_database(database_url) -> Iterator[str]:
    """A small seeded database of this test's own: it is taken away and brought back."""
    _seeded(database_url, contacts=3000, seed=5)
    yield database_url


def _add_contact(url: str, contact_id: str, folder: Path) -> None:
    from data_access.ingest import ingest_file

    engine = create_db_engine(url)
    with engine.connect() as conn:
        place = conn.execute(sa.text("select code from municipality order by code")).scalar()
    path = folder / f"{contact_id}.csv"
    path.write_text(
        "source_system,contact_id,occurred_at,municipality_code,channel,resolved_first_contact\n"
        f"lost,{contact_id},2026-11-30T10:00:00+02:00,{place},phone,true\n",
        encoding="utf-8",
    )
    report = ingest_file(engine, path, kind="contacts")
    assert report.inserted == 1, report
    engine.dispose()


def test_the_store_says_since_when_it_cannot_read_and_reads_again_when_it_can(own_database, tmp_path):
    settings = Settings(database_url=own_database, data_dir=tmp_path / "data")
    store = FactStore(prepare_database(settings), settings)
    store.refresh()
    before, version = store.whole("contacts").height, store.version
    answered = store.health.answered_at
    assert store.health.reachable and answered is not None

    outage = Outage(own_database)
    outage.begin()
    try:
        with pytest.raises(DatabaseUnavailable) as raised:
            store.refresh()
        assert store.health.problem == str(raised.value) and not store.health.reachable
        assert store.health.answered_at == answered, "the last time it answered is kept"
        assert (store.whole("contacts").height, store.version) == (before, version), "the figures read before stay"
        if outage.file is not None:
            assert not outage.file.exists(), "a deleted file is missing, not recreated empty"
            assert str(outage.file) in str(raised.value)
    finally:
        outage.end()

    _add_contact(own_database, "after-outage", tmp_path)
    assert store.refresh() is True, "the store reconnects by itself"
    assert store.health.reachable and store.health.answered_at > answered
    assert store.whole("contacts").height == before + 1


def test_a_replaced_sqlite_file_is_read_from_the_start(tmp_path):
    first, second = tmp_path / "first.sqlite3", tmp_path / "second.sqlite3"
    _seeded(f"sqlite:///{first}", contacts=3000, seed=5)
    _seeded(f"sqlite:///{second}", contacts=1200, seed=6)
    settings = Settings(database_url=f"sqlite:///{first}", data_dir=tmp_path / "data")
    store = FactStore(prepare_database(settings), settings)
    store.refresh()
    assert store.whole("contacts").height == 3000
    os.replace(second, first)  # a restored backup, say
    assert store.refresh() is True
    assert store.whole("contacts").height == 1200, "the new file's rows, not the deleted file's"


def _open(page: str | None = None, user: dict[str, object] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if user is not None:
        at.user = dict(user)
    at.run(timeout=120)
    if page:
        at.switch_page(str(ROOT / "pages" / page))
        at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def app_on(own_database, monkeypatch) -> Iterator[Callable[[], tuple[str, dict[str, object] | None]]]:
    from dashboard.state import forget_stores

    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", own_database)
    user = sign_in_for(own_database, monkeypatch)
    get_settings.cache_clear()
    forget_stores()
    yield lambda: (own_database, user)
    forget_stores()
    get_settings.cache_clear()


@pytest.mark.parametrize("page", ["overview.py", "quality.py"])
def test_every_page_says_the_database_is_gone_and_when_its_figures_are_from(app_on, page):
    """The page is opened while the database is away (the quality page's quarantine counts
    are read from the database, not from the store, so they cannot be shown either)."""
    url, user = app_on()
    at = _open(user=user)
    assert not at.warning, "no notice while the database answers"
    outage = Outage(url)
    outage.begin()
    try:
        if page != "overview.py":
            at.switch_page(str(ROOT / "pages" / page))
        at.run(timeout=120)
        assert not at.exception, [e.value for e in at.exception]
        notices = [w.value for w in at.warning]
        assert any("Tietokantaan ei juuri nyt saada yhteyttä" in n and "tilanteesta" in n for n in notices), notices
        statuses = [str(frame.value) for frame in at.dataframe] + [m.value for m in at.markdown]
        assert not any("Ajantasainen" in s for s in statuses), "nothing claims to be up to date"
        assert any("Ei tiedossa" in s for s in statuses)
        if page == "quality.py":
            assert any("Ei tiedossa" in i.value for i in at.info), "the quarantine box cannot be read either"
    finally:
        outage.end()
    at.run(timeout=120)
    assert not at.warning, "the notice goes when the database is back"
    assert any("Ajantasainen" in text or "Hiljainen" in text for text in [str(frame.value) for frame in at.dataframe] + [m.value for m in at.markdown])


def test_a_corrupt_embedded_database_stops_the_server_with_one_sentence(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    broken = data / "ohjaustaulu.sqlite3"
    broken.write_bytes(b"this is not a database, just text that someone saved here\n" * 100)
    environment = {**os.environ, "OHJAUSTAULU_DATA_DIR": str(data)}
    environment.pop("OHJAUSTAULU_DATABASE_URL", None)
    started = subprocess.run(
        [sys.executable, "-m", "dashboard.serve"], capture_output=True, text=True, env=environment, timeout=120, cwd=ROOT
    )
    assert started.returncode == 2
    lines = started.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in started.stderr, started.stderr
    assert str(broken) in lines[0] and "not a database" in lines[0]
    assert broken.read_bytes().startswith(b"this is not a database"), "the file is left as it was"

    metrics = subprocess.run(
        [sys.executable, "-m", "dashboard", "metrics", "--metric", "contacts", "--from", "2026-11-01", "--to", "2026-11-30"], capture_output=True, text=True,
        env=environment, timeout=120, cwd=ROOT,
    )
    assert metrics.returncode == 2 and "Traceback" not in metrics.stderr, metrics.stderr
    assert str(broken) in metrics.stderr


def test_a_missing_parent_directory_is_still_created_on_a_first_run(tmp_path):
    settings = Settings(data_dir=tmp_path / "new" / "place")
    engine = prepare_database(settings)
    assert (tmp_path / "new" / "place" / "ohjaustaulu.sqlite3").exists()
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from municipality")).scalar() > 0
    engine.dispose()
    shutil.rmtree(tmp_path / "new")


def test_a_replaced_database_with_the_same_version_is_not_answered_from_the_old_results(tmp_path):
    """A restored copy may carry the very data version the old file had: the shared results
    must not hand out the old file's figures for it."""
    import datetime as dt

    from dashboard.live import results_for
    from data_access.metrics.requests import MetricsRequest
    from data_access.metrics.types import Filters

    path = tmp_path / "db.sqlite3"
    _seeded(f"sqlite:///{path}", contacts=3000, seed=5)
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(path, copy)
    writer = sa.create_engine(f"sqlite:///{copy}")
    with writer.begin() as conn:  # rows deleted outside the application
        conn.execute(sa.text("delete from contact where id % 2 = 0"))
    writer.dispose()  # a complete file: its last connection closed, its log written back
    settings = Settings(database_url=f"sqlite:///{path}", data_dir=tmp_path / "data")
    store = FactStore(prepare_database(settings), settings)
    store.refresh()
    request = MetricsRequest.of(["contacts"], Filters(start=dt.date(2000, 1, 1), end=dt.date(2100, 1, 1)))
    before = results_for(store).get(store.view(), request)["value"][0]
    old_version = store.version
    os.replace(copy, path)
    store.refresh()
    assert store.version == old_version
    after = results_for(store).get(store.view(), request)["value"][0]
    assert (before, after) == (3000, 1500)
