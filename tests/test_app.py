"""The dashboard pages through Streamlit's AppTest, on seeded SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from data_access.config import get_settings
from data_access.engine import create_db_engine
from data_access.metrics.requests import MetricsRequest
from tests.conftest import open_tables, seeded_database_fixture, sign_in_for

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGES = {
    "overview.py": "Yleiskuva",
    "channels.py": "Yhteydenottokanavat",
    "resolution.py": "Ensikontaktin ratkaisu",
    "referrals.py": "Ohjaukset",
    "comparison.py": "Kuntavertailu",
    "quality.py": "Tietojen laatu",
    "experience.py": "Asiakaskokemus",
    "reasons.py": "Yhteydenoton syyt",
    "pathway.py": "Ohjauspolku",
    "multi_service.py": "Monipalveluasiakkaat",
}


app_database = seeded_database_fixture(contacts=30_000, days=90, seed=11, doc="One seeded database per backend for all page tests of this module.")


@pytest.fixture
def app_env(app_database, monkeypatch):
    global SIGNED_IN
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", app_database)
    SIGNED_IN = sign_in_for(app_database, monkeypatch)
    get_settings.cache_clear()
    yield app_database
    SIGNED_IN = None
    get_settings.cache_clear()


SIGNED_IN: dict[str, object] | None = None  # the identity AppTest gives the app (PostgreSQL)


def new_app(timeout: float = 120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    if SIGNED_IN is not None:
        at.user = dict(SIGNED_IN)
    return at


def _run(at: AppTest) -> AppTest:
    """A run with every chart's table open, as the tests read them."""
    at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    open_tables(at)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _open(page: str) -> AppTest:
    at = _run(new_app())
    if page != "overview.py":
        at.switch_page(str(ROOT / "pages" / page))
        _run(at)
    return at


def _tables(at: AppTest) -> list[str]:
    return [str(frame.value) for frame in at.dataframe]


def _metric_values(at: AppTest, label: str) -> list[str]:
    return [m.value for m in at.metric if m.label == label]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_its_charts_and_tables(app_env, page):
    at = _open(page)
    assert at.title[0].value == PAGES[page]
    assert not at.error, [e.value for e in at.error]
    assert at.get("vega_lite_chart") or page == "quality.py", "charts are drawn"
    assert at.dataframe, "every chart has its table within reach"
    assert at.get("download_button"), "and a CSV download"


@pytest.fixture
def asked(monkeypatch) -> list:
    """Every request the page runs ask of the shared results, in order."""
    from dashboard import live

    requests: list = []
    real = live.Results.get

    def recording(self, view, request, **kwargs):
        requests.append(request)
        return real(self, view, request, **kwargs)

    monkeypatch.setattr(live.Results, "get", recording)
    return requests


@pytest.mark.parametrize("page", list(PAGES))
def test_a_page_reads_the_same_rows_by_the_same_grouping_once(app_env, page, asked):
    """Each registry request aggregates its rows once, whatever metrics it carries: a page that
    asks twice for the same filters and grouping (metrics in another order, or one metric per
    chart) pays the aggregation's fixed cost twice."""
    at = _run(new_app())
    if page != "overview.py":
        asked.clear()  # the page's own run only: another page may group the same rows for its own metrics
        at.switch_page(str(ROOT / "pages" / page))
        _run(at)
    registry = {r for r in asked if isinstance(r, MetricsRequest)}
    assert registry, "the page asked the registry"
    rows_and_grouping = [r.same_rows() for r in registry]
    repeated = {key for key in rows_and_grouping if rows_and_grouping.count(key) > 1}
    assert not repeated, repeated
    assert at.title[0].value == PAGES[page]


def test_quality_page_translates_quarantine_reasons(app_env, tmp_path):
    from data_access.engine import create_db_engine
    from data_access.ingest import ingest_file, load_profile

    engine = create_db_engine(app_env)
    ingest_file(engine, ROOT / "sample_data" / "legacy_export_fi.csv", profile=load_profile(ROOT / "sample_data" / "profiles" / "legacy_fi.toml"))
    engine.dispose()
    at = _open("quality.py")
    text = " ".join(str(frame.value) for frame in at.dataframe)
    assert "channel: tuntematon arvo" in text
    # the freshness of each source is a text table, its values escaped for Markdown
    rows = [line.replace("\\", "") for m in at.markdown for line in m.value.splitlines() if line.startswith("| ")]
    legacy = [row for row in rows if "effica-legacy" in row]
    assert len(legacy) == 1 and "⚠" in legacy[0]  # the legacy source appears, flagged quiet (its data is from 2025)
    quarantine = next(frame.value for frame in at.dataframe if "Syy" in frame.value.columns)
    assert list(quarantine.columns) == ["Tietolaji", "Rivejä", "Syy"]  # the count before the long reason
    # Two reasons with one row each: small counts, hidden like every other figure.
    assert quarantine["Rivejä"].tolist() == ["<5", "<5"]


@pytest.mark.parametrize("page", list(PAGES))
def test_a_filter_changes_the_numbers(app_env, page):
    at = _open(page)
    before = _tables(at) + [m.value for m in at.metric]
    at.sidebar.selectbox(key="region").set_value("18")
    _run(at)
    after = _tables(at) + [m.value for m in at.metric]
    assert after != before


