"""Tutki: any measure of the registry by up to two dimensions, with the sidebar's filters.

The whole question is in the URL as codes (measure, rows, columns, top, sort), so a link
reopens it in any language. Every figure comes through the registry's one exit (scope and
small-count protection hold); an "others" row is the total less the figures shown, so it tells
nothing the total and the shown cells do not. A question the registry cannot answer, or whose
answer would be mostly hidden, is refused with a sentence saying why.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from dashboard.charts import bar_chart, cached_spec, heatmap, line_chart
from dashboard.components import chart_block, empty_state
from dashboard.filters import url_segmented, url_select
from dashboard.formatting import SECONDARY_MARK, format_number, format_value, hidden_text, suppressed_text
from dashboard.i18n import t
from dashboard.presenters import dimension_title, display_table, labels_for, plot_frame
from dashboard.sections import figures_of, time_filters
from dashboard.state import Context, query
from data_access.metrics import DIMENSIONS, REGISTRY

TIMES = ("day", "week", "month", "quarter")
CATEGORIES = (
    "region", "municipality", "channel", "service_line", "initiator", "destination", "reason", "outcome", "age_band",
    "professional_group", "unit", "source_system", "weekday", "hour", "process", "identified_by", "domain",
)
NONE = "none"
TOPS = ("5", "10", "20", "all")
# More groups than this is not a table anyone reads, nor a figure the small-count rule leaves.
MAX_CELLS = 1500
# Refused when more of the cells than this would be hidden: the answer would be mostly marks.
MAX_HIDDEN_SHARE = 0.5


class Refusal(Exception):
    """A question the explorer does not answer; its text says why, for a manager."""


def dimensions_of(metric: str) -> list[str]:
    source = REGISTRY[metric].source
    return [d for d in (*TIMES, *CATEGORIES) if source in DIMENSIONS.get(d, ())]


def controls(ctx: Context) -> tuple[str, str, str | None, int | None, str]:
    language = ctx.language
    measure = url_select(
        t("explore.measure", language), list(REGISTRY), key="measure", default="first_contact_resolution",
        format_func=lambda m: REGISTRY[m].label(language),
    )
    available = dimensions_of(measure)
    left, right = st.columns(2)
    with left:
        rows = url_select(t("explore.rows", language), available, key="rows", default="channel" if "channel" in available else available[0],
                          format_func=lambda d: dimension_title(d, language))
    with right:
        columns = url_select(t("explore.columns", language), [NONE, *available], key="cols", default=NONE,
                             format_func=lambda d: t("explore.no_columns", language) if d == NONE else dimension_title(d, language))
    left, right = st.columns(2)
    with left:
        top = url_segmented(t("explore.top", language), TOPS, key="top", default="all",
                            format_func=lambda n: t("explore.all", language) if n == "all" else n)
    with right:
        order = url_segmented(t("explore.sort", language), ("value", "label"), key="sort", default="value",
                              format_func=lambda o: t(f"explore.sort_{o}", language))
    return measure, rows, None if columns == NONE else columns, None if top == "all" else int(top), order


def ask(ctx: Context, measure: str, rows: str, columns: str | None) -> pl.DataFrame:
    """The registry's answer, or a Refusal saying why there is none."""
    language = ctx.language
    if columns == rows:
        raise Refusal(t("explore.refuse_same", language))
    if rows in TIMES and columns in TIMES:
        raise Refusal(t("explore.refuse_two_times", language))
    by = [rows, *([columns] if columns else [])]
    grain = next((d for d in by if d in TIMES), None)
    result = query(ctx, [measure], by=by, filters=time_filters(ctx, grain) if grain else None)
    if result.height > MAX_CELLS:
        raise Refusal(t("explore.refuse_too_fine", language, cells=format_number(result.height, language=language)))
    if not result.is_empty() and result["suppressed"].mean() > MAX_HIDDEN_SHARE:  # type: ignore[operator]
        raise Refusal(t("explore.refuse_hidden", language, threshold=ctx.settings.small_cell_threshold))
    return result


def top_groups(result: pl.DataFrame, dimension: str, top: int | None, order: str, labels: dict[Any, str]) -> list[Any]:
    """The groups of ``dimension`` shown, in order: by value (largest first, hidden last) or by
    label; the first ``top`` of them when asked. Equal values and equal labels go by the
    group's code, so the same question gives the same groups on every run (group_by gives
    them in any order)."""
    totals = (
        result.group_by(dimension).agg(pl.col("value").max().alias("value"), pl.col("suppressed").all().alias("hidden"))
        .sort(dimension, nulls_last=True)
    )
    by_code = {group: rank for rank, group in enumerate(totals[dimension].to_list())}
    if order == "value" or top is not None:
        totals = totals.sort(["hidden", "value"], descending=[False, True], nulls_last=True, maintain_order=True)
    groups = totals[dimension].to_list()
    if top is not None:
        groups = [g for g, hidden in zip(groups, totals["hidden"].to_list(), strict=True) if not hidden][:top]
    if order == "label":
        groups = sorted(groups, key=lambda g: (str(labels.get(g, g)), by_code[g]))
    return groups


def among(result: pl.DataFrame, dimension: str, groups: list[Any]) -> pl.DataFrame:
    """The rows of ``groups``, the unknown group (null) too when it is one of them: is_in
    passes no null, and the unknown group never appeared as a row."""
    chosen = pl.col(dimension).is_in([g for g in groups if g is not None])
    return result.filter(chosen | pl.col(dimension).is_null() if None in groups else chosen)


