"""Yleiskuva: the manager's morning view."""

import datetime as dt

import streamlit as st

from data_access.periods import local_now
from dashboard.components import freshness_panel, kpi_column, sparklines
from dashboard.i18n import t
from dashboard.overview import CARD_METRICS, card_periods, trend_section
from dashboard.state import get_context, period_records

ctx = get_context()
language = ctx.language
st.title(t("overview.heading", language))
st.caption(t("overview.intro", language))

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

st.subheader(t("freshness.heading", language))
freshness_panel(ctx)

st.subheader(t("overview.trend_heading", language))
trend_section(ctx)
