"""Yleiskuva: the manager's morning view."""

import streamlit as st

from dashboard.components import freshness_panel
from dashboard.i18n import t
from dashboard.overview import card_columns, trend_section
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("overview.heading", language))
st.caption(t("overview.intro", language))

card_columns(ctx)

st.subheader(t("freshness.heading", language))
freshness_panel(ctx)

st.subheader(t("overview.trend_heading", language))
trend_section(ctx)
