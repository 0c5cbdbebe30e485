"""Miksi asiakkaat ottavat yhteyttä: reasons for contact by channel and resolution, and failure
demand (contacts caused by something not done or not done right): its trend and where it
concentrates."""

import streamlit as st

from dashboard.filters import url_tabs
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import breakdown, flows, grain_selector, mix_over_time, trend
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.reasons", language))
st.caption(t("reasons.intro", language))
grain = grain_selector(ctx)

st.subheader(t("reasons.by_reason", language))
reason_area = st.container()
st.subheader(t("reasons.over_time", language))
over_time_area = st.container()
st.subheader(t("reasons.by_channel", language))
channel_area = st.container()
st.subheader(t("reasons.failure_demand", language))
st.caption(t("reasons.failure_demand_help", language))
failure_area = st.container()
dimensions = ["channel", "unit", "municipality", "service_line"]
tabs, _ = url_tabs({d: t(f"dimension.{d}", language) for d in dimensions}, key="reasons_tab")

plan = Plan(ctx)
reasons = plan.section(breakdown, "first_contact_resolution", "reason", key="reasons_resolution", also=["contacts", "failure_demand_share"])
over_time = plan.section(mix_over_time, "reason", grain=grain, key="reasons_over_time")
by_channel = plan.section(flows, "channel", key="reasons_channel", metric="contacts", target="reason")
failure = plan.section(trend, "failure_demand_share", grain=grain, key="reasons_failure")
open_tabs = [
    (tab, plan.section(breakdown, "failure_demand_share", dimension, key=f"reasons_failure_by_{dimension}", also=["contacts"]))
    for tab, dimension in zip(tabs, dimensions, strict=True) if tab.open
]
with reason_area:
    reasons.show()
with over_time_area:
    over_time.show()
with channel_area:
    by_channel.show()
with failure_area:
    failure.show()
for tab, section in open_tabs:
    with tab:
        section.show()