def others_text(ctx: Context, result: pl.DataFrame, measure: str, shown: pl.DataFrame) -> str | None:
    """The groups not shown, as one figure: the total less what is shown (counts; shares from
    their counts). Nothing the total and the shown cells do not already tell; hidden below
    the threshold like any count."""
    metric = REGISTRY[measure]
    if metric.unit not in ("count", "share") or metric.share_of_total or shown.height == result.height:
        return None
    total = query(ctx, [measure]).row(0, named=True)
    threshold = ctx.settings.small_cell_threshold
    if metric.unit == "count":
        rest = float(total["value"] or 0) - float(shown["value"].fill_null(0).sum())
        return f"<{threshold}" if total["suppressed"] or rest < threshold else format_value(rest, "count", language=ctx.language)
    numerator = float(total["numerator"] or 0) - float(shown["numerator"].fill_null(0).sum())
    denominator = float(total["denominator"] or 0) - float(shown["denominator"].fill_null(0).sum())
    if total["suppressed"] or denominator < threshold:
        return hidden_text({"value": None, "suppressed": True, "secondary": False, "denominator": denominator}, threshold, "share")
    return format_value(numerator / denominator, "share", language=ctx.language)


def cross_table(table: pl.DataFrame, rows: str, columns: str, values: str, unit: str, language: str) -> pl.DataFrame:
    """The shown table with ``columns``' values across. A pair with no row is a true zero for a
    count (no contact had both) and no figure for anything else; polars leaves it empty, which
    read "None"."""
    wide = table.pivot(on=columns, index=rows, values=values)
    empty = format_value(0 if unit == "count" else None, unit, language=language)
    return wide.with_columns(pl.col(c).fill_null(empty) for c in wide.columns if c != rows)


def show(ctx: Context) -> None:
    language = ctx.language
    measure, rows, columns, top, order = controls(ctx)
    try:
        result = ask(ctx, measure, rows, columns)
    except Refusal as refusal:
        st.warning(str(refusal), icon=":material/block:")
        return
    if result.is_empty() or result["value"].is_null().all():
        empty_state(language, result)
        return
    labels = labels_for(ctx.store, rows, result[rows].unique().to_list(), language) if rows not in TIMES else {}
    by = [rows, *([columns] if columns else [])]
    groups = None if rows in TIMES else top_groups(result, rows, top, order, labels)
    shown = result if groups is None else among(result, rows, groups)
    metric = REGISTRY[measure]
    table = display_table(shown, by=by, store=ctx.store, language=language, metrics=[measure])
    if columns:
        table = cross_table(table, dimension_title(rows, language), dimension_title(columns, language), metric.label(language), metric.unit, language)
    if groups is not None and order == "value":  # display_table sorts by name
        position = {labels.get(g, g): i for i, g in enumerate(groups)}
        table = table.with_columns(pl.col(table.columns[0]).replace_strict(position, default=len(position)).alias("_order")).sort("_order").drop("_order")
    if not columns:
        rest = others_text(ctx, result, measure, shown)
        if rest is not None:
            table = pl.concat([table, pl.DataFrame({table.columns[0]: [t("explore.others", language)], table.columns[1]: [rest]})])
    chart = _chart(ctx, shown, measure, rows, columns, row_order=table[table.columns[0]].to_list() if groups is not None and order == "value" else None)
    figures = figures_of(ctx, shown, by, [measure])
    chart_block(chart, table, key="explore", language=language, figures=figures, parquet=True)


def _chart(ctx: Context, result: pl.DataFrame, measure: str, rows: str, columns: str | None, row_order: list[str] | None = None) -> dict[str, Any]:
    """A line over time, bars for categories, a heatmap for two categories."""
    language = ctx.language
    metric = REGISTRY[measure]
    by = [rows, *([columns] if columns else [])]
    frame = plot_frame(result, metric=measure, by=by, store=ctx.store, language=language)
    value = metric.label(language)
    time = next((d for d in by if d in TIMES), None)
    if time is not None:
        other = next((d for d in by if d != time), None)
        return cached_spec(
            line_chart, frame, x=dimension_title(time, language), y=value, unit=metric.unit, language=language,
            colour=dimension_title(other, language) if other else None,
            band=("ci_low", "ci_high") if metric.unit == "share" and not other else None, grain=time,
        )
    if columns:
        threshold = ctx.settings.small_cell_threshold
        frame = frame.with_columns(
            pl.when(pl.col("suppressed")).then(pl.when(pl.col("secondary")).then(pl.lit(SECONDARY_MARK)).otherwise(pl.lit(suppressed_text(threshold, metric.unit))))
            .otherwise(None).alias("mark")
        )
        names = frame[dimension_title(rows, language)].unique(maintain_order=True).drop_nulls().to_list()
        if row_order is not None:  # "by value": the rows in the table's order
            names = sorted(names, key=lambda name: row_order.index(name) if name in row_order else len(row_order))
        return cached_spec(
            heatmap, frame, x=dimension_title(columns, language), y=dimension_title(rows, language), value=value, language=language, unit=metric.unit,
            y_order=names, mark="mark",
        )
    return cached_spec(
        bar_chart, frame.filter(pl.col(value).is_not_null()), category=dimension_title(rows, language), value=value, unit=metric.unit,
        language=language, interval=("ci_low", "ci_high") if metric.unit == "share" and not metric.share_of_total else None,
    )
