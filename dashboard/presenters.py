"""Registry results made readable: codes to labels, values to Finnish-formatted text.

The only place where result frames are reshaped for people; pages stay thin and charts
receive tidy frames.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

import polars as pl

from dashboard.formatting import format_date, format_moment, format_period, format_range, format_value, hidden_text
from dashboard.i18n import catalogue, code_label, place_name_column, t
from data_access import codes
from data_access.config import Settings
from data_access.metrics import COLUMN_OF, REGISTRY, TIME_DIMENSIONS, Filters
from data_access.periods import align_bucket
from data_access.snapshot import FactSource

CODE_DIMENSIONS = {
    "channel", "service_line", "age_band", "initiator", "destination", "professional_group", "weekday", "reason", "outcome",
    "process", "identified_by", "domain",
}


def code_colours(dimension: str | None, language: str) -> tuple[list[str], list[str]] | None:
    """Labels of a code list in code order with a colour each, so a channel keeps its colour in
    every chart and language (None for lists longer than the palette)."""
    from dashboard.charts import PALETTE

    codes_of = {"channel": codes.CHANNELS, "service_line": codes.SERVICE_LINES, "age_band": codes.AGE_BANDS, "initiator": codes.INITIATORS}
    if dimension not in codes_of or len(codes_of[dimension]) > len(PALETTE):
        return None
    labels = [code_label(dimension, code, language) for code in codes_of[dimension]]
    return labels, PALETTE[: len(labels)]


def target_line(metric: str, settings: Settings, language: str) -> tuple[float | None, str]:
    """A metric's target and the label of its line on a chart ("tavoite 50,0 %"); (None, "")
    for a metric without one."""
    definition = REGISTRY[metric]
    target = definition.target(settings)
    if target is None:
        return None, ""
    return target, t("card.target", language, target=format_value(target, definition.unit, language=language))


def metric_label(metric: str, language: str) -> str:
    return REGISTRY[metric].label(language)


def dimension_title(dimension: str, language: str) -> str:
    return t(f"dimension.{dimension}", language)


def place_names(store: FactSource, level: str, language: str) -> dict[str, str]:
    """The one place-name lookup: municipality (or county, ``level`` "region") code to its
    name in the user's language (Swedish names in Swedish)."""
    code = {"municipality": "municipality_code", "region": "region_code"}[level]
    return dict(store.municipalities.select(code, place_name_column(level, language)).unique(subset=code).iter_rows())


def labels_for(store: FactSource, dimension: str, values: Iterable[object], language: str) -> dict[object, str]:
    """Each value's label for people; places looked up once for all of them (a lookup per
    value rebuilt the name table for every municipality of a table)."""
    names = place_names(store, dimension, language) if dimension in ("municipality", "region") else {}
    labels: dict[object, str] = {}
    for value in values:
        if value is None:
            labels[value] = t("common.unknown", language)
        elif names:
            labels[value] = names.get(str(value), str(value))
        elif dimension in CODE_DIMENSIONS:
            labels[value] = code_label(dimension, str(value), language)
        elif isinstance(value, dt.date):
            labels[value] = format_date(value, language)
        else:
            labels[value] = str(value)
    return labels


def label_for(store: FactSource, dimension: str, value: object, language: str) -> str:
    return labels_for(store, dimension, [value], language)[value]


def with_labels(result: pl.DataFrame, *, by: list[str], store: FactSource, language: str) -> pl.DataFrame:
    """Add a ``<dimension>_label`` column for each non-time grouping."""
    for dimension in by:
        if dimension in TIME_DIMENSIONS and dimension != "weekday":
            continue
        values = result[dimension].unique().to_list()
        mapping = labels_for(store, dimension, values, language)
        result = result.with_columns(
            pl.col(dimension).replace_strict(mapping, default=None, return_dtype=pl.String).alias(f"{dimension}_label")
        )
    return result


