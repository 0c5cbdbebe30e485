"""The overview's periods and trend section."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import streamlit as st

from dashboard.charts import cached_spec, line_chart
from dashboard.components import chart_block, empty_state, kpi_column, sparklines
from dashboard.formatting import format_date, format_time
from dashboard.i18n import t
from dashboard.presenters import display_table, plot_frame, target_line
from dashboard.sections import figures_of, grain_note, time_filters
from dashboard.state import Context, period_records, query
from data_access.metrics import REGISTRY
from data_access.periods import local_now, same_weekday_week_earlier, so_far_minute

CARD_METRICS = [
    "contacts", "first_contact_resolution", "electronic_share", "referrals",
    "same_day_callback_share", "queue_median_seconds",
]
TREND_METRICS = ["contacts", "first_contact_resolution", "electronic_share"]


def card_periods(ctx: Context, *, now: dt.datetime) -> list[dict]:
    """Today so far, yesterday and the last 7 days, each with its week-earlier comparison."""
    today = now.date()
    yesterday = today - dt.timedelta(days=1)
    minute = so_far_minute(now)
    base = ctx.filters
    today_before = same_weekday_week_earlier(today)
    yesterday_before = same_weekday_week_earlier(yesterday)
    week_start = today - dt.timedelta(days=7)
    return [
        {
            "title": t("overview.today", ctx.language, time=format_time(now, ctx.language)),
            "current": dataclasses.replace(base, start=today, end=today, until_minute=minute),
            "previous": dataclasses.replace(base, start=today_before, end=today_before, until_minute=minute),
        },
        {
            "title": t("overview.yesterday", ctx.language, date=format_date(yesterday, ctx.language)),
            "current": dataclasses.replace(base, start=yesterday, end=yesterday, until_minute=None),
            "previous": dataclasses.replace(base, start=yesterday_before, end=yesterday_before, until_minute=None),
        },
        {
            "title": t("overview.last_7_days", ctx.language),
            "current": dataclasses.replace(base, start=week_start, end=yesterday, until_minute=None),
            "previous": dataclasses.replace(
                base, start=week_start - dt.timedelta(days=7), end=yesterday - dt.timedelta(days=7), until_minute=None
            ),
        },
    ]


def card_columns(ctx: Context) -> None:
    """Today so far, yesterday and the last 7 days: three columns of cards, each against the
    same days a week earlier, with 14 days of sparkline."""
    now = local_now()
    lines = sparklines(ctx, CARD_METRICS, start=now.date() - dt.timedelta(days=13), end=now.date())
    periods = card_periods(ctx, now=now)
    # The six periods of the three columns in one request: one pass over the rows for all.
    records = period_records(ctx, CARD_METRICS, [p[which] for p in periods for which in ("current", "previous")])
    for column, period, now_records, before_records in zip(st.columns(3), periods, records[0::2], records[1::2], strict=True):
        with column:
            kpi_column(
                ctx, title=period["title"], metrics=CARD_METRICS, previous=period["previous"],
                now=now_records, before=before_records, sparklines=lines,
            )


def trend_section(ctx: Context) -> None:
    language = ctx.language
    filters = ctx.filters
    st.caption(
        t("overview.period_heading", language, start=format_date(filters.start, language), end=format_date(filters.end, language))
    )
    by = ["week"] if (filters.end - filters.start).days > 120 else ["day"]
    grain_note(ctx, by[0])
    result = query(ctx, TREND_METRICS, by=by, filters=time_filters(ctx, by[0]))
    if result.is_empty() or result.filter(pl.col("metric") == "contacts")["value"].sum() == 0:
        empty_state(language)
        return
    table = display_table(result, by=by, store=ctx.store, language=language, metrics=TREND_METRICS)
    columns = st.columns(len(TREND_METRICS))
    for column, metric in zip(columns, TREND_METRICS, strict=True):
        definition = REGISTRY[metric]
        frame = plot_frame(result, metric=metric, by=by, store=ctx.store, language=language)
        target, target_label = target_line(metric, ctx.settings, language)
        with column:
            chart = cached_spec(
                line_chart, frame, x=frame.columns[0], y=definition.label(language), unit=definition.unit, language=language,
                band=("ci_low", "ci_high") if definition.unit == "share" else None,
                target=target, target_label=target_label, height=220, grain=by[0],
            )
            chart_block(
                chart, table.select(table.columns[0], definition.label(language)), key=f"overview_{metric}", language=language,
                figures=figures_of(ctx, result.filter(pl.col("metric") == metric), by, [metric]),
            )