def test_overview_cards_against_targets(app_env):
    at = _open("overview.py")
    labels = [m.label for m in at.metric]
    for label in ("Yhteydenotot", "Ratkaistu ensikontaktissa", "Sähköisten kanavien osuus", "Ohjaukset",
                  "Takaisinsoitto samana päivänä", "Jonotusaika, mediaani"):
        assert labels.count(label) == 3, label  # today, yesterday, last 7 days
    week = _metric_values(at, "Yhteydenotot")[2].replace("\u00a0", "")
    assert week.isdigit() and int(week) > 0
    badges = [m.value for m in at.markdown if m.value.startswith((":red[", ":green["))]
    assert any("50,0\u00a0%" in b and ("Alle tavoitteen" in b or "saavutettu" in b) for b in badges), "target status is shown"


def test_a_contact_that_arrives_now_counts_in_today_so_far(app_env):
    """Today so far runs through the current minute: a contact that arrives while the page is
    open is on it at the next rerun, not only after the minute has turned."""
    import datetime as dt

    from data_access.engine import create_db_engine
    from tests.factories import add_contacts

    engine = create_db_engine(app_env)
    # Early in the day today's count can be below the threshold and shown as "<5": five more
    # first, so it is a number whatever the time of day.
    add_contacts(engine, [{"occurred_at": dt.datetime.now(dt.UTC), "municipality_code": "272", "channel": "chat"}] * 5)
    at = _open("overview.py")
    before = int(_metric_values(at, "Yhteydenotot")[0].replace("\u00a0", ""))
    add_contacts(engine, [{"occurred_at": dt.datetime.now(dt.UTC), "municipality_code": "272", "channel": "chat"}])
    engine.dispose()
    _run(at)
    assert int(_metric_values(at, "Yhteydenotot")[0].replace("\u00a0", "")) == before + 1


def test_municipality_filter_narrows_the_overview(app_env):
    at = _open("overview.py")
    everyone = int(_metric_values(at, "Yhteydenotot")[2].replace("\u00a0", ""))
    at.sidebar.multiselect(key="municipality").set_value(["272"])
    _run(at)
    kokkola = int(_metric_values(at, "Yhteydenotot")[2].replace("\u00a0", ""))
    assert 0 < kokkola < everyone


def test_comparison_shows_suppressed_cells_as_less_than_five(app_env):
    at = _open("comparison.py")
    # A week, not the default 30 days: whether a small municipality's 30 days fall under 5
    # depended on the hour (the sample's times are drawn back from now); a week always has some.
    at.sidebar.selectbox(key="period").set_value("last_7_days")
    _run(at)
    table = at.dataframe[0].value
    assert "<5" in table["Yhteydenotot"].tolist()
    # a share built on a suppressed count does not read as "under 5 %"
    shares = table["Ratkaistu ensikontaktissa"].tolist()
    assert "(n<5)" in shares and "<5" not in shares
    assert "—" in table.to_string()  # Itä-Uusimaa municipalities without a verified population
    captions = [caption.value for caption in at.caption]
    assert any("väkiluku puuttuu" in caption and "Askola" in caption for caption in captions), "the table says why"
    changes = [column for column in table.columns if "muutos" in column]
    assert len(changes) >= 2 and len(set(changes)) == len(changes)
    assert all(column.endswith(", muutos") for column in changes)  # the metric first: headers cut short still differ


def test_empty_filter_gives_a_plain_message(app_env):
    at = _open("resolution.py")
    at.sidebar.multiselect(key="channel").set_value(["mobile"])
    at.sidebar.multiselect(key="age_band").set_value(["0-17"])
    at.sidebar.multiselect(key="municipality").set_value(["421"])
    at.sidebar.selectbox(key="period").set_value("yesterday")
    _run(at)
    assert any("Valituilla rajauksilla ei ole tietoja" in i.value for i in at.info)


def test_swedish_interface(app_env):
    at = _open("overview.py")
    at.sidebar.selectbox(key="lang").set_value("sv")
    _run(at)
    assert at.title[0].value == "Översikt"
    assert "Kontakter" in [m.label for m in at.metric]


def test_unreachable_database_gives_a_plain_message(monkeypatch):
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        at = _run(new_app(60))
        assert "Tietokantaan ei saada yhteyttä" in at.error[0].value
    finally:
        get_settings.cache_clear()
    assert os.environ["OHJAUSTAULU_DATABASE_URL"].startswith("postgresql")