def plot_frame(result: pl.DataFrame, *, metric: str, by: list[str], store: FactSource, language: str) -> pl.DataFrame:
    """One metric, labelled for a chart: label columns named for people, value and interval."""
    frame = with_labels(result.filter(pl.col("metric") == metric), by=by, store=store, language=language)
    value_title = REGISTRY[metric].label(language)
    columns = []
    for dimension in by:
        source = dimension if dimension in TIME_DIMENSIONS and dimension != "weekday" else f"{dimension}_label"
        columns.append(pl.col(source).alias(dimension_title(dimension, language)))
    return frame.select(
        *columns,
        pl.col("value").alias(value_title),
        pl.col("ci_low"),
        pl.col("ci_high"),
        pl.col("denominator").alias("n"),
        pl.col("suppressed"),
        pl.col("secondary") if "secondary" in frame.columns else pl.lit(False).alias("secondary"),
    )


def pivot(result: pl.DataFrame, *, by: list[str], metrics: list[str]) -> dict[tuple[Any, ...], dict[str, dict[str, Any]]]:
    """The one pivot behind every table, on screen and in exports: each group (its values of
    ``by``) with its record of each metric, in one pass over the rows (a filter per group and
    metric took seconds on a three-year table by day and channel)."""
    cells: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for row in result.filter(pl.col("metric").is_in(metrics)).iter_rows(named=True):
        cells.setdefault(tuple(row[d] for d in by), {})[row["metric"]] = row
    if not by and not cells:
        cells[()] = {}
    return cells


def _sort_key(value: object) -> tuple[bool, object]:
    return (value is not None, value if value is not None else "")


def display_table(
    result: pl.DataFrame, *, by: list[str], store: FactSource, language: str, metrics: list[str] | None = None
) -> pl.DataFrame:
    """A table of formatted text: one row per group, one column per metric; hidden cells
    carry their mark ("<5", "(n<5)", "..")."""
    threshold = store.settings.small_cell_threshold
    keys = metrics or list(dict.fromkeys(result["metric"].to_list()))
    cells = pivot(result, by=by, metrics=keys)
    labels = {
        d: labels_for(store, d, {group[i] for group in cells}, language)
        for i, d in enumerate(by) if d not in TIME_DIMENSIONS or d == "weekday"
    }
    # People look places and codes up by name: groups sort by their label; times (weekdays
    # included) keep their own order.
    def order(group: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(_sort_key(v if d in TIME_DIMENSIONS else labels[d][v]) for d, v in zip(by, group, strict=True))

    rows = []
    for group in sorted(cells, key=order):
        row: dict[str, str] = {}
        for dimension, value in zip(by, group, strict=True):
            shown = labels[dimension][value] if dimension in labels else format_period(value, dimension, language)
            row[dimension_title(dimension, language)] = str(shown) if shown is not None else t("common.unknown", language)
        for key in keys:
            metric = REGISTRY[key]
            record = cells[group].get(key)
            row[metric.label(language)] = "—" if record is None else (
                hidden_text(record, threshold, metric.unit) if record["suppressed"] else format_value(record["value"], metric.unit, language=language)
            )
        rows.append(row)
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]} if rows else None)


def value_text(record: dict | None, *, metric: str, threshold: int, language: str) -> str:
    if record is None:
        return "—"
    if record["suppressed"]:
        return hidden_text(record, threshold, REGISTRY[metric].unit)
    return format_value(record["value"], REGISTRY[metric].unit, language=language)


def column_of(dimension: str) -> str:
    return COLUMN_OF.get(dimension, dimension)


def plot_frame_metrics(
    result: pl.DataFrame, *, metrics: list[str], by: list[str], store: FactSource, language: str
) -> pl.DataFrame:
    """Several metrics in one long frame for a chart coloured by metric."""
    frames = []
    for metric in metrics:
        frame = plot_frame(result, metric=metric, by=by, store=store, language=language)
        value = REGISTRY[metric].label(language)
        frames.append(
            frame.rename({value: t("common.value", language)}).with_columns(pl.lit(value).alias(t("common.metric", language)))
        )
    return pl.concat(frames, how="vertical_relaxed")


