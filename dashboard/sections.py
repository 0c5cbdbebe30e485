"""Page sections: each asks the registry, shapes the answer for people and places a chart
with its table and download. Pages call these and stay a description of the screen."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
import streamlit as st

from dashboard.charts import (
    bar_chart,
    cached_spec,
    funnel_plot,
    heatmap,
    line_chart,
    stacked_share_chart,
)
from dashboard.components import chart_block, empty_state, table_with_download
from dashboard.export import Figures
from dashboard.filters import url_segmented
from dashboard.formatting import format_date, format_value
from dashboard.i18n import code_label, t
from dashboard.plan import Ask, Fetch, asks, direct
from dashboard.presenters import (
    change_table,
    code_colours,
    dimension_title,
    display_table,
    labels_for,
    plot_frame,
    plot_frame_metrics,
    target_line,
    usual_volume_table,
    with_comparison,
)
from dashboard.state import Context, with_period
from data_access import codes
from data_access.metrics import REGISTRY, Filters, funnel_limits
from data_access.metrics.definitions import SCALE_MIN_ANSWERS as SCALE_MIN_ANSWERS  # the experience page states the rule
from data_access.periods import local_now, so_far_minute, whole_buckets

GRAINS = ("day", "week", "month")


def has_interval(metric: str) -> bool:
    """The registry gives a 95 % interval: shares (not of the whole), mean scores and NPS."""
    definition = REGISTRY[metric]
    return (definition.unit == "share" and not definition.share_of_total) or definition.unit in ("score", "nps", "mean")


def default_grain(ctx: Context) -> str:
    days = (ctx.filters.end - ctx.filters.start).days + 1
    return "day" if days <= 92 else "week" if days <= 400 else "month"


def grain_selector(ctx: Context) -> str:
    """Day, week or month for the time charts of a page; the default follows the period length."""
    grain = url_segmented(
        t("common.grain", ctx.language), GRAINS, default=default_grain(ctx), format_func=lambda g: t(f"dimension.{g}", ctx.language), key="grain",
    )
    grain_note(ctx, grain)
    return grain


def figures_of(
    ctx: Context, result: pl.DataFrame, by: list[str], metrics: list[str], *, comparison: Filters | None = None
) -> Figures:
    """The figures behind a section, for its downloads: files and pictures are made only
    when a download is pressed."""
    return Figures(result, tuple(by), tuple(metrics), ctx.store, ctx.language, ctx.filters, ctx.scope, comparison, ctx.publication)


def _has_data(result: pl.DataFrame) -> bool:
    return not result.is_empty() and result["value"].is_not_null().any()


def time_filters(ctx: Context, grain: str) -> Filters:
    """The context's filters cut to the whole weeks or months inside the period, for a trend
    by ``grain`` (unchanged for days, or when no whole one fits)."""
    filters = ctx.filters
    whole = whole_buckets(filters.start, filters.end, grain)
    if whole is None or whole == (filters.start, filters.end):
        return filters
    return with_period(filters, *whole, until_minute=filters.until_minute)


def comparison_time_filters(ctx: Context, grain: str) -> Filters | None:
    """The comparison period cut to its whole weeks or months, like ``time_filters``; None
    without a comparison or when no whole one fits."""
    if ctx.comparison is None:
        return None
    whole = whole_buckets(ctx.comparison.start, ctx.comparison.end, grain)
    return None if whole is None else with_period(ctx.comparison, *whole)


def grain_note(ctx: Context, grain: str) -> None:
    """Says, once under the grain choice, which whole weeks or months the trends show."""
    if grain not in ("week", "month"):
        return
    filters = ctx.filters
    whole = whole_buckets(filters.start, filters.end, grain)
    if whole is None:
        st.caption(t(f"trend.partial_{grain}s", ctx.language))
    elif whole != (filters.start, filters.end):
        start, end = (format_date(day, ctx.language) for day in whole)
        st.caption(t(f"trend.whole_{grain}s", ctx.language, start=start, end=end))


def _trend_asks(ctx: Context, metric: str, *, grain: str, colour: str | None = None, **_: Any) -> list[Ask]:
    by = (grain, colour) if colour else (grain,)
    earlier = None if colour else comparison_time_filters(ctx, grain)
    return [Ask((metric,), by, time_filters(ctx, grain)), *([Ask((metric,), by, earlier)] if earlier else [])]


def trend_figure(
    ctx: Context, metric: str, *, grain: str, colour: str | None = None, height: int = 280, fetch: Fetch | None = None,
) -> tuple[dict[str, Any] | None, pl.DataFrame, Figures]:
    """The chart of a metric over time (None when there is nothing to draw), the result it
    shows and its figures for downloads. With its 95 % band (shares) and target line; without
    ``colour``, the comparison period as a lighter line on the same time axis."""
    by = [grain, colour] if colour else [grain]
    now, before = time_filters(ctx, grain), None if colour else comparison_time_filters(ctx, grain)
    fetch = fetch or direct(ctx)
    result = fetch([metric], by=by, filters=now)
    if not _has_data(result):
        return None, result, figures_of(ctx, result, by, [metric])
    definition = REGISTRY[metric]
    frame = plot_frame(result, metric=metric, by=by, store=ctx.store, language=ctx.language)
    series = None
    if before is not None:
        earlier = fetch([metric], by=by, filters=before)
        if _has_data(earlier):
            frame, series = with_comparison(
                frame, plot_frame(earlier, metric=metric, by=by, store=ctx.store, language=ctx.language), grain=grain,
                now=now, before=before, language=ctx.language,
            )
    target, target_label = target_line(metric, ctx.settings, ctx.language)
    chart = cached_spec(
        line_chart, frame, x=dimension_title(grain, ctx.language), y=definition.label(ctx.language), unit=definition.unit,
        language=ctx.language, colour=dimension_title(colour, ctx.language) if colour else None,
        band=("ci_low", "ci_high") if has_interval(metric) and not colour else None,
        target=target, target_label=target_label, height=height, grain=grain, colours=code_colours(colour, ctx.language), series=series,
    )
    return chart, result, figures_of(ctx, result, by, [metric], comparison=before if series else None)


@asks(_trend_asks)
def trend(
    ctx: Context, metric: str, *, grain: str, key: str, colour: str | None = None, height: int = 280, fetch: Fetch | None = None,
) -> None:
    """A metric over time (``trend_figure``) with its table and downloads."""
    chart, result, figures = trend_figure(ctx, metric, grain=grain, colour=colour, height=height, fetch=fetch)
    if chart is None:
        empty_state(ctx.language, result)
        return
    table = display_table(result, by=list(figures.by), store=ctx.store, language=ctx.language, metrics=[metric])
    chart_block(chart, table, key=key, language=ctx.language, figures=figures)


def _trend_of_metrics_asks(ctx: Context, metrics: list[str], *, grain: str, **_: Any) -> list[Ask]:
    return [Ask(tuple(metrics), (grain,), time_filters(ctx, grain))]


@asks(_trend_of_metrics_asks)
def trend_of_metrics(ctx: Context, metrics: list[str], *, grain: str, key: str, fetch: Fetch | None = None) -> None:
    """Several metrics of the same unit over time, one line each."""
    result = (fetch or direct(ctx))(metrics, by=[grain], filters=time_filters(ctx, grain))
    if not _has_data(result):
        empty_state(ctx.language, result)
        return
    frame = plot_frame_metrics(result, metrics=metrics, by=[grain], store=ctx.store, language=ctx.language)
    target, target_label = target_line(metrics[0], ctx.settings, ctx.language)
    chart = cached_spec(
        line_chart, frame, x=dimension_title(grain, ctx.language), y=t("common.value", ctx.language), unit=REGISTRY[metrics[0]].unit,
        language=ctx.language, colour=t("common.metric", ctx.language), target=target, target_label=target_label, grain=grain,
    )
    table = display_table(result, by=[grain], store=ctx.store, language=ctx.language, metrics=metrics)
    chart_block(chart, table, key=key, language=ctx.language, figures=figures_of(ctx, result, [grain], metrics))


def _breakdown_asks(ctx: Context, metric: str, dimension: str, *, also: list[str] | None = None, **_: Any) -> list[Ask]:
    return [Ask((metric, *(also or [])), (dimension,))]


def breakdown_figure(
    ctx: Context, metric: str, dimension: str, *, also: list[str] | None = None, height: int | None = None, fetch: Fetch | None = None,
) -> tuple[dict[str, Any] | None, pl.DataFrame, Figures]:
    """The bars of a metric by one dimension, with intervals for shares and the target line
    (None when there is nothing to draw); the result (``also``: related metrics asked with it)
    and its figures for downloads."""
    metrics = [metric, *(also or [])]
    result = (fetch or direct(ctx))(metrics, by=[dimension])
    figures = figures_of(ctx, result, [dimension], metrics)
    if not _has_data(result.filter(pl.col("metric") == metric)):
        return None, result.filter(pl.col("metric") == metric), figures
    definition = REGISTRY[metric]
    frame = plot_frame(result, metric=metric, by=[dimension], store=ctx.store, language=ctx.language)
    target, target_label = target_line(metric, ctx.settings, ctx.language)
    chart = cached_spec(
        bar_chart, frame.filter(pl.col(definition.label(ctx.language)).is_not_null()),
        category=dimension_title(dimension, ctx.language), value=definition.label(ctx.language), unit=definition.unit,
        language=ctx.language, interval=("ci_low", "ci_high") if has_interval(metric) else None,
        target=target, target_label=target_label, height=height,
    )
    return chart, result, figures


@asks(_breakdown_asks)
def breakdown(
    ctx: Context, metric: str, dimension: str, *, key: str, also: list[str] | None = None, fetch: Fetch | None = None
) -> None:
    """A metric by one dimension (``breakdown_figure``) and a table that may carry related
    metrics (``also``) beside it."""
    chart, result, figures = breakdown_figure(ctx, metric, dimension, also=also, fetch=fetch)
    if chart is None:
        empty_state(ctx.language, result)
        return
    table = display_table(result, by=[dimension], store=ctx.store, language=ctx.language, metrics=list(figures.metrics))
    chart_block(chart, table, key=key, language=ctx.language, figures=figures)


def _channel_mix_asks(ctx: Context, *, grain: str, **_: Any) -> list[Ask]:
    return [Ask(("contact_share",), (grain, "channel"), time_filters(ctx, grain))]


@asks(_channel_mix_asks)
def channel_mix(ctx: Context, *, grain: str, key: str, fetch: Fetch | None = None) -> None:
    """Channel shares over time; the electronic-share target is drawn where the electronic
    channels, stacked first, should reach."""
    by = [grain, "channel"]
    result = (fetch or direct(ctx))(["contact_share"], by=by, filters=time_filters(ctx, grain))
    if not _has_data(result.filter(pl.col("metric") == "contact_share")):
        empty_state(ctx.language, result.filter(pl.col("metric") == "contact_share"))
        return
    frame = plot_frame(result, metric="contact_share", by=by, store=ctx.store, language=ctx.language)
    target, target_label = target_line("electronic_share", ctx.settings, ctx.language)
    electronic = [c for c in codes.CHANNELS if c in ctx.settings.electronic_channels]
    others = [c for c in codes.CHANNELS if c not in ctx.settings.electronic_channels]
    chart = cached_spec(
        stacked_share_chart, frame, x=dimension_title(grain, ctx.language), y=REGISTRY["contact_share"].label(ctx.language),
        colour=dimension_title("channel", ctx.language), language=ctx.language,
        colour_order=[code_label("channel", c, ctx.language) for c in electronic + others],
        target=target, target_label=target_label, grain=grain, colours=code_colours("channel", ctx.language),
    )
    table = display_table(result, by=by, store=ctx.store, language=ctx.language, metrics=["contact_share"])
    chart_block(chart, table, key=key, language=ctx.language, figures=figures_of(ctx, result, by, ["contact_share"]))


def _mix_asks(ctx: Context, dimension: str, *, grain: str, **_: Any) -> list[Ask]:
    return [Ask(("contact_share",), (grain, dimension), time_filters(ctx, grain))]


@asks(_mix_asks)
def mix_over_time(ctx: Context, dimension: str, *, grain: str, key: str, fetch: Fetch | None = None) -> None:
    """Each code's share of the contacts over time (reasons, say), stacked in the code list's
    order: twelve lines cannot be read, twelve bands of one bar can."""
    by = [grain, dimension]
    result = (fetch or direct(ctx))(["contact_share"], by=by, filters=time_filters(ctx, grain))
    if not _has_data(result):
        empty_state(ctx.language, result)
        return
    frame = plot_frame(result, metric="contact_share", by=by, store=ctx.store, language=ctx.language)
    chart = cached_spec(
        stacked_share_chart, frame, x=dimension_title(grain, ctx.language), y=REGISTRY["contact_share"].label(ctx.language),
        colour=dimension_title(dimension, ctx.language), language=ctx.language,
        colour_order=[code_label(dimension, c, ctx.language) for c in codes.BY_COLUMN[dimension]], grain=grain,
    )
    table = display_table(result, by=by, store=ctx.store, language=ctx.language, metrics=["contact_share"])
    chart_block(chart, table, key=key, language=ctx.language, figures=figures_of(ctx, result, by, ["contact_share"]))


@asks(lambda ctx, **_: [Ask(("contacts",), ("weekday", "hour"))])
def load_heatmap(ctx: Context, *, key: str, fetch: Fetch | None = None) -> None:
    """Contacts by weekday and hour of the day."""
    order = [code_label("weekday", str(day), ctx.language) for day in range(1, 8)]
    _heatmap(ctx, "contacts", by=["weekday", "hour"], x="hour", y="weekday", key=key, y_order=lambda _labels: order, fetch=fetch)


@asks(lambda ctx, source, metric="referrals", target="destination", **_: [Ask((metric,), (source, target))])
def flows(
    ctx: Context, source: str, *, key: str, metric: str = "referrals", target: str = "destination", fetch: Fetch | None = None,
) -> None:
    """Referrals from ``source`` (initiator or channel) to each destination; or ``metric`` by
    ``source`` and ``target`` (contacts by channel and reason)."""
    _heatmap(ctx, metric, by=[source, target], x=source, y=target, key=key, y_order=sorted, fetch=fetch)


def _heatmap(
    ctx: Context, metric: str, *, by: list[str], x: str, y: str, key: str, y_order: Callable[[list[str]], list[str]],
    fetch: Fetch | None,
) -> None:
    """A count over two dimensions (``by`` in the order suppression should see them);
    ``y_order`` orders the y labels that occur."""
    result = (fetch or direct(ctx))([metric], by=by)
    if not _has_data(result):
        empty_state(ctx.language, result)
        return
    frame = plot_frame(result, metric=metric, by=by, store=ctx.store, language=ctx.language)
    y_title = dimension_title(y, ctx.language)
    chart = cached_spec(
        heatmap, frame, x=dimension_title(x, ctx.language), y=y_title, value=REGISTRY[metric].label(ctx.language),
        language=ctx.language, y_order=y_order(frame[y_title].unique().drop_nulls().to_list()),
    )
    table = display_table(result, by=by, store=ctx.store, language=ctx.language, metrics=[metric])
    chart_block(chart, table, key=key, language=ctx.language, figures=figures_of(ctx, result, by, [metric]))


@asks(lambda ctx, metric, **_: [Ask((metric,), ("municipality",)), Ask((metric,))])
def municipal_funnel(ctx: Context, metric: str, *, key: str, fetch: Fetch | None = None) -> None:
    """Each municipality's share against its denominator, around the area's value."""
    by = ["municipality"]
    fetch = fetch or direct(ctx)
    result = fetch([metric], by=by)
    overall = fetch([metric])
    shown = result.filter(pl.col("value").is_not_null() & (pl.col("denominator") > 0))
    if shown.is_empty() or overall.is_empty() or overall["value"][0] is None:
        empty_state(ctx.language, result)
        return
    centre = float(overall["value"][0])
    definition = REGISTRY[metric]
    frame = plot_frame(shown, metric=metric, by=by, store=ctx.store, language=ctx.language)
    n_title = t("comparison.denominator", ctx.language)
    frame = frame.rename({"n": n_title})
    denominators = shown["denominator"].cast(pl.Float64)
    limits = funnel_limits(centre, n_min=float(denominators.min() or 0.0), n_max=float(denominators.max() or 0.0))  # type: ignore[arg-type]
    chart = cached_spec(
        funnel_plot, frame, x=n_title, y=definition.label(ctx.language), label=dimension_title("municipality", ctx.language),
        limits=limits.rename({"n": n_title}), language=ctx.language, unit=definition.unit, centre=centre,
        centre_label=t("comparison.area_value", ctx.language, value=format_value(centre, definition.unit, language=ctx.language)),
    )
    table = display_table(result, by=by, store=ctx.store, language=ctx.language, metrics=[metric])
    chart_block(chart, table, key=key, language=ctx.language, figures=figures_of(ctx, result, by, [metric]), caption=t("comparison.funnel_help", ctx.language))


def _comparison_asks(ctx: Context, metrics: list[str], **_: Any) -> list[Ask]:
    by = ("municipality",)
    return [Ask(tuple(metrics), by), *([Ask(tuple(metrics), by, ctx.comparison)] if ctx.comparison else [])]


@asks(_comparison_asks)
def comparison_table(ctx: Context, metrics: list[str], *, key: str, fetch: Fetch | None = None) -> None:
    """Each municipality's figures with their change against the comparison period."""
    by = ["municipality"]
    fetch = fetch or direct(ctx)
    current = fetch(metrics, by=by)
    previous = fetch(metrics, by=by, filters=ctx.comparison) if ctx.comparison else None
    if not _has_data(current):
        empty_state(ctx.language, current)
        return
    table = change_table(current, previous, by=by, metrics=metrics, store=ctx.store, language=ctx.language)
    table_with_download(table, key=key, language=ctx.language)
    without_population = current.filter(pl.col("note") == "population_missing")["municipality"].unique().to_list()
    if without_population:  # their per-1 000 cells read "—": say why
        listed = ", ".join(sorted(labels_for(ctx.store, "municipality", without_population, ctx.language).values()))
        st.caption(t("comparison.population_missing", ctx.language, municipalities=listed))


