"""Ohjaukset: where guidance sends clients, who sent them, and whether services started in time."""

import streamlit as st

from dashboard.components import kpi_row
from dashboard.i18n import t
from dashboard.sections import breakdown, flows, grain_selector, trend
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.referrals", language))
kpi_row(ctx, ["referrals", "no_referral_needed", "service_start_within_guarantee"])

st.subheader(t("referrals.destinations", language))
breakdown(ctx, "referrals", "destination", key="referrals_destinations", also=["referral_share", "service_start_within_guarantee"])

st.subheader(t("referrals.initiators", language))
breakdown(ctx, "contact_share", "initiator", key="referrals_initiators", also=["contacts"])

st.subheader(t("referrals.flows", language))
left, right = st.columns(2)
with left:
    flows(ctx, "initiator", key="referrals_flow_initiator")
with right:
    flows(ctx, "channel", key="referrals_flow_channel")

st.subheader(t("referrals.guarantee", language))
grain = grain_selector(ctx)
trend(ctx, "service_start_within_guarantee", grain=grain, key="referrals_guarantee")
breakdown(ctx, "service_start_within_guarantee", "age_band", key="referrals_guarantee_age")
