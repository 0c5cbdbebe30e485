"""Sign-in, municipality scopes and the audit trail (issue 18), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from data_access.access import (
    AccessError,
    add_user,
    audit,
    audit_rows,
    find_user,
    grant,
    prune_audit,
    remove_user,
    revoke,
)
from data_access.config import get_settings
from data_access.engine import create_db_engine
from data_access.metrics import Filters, Scope, compute
from data_access.periods import local_now
from tests.conftest import seeded_database_fixture
from tests.factories import make_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGES = ["overview.py", "channels.py", "resolution.py", "referrals.py", "comparison.py", "quality.py"]


def test_deny_by_default_and_what_a_grant_opens(engine):
    assert find_user(engine, "nobody@example.fi") is None, "unknown: nothing"
    add_user(engine, "Anna.Analyytikko@Example.fi", role="analyst")
    anna = find_user(engine, "anna.analyytikko@example.fi")
    assert anna is not None and anna.scope == Scope(municipalities=frozenset()), "known but granted nothing: nothing"
    grant(engine, "anna.analyytikko@example.fi", municipality="853")
    grant(engine, "anna.analyytikko@example.fi", municipality="853")  # twice: one grant
    assert find_user(engine, "ANNA.ANALYYTIKKO@example.fi").scope == Scope(municipalities=frozenset({"853"}))
    with create_db_engine(str(engine.url.render_as_string(hide_password=False))).connect() as conn:
        county = conn.execute(sa.text("select region_code from municipality where code = '018'")).scalar()
        in_county = set(conn.execute(sa.text("select code from municipality where region_code = :r"), {"r": county}).scalars())
    grant(engine, "anna.analyytikko@example.fi", region=county)
    assert find_user(engine, "anna.analyytikko@example.fi").scope.municipalities == in_county | {"853"}
    assert revoke(engine, "anna.analyytikko@example.fi", region=county) == 1
    assert find_user(engine, "anna.analyytikko@example.fi").scope.municipalities == {"853"}
    remove_user(engine, "anna.analyytikko@example.fi")
    assert find_user(engine, "anna.analyytikko@example.fi") is None, "deactivated: nothing"
    with pytest.raises(AccessError, match="unknown municipality"):
        grant(engine, "anna.analyytikko@example.fi", municipality="999")
    with pytest.raises(AccessError, match="unknown role"):
        add_user(engine, "x@example.fi", role="superuser")
    with pytest.raises(AccessError, match="no user"):
        grant(engine, "ghost@example.fi", municipality="853")


def test_audit_rows_are_kept_for_the_configured_time(engine):
    audit(engine, "page", email="a@example.fi", page="overview", detail={"from": "2026-11-01"})
    rows = audit_rows(engine)
    assert [(r["action"], r["email"], r["page"], json.loads(r["detail"])) for r in rows] == [("page", "a@example.fi", "overview", {"from": "2026-11-01"})]
    assert prune_audit(engine, keep_days=30) == 0
    assert prune_audit(engine, keep_days=30, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31)) == 1
    (pruned,) = audit_rows(engine)  # the deletion is itself on the trail
    assert (pruned["action"], pruned["email"], json.loads(pruned["detail"])["deleted"]) == ("pruned", None, 1)


def _old_audit_row(engine, days_ago: int) -> None:
    from data_access.models import AuditEvent, table_of

    with engine.begin() as conn:
        conn.execute(sa.insert(table_of(AuditEvent)).values(
            at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago), email="old@example.fi", action="page", page="overview", detail="{}",
        ))


def test_the_server_deletes_old_audit_rows_by_itself_once_a_day(engine, settings):
    """No cron job needed: the server's keeper prunes at its first turn and then daily."""
    from dashboard.live import Keeper

    _old_audit_row(engine, 500)
    _old_audit_row(engine, 10)
    keeper = Keeper(make_store(engine, settings), interval=1, remember_seconds=1, audit_keep_days=400)
    assert keeper.prune_audit_daily() == 1
    assert sorted(r["action"] for r in audit_rows(engine)) == ["page", "pruned"]
    _old_audit_row(engine, 450)
    assert keeper.prune_audit_daily() == 0, "once a day, not at every turn"
    assert Keeper(make_store(engine, settings), interval=1, remember_seconds=1).prune_audit_daily() == 0, "not asked to"


