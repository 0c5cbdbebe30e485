"""Monipalveluasiakkaat: clients with contacts in several service lines over a rolling year
(seed 002: a tenth of the clients, most of the costs), by place and age band, their share of
the contacts and how many were taken into the multi-service process. Population level only."""

import streamlit as st

from dashboard.filters import url_tabs
from dashboard.formatting import format_date
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import breakdown
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
settings = ctx.settings
st.title(t("page.multi_service", language))
st.caption(t(
    "multi_service.intro", language, lines=settings.multi_service_min_lines, days=settings.multi_service_window_days,
    end=format_date(ctx.filters.end, language),
))
also = ["multi_service_clients", "multi_service_contact_share", "multi_service_in_process_share"]
st.subheader(t("multi_service.by_place", language))
places = ["municipality", "region"]
place_tabs, _ = url_tabs({d: t(f"dimension.{d}", language) for d in places}, key="multi_service_tab")
st.subheader(t("multi_service.by_age", language))
st.caption(t("multi_service.by_age_help", language))
age_area = st.container()

plan = Plan(ctx)
by_place = [
    (tab, plan.section(breakdown, "multi_service_per_1000", dimension, key=f"multi_service_by_{dimension}", also=also))
    for tab, dimension in zip(place_tabs, places, strict=True) if tab.open
]
by_age = plan.section(
    breakdown, "multi_service_clients", "age_band", key="multi_service_by_age",
    also=["multi_service_contact_share", "multi_service_in_process_share"],
)
for tab, section in by_place:
    with tab:
        section.show()
with age_area:
    by_age.show()
