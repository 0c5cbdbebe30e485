"""Kuntavertailu: fair comparison of municipalities, per resident and with intervals."""

import streamlit as st

from dashboard.i18n import t
from dashboard.presenters import metric_label
from dashboard.sections import breakdown, comparison_table, municipal_funnel
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.comparison", language))
st.caption(t("comparison.intro", language, threshold=ctx.settings.small_cell_threshold))

st.subheader(t("comparison.table", language))
# Every section below groups by municipality: one request for all of them (ASKED_WITH).
METRICS = ["contacts", "contacts_per_1000", "first_contact_resolution", "electronic_share"]
comparison_table(ctx, METRICS, key="comparison_table")

st.subheader(t("comparison.funnel", language))
metric = st.segmented_control(
    t("common.metric", language), ["first_contact_resolution", "electronic_share"], default="first_contact_resolution",
    format_func=lambda m: metric_label(m, language),
    key="funnel_metric", required=True, bind="query-params",
)
municipal_funnel(ctx, metric, key="comparison_funnel", asked_with=METRICS)

st.subheader(t("comparison.per_1000", language))
breakdown(ctx, "contacts_per_1000", "municipality", key="comparison_per_1000", also=["contacts"], asked_with=METRICS)

st.subheader(t("comparison.resolution", language))
breakdown(ctx, "first_contact_resolution", "municipality", key="comparison_resolution", also=["contacts"], asked_with=METRICS)

st.subheader(t("comparison.electronic", language))
breakdown(ctx, "electronic_share", "municipality", key="comparison_electronic", also=["contacts"], asked_with=METRICS)