COMPLETENESS = ["complete_client_id", "complete_resolution", "complete_service_line", "complete_initiator"]


@asks(lambda ctx, dimension, **_: [Ask(("contacts", *COMPLETENESS), (dimension,))])
def completeness(ctx: Context, dimension: str, *, key: str, fetch: Fetch | None = None) -> None:
    """Share of contacts with each optional field filled in, per source system or municipality."""
    metrics = ["contacts", *COMPLETENESS]
    result = (fetch or direct(ctx))(metrics, by=[dimension])
    if not _has_data(result):
        empty_state(ctx.language, result)
        return
    table_with_download(
        display_table(result, by=[dimension], store=ctx.store, language=ctx.language, metrics=metrics), key=key, language=ctx.language,
        figures=figures_of(ctx, result, [dimension], metrics),
    )


def _usual_filters(ctx: Context, weeks: int) -> tuple[Filters, dt.date, list[dt.date]]:
    now = local_now()
    today = now.date()
    earlier = [today - dt.timedelta(weeks=w) for w in range(1, weeks + 1)]
    return with_period(ctx.filters, earlier[-1], today, until_minute=so_far_minute(now)), today, earlier


@asks(lambda ctx, weeks=4, **_: [Ask(("contacts",), ("day", "source_system"), _usual_filters(ctx, weeks)[0])])
def volume_against_usual(ctx: Context, *, key: str, weeks: int = 4, fetch: Fetch | None = None) -> None:
    """Contacts today so far per source system against the mean of the same weekday in the
    previous weeks, up to the same time of day."""
    span, today, earlier = _usual_filters(ctx, weeks)
    # One registry call by day for the whole span: its fixed cost, paid once instead of five
    # times, is more than counting the days in between. Each day's cells are protected along
    # the day and along the source system (docs/privacy.md).
    by_day = (fetch or direct(ctx))(["contacts"], by=["day", "source_system"], filters=span)

    def on(day: dt.date) -> pl.DataFrame:
        return by_day.filter(pl.col("day") == day).drop("day")

    table = usual_volume_table(on(today), [on(day) for day in earlier], language=ctx.language, threshold=ctx.settings.small_cell_threshold)
    if table.is_empty():
        empty_state(ctx.language)
        return
    table_with_download(table, key=key, language=ctx.language)
