"""Exports of registry results: CSV and JSON for the CLI and downloads.

Values are machine-readable (dot decimal); small counts read "<threshold", counts hidden to
protect another read "..", and other hidden values are left empty, with the metric named in
the ``suppressed`` column.
Text cells that a spreadsheet would run as a formula are prefixed with an apostrophe.
"""

from __future__ import annotations

import io
import json
import re

import polars as pl

from dashboard.formatting import hidden_text
from dashboard.presenters import pivot, place_names
from data_access.metrics import REGISTRY
from data_access.snapshot import FactSource

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = "^[" + re.escape("".join(FORMULA_START)) + "]"


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``safe_cell`` for every text column, as one polars expression per column.

    Not ``map_elements(safe_cell)``: a Python function inside polars runs on polars' worker
    threads, which must take the GIL to call it, while another session's thread may hold the
    GIL waiting for those same workers (DataFrame.to_pandas inside st.dataframe). Two
    sessions rendering at once deadlocked the whole server that way."""
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(_FORMULA_PATTERN)).then(pl.lit("'") + pl.col(name)).otherwise(pl.col(name)).alias(name)
        for name in text
    )


def _names(store: FactSource, by: list[str], language: str) -> dict[str, dict[str, str]]:
    return {level: place_names(store, level, language) for level in ("municipality", "region") if level in by}


def metrics_table(
    result: pl.DataFrame, *, by: list[str], store: FactSource, language: str = "fi", metrics: list[str] | None = None
) -> pl.DataFrame:
    """One row per group: names, then each metric's value (and interval and n for shares), in
    the order of ``metrics`` (else as the result has them)."""
    threshold = store.settings.small_cell_threshold
    keys = metrics or list(dict.fromkeys(result["metric"].to_list()))
    cells = pivot(result, by=by, metrics=keys)
    names = _names(store, by, language)
    rows = []
    for values in sorted(cells, key=lambda group: tuple((v is not None, v if v is not None else "") for v in group)):
        group = dict(zip(by, values, strict=True))
        row: dict[str, object] = dict(group)
        for dim, mapping in names.items():
            row[f"{dim}_name"] = mapping.get(group[dim], "")
        hidden: list[str] = []
        for key in keys:
            metric = REGISTRY[key]
            record = cells[values].get(key)
            value = None if record is None else record["value"]
            if record is not None and record["suppressed"]:
                hidden.append(key)
                value = hidden_text(record, threshold) if metric.unit == "count" else None
            row[key] = value if isinstance(value, str) else _machine(value, integer=metric.unit == "count")
            if metric.unit == "share":
                shown = record if record is not None and not record["suppressed"] else None
                row[f"{key}_ci_low"] = _machine(shown["ci_low"]) if shown else ""
                row[f"{key}_ci_high"] = _machine(shown["ci_high"]) if shown else ""
                row[f"{key}_n"] = _machine(shown["denominator"], integer=True) if shown else ""
            if metric.unit == "per_1000":
                row[f"{key}_note"] = None if record is None else record["note"]
        row["suppressed"] = " ".join(hidden)
        rows.append({k: safe_cell(v) for k, v in row.items()})
    columns = list(rows[0]) if rows else []
    return pl.DataFrame(
        [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows],
        schema={c: pl.String for c in columns}, orient="row",
    )


def _machine(value: float | None, *, integer: bool = False) -> str:
    """A value for machines: dot decimal, six decimals at most, whole counts without ".0"."""
    if value is None:
        return ""
    return str(round(value)) if integer else repr(round(float(value), 6))


def metrics_csv(result: pl.DataFrame, *, by: list[str], store: FactSource, language: str = "fi", metrics: list[str] | None = None) -> str:
    table = metrics_table(result, by=by, store=store, language=language, metrics=metrics)
    buffer = io.StringIO()
    table.write_csv(buffer)
    return buffer.getvalue()


def metrics_json(result: pl.DataFrame, *, by: list[str], store: FactSource) -> str:
    """Long form: one object per group and metric, with the suppression flag."""
    threshold = store.settings.small_cell_threshold
    records = []
    for record in result.with_columns(pl.col(pl.Date).cast(pl.String)).iter_rows(named=True):
        metric = REGISTRY[record["metric"]]
        records.append(
            {
                **{dim: record[dim] for dim in by},
                "metric": record["metric"],
                "unit": metric.unit,
                "value": record["value"],
                "numerator": record["numerator"],
                "denominator": record["denominator"],
                "ci_low": record["ci_low"],
                "ci_high": record["ci_high"],
                "suppressed": record["suppressed"],
                "secondary": record["secondary"],
                "display": hidden_text(record, threshold, metric.unit) if record["suppressed"] else None,
                "note": record["note"],
            }
        )
    return json.dumps({"data_version": store.version, "rows": records}, ensure_ascii=False, indent=1)
