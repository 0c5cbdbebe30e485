"""Asiakaskokemus: the recommendation score and NPS over time and by channel, unit and place,
each with its number of answers and 95 % interval."""

import streamlit as st

from dashboard.filters import url_tabs
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import SCALE_MIN_ANSWERS, breakdown, grain_selector, trend
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.experience", language))
st.caption(t("experience.intro", language, threshold=ctx.settings.small_cell_threshold, answers=SCALE_MIN_ANSWERS))
grain = grain_selector(ctx)

st.subheader(t("experience.trend", language))
score_area, nps_area = st.columns(2)
st.subheader(t("experience.breakdowns", language))
dimensions = ["channel", "unit", "municipality"]  # an answer's unit is its contact's
tabs, _ = url_tabs({d: t(f"dimension.{d}", language) for d in dimensions}, key="experience_tab")

plan = Plan(ctx)
score = plan.section(trend, "recommend_mean", grain=grain, key="experience_score")
nps = plan.section(trend, "nps", grain=grain, key="experience_nps")
open_tabs = [
    (tab, plan.section(breakdown, "recommend_mean", dimension, key=f"experience_by_{dimension}", also=["nps", "feedback_answers"]))
    for tab, dimension in zip(tabs, dimensions, strict=True) if tab.open
]
with score_area:
    score.show()
with nps_area:
    nps.show()
for tab, section in open_tabs:
    with tab:
        section.show()
