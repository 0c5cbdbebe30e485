"""Exports that a spreadsheet opens safely, produced without stalling the server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
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
