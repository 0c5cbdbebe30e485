"""Ensikontaktin ratkaisu: first-contact resolution, its trend, breakdowns and verification."""

import streamlit as st

from dashboard.filters import url_tabs
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import breakdown, grain_selector, trend, trend_of_metrics
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.resolution", language))
grain = grain_selector(ctx)

st.subheader(t("resolution.trend", language))
trend_area = st.container()
st.subheader(t("resolution.breakdowns", language))
dimensions = ["channel", "service_line", "professional_group", "age_band", "unit"]
# Only the open tab computes (a rerun when another is chosen); the tab is in the URL.
tabs, _ = url_tabs({d: t(f"dimension.{d}", language) for d in dimensions}, key="resolution_tab")
st.subheader(t("resolution.verified", language))
st.caption(t("resolution.verified_help", language, days=ctx.settings.verified_resolution_days))
verified_area = st.container()

plan = Plan(ctx)
resolution_trend = plan.section(trend, "first_contact_resolution", grain=grain, key="resolution_trend")
open_tabs = [
    (tab, plan.section(breakdown, "first_contact_resolution", dimension, key=f"resolution_by_{dimension}", also=["verified_resolution", "contacts"]))
    for tab, dimension in zip(tabs, dimensions, strict=True) if tab.open
]
verified = plan.section(trend_of_metrics, ["first_contact_resolution", "verified_resolution"], grain=grain, key="resolution_verified")

with trend_area:
    resolution_trend.show()
for tab, section in open_tabs:
    with tab:
        section.show()
with verified_area:
    verified.show()
