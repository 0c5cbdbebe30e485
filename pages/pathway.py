"""Ohjauspolku: guidance cases from opening to close (seed 003's personal guidance and seed
002's multi-service process): who identified the client and why, consent and plan, visits
against the 1-5 guideline, follow-ups per unit, services started, and the outcome measures.
Counts of cases and visits only, never clients."""

import streamlit as st

from dashboard.filters import url_segmented, url_tabs
from dashboard.i18n import t
from dashboard.plan import Plan
from dashboard.sections import breakdown, grain_note, trend, trend_of_metrics
from dashboard.state import get_context

ctx = get_context()
language = ctx.language
st.title(t("page.pathway", language))
st.caption(t("pathway.intro", language))
# Cases are few (a county opens some a day): weeks at the finest.
grain = url_segmented(
    t("common.grain", language), ("week", "month", "quarter"), default="month",
    format_func=lambda g: t(f"dimension.{g}", language), key="pathway_grain",
)
grain_note(ctx, grain)

st.subheader(t("pathway.flow", language))
flow_area = st.container()
st.subheader(t("pathway.opened_by", language))
opened_tabs, _ = url_tabs({d: t(f"dimension.{d}", language) for d in ("process", "municipality", "unit")}, key="pathway_tab")
st.subheader(t("pathway.who_why", language))
who_area, why_area = st.columns(2)
st.subheader(t("pathway.visits", language))
st.caption(t("pathway.visits_help", language))
visits_area = st.container()
st.subheader(t("pathway.follow_ups", language))
follow_area = st.container()
st.subheader(t("pathway.services", language))
services_area = st.container()
st.subheader(t("pathway.outcomes", language))
st.caption(t("pathway.outcomes_help", language, threshold=ctx.settings.small_cell_threshold))
whoqol_area, kyky_area = st.columns(2)

plan = Plan(ctx)
flow = plan.section(trend_of_metrics, ["cases_opened", "cases_closed"], grain=grain, key="pathway_flow")
opened = [
    (tab, plan.section(
        breakdown, "cases_opened", dimension, key=f"pathway_opened_by_{dimension}",
        also=["case_consent_share", "case_plan_share", "days_to_plan_median"],
    ))
    for tab, dimension in zip(opened_tabs, ("process", "municipality", "unit"), strict=True) if tab.open
]
who = plan.section(breakdown, "cases_opened", "identified_by", key="pathway_identified_by")
why = plan.section(breakdown, "case_reasons", "reason", key="pathway_reasons")
visits = plan.section(
    breakdown, "visits_per_case_mean", "process", key="pathway_visits",
    also=["cases_closed", "visits_within_guideline_share", "pathway_days_median"],
)
follow_ups = plan.section(
    breakdown, "follow_up_on_time_share", "unit", key="pathway_follow_ups", also=["follow_ups_due", "follow_ups_overdue"],
)
services = plan.section(trend, "case_services_started", grain=grain, key="pathway_services")
whoqol = plan.section(
    breakdown, "whoqol_bref_change_mean", "domain", key="pathway_whoqol", also=["whoqol_bref_change_median", "whoqol_bref_clients"],
)
kyky = plan.section(
    breakdown, "kykyviisari_change_mean", "domain", key="pathway_kykyviisari",
    also=["kykyviisari_change_median", "kykyviisari_clients"],
)
with flow_area:
    flow.show()
for tab, section in opened:
    with tab:
        section.show()
with who_area:
    who.show()
with why_area:
    why.show()
with visits_area:
    visits.show()
with follow_area:
    follow_ups.show()
with services_area:
    services.show()
with whoqol_area:
    whoqol.show()
with kyky_area:
    kyky.show()
