"""The dashboard pages through Streamlit's AppTest, on seeded SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from data_access.config import get_settings
from data_access.engine import create_db_engine, upgrade_database
from sample_data.seed import seed_database

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


@pytest.fixture
def app_database(database_url, monkeypatch):
    engine = create_db_engine(database_url)
    upgrade_database(engine)
    seed_database(engine, contacts=20_000, days=60, seed=11)
    engine.dispose()
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def _run(at: AppTest) -> AppTest:
    at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric_values(at: AppTest, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


def test_overview_shows_cards_against_targets(app_database):
    at = _run(AppTest.from_file(APP, default_timeout=120))
    assert at.title[0].value == "Yleiskuva"
    labels = [m.label for m in at.metric]
    for label in ("Yhteydenotot", "Ratkaistu ensikontaktissa", "Sähköisten kanavien osuus", "Ohjaukset",
                  "Takaisinsoitto samana päivänä", "Jonotusaika, mediaani"):
        assert labels.count(label) == 3, label  # today, yesterday, last 7 days
    week = _metric_values(at, "Yhteydenotot")[2]
    assert week.replace("\u00a0", "").isdigit() and int(week.replace("\u00a0", "")) > 0
    badges = [m.value for m in at.markdown if "tavoite" in str(m.value)]
    assert badges, "target badges are shown"


def test_a_filter_changes_the_numbers(app_database):
    at = _run(AppTest.from_file(APP, default_timeout=120))
    everyone = _metric_values(at, "Yhteydenotot")[2]
    at.sidebar.multiselect(key="municipality").set_value(["272"])
    _run(at)
    kokkola = _metric_values(at, "Yhteydenotot")[2]
    assert kokkola != everyone
    assert int(kokkola.replace("\u00a0", "")) < int(everyone.replace("\u00a0", ""))


def test_swedish_interface(app_database):
    at = _run(AppTest.from_file(APP, default_timeout=120))
    at.sidebar.selectbox(key="lang").set_value("sv")
    _run(at)
    assert at.title[0].value == "Översikt"
    assert "Kontakter" in [m.label for m in at.metric]


def test_unreachable_database_gives_a_plain_message(monkeypatch):
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        at = _run(AppTest.from_file(APP, default_timeout=60))
        assert "Tietokantaan ei saada yhteyttä" in at.error[0].value
    finally:
        get_settings.cache_clear()
