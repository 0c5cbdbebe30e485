"""Kuntavertailu: fair comparison of municipalities, per resident and with intervals."""

import streamlit as st

from dashboard.filters import url_segmented
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.presenters import metric_label
from dashboard.sections import breakdown, comparison_table, municipal_funnel
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.comparison", language))
st.caption(t("comparison.intro", language, threshold=ctx.settings.small_cell_threshold))

st.subheader(t("comparison.table", language))
table_area = st.container()
st.subheader(t("comparison.funnel", language))
metric = url_segmented(
    t("common.metric", language), ["first_contact_resolution", "electronic_share"], default="first_contact_resolution",
    format_func=lambda m: metric_label(m, language), key="funnel_metric",
)

plan = Plan(ctx)
table = plan.section(comparison_table, ["contacts", "contacts_per_1000", "first_contact_resolution", "electronic_share"], key="comparison_table")
funnel = plan.section(municipal_funnel, metric, key="comparison_funnel")
per_1000 = plan.section(breakdown, "contacts_per_1000", "municipality", key="comparison_per_1000", also=["contacts"])
resolution = plan.section(breakdown, "first_contact_resolution", "municipality", key="comparison_resolution", also=["contacts"])
electronic = plan.section(breakdown, "electronic_share", "municipality", key="comparison_electronic", also=["contacts"])

with table_area:
    table.show()
funnel.show()

st.subheader(t("comparison.per_1000", language))
per_1000.show()

st.subheader(t("comparison.resolution", language))
resolution.show()

st.subheader(t("comparison.electronic", language))
electronic.show()
