import re
from pathlib import Path

from dashboard.formatting import format_date, format_value
from dashboard.i18n import LANGUAGES, catalogue, code_label, t
from data_access import codes

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_has_all_languages():
    for key, entry in catalogue().items():
        assert set(entry) == set(LANGUAGES), key
        assert all(text.strip() for text in entry.values()), key


def test_every_key_used_in_code_exists():
    used = set()
    for path in [*ROOT.glob("dashboard/**/*.py"), *ROOT.glob("pages/*.py")]:
        used |= set(re.findall(r"\bt\(\s*[f]?\"([a-z_.]+)\"", path.read_text(encoding="utf-8")))
    missing = {key for key in used if key not in catalogue()}
    assert not missing, missing


def test_every_code_of_every_list_has_a_label_in_every_language():
    """The code lists of the data contract (codes.BY_COLUMN), as the Measures page shows them."""
    from dashboard.definitions import CODE_LISTS

    assert set(CODE_LISTS) == set(codes.BY_COLUMN), "the Measures page lists every code list"
    for kind, values in codes.BY_COLUMN.items():
        for value in values:
            entry = catalogue().get(f"code.{kind}.{value}")
            assert entry is not None, (kind, value)
            assert all(entry.get(language, "").strip() for language in LANGUAGES), (kind, value)
            assert len({entry[language] for language in LANGUAGES}) > 1 or value in ("chat", "whoqol_bref"), ("untranslated?", kind, value)


def test_every_measure_has_its_label_and_definition_in_every_language():
    from dashboard.definitions import facts
    from data_access.config import Settings
    from data_access.metrics import REGISTRY

    settings = Settings()
    for key, metric in REGISTRY.items():
        for language in LANGUAGES:
            assert metric.labels.get(language, "").strip(), (key, language)
            assert metric.definitions.get(language, "").strip(), (key, language)
            assert facts(metric, settings, language), (key, language)


def test_finnish_is_the_default_and_fallback():
    assert t("page.overview") == "Yleiskuva"
    assert t("page.overview", "sv") == "Översikt"
    assert code_label("channel", "digital_form") == "sähköinen lomake (Omaolo)"


def test_finnish_number_and_date_formats():
    assert format_value(12345, "count") == "12\u00a0345"
    assert format_value(0.5243, "share") == "52,4\u00a0%"
    assert format_value(0.5243, "share", language="en") == "52.4\u00a0%"
    assert format_value(1234.56, "per_1000", language="sv") == "1\u00a0234,6"
    assert format_value(None, "share") == "—"
    assert format_value(125, "seconds") == "125\u00a0s"
    assert format_value(1234.4, "seconds") == "1\u00a0234\u00a0s"
    import datetime as dt

    assert format_date(dt.date(2026, 3, 7)) == "7.3.2026"


def test_a_swedish_browser_gets_swedish_and_any_other_the_configured_language():
    """Signing in drops the URL's language on the way back; a Swedish-speaking person's browser
    says Swedish. An English browser is no choice of language (Finnish staff have them)."""
    from dashboard.filters import browser_language

    assert browser_language("sv-FI", "fi") == "sv"
    assert browser_language("sv", "fi") == "sv"
    assert browser_language("en-US", "fi") == "fi"
    assert browser_language("fi-FI", "en") == "en"
    assert browser_language(None, "fi") == "fi"
