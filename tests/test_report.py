"""The board report: a PDF whose text holds the same published figures as `ohjaustaulu
metrics --publication`, says it is perturbed, and shows any stored name as text."""

from __future__ import annotations

import datetime as dt
import io
import json

import pypdf
import pytest
import sqlalchemy as sa

from dashboard.formatting import format_value
from data_access.metrics import Filters, compute
from data_access.periods import local_now
from tests.factories import make_store


@pytest.fixture
def seeded(engine):
    from sample_data.seed import seed_database

    seed_database(engine, contacts=4000, days=70, seed=4)
    return engine


def _text(pdf: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_the_report_states_the_published_figures_of_the_metrics_command(seeded, settings, monkeypatch, capsys, tmp_path):
    from dashboard.cli import main

    end = local_now().date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=27)
    hostile = '#pagebreak() ] " [ *Kunta* $x$ <b>'
    with seeded.begin() as conn:
        code = conn.execute(sa.text("select municipality_code from contact group by municipality_code order by count(*) desc limit 1")).scalar()
        conn.execute(sa.text("update municipality set name_fi = :name where code = :code"), {"name": hostile, "code": code})
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OHJAUSTAULU_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "raportti.pdf"
    assert main(["report", "--from", start.isoformat(), "--to", end.isoformat(), "--out", str(out)]) == 0
    assert "bytes in" in capsys.readouterr().out
    pages, text = _text(out.read_bytes())
    flat = " ".join(text.split())
    assert pages >= 3
    assert "Asiakasohjauksen tilannekatsaus" in flat and "Julkinen asiakirja" in flat and "Määritelmät" in flat
    assert " ".join(hostile.split()) in flat, "a stored name is text, not markup"

    assert main(["metrics", "--from", start.isoformat(), "--to", end.isoformat(), "--metric", "contacts", "--metric",
                 "first_contact_resolution", "--format", "json", "--publication"]) == 0
    rows = {r["metric"]: r["value"] for r in json.loads(capsys.readouterr().out)["rows"]}
    for label, metric, unit in (("Yhteydenotot", "contacts", "count"), ("Ratkaistu ensikontaktissa", "first_contact_resolution", "share")):
        shown = " ".join(f"{label} {format_value(rows[metric], unit)}".split())  # the PDF's text has plain spaces
        assert shown in flat, shown
    published = compute(make_store(seeded, settings), metrics=["contacts"], filters=Filters(start=start, end=end), publication=True)
    assert rows["contacts"] == published["value"].item(), "the report's figures are the published (perturbed) ones"


def test_the_report_command_refuses_what_it_cannot_make_with_one_sentence(seeded, settings, monkeypatch, capsys, tmp_path):
    from dashboard.cli import main

    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OHJAUSTAULU_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "r.pdf"
    assert main(["report", "--from", "2026-11-01", "--to", "2026-11-30", "--region", "99", "--out", str(out)]) == 2
    assert "unknown wellbeing services county '99'" in capsys.readouterr().err
    assert main(["report", "--from", "2026-11-01", "--to", "2026-11-30", "--compare-from", "2026-10-01", "--out", str(out)]) == 2
    assert "--compare-to" in capsys.readouterr().err
    assert main(["report", "--from", "2026-11-30", "--to", "2026-11-01", "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["report", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(tmp_path / "no such folder" / "r.pdf")]) == 2
    assert "no folder for" in capsys.readouterr().err


def test_a_whole_month_is_compared_with_the_month_before_and_in_swedish(seeded, settings):
    from dashboard.report import ReportRequest, build_report

    request = ReportRequest(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31), language="sv")
    assert (request.comparison.start, request.comparison.end) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    quarter = ReportRequest(start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31))
    assert (quarter.comparison.start, quarter.comparison.end) == (dt.date(2025, 10, 1), dt.date(2025, 12, 31))
    _, text = _text(build_report(make_store(seeded, settings), request))
    assert "Lägesöversikt över klientstyrningen" in text and "jämförelseperiod 1.2.2026–28.2.2026" in text


def test_the_period_just_before_is_whole_months_for_whole_months_and_as_many_days_otherwise():
    """One rule for the dashboard's comparison and the report's default."""
    from data_access.periods import comparison_range

    assert comparison_range(dt.date(2026, 11, 1), dt.date(2026, 11, 30), "previous_period") == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert comparison_range(dt.date(2026, 3, 1), dt.date(2026, 3, 31), "previous_period") == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
    assert comparison_range(dt.date(2026, 1, 1), dt.date(2026, 3, 31), "previous_period") == (dt.date(2025, 10, 1), dt.date(2025, 12, 31))
    assert comparison_range(dt.date(2026, 11, 3), dt.date(2026, 11, 30), "previous_period") == (dt.date(2026, 10, 6), dt.date(2026, 11, 2))
    assert comparison_range(dt.date(2026, 11, 1), dt.date(2026, 11, 30), "previous_year") == (dt.date(2025, 11, 1), dt.date(2025, 11, 30))


def test_the_report_has_the_pathway_and_outcomes_when_there_are_cases(seeded, settings):
    from dashboard.report import IMPACT_METRICS, ReportRequest, impact_lines

    end = local_now().date() - dt.timedelta(days=1)
    request = ReportRequest(start=end - dt.timedelta(days=59), end=end)
    store = make_store(seeded, settings)
    lines = {line["key"]: line["value"] for line in impact_lines(store.view(), request)}
    assert list(lines) == IMPACT_METRICS
    published = compute(store, metrics=["cases_opened"], filters=request.filters, publication=True).row(0, named=True)
    assert published["value"] > 0
    expected = f"<{settings.small_cell_threshold}" if published["suppressed"] else format_value(published["value"], "count")
    assert lines["cases_opened"] == expected, "the published (perturbed) count, as the metrics command gives it"
    with seeded.begin() as conn:
        conn.execute(sa.text("delete from measurement"))
        conn.execute(sa.text("delete from guidance_case"))
    assert impact_lines(make_store(seeded, settings).view(), request) == [], "no section without cases"
