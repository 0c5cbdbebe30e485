"""Yhteydenottokanavat: volume, mix, load and queues per channel."""

import streamlit as st

from dashboard.i18n import t
from dashboard.sections import (
    breakdown,
    channel_mix,
    grain_selector,
    load_heatmap,
    trend,
)
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.channels", language))
grain = grain_selector(ctx)

st.subheader(t("channels.volume", language))
trend(ctx, "contacts", grain=grain, colour="channel", key="channels_volume", asked_with=["contact_share"])

st.subheader(t("channels.mix", language))
left, right = st.columns(2)
with left:
    channel_mix(ctx, grain=grain, key="channels_mix", asked_with=["contacts"])
with right:
    trend(ctx, "electronic_share", grain=grain, key="channels_electronic")

st.subheader(t("channels.load", language))
load_heatmap(ctx, key="channels_heatmap")

st.subheader(t("channels.queues", language))
left, right = st.columns(2)
with left:
    breakdown(ctx, "queue_median_seconds", "channel", key="channels_queue_median", also=["queue_p90_seconds"])
with right:
    breakdown(ctx, "queue_p90_seconds", "channel", key="channels_queue_p90", also=["queue_median_seconds"])
