"""Exports that a spreadsheet opens safely, produced without stalling the server."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.components import csv_bytes
from dashboard.export import FORMULA_START, safe_cell, safe_frame

ROOT = Path(__file__).resolve().parent.parent

cells = st.one_of(st.none(), st.text(alphabet=st.sampled_from([*FORMULA_START, "a", "1", " ", "'", "ä", "\n"]), max_size=6))


@given(st.lists(st.tuples(cells, cells), max_size=30))
def test_safe_frame_prefixes_exactly_the_cells_safe_cell_prefixes(rows):
    frame = pl.DataFrame(rows, schema={"a": pl.String, "b": pl.String}, orient="row").with_columns(n=pl.int_range(pl.len()))
    assert safe_frame(frame).rows() == [(safe_cell(a), safe_cell(b), n) for (a, b), n in zip(rows, range(len(rows)), strict=False)]


def test_csv_download_is_semicolon_separated_with_formulas_defused():
    table = pl.DataFrame({"kunta": ["Helsinki", "=1+1", "-5"], "arvo": [1.5, 2.0, None]})
    text = csv_bytes(table).decode("utf-8")
    assert text.startswith("\ufeff")
    assert text[1:].splitlines() == ["kunta;arvo", "Helsinki;1.5", "'=1+1;2.0", "'-5;"]


def test_downloads_and_tables_rendered_at_once_do_not_stall_the_process():
    """Sessions render on threads of one process: one builds a CSV download while another
    hands a frame to st.dataframe (DataFrame.to_pandas). With the formula check as a Python
    function inside polars (map_elements) this froze the interpreter within seconds, every
    time; the work below takes about two seconds when nothing stalls."""
    code = textwrap.dedent(
        """
        import threading
        import polars as pl
        from dashboard.components import csv_bytes

        base = pl.DataFrame({"kunta": ["Helsinki", "=1+1", "Espoo"] * 200, "arvo": [1.5, 2.5, 3.5] * 200,
                             "n": list(range(600)), "d": pl.date_range(pl.date(2024, 1, 1), pl.date(2025, 8, 22), eager=True)})

        def work(i):
            for _ in range(200):
                frame = pl.concat([base] * 4, rechunk=False)
                frame.to_pandas() if i % 2 else csv_bytes(frame)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print("finished")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "finished"


def test_the_data_behind_a_table_downloads_as_numbers_with_interval_and_n_in_csv_and_xlsx(engine, settings):
    """Not "40,9 %" as text: the share as a number with its interval and n, counts as whole
    numbers, a hidden figure empty with its mark in the last column; the same in both files,
    read back. Text that a spreadsheet would run stays text."""
    import datetime as dt
    import io

    import openpyxl

    from dashboard.export import data_table, share_columns, spreadsheet_csv, xlsx_bytes
    from data_access.metrics import Filters, compute
    from tests.factories import add_contacts, make_store

    day = "2025-11-12T10:00:00"
    add_contacts(engine, [{"occurred_at": day, "municipality_code": "853", "channel": "phone", "resolved_first_contact": i < 30} for i in range(40)])
    add_contacts(engine, [{"occurred_at": day, "municipality_code": "020", "channel": "phone", "resolved_first_contact": True} for _ in range(3)])
    for code, n in (("018", 20), ("019", 25)):  # one of them is hidden too, to protect the small one
        add_contacts(engine, [{"occurred_at": day, "municipality_code": code, "channel": "phone", "resolved_first_contact": True} for _ in range(n)])
    metrics = ["contacts", "first_contact_resolution"]
    store = make_store(engine, settings)
    result = compute(store, metrics=metrics, filters=Filters(start=dt.date(2025, 11, 1), end=dt.date(2025, 11, 30)), by=["municipality"])
    table = data_table(result, by=["municipality"], store=store, language="fi", metrics=metrics)
    rows = {r["Kunta (koodi)"]: r for r in table.iter_rows(named=True)}
    turku = rows["853"]
    assert turku["Kunta"] == "Turku" and turku["Yhteydenotot"] == 40
    share = turku["Ratkaistu ensikontaktissa"]
    assert share == 0.75 and turku["Ratkaistu ensikontaktissa, n"] == 40
    assert turku["Ratkaistu ensikontaktissa, 95 %:n luottamusvälin alaraja"] < 0.75 < turku["Ratkaistu ensikontaktissa, 95 %:n luottamusvälin yläraja"]
    assert table.schema["Yhteydenotot"] == pl.Int64 and table.schema["Ratkaistu ensikontaktissa"] == pl.Float64
    small = rows["020"]
    assert small["Yhteydenotot"] is None and small["Ratkaistu ensikontaktissa"] is None
    assert "Yhteydenotot: <5" in small["Piilotetut luvut"]

    lines = spreadsheet_csv(table).decode("utf-8").lstrip("\ufeff").splitlines()
    header = lines[0].split(";")
    turku_line = dict(zip(header, next(line for line in lines if line.startswith("853;")).split(";"), strict=True))
    assert turku_line["Yhteydenotot"] == "40" and turku_line["Ratkaistu ensikontaktissa"] == "0,75"

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(table, share_columns=share_columns(table, metrics, "fi")))).active
    cells = {c.value: i for i, c in enumerate(next(sheet.iter_rows(max_row=1)))}
    by_code = {row[cells["Kunta (koodi)"]].value: row for row in sheet.iter_rows(min_row=2)}
    cell = by_code["853"][cells["Ratkaistu ensikontaktissa"]]
    assert (cell.value, cell.data_type, cell.number_format) == (0.75, "n", "0.0%")
    assert by_code["853"][cells["Yhteydenotot"]].value == 40
    assert by_code["020"][cells["Yhteydenotot"]].value is None

    hostile = pl.DataFrame({"Kunta": ["=HYPERLINK(\"http://x\")", "+1"], "Arvo": [1.5, None]})
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes(hostile))).active
    assert [(c.value, c.data_type) for c in next(sheet.iter_cols(max_col=1, min_row=2))] == [("=HYPERLINK(\"http://x\")", "s"), ("+1", "s")]