def with_comparison(
    frame: pl.DataFrame, earlier: pl.DataFrame, *, grain: str, now: Filters, before: Filters, language: str
) -> tuple[pl.DataFrame, tuple[str, str, str]]:
    """One metric's plot frames of the period and of its comparison period in one frame, the
    comparison's buckets moved onto the period's time axis (periods.align_bucket), and the
    series for charts.line_chart: the column naming the period and the two labels."""
    x = frame.columns[0]
    column = t("chart.series", language)
    labels = (
        t("chart.period_series", language, period=format_range(now.start, now.end, language)),
        t("chart.comparison_series", language, period=format_range(before.start, before.end, language)),
    )
    moved = [align_bucket(day, grain, source=before.start, target=now.start) for day in earlier[x].to_list()]
    earlier = earlier.with_columns(
        pl.Series(x, moved, dtype=frame.schema[x]), pl.lit(None, pl.Float64).alias("ci_low"), pl.lit(None, pl.Float64).alias("ci_high"),
    ).filter(pl.col(x).is_between(now.start, now.end))
    both = pl.concat([frame.with_columns(pl.lit(labels[0]).alias(column)), earlier.with_columns(pl.lit(labels[1]).alias(column))], how="vertical_relaxed")
    return both, (column, *labels)


def change_table(
    current: pl.DataFrame, previous: pl.DataFrame | None, *, by: list[str], metrics: list[str], store: FactSource, language: str
) -> pl.DataFrame:
    """The display table plus a change column per metric against the comparison period."""
    table = display_table(current, by=by, store=store, language=language, metrics=metrics)
    if previous is None or table.is_empty():
        return table
    keys = [dimension_title(d, language) for d in by]
    labelled = []
    for frame in (current, previous):
        named = with_labels(frame, by=by, store=store, language=language)
        labelled.append(named.rename({f"{d}_label": dimension_title(d, language) for d in by}))
    changes = []
    for metric in metrics:
        unit = REGISTRY[metric].unit
        now = labelled[0].filter(pl.col("metric") == metric).select(*keys, pl.col("value").alias("now"))
        before = labelled[1].filter(pl.col("metric") == metric).select(*keys, pl.col("value").alias("before"))
        joined = now.join(before, on=keys, how="left")
        title = t("common.change", language, metric=REGISTRY[metric].label(language))
        texts = []
        for row in joined.iter_rows(named=True):
            texts.append(change_text(row["now"], row["before"], unit=unit, language=language) or "—")
        changes.append(joined.select(*keys).with_columns(pl.Series(title, texts, dtype=pl.String)))
    for change in changes:
        table = table.join(change, on=keys, how="left")
    return table


CHANGE_FORMS = {"share": ("delta.pp", 1), "count": ("delta.relative", 1), "per_1000": ("delta.relative", 1), "seconds": ("delta.seconds", 0)}


def change_text(now: float | None, before: float | None, *, unit: str, language: str, zero_as_none: bool = False) -> str | None:
    """The one definition of a change, for cards and tables alike: a share in percentage
    points, a count or rate in per cent of the earlier value, a queue time in seconds, a score
    as a plain difference. None when there is nothing to compare (a hidden or missing value,
    a relative change from zero) and, with ``zero_as_none``, when it rounds to zero (a card's
    arrow reads the sign)."""
    from dashboard.formatting import format_number

    if now is None or before is None:
        return None
    key, decimals = CHANGE_FORMS.get(unit, ("delta.plain", 1))
    if key == "delta.relative":
        if not before:
            return None
        change = (now - before) / before * 100
    else:
        change = (now - before) * (100 if unit == "share" else 1)
    if round(change, decimals) == 0:
        return None if zero_as_none else t(key, language, value=format_number(0, decimals=decimals, language=language))
    sign = "+" if change > 0 else "-"
    return t(key, language, value=sign + format_number(abs(change), decimals=decimals, language=language))