def test_the_metrics_command_as_a_user_gives_only_their_places(engine, settings, tmp_path, monkeypatch):
    from dashboard.cli import main
    from sample_data.seed import seed_database

    seed_database(engine, contacts=2000, days=20, seed=3)
    store = make_store(engine, settings)
    today = local_now().date()
    period = Filters(start=today - dt.timedelta(days=19), end=today)
    everywhere = compute(store, metrics=["contacts"], filters=period, by=["municipality"])
    place = everywhere.sort("value", descending=True, nulls_last=True)["municipality"][0]
    add_user(engine, "m@example.fi", role="viewer")
    grant(engine, "m@example.fi", municipality=place)
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", settings.database_url)
    out = tmp_path / "out.json"
    argv = ["metrics", "--from", period.start.isoformat(), "--to", period.end.isoformat(), "--by", "municipality",
            "--metric", "contacts", "--format", "json", "--as-user", "m@example.fi"]
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(argv) == 0
    out.write_text(buffer.getvalue())
    rows = json.loads(out.read_text())["rows"]
    assert {r["municipality"] for r in rows} == {place}
    assert rows[0]["value"] == everywhere.filter(pl.col("municipality") == place)["value"][0]
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main([*argv[:-1], "ghost@example.fi"]) == 2
    assert "no active user" in err.getvalue()


# --- the pages, signed in ---------------------------------------------------------------


signed_database = seeded_database_fixture(contacts=8000, days=40, seed=21)


@pytest.fixture
def signed_app(signed_database, monkeypatch):
    from dashboard.state import forget_stores

    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", signed_database)
    monkeypatch.setenv("OHJAUSTAULU_SIGN_IN", "true")
    get_settings.cache_clear()
    forget_stores()
    yield create_db_engine(signed_database)
    forget_stores()
    get_settings.cache_clear()