def test_a_chart_picture_is_drawn_on_the_server_titled_with_its_period_and_source():
    """PNG: a real picture, twice 800 px wide, mostly white with the chart drawn on it; SVG:
    valid XML whose text holds the title, the period, the source and the last axis label."""
    import datetime as dt
    import xml.etree.ElementTree as ET

    from PIL import Image

    from dashboard.charts import line_chart
    from dashboard.export import chart_image

    frame = pl.DataFrame({
        "Päivä": [dt.date(2026, 11, d) for d in range(1, 11)], "Ratkaistu": [0.4 + 0.01 * d for d in range(10)],
        "ci_low": [0.35] * 10, "ci_high": [0.5] * 10,
    })
    spec = line_chart(frame, x="Päivä", y="Ratkaistu", unit="share", language="fi", band=("ci_low", "ci_high"), target=0.5, target_label="tavoite 50 %").to_dict()
    subtitle = ["1.11.2026–10.11.2026", "Lähde: Ohjaustaulu, tilanne 11.11.2026 klo 8.00"]
    png = chart_image(spec, title="Ratkaistu ensikontaktissa", subtitle=subtitle, fmt="png")
    picture = Image.open(io.BytesIO(png)).convert("L")
    assert picture.width >= 1600 and picture.height >= 400
    dark = sum(picture.histogram()[:200])
    assert 0.005 < dark / (picture.width * picture.height) < 0.5, "something is drawn, on white"
    svg = chart_image(spec, title="Ratkaistu ensikontaktissa", subtitle=subtitle, fmt="svg").decode("utf-8")
    text = " ".join(element.text or "" for element in ET.fromstring(svg).iter())  # noqa: S314  # our own picture
    for expected in ("Ratkaistu ensikontaktissa", *subtitle, "tavoite 50 %", "10.11.2026"):
        assert expected in text, expected
    assert "title" not in spec, "the page's own spec is not changed"


def test_published_downloads_say_so_on_every_row_and_under_the_picture_title(engine, settings):
    import datetime as dt

    from dashboard.export import Figures
    from data_access.metrics import Filters, compute
    from tests.factories import add_contacts, make_store

    add_contacts(engine, [{"occurred_at": "2025-11-12T10:00:00", "municipality_code": "853", "channel": "phone"} for _ in range(3)])
    add_contacts(engine, [{"occurred_at": "2025-11-12T10:00:00", "municipality_code": "020", "channel": "phone"} for _ in range(40)])
    store = make_store(engine, settings)
    filters = Filters(start=dt.date(2025, 11, 1), end=dt.date(2025, 11, 30))
    comparison = Filters(start=dt.date(2025, 10, 1), end=dt.date(2025, 10, 31))
    result = compute(store, metrics=["contacts"], filters=filters, by=["municipality"], publication=True)
    figures = Figures(result, ("municipality",), ("contacts",), store, "en", filters, comparison=comparison, publication=True)
    table = figures.table()
    assert table["Published version"].to_list() == ["figures perturbed for publishing"] * table.height
    assert all(v is None or v == 0 or v >= 5 for v in table["Contacts"].to_list()), "no published count of 1-4"
    assert "figures perturbed for publishing" in figures.subtitle()
    assert "Compared with 1 Oct 2025–31 Oct 2025" in figures.subtitle()
    exact = Figures(result, ("municipality",), ("contacts",), store, "en", filters)
    assert "Published version" not in exact.table().columns


def test_a_drawing_that_fails_in_its_child_says_why_and_writes_nothing_outside_its_folder(tmp_path):
    """Pictures and the report are drawn in a child process (dashboard/drawing.py): its
    failure reaches the caller as one sentence, and a picture's name cannot leave the
    report's folder."""
    from dashboard import drawing

    source = tmp_path / "board.typ"
    source.write_text('#image("chart.svg")\n', encoding="utf-8")
    spec = {"mark": "point", "data": {"values": [{"x": 1}]}, "encoding": {"x": {"field": "x", "type": "quantitative"}}}
    pdf = drawing.typst_pdf(str(source), root=str(tmp_path), inputs={}, pictures={"chart.svg": spec})
    assert pdf.startswith(b"%PDF") and (tmp_path / "chart.svg").read_text(encoding="utf-8").startswith("<svg")
    outside = tmp_path.parent / "escaped.svg"
    with pytest.raises(drawing.DrawingFailed, match="outside the report's folder"):
        drawing.typst_pdf(str(source), root=str(tmp_path), inputs={}, pictures={"../escaped.svg": spec})
    assert not outside.exists()
    with pytest.raises(drawing.DrawingFailed, match=r"No such file"):
        drawing.typst_pdf(str(tmp_path / "missing.typ"), root=str(tmp_path), inputs={})
    with pytest.raises(ValueError, match="unknown picture format"):
        drawing.vegalite(spec, fmt="gif")
