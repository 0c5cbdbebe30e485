"""Tietojen laatu: is the data fresh, complete and flowing as usual?"""

import streamlit as st

from dashboard.components import freshness_panel, quality_counts
from dashboard.filters import url_tabs
from dashboard.i18n import t
from dashboard.sections import completeness, volume_against_usual
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.quality", language))
st.caption(t("quality.intro", language, minutes=ctx.settings.quiet_source_minutes))

st.subheader(t("freshness.heading", language))
# Only the open tab computes; the tab is in the URL.
(by_source, by_municipality), _ = url_tabs(
    {"source_system": t("dimension.source_system", language), "municipality": t("dimension.municipality", language)}, key="quality_freshness_tab",
)
if by_source.open:
    with by_source:
        freshness_panel(ctx, by="source_system")
if by_municipality.open:
    with by_municipality:
        freshness_panel(ctx, by="municipality")

st.subheader(t("quality.volume", language))
volume_against_usual(ctx, key="quality_volume")

st.subheader(t("quality.completeness", language))
(by_source, by_municipality), _ = url_tabs(
    {"source_system": t("dimension.source_system", language), "municipality": t("dimension.municipality", language)}, key="quality_completeness_tab",
)
if by_source.open:
    with by_source:
        completeness(ctx, "source_system", key="quality_complete_source")
if by_municipality.open:
    with by_municipality:
        completeness(ctx, "municipality", key="quality_complete_municipality")

st.subheader(t("quality.quarantine_and_pending", language))
quality_counts(ctx)
