"""Yleiskuva: the manager's morning view."""

import datetime as dt

import streamlit as st

from data_access.periods import local_now
from dashboard.components import freshness_panel, kpi_column, sparklines
from dashboard.i18n import t
from dashboard.overview import CARD_METRICS, card_periods, trend_section
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("overview.heading", language))
st.caption(t("overview.intro", language))

now = local_now()
lines = sparklines(ctx, CARD_METRICS, start=now.date() - dt.timedelta(days=13), end=now.date())
for column, period in zip(st.columns(3), card_periods(ctx, now=now), strict=True):
    with column:
        kpi_column(ctx, metrics=CARD_METRICS, sparklines=lines, **period)

st.subheader(t("freshness.heading", language))
freshness_panel(ctx)

st.subheader(t("overview.trend_heading", language))
trend_section(ctx)
