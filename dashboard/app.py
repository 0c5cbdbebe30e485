"""The frame: page config, language, shared filters, live refresh and navigation."""

from __future__ import annotations

import contextlib
from pathlib import Path

import streamlit as st

from dashboard import definitions, presentation
from dashboard.components import report_button
from dashboard.filters import filter_sidebar, language_selector, publication_refused, publication_toggle
from dashboard.formatting import format_moment, format_time, plain
from dashboard.i18n import t
from dashboard.live import published_view
from dashboard.signin import audit_page_view, current_user, grants_changed, sign_out_button
from dashboard.state import Context, get_context, get_store, page_run_turn, set_context
from dashboard.timing import log_data_time, start_data_time
from data_access.config import get_settings
from data_access.engine import DatabaseNeedsUpgrade, DatabaseUnavailable
from data_access.periods import HELSINKI
from data_access.snapshot import UnknownCode

PAGES = Path(__file__).resolve().parent.parent / "pages"

# Presentation mode (dashboard.presentation): no sidebar, one figure per view.
presenting = st.query_params.get("present") == "1"
st.set_page_config(
    page_title="Ohjaustaulu", page_icon=":material/dashboard:", layout="wide",
    initial_sidebar_state="collapsed" if presenting else "auto",
)
settings = get_settings()

# Page runs take turns (state.page_run_turn); the live refresh's fragment runs do not wait.
with page_run_turn(settings) as queued_seconds:
    language = language_selector(settings.default_language, draw=not presenting)
    start_data_time()

    try:
        store = get_store()
    except DatabaseUnavailable:
        st.error(t("error.database_unavailable", language), icon=":material/cloud_off:")
        st.stop()
    except DatabaseNeedsUpgrade:
        st.error(t("error.database_needs_upgrade", language), icon=":material/upgrade:")
        st.stop()
    except UnknownCode as problem:
        # A value written around ingestion: said with what and where, not a traceback (the
        # column is our own name; the values are as stored, escaped).
        values = ", ".join(plain(value) for value in problem.values)
        st.error(t("error.unknown_code", language, column=problem.column, values=values), icon=":material/rule:")
        st.stop()

    user = current_user(settings, store.engine, language)
    if user.scope.municipalities is not None and not user.scope.municipalities:
        st.info(t("signin.no_places", language), icon=":material/lock:")
        sign_out_button(user, language)
        st.stop()

    # What this session's page shows: the live refresh compares the newest with this.
    st.session_state["_rendered_version"] = store.key
    health = store.origin.health
    st.session_state["_rendered_reachable"] = health.reachable
    if not health.reachable:
        # The figures below are the last ones read; say so, and since when, on every page.
        last = format_moment(health.answered_at or store.as_of, language)
        st.warning(t("error.database_lost", language, time=last), icon=":material/cloud_off:")
    filters, comparison, preset = filter_sidebar(store, language, user.scope, draw=not presenting)
    publication = publication_toggle(language, available=settings.publication_ready, draw=not presenting)
    if publication_refused(publication):
        # Asked for figures fit to publish, no page may quietly show exact ones.
        st.error(t("publication.unavailable", language), icon=":material/public_off:")
        sign_out_button(user, language)
        st.stop()
    set_context(
        Context(
            settings=settings, store=store, language=language, filters=filters, comparison=comparison,
            preset=preset, user=user, publication=publication,
        )
    )
    if publication and not presenting:
        st.info(t("publication.on", language), icon=":material/public:")
    if not presenting:
        st.sidebar.link_button(
            t("present.open", language), presentation.link(), icon=":material/slideshow:", help=t("present.open_help", language),
        )
        report_button(get_context())
        sign_out_button(user, language)

    @st.fragment(run_every=settings.refresh_seconds)
    def live_refresh() -> None:
        """Rerun the page only when data newer than it shows has arrived (in the server, once the
        keeper has the new version's results ready; otherwise by asking the database), or when
        the signed-in person's grants have changed: an idle page is refused too once revoked."""
        view = published_view(store)
        if view is None:  # no keeper (a bare run): look at the database here
            with contextlib.suppress(DatabaseUnavailable):
                store.origin.refresh()
            view = store.origin.view()
        health = store.origin.health
        if (
            view.key != st.session_state.get("_rendered_version") or health.reachable != st.session_state.get("_rendered_reachable")
            or grants_changed(settings, store.engine)
        ):
            st.rerun(scope="app")
        if health.reachable and health.answered_at is not None:
            st.caption(t("freshness.updated", language, time=format_time(health.answered_at.astimezone(HELSINKI), language)))
        elif health.answered_at is not None:
            st.caption(t("freshness.last_updated", language, time=format_moment(health.answered_at, language)))

    if presenting:
        page = st.navigation([st.Page(PAGES / "present.py", title=t("page.present", language), default=True)], position="hidden")
        page.run()
        live_refresh()  # under the figure: its time, and the rerun when new data arrives
        audit_page_view(user, "present", filters, store.engine)
        log_data_time(settings, "present", queued_seconds=queued_seconds)
        st.stop()

    with st.sidebar:
        live_refresh()

    page = st.navigation(
        [
            st.Page(PAGES / "overview.py", title=t("page.overview", language), icon=":material/today:", default=True),
            st.Page(PAGES / "channels.py", title=t("page.channels", language), icon=":material/call:", url_path="kanavat"),
            st.Page(PAGES / "resolution.py", title=t("page.resolution", language), icon=":material/task_alt:", url_path="ratkaisu"),
            st.Page(PAGES / "referrals.py", title=t("page.referrals", language), icon=":material/alt_route:", url_path="ohjaukset"),
            st.Page(PAGES / "comparison.py", title=t("page.comparison", language), icon=":material/compare:", url_path="kuntavertailu"),
            st.Page(PAGES / "experience.py", title=t("page.experience", language), icon=":material/sentiment_satisfied:", url_path="asiakaskokemus"),
            st.Page(PAGES / "reasons.py", title=t("page.reasons", language), icon=":material/help_center:", url_path="syyt"),
            st.Page(PAGES / "multi_service.py", title=t("page.multi_service", language), icon=":material/hub:", url_path="monipalveluasiakkaat"),
            st.Page(PAGES / "pathway.py", title=t("page.pathway", language), icon=":material/route:", url_path="ohjauspolku"),
            st.Page(PAGES / "before_after.py", title=t("page.before_after", language), icon=":material/compare_arrows:", url_path="ennen-jalkeen"),
            st.Page(PAGES / "quality.py", title=t("page.quality", language), icon=":material/fact_check:", url_path="laatu"),
            st.Page(PAGES / "explore.py", title=t("page.explore", language), icon=":material/query_stats:", url_path="tutki"),
            st.Page(PAGES / "definitions.py", title=t("page.definitions", language), icon=":material/menu_book:", url_path=definitions.PAGE_PATH),
            *([st.Page(PAGES / "audit.py", title=t("page.audit", language), icon=":material/policy:", url_path="loki")] if user.is_admin else []),
        ],
        # Every page in view: past ten, Streamlit folds the rest behind "View 3 more", in English.
        expanded=True,
    )
    page.run()
    audit_page_view(user, page.url_path or "overview", filters, store.engine)
    log_data_time(settings, page.url_path or "overview", queued_seconds=queued_seconds)