def _app(email: str | None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.user = {"is_logged_in": True, "email": email, "name": "Testi"} if email else {"is_logged_in": False}
    at.run(timeout=120)
    if page and page != "overview.py":
        at.switch_page(str(ROOT / "pages" / page))
        at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _busiest(engine) -> tuple[str, str, dict[str, str]]:
    """(the municipality with most contacts, its name, every other municipality with contacts by name)."""
    with engine.connect() as conn:
        counts = conn.execute(sa.text(
            "select m.code, m.name_fi, count(*) from contact c join municipality m on m.code = c.municipality_code group by m.code, m.name_fi order by 3 desc"
        )).all()
    code, name, _ = counts[0]
    return code, name, {n: c for c, n, _ in counts[1:]}


def _everything_shown(at: AppTest) -> bytes:
    """Every element of the page as its serialised message: text, tables and chart data alike."""
    shown = b""
    for root in (at.main, at.sidebar):
        stack = [root]
        while stack:
            node = stack.pop()
            proto = getattr(node, "proto", None)
            if proto is not None and hasattr(proto, "SerializeToString"):
                shown += proto.SerializeToString()
            stack.extend(getattr(node, "children", {}).values())
    return shown


@pytest.mark.parametrize("page", PAGES)
def test_a_user_scoped_to_one_municipality_sees_nothing_of_any_other(signed_app, page):
    code, name, others = _busiest(signed_app)
    add_user(signed_app, "kunta@example.fi", role="analyst")
    grant(signed_app, "kunta@example.fi", municipality=code)
    at = _app("kunta@example.fi", page)
    assert at.sidebar.multiselect(key="municipality").options == [name]
    shown = _everything_shown(at)
    assert name.encode() in shown or page == "quality.py" or at.info, "the granted municipality's figures are shown"
    # Names that are not part of another word of the page (a short name can be).
    leaked = [other for other in others if len(other) >= 6 and other not in name and other.encode() in shown]
    assert not leaked, leaked


def test_a_scoped_users_figures_are_their_municipalitys_own(signed_app):
    code, _, _ = _busiest(signed_app)
    add_user(signed_app, "kunta@example.fi", role="viewer")
    grant(signed_app, "kunta@example.fi", municipality=code)
    at = _app("kunta@example.fi")
    store = make_store(signed_app, get_settings())
    yesterday = local_now().date() - dt.timedelta(days=1)
    one = Filters(start=yesterday, end=yesterday)
    theirs = compute(store, metrics=["contacts"], filters=one, scope=Scope(municipalities=frozenset({code})))["value"][0]
    everyone = compute(store, metrics=["contacts"], filters=one)["value"][0]
    cards = [m.value for m in at.metric if m.label == "Yhteydenotot"]
    assert theirs != everyone
    from dashboard.formatting import format_number

    assert format_number(theirs, language="fi") in cards, (cards, theirs)
    assert format_number(everyone, language="fi") not in cards
    assert not at.get("download_button"), "a viewer downloads nothing"
    titles = [p.title for p in at.get("navigation")[0].proto.app_pages] if at.get("navigation") else []
    assert "Lokitiedot" not in titles


def test_an_unknown_user_is_refused_and_the_refusal_is_audited(signed_app):
    at = _app("stranger@example.fi")
    assert any("ei ole oikeutta" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.metric and not at.dataframe
    assert ("refused", "stranger@example.fi") in [(r["action"], r["email"]) for r in audit_rows(signed_app)]


def test_signed_out_shows_only_the_sign_in_button(signed_app):
    at = _app(None)
    assert [b.label for b in at.button] == ["Kirjaudu sisään"]
    assert not at.metric and not at.dataframe


def test_a_user_without_grants_is_told_so(signed_app):
    add_user(signed_app, "uusi@example.fi", role="viewer")
    at = _app("uusi@example.fi")
    assert any("ei ole vielä annettu oikeutta" in i.value for i in at.info)
    assert not at.metric and not at.dataframe


def _live_refresh_run(at: AppTest) -> AppTest:
    """What an open page's browser asks for every refresh_seconds with nothing else happening:
    a run of the live refresh fragment alone (Streamlit's auto rerun). AppTest has no call for
    it, so its run is asked with the fragment's id, as the browser asks."""
    from functools import partial
    from unittest import mock

    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    (fragment_id,) = at._fragment_storage._fragments  # the live refresh, the frame's one fragment
    with mock.patch("streamlit.testing.v1.local_script_runner.RerunData", partial(RerunData, fragment_id=fragment_id, is_auto_rerun=True)):
        at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _grants_read_ago(at: AppTest, seconds: float) -> None:
    email, read_at, user = at.session_state["_user"]
    at.session_state["_user"] = (email, read_at - seconds, user)


def test_an_idle_open_page_is_refused_once_its_grant_is_revoked_without_new_data(signed_app):
    import time

    from dashboard.signin import RECHECK_SECONDS

    code, _, _ = _busiest(signed_app)
    add_user(signed_app, "kunta@example.fi", role="viewer")
    grant(signed_app, "kunta@example.fi", municipality=code)
    at = _app("kunta@example.fi")
    assert at.metric and at.title

    def only_the_refresh_ran() -> bool:  # its time in the sidebar, and nothing of the page drawn again
        return not at.main.children and [c.value.startswith("Päivitetty") for c in at.sidebar.caption] == [True]

    _grants_read_ago(at, RECHECK_SECONDS)
    _live_refresh_run(at)  # read again, unchanged: the page stays, and the grants count as read now
    assert only_the_refresh_ran() and at.session_state["_user"][1] > time.monotonic() - 5
    revoke(signed_app, "kunta@example.fi", municipality=code)
    _live_refresh_run(at)  # read less than RECHECK_SECONDS ago: not read again
    assert only_the_refresh_ran()
    _grants_read_ago(at, RECHECK_SECONDS)
    _live_refresh_run(at)  # no new data: only the refresh's own run, and the page runs again
    assert any("ei ole vielä annettu oikeutta" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.metric and not at.dataframe and not at.get("vega_lite_chart") and not at.title
    # read at most RECHECK_SECONDS after the last read, by a refresh at most refresh_seconds later
    assert RECHECK_SECONDS + get_settings().refresh_seconds <= 75


def test_sign_in_page_views_and_downloads_are_audited_and_admins_see_them(signed_app):
    code, _, _ = _busiest(signed_app)
    add_user(signed_app, "admin@example.fi", role="admin")
    grant(signed_app, "admin@example.fi", municipality=code)
    at = _app("admin@example.fi", "channels.py")
    assert at.get("download_button"), "an administrator downloads"
    # The file of a download button is made when pressed, with its audit row (the browser
    # test presses them; AppTest does not fetch files): the same function, called as Streamlit calls it.
    from types import SimpleNamespace

    from dashboard.signin import audited_download

    ctx = SimpleNamespace(store=SimpleNamespace(engine=signed_app), user=SimpleNamespace(email="admin@example.fi"),
                          filters=Filters(start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 30), municipalities=(code,)))
    made = audited_download(ctx, "channels_table", lambda: b"a,b\n")
    assert [r for r in audit_rows(signed_app) if r["action"] == "download"] == [], "nothing before the button is pressed"
    assert made() == b"a,b\n"
    rows = [r for r in audit_rows(signed_app) if r["email"] == "admin@example.fi"]
    actions = [r["action"] for r in rows]
    assert "sign_in" in actions and "page" in actions
    downloads = [json.loads(r["detail"]) for r in rows if r["action"] == "download"]
    assert downloads == [{"table": "channels_table", "from": "2026-11-01", "to": "2026-11-30", "municipalities": [code]}]
    page_rows = [json.loads(r["detail"]) | {"page": r["page"]} for r in rows if r["action"] == "page"]
    assert any(r["page"] == "kanavat" and "from" in r for r in page_rows), page_rows
    at.switch_page(str(ROOT / "pages" / "audit.py"))
    at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Lokitiedot"
    trail = at.dataframe[0].value
    assert "admin@example.fi" in trail["Käyttäjä"].to_list() and {"sivu", "lataus", "kirjautui"} <= set(trail["Tapahtuma"].to_list())


def test_without_sign_in_a_postgresql_database_is_refused(signed_database, monkeypatch):
    if not signed_database.startswith("postgresql"):
        pytest.skip("demo mode is allowed on SQLite; the refusal is PostgreSQL's")
    from dashboard.state import forget_stores

    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", signed_database)
    monkeypatch.delenv("OHJAUSTAULU_SIGN_IN", raising=False)
    get_settings.cache_clear()
    forget_stores()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run(timeout=120)
    assert any("vain kirjautuneille" in e.value for e in at.error)
    assert not at.metric and not at.dataframe
    started = subprocess.run(
        [sys.executable, "-m", "dashboard.serve"], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "OHJAUSTAULU_DATABASE_URL": signed_database},
    )
    assert started.returncode == 2 and "shown only to signed-in users" in started.stderr and "Traceback" not in started.stderr
    get_settings.cache_clear()


def test_on_postgresql_a_reporting_role_reads_only_the_granted_rows(engine, settings):
    """Row-level security, the second line: a role that is not the tables' owner sees the
    rows of the municipalities granted to the person in ``ohjaustaulu.user``, and none without."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row-level security; the scope at the one exit is tested on both")
    from sample_data.seed import seed_database

    seed_database(engine, contacts=3000, days=20, seed=4)
    with engine.connect() as conn:
        place, county = conn.execute(sa.text(
            "select c.municipality_code, m.region_code from contact c join municipality m on m.code = c.municipality_code "
            "group by 1, 2 order by count(*) desc limit 1"
        )).one()
        expected = {
            "contact": conn.execute(sa.text("select count(*) from contact where municipality_code = :m"), {"m": place}).scalar(),
            "referral": conn.execute(sa.text(
                "select count(*) from referral r join contact c on c.source_system = r.source_system and c.contact_id = r.contact_id "
                "where c.municipality_code = :m"), {"m": place}).scalar(),
            "in_county": conn.execute(sa.text(
                "select count(*) from contact c join municipality m on m.code = c.municipality_code where m.region_code = :r"), {"r": county}).scalar(),
        }
    add_user(engine, "raportoija@example.fi", role="analyst")
    grant(engine, "raportoija@example.fi", municipality=place)
    with engine.begin() as conn:
        conn.execute(sa.text("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ohjaustaulu_reporting') "
                             "THEN CREATE ROLE ohjaustaulu_reporting NOLOGIN; END IF; END $$"))
        conn.execute(sa.text("GRANT SELECT ON contact, referral, feedback, guidance_case, measurement TO ohjaustaulu_reporting"))

    def counts(user: str | None) -> tuple[int, int, int]:
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL ROLE ohjaustaulu_reporting"))
            if user is not None:
                conn.execute(sa.text("SELECT set_config('ohjaustaulu.user', :u, true)"), {"u": user})
            seen = tuple(conn.execute(sa.text(f"select count(*) from {t}")).scalar() for t in ("contact", "referral"))
            with pytest.raises(sa.exc.ProgrammingError):  # the user tables are not the reporting role's
                conn.execute(sa.text("select count(*) from app_user"))
            return seen  # type: ignore[return-value]

    assert counts(None) == (0, 0)
    assert counts("nobody@example.fi") == (0, 0)
    assert counts("Raportoija@Example.fi") == (expected["contact"], expected["referral"])
    grant(engine, "raportoija@example.fi", region=county)
    assert counts("raportoija@example.fi")[0] == expected["in_county"]
    with engine.connect() as conn:  # the owner (the dashboard, ingest) is not restricted
        assert conn.execute(sa.text("select count(*) from contact")).scalar() == 3000
