"""Tables and chart specs on a page: handed to Streamlit as Arrow, or as text.

Streamlit serialises an Arrow table as it is. A polars frame for ``st.dataframe``, and a
spec's inline datasets (lists of records) for ``st.vega_lite_chart``, it first turns into a
pandas DataFrame, and so imports pandas: 44 MB resident (29 MB of it the process's own) in
a server that otherwise never needs it (docs/performance.md). And ``to_pandas`` on one polars
frame from two sessions' threads at once has deadlocked polars before (dashboard/live.py).

Any ``st.dataframe`` imports pyarrow (32 MB resident, most of it the library's code). The
overview shows none until asked: its few rows of freshness are a text table, and a chart's
table is drawn when its expander is opened (``table_expander``)."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
import streamlit as st

from dashboard.formatting import plain


def shown_table(table: pl.DataFrame, *, key: str) -> None:
    """``table`` without an index. ``lazy=False``: with it unset Streamlit imports pandas to
    ask whether the table is a pandas one; our tables are small and are sent whole, as before."""
    st.dataframe(table.to_arrow(), hide_index=True, key=key, lazy=False)


def table_expander(label: str, *, key: str) -> Any:
    """An expander whose content runs only while it is open (opening it reruns the page);
    ``.open`` says whether it is."""
    return st.expander(label, key=f"open_{key}", on_change="rerun")


def text_table(rows: list[dict[str, str]]) -> None:
    """A few rows of text as a Markdown table, every value escaped (it may come from a source
    system's name)."""
    if not rows:
        return
    names = list(rows[0])
    lines = ["| " + " | ".join(_cell(name) for name in names) + " |", "|" + " --- |" * len(names)]
    lines += ["| " + " | ".join(_cell(str(row.get(name, ""))) for name in names) + " |" for row in rows]
    st.markdown("\n".join(lines))


def _cell(text: str) -> str:
    """A value in one cell: escaped, its line breaks as spaces (a break ends a table row)."""
    return plain(" ".join(text.split()))


def shown_chart(spec: dict[str, Any], *, key: str) -> None:
    """A Vega-Lite spec (charts.cached_spec) with its named datasets as Arrow."""
    st.vega_lite_chart(arrow_datasets(spec), theme=None, key=key)


def arrow_datasets(spec: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``spec`` whose named datasets are Arrow IPC streams, the form
    Streamlit sends them in (it passes bytes through). Each column keeps its values and
    nulls; a dataset that is not a list of records, or whose column mixes types Arrow
    cannot hold in one column, is left to Streamlit as it is."""
    datasets = spec.get("datasets")
    if not isinstance(datasets, dict):
        return spec
    converted: dict[str, Any] = {}
    for name, records in datasets.items():
        converted[name] = _ipc(records) if isinstance(records, list) else records
    return {**spec, "datasets": converted}


def _ipc(records: list[Any]) -> Any:
    if not all(isinstance(record, dict) for record in records):
        return records
    names = list(dict.fromkeys(name for record in records for name in record))
    try:  # polars, not pyarrow: pyarrow's constructors import pandas to ask whether the input is pandas
        frame = pl.DataFrame({name: [record.get(name) for record in records] for name in names})
    except (TypeError, pl.exceptions.PolarsError):
        return records
    buffer = io.BytesIO()
    # the oldest format: plain (large) strings, which Streamlit's Arrow reader in the browser takes
    frame.write_ipc_stream(buffer, compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()
