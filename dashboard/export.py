"""Exports of registry results: CSV and JSON for the CLI, and the dashboard's downloads of
the data behind every chart and table (``data_table``: numbers as numbers, with intervals
and n) as CSV for a Finnish spreadsheet and as XLSX.

Values are machine-readable (dot decimal); small counts read "<threshold", counts hidden to
protect another read "..", and other hidden values are left empty, with the metric named in
the ``suppressed`` column.
Text cells that a spreadsheet would run as a formula are prefixed with an apostrophe.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
from typing import Any

import polars as pl

from dashboard import drawing
from dashboard.formatting import format_moment, format_range, hidden_text, suppressed_text
from dashboard.i18n import code_label, t
from dashboard.presenters import dimension_title, labels_for, pivot, place_names
from data_access.metrics import REGISTRY, TIME_DIMENSIONS, Filters, Scope
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
    GIL waiting for those same workers (a frame converted for a page's table). Two
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


def metrics_json(result: pl.DataFrame, *, by: list[str], store: FactSource, perturbed: bool = False) -> str:
    """Long form: one object per group and metric, with the suppression flag; ``perturbed``
    says that the counts were perturbed for publication. The metric's unit is ``metric_unit``,
    and also ``unit`` as before unless the rows are grouped by the organisational unit, whose
    code ``unit`` then is."""
    threshold = store.settings.small_cell_threshold
    records = []
    for record in result.with_columns(pl.col(pl.Date).cast(pl.String)).iter_rows(named=True):
        metric = REGISTRY[record["metric"]]
        groups = {dim: record[dim] for dim in by}
        records.append(
            {
                **groups,
                "metric": record["metric"],
                "unit": metric.unit,
                "metric_unit": metric.unit,
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
            | groups  # the grouping's value wins over a field of the same name
        )
    return json.dumps({"data_version": store.version, "perturbed": perturbed, "rows": records}, ensure_ascii=False, indent=1)


def data_table(
    result: pl.DataFrame, *, by: list[str], store: FactSource, language: str, metrics: list[str] | None = None
) -> pl.DataFrame:
    """The figures behind a chart or table for a spreadsheet: one row per group; each group's
    code and name; each metric's value as a number (shares as fractions), with a share's 95 %
    interval and n beside it; a hidden value is empty, and the last column names what is
    hidden and why ("Kanava: <5"). Headers in ``language``."""
    threshold = store.settings.small_cell_threshold
    keys = metrics or list(dict.fromkeys(result["metric"].to_list()))
    cells = pivot(result, by=by, metrics=keys)
    labels = {
        d: labels_for(store, d, {group[i] for group in cells}, language) for i, d in enumerate(by) if d not in TIME_DIMENSIONS or d == "weekday"
    }
    columns: dict[str, list[object]] = {}
    schema: dict[str, pl.DataType | type[pl.DataType]] = {}

    def add(name: str, dtype: pl.DataType | type[pl.DataType], values: list[object]) -> None:
        columns[name], schema[name] = values, dtype

    groups = sorted(cells, key=lambda group: tuple((v is None, "" if v is None else v) for v in group))
    for i, dimension in enumerate(by):
        title = dimension_title(dimension, language)
        values = [group[i] for group in groups]
        if dimension in labels:
            add(f"{title} ({t('export.code', language)})", pl.String, [None if v is None else str(v) for v in values])
            add(title, pl.String, [labels[dimension].get(v, "") if v is not None else t("common.unknown", language) for v in values])
        else:  # a time: as the result holds it (a date, an hour)
            add(title, result.schema[dimension], values)
    hidden_notes: list[list[str]] = [[] for _ in groups]
    for key in keys:
        metric = REGISTRY[key]
        label = metric.label(language)
        records = [cells[group].get(key) for group in groups]
        shown = [r if r is not None and not r["suppressed"] else None for r in records]
        for row, record in enumerate(records):
            if record is not None and record["suppressed"]:
                hidden_notes[row].append(f"{label}: {suppressed_text(threshold, metric.unit, secondary=bool(record.get('secondary')))}")
        if metric.unit == "count":
            add(label, pl.Int64, [None if r is None or r["value"] is None else round(r["value"]) for r in shown])
        else:
            add(label, pl.Float64, [None if r is None else r["value"] for r in shown])
        if metric.unit == "share":
            add(f"{label}, {t('export.ci_low', language)}", pl.Float64, [None if r is None else r["ci_low"] for r in shown])
            add(f"{label}, {t('export.ci_high', language)}", pl.Float64, [None if r is None else r["ci_high"] for r in shown])
            add(f"{label}, n", pl.Int64, [None if r is None or r["denominator"] is None else round(r["denominator"]) for r in shown])
    add(t("export.hidden", language), pl.String, ["; ".join(notes) for notes in hidden_notes])
    return pl.DataFrame(columns, schema=schema)


def spreadsheet_csv(table: pl.DataFrame) -> bytes:
    """CSV as a Finnish spreadsheet reads it: semicolons, decimal commas (numbers stay
    numbers), dates as ISO, UTF-8 with BOM, no text cell run as a formula."""
    buffer = io.BytesIO()
    floats = [name for name, dtype in table.schema.items() if dtype == pl.Float64]
    safe_frame(table).with_columns(pl.col(floats).round(6)).write_csv(buffer, separator=";", decimal_comma=True)
    return "\ufeff".encode() + buffer.getvalue()


def xlsx_bytes(table: pl.DataFrame, *, share_columns: list[str] | None = None, sheet: str = "Ohjaustaulu") -> bytes:
    """The table as an Excel workbook: numbers as numbers with their format (shares as
    per cent), dates as dates; text is written as text, never as a formula."""
    buffer = io.BytesIO()
    formats = {name: "0.0%" for name in share_columns or []}
    formats.update({name: "0.0" for name, dtype in table.schema.items() if dtype == pl.Float64 and name not in formats})
    table.write_excel(buffer, worksheet=sheet[:31], column_formats=formats, dtype_formats={pl.Date: "d.m.yyyy"}, autofit=True)  # type: ignore[arg-type]
    return buffer.getvalue()


def share_columns(table: pl.DataFrame, metrics: list[str], language: str) -> list[str]:
    """The columns of ``data_table`` that hold shares (and their interval)."""
    names = []
    for key in metrics:
        if REGISTRY[key].unit == "share":
            label = REGISTRY[key].label(language)
            names += [label, f"{label}, {t('export.ci_low', language)}", f"{label}, {t('export.ci_high', language)}"]
    return [n for n in names if n in table.columns]


@dataclasses.dataclass(frozen=True)
class Figures:
    """What a chart or table shows, for its downloads: made into a file only when one is
    asked for (on the download's own thread), from the result as the page had it."""

    result: pl.DataFrame
    by: tuple[str, ...]
    metrics: tuple[str, ...]
    store: FactSource
    language: str
    # What the page was asked with, for the lines under a chart picture's title.
    filters: Filters | None = None
    scope: Scope = dataclasses.field(default_factory=Scope.everything)
    # The comparison period, when the chart draws it too.
    comparison: Filters | None = None
    # Published figures (cell-key method): the files and pictures say so.
    publication: bool = False

    @property
    def title(self) -> str:
        """A chart picture's title: the measure it shows (the first)."""
        return REGISTRY[self.metrics[0]].label(self.language)

    def subtitle(self) -> list[str]:
        """Under a chart picture's title: the period, the places shown (chosen, else those the
        user may see), other filters, the source with its time and, when something is hidden,
        what the marks mean."""
        language, filters = self.language, self.filters
        lines: list[str] = []
        if filters is not None:
            lines.append(format_range(filters.start, filters.end, language))
            if self.comparison is not None:
                lines.append(t("export.compared", language, period=format_range(self.comparison.start, self.comparison.end, language)))
            seen = self.scope.municipalities
            level, codes = (
                ("municipality", filters.municipalities) if filters.municipalities
                else ("region", filters.regions) if filters.regions
                else ("municipality", tuple(sorted(seen))) if seen is not None else ("", ())
            )
            if level:
                names = sorted(labels_for(self.store, level, codes, language).values())
                lines.append(", ".join(names[:6]) + (f" (+{len(names) - 6})" if len(names) > 6 else ""))
            for dimension, chosen in (("channel", filters.channels), ("service_line", filters.service_lines), ("age_band", filters.age_bands)):
                if chosen:
                    lines.append(f"{dimension_title(dimension, language)}: {', '.join(code_label(dimension, c, language) for c in chosen)}")
        lines.append(t("export.source", language, time=format_moment(self.store.as_of, language, today=dt.date.min)))
        if not self.result.is_empty() and self.result["suppressed"].any():
            lines.append(t("export.hidden_short", language, threshold=self.store.settings.small_cell_threshold))
        if self.publication:
            lines.append(t("publication.short", language))
        return lines

    def table(self) -> pl.DataFrame:
        table = data_table(self.result, by=list(self.by), store=self.store, language=self.language, metrics=list(self.metrics))
        if self.publication:  # each row says it: a row copied elsewhere keeps it
            table = table.with_columns(pl.lit(t("publication.short", self.language)).alias(t("publication.column", self.language)))
        return table

    def csv(self) -> bytes:
        return spreadsheet_csv(self.table())

    def parquet(self) -> bytes:
        buffer = io.BytesIO()
        self.table().write_parquet(buffer)
        return buffer.getvalue()

    def xlsx(self) -> bytes:
        table = self.table()
        return xlsx_bytes(table, share_columns=share_columns(table, list(self.metrics), self.language))


def chart_image(
    chart: dict[str, Any] | Any, *, fmt: str, title: str = "", subtitle: list[str] | tuple[str, ...] = (), width: int = 800
) -> bytes:
    """A chart (a Vega-Lite spec, or an Altair chart) as a picture drawn on the server
    (vl-convert, in a child process: dashboard/drawing.py): PNG (twice the pixels) or SVG."""
    return drawing.vegalite(picture_spec(chart, title=title, subtitle=subtitle, width=width), fmt=fmt, scale=2)


def picture_spec(
    chart: dict[str, Any] | Any, *, title: str = "", subtitle: list[str] | tuple[str, ...] = (), width: int = 800
) -> dict[str, Any]:
    """The spec of a chart's picture: white, ``width`` px wide, with room for the last axis
    label; titled, with the period, filters and source under the title, when given."""
    spec = chart if isinstance(chart, dict) else chart.to_dict()
    picture: dict[str, Any] = json.loads(json.dumps(spec))  # a copy: the spec is shared with the page
    if title:
        picture["title"] = {"text": title, "subtitle": list(subtitle), "anchor": "start", "fontSize": 16, "subtitleFontSize": 11, "offset": 12}
    picture["background"] = "white"
    picture["padding"] = {"left": 10, "right": 40, "top": 10, "bottom": 10}
    if not any(k in picture for k in ("hconcat", "vconcat", "concat", "facet")):
        picture["width"] = width
    return picture
