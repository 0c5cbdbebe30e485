"""Yhteydenottokanavat: volume, mix, load and queues per channel."""

import streamlit as st

from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import breakdown, channel_mix, grain_selector, load_heatmap, trend
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.channels", language))
grain = grain_selector(ctx)

plan = Plan(ctx)
volume = plan.section(trend, "contacts", grain=grain, colour="channel", key="channels_volume")
mix = plan.section(channel_mix, grain=grain, key="channels_mix")
electronic = plan.section(trend, "electronic_share", grain=grain, key="channels_electronic")
load = plan.section(load_heatmap, key="channels_heatmap")
queue_median = plan.section(breakdown, "queue_median_seconds", "channel", key="channels_queue_median", also=["queue_p90_seconds"])
queue_p90 = plan.section(breakdown, "queue_p90_seconds", "channel", key="channels_queue_p90", also=["queue_median_seconds"])

st.subheader(t("channels.volume", language))
volume.show()

st.subheader(t("channels.mix", language))
left, right = st.columns(2)
with left:
    mix.show()
with right:
    electronic.show()

st.subheader(t("channels.load", language))
load.show()

st.subheader(t("channels.queues", language))
left, right = st.columns(2)
with left:
    queue_median.show()
with right:
    queue_p90.show()