def usual_volume_table(current: pl.DataFrame, earlier: list[pl.DataFrame], *, language: str, threshold: int) -> pl.DataFrame:
    """Today so far against the usual, per source system; suppressed counts stay "<n"."""
    from dashboard.formatting import SECONDARY_MARK, format_number

    # The usual is the mean over all the earlier days: a day without rows for a source counts
    # as zero, not as a day left out. With a hidden day it is not shown: a mean of the rest
    # would be wrong, and a mean of all would give the hidden count away.
    usual = (
        pl.concat([e.select("source_system", "value", "suppressed") for e in earlier])
        .group_by("source_system")
        .agg((pl.col("value").sum() / len(earlier)).alias("usual"), pl.col("suppressed").any().alias("usual_hidden"))
        .with_columns(pl.when(pl.col("usual_hidden")).then(None).otherwise(pl.col("usual")).alias("usual"))
        if earlier else pl.DataFrame(schema={"source_system": pl.String, "usual": pl.Float64, "usual_hidden": pl.Boolean})
    )
    joined = current.select("source_system", "value", "suppressed", "secondary").join(usual, on="source_system", how="full", coalesce=True)
    # A source with no rows on any earlier day: zero as usual.
    joined = joined.with_columns(
        pl.when(pl.col("usual_hidden").is_null()).then(0.0).otherwise(pl.col("usual")).alias("usual"),
        pl.col("usual_hidden").fill_null(False),
    )
    rows = []
    for row in joined.sort("source_system").iter_rows(named=True):
        now_text = hidden_text(row, threshold) if row["suppressed"] else format_number(row["value"] or 0, language=language)
        # A usual left out for a hidden earlier day is marked as hidden (the legend explains
        # ".."), not "—", which read as "no data" for a source that sends every day.
        usual_text = SECONDARY_MARK if row["usual_hidden"] else "—" if row["usual"] is None else format_number(row["usual"], decimals=1, language=language)
        ratio = "—"
        if not row["suppressed"] and not row["usual_hidden"] and row["usual"]:
            ratio = format_number((row["value"] or 0) / row["usual"] * 100, language=language) + "\u00a0%"
        rows.append({
            t("dimension.source_system", language): row["source_system"],
            t("quality.today_so_far", language): now_text,
            t("quality.usual", language): usual_text,
            t("quality.of_usual", language): ratio,
        })
    return pl.DataFrame(rows, schema={k: pl.String for k in rows[0]}) if rows else pl.DataFrame()


REASON_KEYS = {
    "missing required value": "missing_required_value", "unknown value": "unknown_value",
    "not a municipality code": "not_a_municipality_code", "unknown municipality": "unknown_municipality",
    "not true or false": "not_true_or_false", "not a whole number": "not_a_whole_number", "not a time": "not_a_time",
    "local time does not exist": "daylight_saving", "longer than": "too_long",
    "outside the plausible time window": "outside_time_window",
}


def reason_label(reason: str, language: str) -> str:
    """'channel: unknown value' in the user's language; the field keeps its contract name."""
    field, _, message = reason.partition(": ")
    for prefix, key in REASON_KEYS.items():
        if message.startswith(prefix):
            return f"{field}: {t(f'reason.{key}', language)}"
    return reason


def audit_detail_text(text: str | None, language: str) -> str:
    """An audit row's details for a person: the period as dates, then each named value
    ("Kunnat: 091, 853"). A stored text that is not the expected JSON object is shown as it
    is: no stored value may break the page."""
    try:
        detail = json.loads(text or "{}")
    except ValueError:
        return text or ""
    if not isinstance(detail, dict):
        return text or ""
    parts: list[str] = []
    start, end = detail.pop("from", None), detail.pop("to", None)
    try:
        if start is not None and end is not None:
            parts.append(format_range(dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end)), language))
    except ValueError:
        parts.append(f"{start}–{end}")
    known = catalogue()
    for key, value in detail.items():
        label = t(f"audit.key.{key}", language) if f"audit.key.{key}" in known else str(key)
        if key == "signed_in_at" and isinstance(value, int | float) and 0 < value < 1e11:  # seconds since 1970
            shown = format_moment(dt.datetime.fromtimestamp(value, dt.UTC), language)
        else:
            shown = ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        parts.append(f"{label}: {shown}")
    return " · ".join(parts)