def _with_a_stored_channel(channel: str, monkeypatch, tmp_path) -> sa.Engine:
    """The app's database: two contacts, one with ``channel`` written around ingestion."""
    from data_access.engine import upgrade_database
    from data_access.reference import load_shipped_reference
    from tests.factories import add_contacts

    url = f"sqlite:///{tmp_path / 'odd.sqlite3'}"
    engine = create_db_engine(url)
    upgrade_database(engine)
    load_shipped_reference(engine)
    add_contacts(engine, [{"occurred_at": "2026-11-02T10:00:00"}, {"occurred_at": "2026-11-03T10:00:00"}])
    with engine.begin() as conn:
        conn.execute(sa.text("update contact set channel = :channel where id = (select min(id) from contact)"), {"channel": channel})
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", url)
    monkeypatch.setenv("OHJAUSTAULU_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    return engine


def test_a_stored_code_outside_its_code_list_is_said_in_the_language_not_raised(monkeypatch, tmp_path):
    """A value written around ingestion (a channel no code list has, markup in it) stops the
    page with a sentence naming it, escaped, in the interface's language: no traceback."""

    from dashboard.state import forget_stores

    _with_a_stored_channel("**faksi**", monkeypatch, tmp_path).dispose()
    try:
        for language, words in (("fi", "jota ei ole koodistossa"), ("sv", "som inte finns i kodlistan"), ("en", "outside its code list")):
            at = new_app(60)
            at.query_params["lang"] = language
            _run(at)
            assert not at.exception
            assert words in at.error[0].value and "contact.channel" in at.error[0].value
            assert "\\*\\*faksi\\*\\*" in at.error[0].value  # escaped, not bold
    finally:
        get_settings.cache_clear()
        forget_stores()


def test_a_stored_code_outside_its_code_list_is_not_read_again_by_every_page_run(monkeypatch, tmp_path):
    """Each try reads every row (a minute at 15 M contacts): the sentence is repeated without
    a read for a while, and once the value is corrected the figures come, and the server's
    keeper starts, as if the first read had worked."""

    from dashboard import live, state
    from data_access.snapshot import FactStore

    engine = _with_a_stored_channel("faksi", monkeypatch, tmp_path)
    reads = []
    real_refresh = FactStore.refresh

    def counted(self, *args, **kwargs):
        if self.engine.url == engine.url:  # not a store another test's keeper still refreshes
            reads.append(1)
        return real_refresh(self, *args, **kwargs)

    monkeypatch.setattr(FactStore, "refresh", counted)
    state.forget_stores()
    try:
        state.start_preload()  # as the server does: its read fails in the background
        state._preloads[get_settings().resolved_database_url][0].join(timeout=60)
        for _ in range(3):
            at = new_app(60)
            at.run(timeout=60)
            assert not at.exception and "contact.channel" in at.error[0].value
        assert len(reads) == 2, "the preload's read and the first page's; the next pages repeat its sentence"
        with engine.begin() as conn:
            conn.execute(sa.text("update contact set channel = 'phone' where channel = 'faksi'"))
        monkeypatch.setattr(state, "BAD_DATA_RETRY_SECONDS", 0.0)
        at = new_app(60)
        at.run(timeout=60)
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.metric
        store = state._store(get_settings().resolved_database_url)
        keeper = live._keepers.get(store)
        assert keeper is not None and keeper.is_alive()
    finally:
        for store, keeper in list(live._keepers.items()):
            if store.engine.url == engine.url:
                keeper.stop()
        engine.dispose()
        get_settings.cache_clear()
        state.forget_stores()


def test_comparison_table_lists_municipalities_by_name(app_env):
    at = _open("comparison.py")
    names = at.dataframe[0].value["Kunta"].to_list()
    assert names == sorted(names) and names[:2] == ["Akaa", "Askola"]


def test_timing_log_records_each_page_run(app_env, monkeypatch, tmp_path):
    import json

    import streamlit as st

    log = tmp_path / "timing.jsonl"
    monkeypatch.setenv("OHJAUSTAULU_TIMING_LOG", str(log))
    get_settings.cache_clear()
    st.cache_data.clear()
    at = new_app()
    at.run(timeout=120)
    at.switch_page(str(ROOT / "pages" / "channels.py"))
    at.run(timeout=120)
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [run["page"] for run in runs] == ["overview", "kanavat"]
    assert all(run["data_ms"] > 0 for run in runs)  # the first runs computed, not hit a cache
    at.run(timeout=120)
    assert len(log.read_text().splitlines()) == 3


def test_the_server_starts_loading_the_store_before_the_first_page(app_env, monkeypatch, tmp_path):
    import json

    from dashboard import state

    log = tmp_path / "timing.jsonl"
    monkeypatch.setenv("OHJAUSTAULU_TIMING_LOG", str(log))
    get_settings.cache_clear()
    state.forget_stores()
    state.start_preload()
    assert app_env in state._preloads
    store = state._store(app_env)
    assert app_env not in state._preloads  # taken, not loaded a second time
    assert store.version > 0 and store.whole("contacts").height > 0
    assert state._store(app_env) is store
    # benchmarks/start_timeline.py reads when the preload began and ended from the timing log
    [line] = [json.loads(text) for text in log.read_text().splitlines()]
    assert line["preload_started_at"] <= line["at"]


def test_weekly_trends_count_whole_weeks_only(app_env):
    import datetime as dt

    from data_access.periods import local_now, preset_range, whole_buckets

    at = _open("channels.py")
    at.segmented_control(key="grain").set_value("week")
    _run(at)
    start, end = preset_range("last_30_days", today=local_now().date())
    first, last = whole_buckets(start, end, "week")
    assert (first.weekday(), last.weekday()) == (0, 6) and start <= first and last <= end
    caption = f"Kokonaiset viikot {first.day}.{first.month}.{first.year} – {last.day}.{last.month}.{last.year}"
    assert any(caption in c.value for c in at.caption), [c.value for c in at.caption]
    weeks = ((last - first).days + 1) // 7
    electronic = next(f.value for f in at.dataframe if "Sähköisten kanavien osuus" in f.value.columns)
    assert len(electronic) == weeks
    shown = [dt.datetime.strptime(v, "%d.%m.%Y").date() for v in electronic["Viikko"]]
    assert shown == [first + dt.timedelta(weeks=i) for i in range(weeks)]


def test_quality_page_compares_today_with_the_same_weekday_in_earlier_weeks(app_env):
    """The usual-volume table: today so far and the mean of the same weekday in the four
    weeks before, up to the same minute, each day counted as the registry counts one day."""
    import datetime as dt

    from dashboard.formatting import format_number
    from dashboard.i18n import t
    from data_access.engine import create_db_engine
    from data_access.metrics import Filters, compute
    from data_access.periods import local_now, so_far_minute
    from tests.factories import make_store

    for _ in range(3):  # the page and this test must count up to the same minute
        minute = so_far_minute(local_now())
        at = _open("quality.py")
        if so_far_minute(local_now()) == minute:
            break
    today = local_now().date()
    store = make_store(create_db_engine(app_env), get_settings())

    def counts(day: dt.date) -> dict:
        result = compute(store, metrics=["contacts"], filters=Filters(start=day, end=day, until_minute=minute), by=["source_system"])
        return {row["source_system"]: row["value"] for row in result.iter_rows(named=True)}

    def shown(source: str) -> str:
        """Early in the day a count can be small and hidden, or hidden to protect one: as the
        page asks, by day and source system over the five weeks (sections.volume_against_usual)."""
        span = Filters(start=today - dt.timedelta(weeks=4), end=today, until_minute=minute)
        result = compute(store, metrics=["contacts"], filters=span, by=["day", "source_system"])
        row = next(r for r in result.iter_rows(named=True) if r["source_system"] == source and r["day"] == today)
        return ".." if row["secondary"] else "<5" if row["value"] is None else format_number(row["value"], language="fi")

    now, earlier = counts(today), [counts(today - dt.timedelta(weeks=w)) for w in range(1, 5)]
    earlier_days = {today - dt.timedelta(weeks=w) for w in range(1, 5)}
    grid = compute(
        store, metrics=["contacts"], filters=Filters(start=today - dt.timedelta(weeks=4), end=today, until_minute=minute),
        by=["day", "source_system"],
    )
    column = t("quality.usual", "fi")
    table = next(frame.value for frame in at.dataframe if column in frame.value.columns)
    assert len(table) == len(set(now) | {s for day in earlier for s in day}) > 0
    for _, row in table.iterrows():
        source = row[t("dimension.source_system", "fi")]
        assert row[t("quality.today_so_far", "fi")] == (shown(source) if source in now else "0")
        # A day without rows counts as zero; with a hidden day the usual is hidden too (".." with the legend)
        # (hidden in the page's grid by day and source: a day may be hidden to protect another).
        usual = [day.get(source, 0.0) for day in earlier]
        hidden = any(r["suppressed"] for r in grid.iter_rows(named=True) if r["source_system"] == source and r["day"] in earlier_days)
        assert row[column] == (".." if hidden else format_number(sum(usual) / len(usual), decimals=1, language="fi"))


def test_only_the_open_tab_computes(app_env, asked):
    """The resolution page's five breakdown tabs: the hidden ones ask nothing."""
    at = _run(new_app())
    at.switch_page(str(ROOT / "pages" / "resolution.py"))
    asked.clear()
    _run(at)
    groupings = {r.by for r in asked if isinstance(r, MetricsRequest)}
    assert ("channel",) in groupings
    assert not groupings & {("service_line",), ("professional_group",), ("age_band",), ("unit",)}, groupings


def _cards(node) -> list[tuple]:
    """(metric proto, badge text) of every card: a bordered block holding a metric."""
    from streamlit.testing.v1.element_tree import Block, Markdown, Metric

    found = []
    children = list(node.children.values()) if isinstance(node, Block) or hasattr(node, "children") else []
    metrics = [c for c in children if isinstance(c, Metric)]
    badges = [c.value for c in children if isinstance(c, Markdown) and c.value.startswith((":red[", ":green["))]
    if len(metrics) == 1:
        found.append((metrics[0].proto, badges[0] if badges else None))
    for child in children:
        if hasattr(child, "children"):
            found.extend(_cards(child))
    return found


def test_a_cards_colour_agrees_with_its_target_badge(app_env):
    from streamlit.proto.Metric_pb2 import Metric as MetricProto

    at = _open("overview.py")
    cards = _cards(at.main)
    judged = [(proto, badge) for proto, badge in cards if badge]
    assert judged, "some cards are judged against a target"
    green, red = MetricProto.MetricColor.Value("GREEN"), MetricProto.MetricColor.Value("RED")
    for proto, badge in judged:
        opposite = red if badge.startswith(":green[") else green
        assert proto.color != opposite, (proto.label, badge)  # grey only when there is no change to colour
        if proto.delta:
            assert proto.color == (green if opposite == red else red), (proto.label, badge)


def test_a_chart_whose_figures_are_all_hidden_says_so(app_env):
    """A small municipality has a handful of referrals in the last 30 days: the card above
    counts them, and every destination is hidden. The chart must say its figures are hidden,
    not that there is no data. The municipality is found in the data, not assumed: the sample
    data moves with the date."""
    from data_access.metrics import Filters, compute
    from data_access.periods import local_now, preset_range
    from tests.factories import make_store

    store = make_store(create_db_engine(app_env), get_settings())
    start, end = preset_range("last_30_days", today=local_now().date())
    period = Filters(start=start, end=end)
    totals = compute(store, metrics=["referrals"], filters=period, by=["municipality"])
    counted = [r["municipality"] for r in totals.sort("value", nulls_last=True).iter_rows(named=True) if r["value"]]

    def all_hidden(code: str) -> bool:
        one = Filters(start=start, end=end, municipalities=(code,))
        return compute(store, metrics=["referrals"], filters=one, by=["destination"])["value"].is_null().all()

    code = next((c for c in counted if all_hidden(c)), None)
    assert code, "the seeded data has a municipality whose destinations are all small counts"
    at = _open("referrals.py")
    at.sidebar.multiselect(key="municipality").set_value([code])
    _run(at)
    infos = [i.value for i in at.info]
    assert at.metric[0].value not in ("0", "—", "<5"), "the card counts the referrals"
    # The destinations chart is the page's first: its figures are hidden, not missing.
    assert "piilotettu tietosuojan vuoksi" in infos[0], infos


def _presenting(**params: str) -> AppTest:
    at = new_app()
    at.query_params["present"] = "1"
    for key, value in params.items():
        at.query_params[key] = value
    return _run(at)


def test_presentation_mode_shows_one_titled_figure_at_a_time_without_controls(app_env):
    at = _presenting()
    assert at.title[0].value == "Avainluvut"
    assert not at.sidebar.selectbox and not at.sidebar.multiselect, "no filters in presentation mode"
    assert [m.label for m in at.metric][:3] == ["Yhteydenotot", "Ratkaistu ensikontaktissa", "Sähköisten kanavien osuus"]
    subtitle = at.markdown[0].value.replace("\\", "")
    assert "Vertailujakso" in subtitle and "Lähde: Ohjaustaulu" in subtitle, subtitle
    at.button(key="present_next").click()
    _run(at)
    assert at.title[0].value == "Ratkaistu ensikontaktissa"
    assert at.query_params["slide"] == "2"
    (chart,) = at.get("vega_lite_chart")
    spec = chart.proto.spec
    assert '"labelFontSize": 18' in spec, "projector type"
    assert "vertailujakso" in spec, "the comparison period is drawn as a second series"
    at.button(key="present_leave").click()
    _run(at)
    assert at.title[0].value == "Yleiskuva" and at.sidebar.selectbox, "leaving returns to the dashboard"


@pytest.mark.parametrize(("asked", "shown"), [("99", "Ensikontaktin ratkaisu hyvinvointialueittain"), ("x", "Avainluvut"), ("-3", "Avainluvut")])
def test_a_presentation_url_names_a_view_that_exists(app_env, asked, shown):
    at = _presenting(slide=asked)
    assert at.title[0].value == shown
    assert not at.error


@pytest.fixture
def fresh_stores():
    """Stores made in the test, with its settings (a store computes with the settings it was
    made with), and none left for the next test."""
    from dashboard.state import forget_stores

    forget_stores()
    yield
    forget_stores()


def test_published_figures_in_presentation_mode_say_so_and_hold_no_small_count(app_env, monkeypatch, fresh_stores):
    monkeypatch.setenv("OHJAUSTAULU_PUBLICATION_KEY", "county-own-key-for-tests")  # nosec B105
    get_settings.cache_clear()
    exact = _presenting(lang="en", slide="1")
    published = _presenting(lang="en", slide="1", public="1")
    assert "figures perturbed for publishing" in published.markdown[0].value
    assert "perturbed" not in exact.markdown[0].value
    at = _presenting(lang="en", slide="5", public="1")
    (chart,) = at.get("vega_lite_chart")
    values = [v for frame in _chart_frames(chart) if "Referrals" in frame.columns for v in frame["Referrals"].drop_nulls()]
    assert values and all(v == 0 or v >= 5 for v in values), values


def _chart_frames(chart) -> list[pl.DataFrame]:
    """The data a chart element carries (Streamlit sends it apart from the spec, as Arrow)."""
    import pyarrow as pa

    frames = []
    for dataset in chart.proto.datasets:
        with pa.ipc.open_stream(dataset.data.data) as reader:
            frames.append(pl.from_arrow(reader.read_all()))
    return frames


def test_published_figures_are_refused_not_replaced_by_exact_ones_without_the_county_key(app_env, monkeypatch, fresh_stores):
    monkeypatch.setenv("OHJAUSTAULU_PUBLICATION_KEY", "short")  # nosec B105
    get_settings.cache_clear()
    with pytest.raises(Exception, match="at least 8"):
        get_settings()
    monkeypatch.delenv("OHJAUSTAULU_PUBLICATION_KEY")
    get_settings.cache_clear()
    at = _presenting(public="1")
    if get_settings().publication_ready:  # SQLite demo: the demo key serves
        assert at.title[0].value == "Avainluvut"
        assert "julkaisua varten" in at.markdown[0].value
    else:
        assert "julkaisuavainta" in at.error[0].value
        assert not at.metric and not at.get("vega_lite_chart"), "no figures in place of the published ones"


@pytest.mark.parametrize(("page", "language", "words"), [
    ("overview.py", "fi", "julkaisuavainta"), ("channels.py", "sv", "publiceringsnyckel"), ("explore.py", "en", "publication key"),
])
def test_every_page_refuses_published_figures_without_the_county_key_not_only_presentation_mode(app_env, monkeypatch, fresh_stores, page, language, words):
    monkeypatch.delenv("OHJAUSTAULU_PUBLICATION_KEY", raising=False)
    get_settings.cache_clear()
    if get_settings().publication_ready:
        pytest.skip("SQLite demo: the demo key serves, and the published figures are shown")
    at = new_app()
    at.query_params["public"] = "1"
    at.query_params["lang"] = language
    at.run(timeout=120)
    if page != "overview.py":
        at.switch_page(str(ROOT / "pages" / page))
    for _ in range(2):  # and again on the next run (a live refresh, a filter changed): not exact figures then either
        at.run(timeout=120)
        assert not at.exception, [e.value for e in at.exception]
        assert any(words in e.value for e in at.error), [e.value for e in at.error]
        assert not at.metric and not at.get("vega_lite_chart") and not at.dataframe and not at.title, "no figures in place of the published ones"
        assert at.query_params.get("public") == "1"  # the address still asks for them


def test_before_and_after_a_pilot_gives_the_registrys_figures_for_whole_weeks_either_side(app_env):
    """The page's 'before' and 'after' are the registry's figures for the whole weeks on each
    side of the first day, the change their difference; a hostile date in the URL is not used."""
    import datetime as dt

    from dashboard.formatting import format_value
    from data_access.engine import create_db_engine
    from data_access.metrics import Filters, compute
    from data_access.metrics.change import before_after_periods
    from data_access.periods import local_now
    from tests.factories import make_store

    today = local_now().date()
    start = today - dt.timedelta(days=30)
    at = new_app()
    at.query_params["pilot"] = start.isoformat()
    at.query_params["weeks"] = "4"
    _run(at)
    at.switch_page(str(ROOT / "pages" / "before_after.py"))
    _run(at)
    assert at.title[0].value == "Ennen ja jälkeen"
    table = next(frame.value for frame in at.dataframe if "Muutos" in frame.value.columns)
    (before, after) = before_after_periods(start, weeks=4, today=today)
    store = make_store(create_db_engine(app_env), get_settings())
    for (period_start, period_end), column in ((before, "Ennen"), (after, "Jälkeen")):
        result = compute(store, metrics=["first_contact_resolution"], filters=Filters(start=period_start, end=period_end))
        row = table[table["Mittari"] == "Ratkaistu ensikontaktissa"].iloc[0]
        assert row[column] == format_value(result["value"][0], "share", language="fi")
    assert len(table) == 6 and at.get("vega_lite_chart")
    # whether the change is clear comes before its interval: in sight at 1024 px
    assert list(table.columns)[:6] == ["Mittari", "Ennen", "Jälkeen", "Muutos", "Selvä muutos", "95 %:n väli"]

    hostile = new_app()
    hostile.query_params["pilot"] = "2026-13-45'); DROP TABLE contacts;--"
    _run(hostile)
    hostile.switch_page(str(ROOT / "pages" / "before_after.py"))
    _run(hostile)
    assert not hostile.error and hostile.title[0].value == "Ennen ja jälkeen"

    soon = new_app()
    soon.query_params["pilot"] = (today - dt.timedelta(days=2)).isoformat()
    _run(soon)
    soon.switch_page(str(ROOT / "pages" / "before_after.py"))
    _run(soon)
    assert any("kokonaista viikkoa" in info.value for info in soon.info)


def test_the_grain_and_the_open_tab_are_in_the_url_as_codes_whatever_the_language(app_env, asked):
    at = new_app()
    for key, value in (("lang", "sv"), ("grain", "week"), ("resolution_tab", "age_band")):
        at.query_params[key] = value
    _run(at)
    at.switch_page(str(ROOT / "pages" / "resolution.py"))
    asked.clear()
    _run(at)
    assert at.title[0].value == "Lösning vid första kontakten"
    assert at.session_state["grain"] == "week" and at.session_state["resolution_tab"] == "Åldersgrupp"
    groupings = {r.by for r in asked if isinstance(r, MetricsRequest)}
    assert ("age_band",) in groupings and ("week",) in groupings and ("channel",) not in groupings
    assert at.query_params["grain"] == "week" and at.query_params["resolution_tab"] == "age_band"
    fresh = new_app()
    fresh.query_params["resolution_tab"] = "<script>"
    _run(fresh)
    fresh.switch_page(str(ROOT / "pages" / "resolution.py"))
    _run(fresh)
    assert fresh.session_state["resolution_tab"] == "Kanava" and "resolution_tab" not in fresh.query_params


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_the_measures_page_lists_every_measure_and_code_list_and_each_card_links_to_it(app_env, language):
    from dashboard.definitions import CODE_LISTS
    from data_access.metrics import REGISTRY

    at = new_app()
    at.query_params["lang"] = language
    _run(at)
    labels = {m.label(language) for m in REGISTRY.values()}
    helps = [m.help or "" for m in at.markdown if m.value.strip("*") in labels]
    assert helps and all(f"mittarit?lang={language}#" in h for h in helps), "every card's '?' links to its entry"
    at.switch_page(str(ROOT / "pages" / "definitions.py"))
    _run(at)
    headings = {h.value for h in at.subheader}
    assert {m.label(language) for m in REGISTRY.values()} <= headings
    assert len(at.dataframe) == len(CODE_LISTS)
    channels = next(frame.value for frame in at.dataframe if "walk_in" in set(frame.value.iloc[:, 0]))
    assert list(channels.columns) == [{"fi": "Koodi", "sv": "Kod", "en": "Code"}[language], "suomi", "svenska", "English"]
    assert channels.set_index(channels.columns[0]).loc["walk_in", "suomi"] == "käynti paikan päällä"


def _explore(**params: str) -> AppTest:
    at = new_app()
    for key, value in params.items():
        at.query_params[key] = value
    _run(at)
    at.switch_page(str(ROOT / "pages" / "explore.py"))
    return _run(at)


@pytest.mark.parametrize(
    ("measure", "rows", "cols"),
    [
        ("contacts", "week", "none"), ("first_contact_resolution", "channel", "none"), ("first_contact_resolution", "reason", "channel"),
        ("referrals", "destination", "age_band"), ("referrals", "month", "destination"), ("queue_median_seconds", "municipality", "none"),
        ("nps", "quarter", "none"), ("electronic_share", "service_line", "age_band"), ("failure_demand_share", "day", "none"),
        ("contacts", "quarter", "channel"), ("cases_opened", "week", "none"), ("multi_service_clients", "age_band", "none"),
    ],
)
def test_the_explorer_answers_a_measure_by_its_dimensions_with_a_fitting_chart(app_env, measure, rows, cols):
    at = _explore(measure=measure, rows=rows, cols=cols)
    assert at.title[0].value == "Tutki" and not at.warning, [w.value for w in at.warning]
    (chart,) = at.get("vega_lite_chart")
    mark = json.dumps(json.loads(chart.proto.spec))
    expected = '"line"' if {"week", "month", "quarter"} & {rows, cols} or rows == "day" else '"rect"' if cols != "none" else '"bar"'
    assert expected in mark
    # The question stays in the URL as codes; the default measure is left out to keep links short.
    assert at.query_params.get("measure", "first_contact_resolution") == measure and at.query_params.get("rows", "channel") == rows
    assert at.get("download_button"), "CSV, Excel, Parquet, pictures"


def test_the_explorers_heatmap_marks_hidden_cells_and_keeps_the_tables_order_by_value(app_env):
    """Reason x channel: a hidden cell is a grey cell with its mark ("<5" or ".."), not an
    empty one, and the rows follow the table's order by value, not the alphabet."""
    at = _explore(measure="contacts", rows="reason", cols="channel", sort="value", period="last_7_days")
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    layers = spec.get("layer", [])
    assert [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in layers] == ["rect", "rect", "text"]
    import pyarrow as pa

    values = [row for data in chart.proto.datasets for row in pa.ipc.open_stream(data.data.data).read_all().to_pylist()]
    marks = {row["mark"] for row in values if row.get("mark") is not None}
    assert marks and marks <= {"<5", ".."}, marks
    assert all(row["mark"] is not None for row in values if row["suppressed"])
    table_rows = at.dataframe[0].value.iloc[:, 0].tolist()
    assert layers[0]["encoding"]["y"]["sort"] == [r for r in table_rows if r in layers[0]["encoding"]["y"]["sort"]]
    assert layers[0]["encoding"]["y"]["sort"] != sorted(layers[0]["encoding"]["y"]["sort"])


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"rows": "channel", "cols": "channel"}, "sama jaottelu"),
        ({"rows": "week", "cols": "month"}, "Kahta aikajaottelua"),
        ({"measure": "contacts", "rows": "day", "cols": "unit", "period": "this_year"}, "liian hieno"),
        ({"measure": "contacts", "rows": "unit", "cols": "hour", "period": "yesterday"}, "jäisi piiloon"),
    ],
)
def test_the_explorer_refuses_a_question_and_says_why(app_env, params, why):
    at = _explore(**params)
    assert any(why in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.get("vega_lite_chart") and not at.dataframe, "nothing shown with a refusal"


def test_the_explorer_offers_only_what_a_measure_is_recorded_by_and_folds_the_rest_into_others(app_env):
    from data_access.engine import create_db_engine
    from data_access.metrics import compute
    from tests.factories import make_store

    at = _explore(measure="referrals", rows="reason")  # reasons are recorded for contacts only
    assert "reason" not in at.selectbox(key="rows").options and at.session_state["rows"] != "reason"
    at = _explore(measure="contacts", rows="municipality", top="5")
    table = next(frame.value for frame in at.dataframe)
    assert len(table) == 6 and table.iloc[-1, 0] == "muut yhteensä"
    filters = at.session_state["_context"].filters
    store = make_store(create_db_engine(app_env), get_settings())
    total = compute(store, metrics=["contacts"], filters=filters)["value"][0]
    by_place = compute(store, metrics=["contacts"], filters=filters, by=["municipality"]).filter(~pl.col("suppressed"))
    top5 = by_place.sort("value", descending=True).head(5)["value"].sum()
    assert table.iloc[-1, 1] == format_count(total - top5)


def format_count(value: float) -> str:
    from dashboard.formatting import format_value

    return format_value(value, "count", language="fi")


def test_client_experience_shows_each_figure_with_its_answers_and_the_reasons_page_its_failure_demand(app_env):
    at = _open("experience.py")
    table = next(frame.value for frame in at.dataframe if "Palautevastaukset" in frame.value.columns)
    assert {"Kanava", "Suositteluhalukkuus (0–10)", "NPS"} <= set(table.columns)
    charts = [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]
    assert any('"ci_low"' in json.dumps(spec) for spec in charts), "the score's and NPS's intervals are drawn"
    at = _open("reasons.py")
    tables = [frame.value for frame in at.dataframe]
    assert any("Tulosyy" in t.columns and "Häiriökysynnän osuus" in t.columns for t in tables)
    assert any("Häiriökysynnän osuus" in t.columns and "Kanava" in t.columns for t in tables)


def test_pathway_page_counts_cases_by_process_and_who_identified_them_in_finnish(app_env):
    # The whole 90 days of the sample: in 30 days its 77 cases were 72 + 4 + 1 by process, and
    # disclosure control rightly hid all three (the two small ones are 77 less the large one).
    at = new_app()
    at.query_params["period"] = "last_12_months"
    _run(at)
    at.switch_page(str(ROOT / "pages" / "pathway.py"))
    _run(at)
    assert not at.error, [e.value for e in at.error]
    tables = [frame.value for frame in at.dataframe]
    shown = ([list(t.columns) for t in tables], [i.value for i in at.info])
    assert any("Avatut ohjauspolut" in t.columns and "Prosessi" in t.columns for t in tables), shown
    assert any("Tunnistaja" in t.columns for t in tables), shown
    by_process = next(t for t in tables if "Prosessi" in t.columns and "Avatut ohjauspolut" in t.columns)
    assert {"Avatut ohjauspolut", "Suostumus kirjattu", "Suunnitelma tehty"} <= set(by_process.columns)
    assert "monipalveluprosessi" in set(by_process["Prosessi"]), "codes are shown by their labels"
    who = next(t for t in tables if "Tunnistaja" in t.columns)
    assert "perusterveydenhuolto" in set(who["Tunnistaja"])
    # Counts of cases and visits, never a client: no table has a client key in it.
    assert not any("client_id" in t.columns or "Asiakastunniste" in t.columns for t in tables)


def test_multi_service_page_shows_rates_shares_and_no_client(app_env):
    at = _open("multi_service.py")
    tables = [frame.value for frame in at.dataframe]
    by_place = next(t for t in tables if "Kunta" in t.columns)
    assert {"Monipalveluasiakkaat / 1 000 asukasta", "Monipalveluasiakkaiden osuus yhteydenotoista"} <= set(by_place.columns)
    assert any("Ikäryhmä" in t.columns for t in tables)
    assert all(len(t) < 400 for t in tables), "places and age bands, not a row per client"


def test_the_overview_draws_no_table_until_one_is_opened(app_env):
    """A chart's table is drawn when its expander is opened; the sources' freshness is a text
    table. The overview then needs no table library at all (32 MB less; docs/performance.md)."""
    at = new_app()
    at.run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    shelves = [e for e in at.expander if "-open_table_" in e.proto.id]
    assert shelves and all(e.label == "Näytä taulukkona" for e in shelves)
    assert not at.dataframe
    assert any(m.value.startswith("| Lähdejärjestelmä |") for m in at.markdown)
    open_tables(at)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe) == len(shelves)
    assert all(len(frame.value) > 0 for frame in at.dataframe)


