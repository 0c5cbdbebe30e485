"""Ohjaukset: where guidance sends clients, who sent them, and whether services started in time."""

import streamlit as st

from dashboard.components import kpi_row
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import breakdown, flows, grain_selector, trend
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.referrals", language))
kpi_row(ctx, ["referrals", "no_referral_needed", "service_start_within_guarantee"])

st.subheader(t("referrals.destinations", language))
destinations_area = st.container()
st.subheader(t("referrals.initiators", language))
initiators_area = st.container()
st.subheader(t("referrals.flows", language))
left, right = st.columns(2)
st.subheader(t("referrals.guarantee", language))
grain = grain_selector(ctx)

plan = Plan(ctx)
destinations = plan.section(breakdown, "referrals", "destination", key="referrals_destinations", also=["referral_share", "service_start_within_guarantee"])
initiators = plan.section(breakdown, "contact_share", "initiator", key="referrals_initiators", also=["contacts"])
flow_initiator = plan.section(flows, "initiator", key="referrals_flow_initiator")
flow_channel = plan.section(flows, "channel", key="referrals_flow_channel")
guarantee = plan.section(trend, "service_start_within_guarantee", grain=grain, key="referrals_guarantee")
guarantee_by_age = plan.section(breakdown, "service_start_within_guarantee", "age_band", key="referrals_guarantee_age")

with destinations_area:
    destinations.show()
with initiators_area:
    initiators.show()
with left:
    flow_initiator.show()
with right:
    flow_channel.show()
guarantee.show()
guarantee_by_age.show()
