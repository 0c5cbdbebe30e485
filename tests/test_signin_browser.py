"""Sign-in end to end in headless Chromium: the dashboard with OHJAUSTAULU_SIGN_IN=true
against a local OpenID Connect provider (tests/oidc_provider.py) that the test starts."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import openpyxl
import pypdf
import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from data_access.access import add_user, audit_rows, grant
from data_access.engine import create_db_engine
from tests.browsing import free_port, serve, sign_in
from tests.conftest import seeded_database
from tests.oidc_provider import Provider, secrets_toml

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
PATHS = {"": "Yleiskuva", "kanavat": "Yhteydenottokanavat", "ratkaisu": "Ensikontaktin ratkaisu",
         "ohjaukset": "Ohjaukset", "kuntavertailu": "Kuntavertailu", "laatu": "Tietojen laatu"}


@pytest.fixture(scope="module")
def signed_server(request, tmp_path_factory):
    """On SQLite (the data path is tested on both in test_access.py): the sign-in is the same."""
    from types import SimpleNamespace

    url, cleanup = seeded_database(SimpleNamespace(param="sqlite"), tmp_path_factory, contacts=20_000, days=40, seed=8)
    engine = create_db_engine(url)
    with engine.connect() as conn:
        counts = conn.execute(sa.text(
            "select m.code, m.name_fi, m.region_code, count(*) from contact c join municipality m on m.code = c.municipality_code "
            "group by m.code, m.name_fi, m.region_code order by 4 desc"
        )).all()
    code, name, _, _ = counts[0]
    others = [n for c, n, _, _ in counts[1:] if len(n) >= 6 and n not in name]
    add_user(engine, "kunta@example.fi", role="analyst", name="Kunnan Analyytikko")
    grant(engine, "kunta@example.fi", municipality=code)
    add_user(engine, "admin@example.fi", role="admin", name="Alueen Ylläpitäjä")
    for county in {r for _, _, r, _ in counts}:
        grant(engine, "admin@example.fi", region=county)

    provider = Provider().start()
    port = free_port()
    secrets_file = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    secrets_file.write_text(secrets_toml(provider, app_port=port), encoding="utf-8")
    process = serve(port, {"OHJAUSTAULU_DATABASE_URL": url, "OHJAUSTAULU_SIGN_IN": "true"}, "--secrets.files", str(secrets_file))
    yield {"url": f"http://127.0.0.1:{port}", "engine": engine, "name": name, "others": others, "provider": provider}
    process.terminate()
    process.wait(timeout=20)
    provider.stop()
    engine.dispose()
    cleanup()


def _sign_in(browser, server, email: str, *, width: int = 1440):
    """A browser of its own (cookies included), signed in as ``email`` through the provider."""
    context = browser.new_context(viewport={"width": width, "height": 1800}, locale="fi-FI")
    page = context.new_page()
    sign_in(page, server["url"], email)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidgetRunningIcon\"]')", timeout=90_000
    )
    page.wait_for_timeout(2500)
    return context, page


def _saved(page, button, *, wait_ms: int = 15_000) -> bytes:
    """What the browser saves when ``button`` is pressed. Pressed a second time if nothing
    came: Streamlit hands the file over after a round trip to the server, outside the click's
    user gesture, and Chromium's limiter of repeated downloads then sometimes holds one back
    when a page downloads many files in a row (seen 1 in about 20 here, at any button)."""
    for attempt in range(2):
        try:
            with page.expect_download(timeout=wait_ms) as saved:
                button.click()
            return Path(saved.value.path()).read_bytes()
        except PlaywrightTimeout:
            if attempt:
                raise
    raise AssertionError("unreachable")


def test_a_scoped_user_signs_in_sees_only_their_municipality_and_signs_out(browser, signed_server):
    sys.path.insert(0, str(ROOT / "scripts"))
    from screenshot import wait_until_rendered

    context, page = _sign_in(browser, signed_server, "kunta@example.fi", width=1024)
    try:
        assert "Kirjautunut: Kunnan Analyytikko (analyytikko)" in page.inner_text("[data-testid='stSidebar']")
        SHOTS.mkdir(exist_ok=True)
        downloads = 0
        for path, title in PATHS.items():
            page.goto(f"{signed_server['url']}/{path}")
            wait_until_rendered(page, settle_ms=2500)
            assert page.locator("h1").first.inner_text().strip() == title
            assert page.locator("[data-testid='stException']").count() == 0
            text = page.inner_text("body")
            # Chart data is drawn on a canvas: read it from the page's own data (Vega's view).
            leaked = [other for other in signed_server["others"] if other in text]
            assert not leaked, (path, leaked)
            # Every download of the page, as the browser saves it.
            buttons = page.get_by_role("button", name="Lataa CSV")
            for number in range(buttons.count()):
                content = _saved(page, buttons.nth(number)).decode("utf-8-sig")
                leaked = [other for other in signed_server["others"] if other in content]
                assert not leaked, (path, number, leaked)
                downloads += 1
            workbooks = page.get_by_role("button", name="Lataa Excel")
            assert workbooks.count() == buttons.count(), path
            for number in range(workbooks.count()):
                sheet = openpyxl.load_workbook(io.BytesIO(_saved(page, workbooks.nth(number)))).active
                content = " ".join(str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value is not None)
                leaked = [other for other in signed_server["others"] if other in content]
                assert not leaked, (path, "xlsx", number, leaked)
                downloads += 1
            if path == "kanavat":  # a chart's pictures: drawn on the server, titled, only the user's place
                png = Image.open(io.BytesIO(_saved(page, page.get_by_role("button", name="Kuva PNG").first)))
                assert png.width >= 1600
                svg = _saved(page, page.get_by_role("button", name="Kuva SVG").first).decode("utf-8")
                assert "Yhteydenotot" in svg, "titled"
                assert signed_server["name"] in svg, "the places it shows named"
                assert not [other for other in signed_server["others"] if other in svg]
            page.screenshot(path=str(SHOTS / f"signed_in_kunta_{path or 'yleiskuva'}.png"), full_page=True)
        assert downloads >= 20, downloads
        # The board report from the sidebar: the user's own municipality only, and said to be perturbed.
        reader = pypdf.PdfReader(io.BytesIO(_saved(page, page.get_by_role("button", name="Hallitusraportti (PDF)"), wait_ms=60_000)))
        text = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
        assert "Julkinen asiakirja" in text and signed_server["name"] in text
        leaked = [other for other in signed_server["others"] if other in text]
        assert not leaked, ("report", leaked)
        page.get_by_role("button", name="Kirjaudu ulos").click()
        page.wait_for_selector("button:has-text('Kirjaudu sisään')", timeout=60_000)
        assert page.locator("[data-testid='stMetric']").count() == 0
    finally:
        context.close()
    actions = [(r["action"], r["email"]) for r in audit_rows(signed_server["engine"])]
    # one sign-in, though every page opened above was a session of its own
    assert actions.count(("sign_in", "kunta@example.fi")) == 1 and ("sign_out", "kunta@example.fi") in actions
    assert sum(1 for a in actions if a == ("page", "kunta@example.fi")) >= len(PATHS)
    assert sum(1 for a in actions if a == ("download", "kunta@example.fi")) >= 21
    assert any(r["action"] == "download" and r["page"] == "board_report" for r in audit_rows(signed_server["engine"]))


def test_an_unknown_person_is_refused(browser, signed_server):
    context, page = _sign_in(browser, signed_server, "vieras@example.com")
    try:
        # the address as written, its "@" joined by an invisible word joiner (no mailto link: formatting.plain)
        assert "vieras@example.com ei ole oikeutta" in page.inner_text("body").replace("Käyttäjällä ", "").replace("\u2060", "")
        assert page.locator("[data-testid='stMetric'], [data-testid='stDataFrame']").count() == 0
    finally:
        context.close()
    assert ("refused", "vieras@example.com") in [(r["action"], r["email"]) for r in audit_rows(signed_server["engine"])]


@pytest.mark.parametrize(("locale", "button", "refusal"), [
    ("sv-FI", "Logga in", "har ingen behörighet till Ohjaustaulu"),
    ("en-GB", "Kirjaudu sisään", "ei ole oikeutta Ohjaustauluun"),  # an English browser: Finnish, the default
])
def test_the_sign_in_speaks_the_language_chosen_and_a_swedish_browser_stays_swedish(browser, signed_server, locale, button, refusal):
    """The sign-in screen in each language (by the URL), and back from the provider, whose
    redirect drops the URL's language, a Swedish browser is answered in Swedish."""
    SHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale=locale)
    try:
        page = context.new_page()
        for language, name in (("sv", "Logga in"), ("en", "Sign in"), ("fi", "Kirjaudu sisään")):
            page.goto(f"{signed_server['url']}/?lang={language}")
            page.get_by_role("button", name=name).wait_for(timeout=60_000)
            page.screenshot(path=str(SHOTS / f"sign_in_{language}.png"))
        sign_in(page, signed_server["url"], "okand@example.com", button=button)
        page.get_by_text(refusal).wait_for(timeout=60_000)
        assert page.locator("[data-testid='stMetric'], [data-testid='stDataFrame']").count() == 0
        page.screenshot(path=str(SHOTS / f"refused_{locale}.png"))
    finally:
        context.close()


def test_the_administrator_reads_the_audit_trail(browser, signed_server):
    sys.path.insert(0, str(ROOT / "scripts"))
    from screenshot import wait_until_rendered

    context, page = _sign_in(browser, signed_server, "admin@example.fi", width=1024)
    try:
        page.goto(f"{signed_server['url']}/loki")
        wait_until_rendered(page, settle_ms=2500)
        assert page.locator("h1").first.inner_text().strip() == "Lokitiedot"
        assert page.locator("[data-testid='stDataFrame']").count() == 1
        assert "kirjautui" in page.inner_text("body") or page.locator("canvas").count()  # the events in Finnish
        page.screenshot(path=str(SHOTS / "signed_in_admin_loki.png"), full_page=True)
    finally:
        context.close()