def test_a_text_table_escapes_what_it_shows():
    def page():
        from dashboard.elements import text_table

        text_table([{"Lähde": "**lihava** | [linkki](https://example.org)", "Tila": "<b>ok</b>\n| rivi |"}])

    at = AppTest.from_function(page).run()
    (table,) = at.markdown
    header, rule, row = table.value.splitlines()
    assert header == "| Lähde | Tila |" and rule == "| --- | --- |"
    assert row.count(" | ") == 1  # the pipe in the value does not make a column
    assert "\\*\\*lihava\\*\\*" in row and "\\[linkki\\]\\(https\u2060\\:" in row and "\\<b\\>" in row
    assert row.endswith("\\<b\\>ok\\</b\\> \\| rivi \\| |")  # a line break in a value does not end the row


# GitHub-flavoured autolinking as Streamlit's Markdown runs it (mdast-util-gfm-autolink-literal,
# in its JavaScript): on the text left once the escapes are read. JavaScript's \w is ASCII; the
# address pattern is taken without its look-behind, so it finds more, not less.
_GFM_URL = r"(?i)(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)"
_GFM_EMAIL = r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)"


def test_a_text_table_links_no_address_in_a_stored_value():
    import re

    stored = ["http://evil.example/", "HTTPS://evil.example/x?y=1", "www.evil.example", "Www.evil.example", "johtaja@evil.example", "mailto:a@evil.example"]

    def page(stored):
        from dashboard.elements import text_table

        text_table([{"Lähde": value} for value in stored])

    at = AppTest.from_function(page, args=(stored,)).run()
    (table,) = at.markdown
    rows = table.value.splitlines()[2:]
    assert len(rows) == len(stored)
    for row, value in zip(rows, stored, strict=True):
        read = re.sub(r"\\(.)", r"\1", row)  # what the Markdown's text holds once escapes are read
        assert read.replace("\u2060", "") == f"| {value} |"  # shown as stored (the joiner is invisible)
        assert not re.search(_GFM_URL, read, re.ASCII) and not re.search(_GFM_EMAIL, read, re.ASCII), row
