"""Who is looking: sign-in through Streamlit's OpenID Connect (st.login), or the demo mode.

With ``OHJAUSTAULU_SIGN_IN=true`` every page asks the identity provider (Microsoft Entra ID
in the counties, docs/deployment.md) who the person is, and the product's own tables
(data_access/access.py) what they may see: deny by default. Without sign-in the dashboard
runs in a labelled demo mode, and only on an SQLite database (the embedded sample data):
against PostgreSQL it refuses (here, and ``ohjaustaulu run`` before it starts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlalchemy as sa
import streamlit as st
from sqlalchemy.engine import Engine

from dashboard.formatting import plain
from dashboard.i18n import t
from dashboard.state import DEMO, Context
from data_access.access import User, audit, audit_sign_in, find_user
from data_access.config import Settings
from data_access.metrics import Filters

log = logging.getLogger(__name__)

# A signed-in person's grants are read again after this long: a revoked grant takes effect
# within a minute without a database read on every live refresh. An open page's live refresh
# (every refresh_seconds) reads them too once they are this old (grants_changed), so an idle
# page is refused within RECHECK_SECONDS + refresh_seconds (70 s by default) without new data.
RECHECK_SECONDS = 60.0


def current_user(settings: Settings, engine: Engine, language: str) -> User:
    """The person this session shows figures to, or a page that says why not (and stops)."""
    if not settings.sign_in:
        if not settings.demo_allowed:
            st.error(t("signin.required", language), icon=":material/lock:")
            st.stop()
        st.sidebar.info(t("signin.demo", language), icon=":material/science:")
        return DEMO
    if not st.user.is_logged_in:
        st.title("Ohjaustaulu")
        st.write(t("signin.intro", language))
        st.button(t("signin.button", language), on_click=st.login, icon=":material/login:", type="primary")
        st.stop()
    email = _claim("email") or _claim("preferred_username")
    cached = st.session_state.get("_user")
    if cached is not None and cached[0] == email and time.monotonic() - cached[1] < RECHECK_SECONDS:
        user: User = cached[2]
        return user
    try:
        found = find_user(engine, email)
    except sa.exc.DBAPIError:
        # The database went away (the frame says so): the grants read last hold meanwhile;
        # without any, nothing is shown.
        if cached is not None and cached[0] == email:
            user = cached[2]
            return user
        st.error(t("error.database_unavailable", language), icon=":material/cloud_off:")
        st.stop()
    if found is None:
        if st.session_state.get("_refused") != email:
            audit(engine, "refused", email=email)
            st.session_state["_refused"] = email
        st.error(t("signin.unknown", language, email=plain(email or "?")), icon=":material/block:")
        st.button(t("signin.sign_out", language), on_click=st.logout, icon=":material/logout:")
        st.stop()
    if cached is None or cached[0] != email:
        # Every browser tab and reload is a new session of the same sign-in: the sign-in is
        # recorded once, by the time the provider issued it (the ID token's "iat").
        audit_sign_in(engine, found.email, signed_in_at=st.user.get("iat"))
    st.session_state["_user"] = (email, time.monotonic(), found)
    return found


def grants_changed(settings: Settings, engine: Engine) -> bool:
    """For an open page's live refresh: whether the signed-in person, read again once the
    grants the page was drawn with are RECHECK_SECONDS old, is no longer the same (removed,
    a grant revoked or given, another role). Then the page must run again, and current_user
    reads them again there; unchanged, they count as read now. Nothing is read more often,
    nor in demo mode; a database that went away changes nothing (the frame says so)."""
    cached = st.session_state.get("_user")
    if not settings.sign_in or cached is None or time.monotonic() - cached[1] < RECHECK_SECONDS:
        return False
    email, _, shown = cached
    try:
        found = find_user(engine, email)
    except sa.exc.DBAPIError:
        return False
    if found == shown:
        st.session_state["_user"] = (email, time.monotonic(), found)
        return False
    return True


def sign_out_button(user: User, language: str) -> None:
    """Who is signed in, and the way out (not in demo mode)."""
    if user is DEMO:
        return
    st.sidebar.caption(t("signin.as", language, who=plain(user.name or user.email), role=t(f"role.{user.role}", language)))
    st.sidebar.button(t("signin.sign_out", language), on_click=_sign_out, args=(user,), icon=":material/logout:", key="sign_out")


def _sign_out(user: User) -> None:
    from dashboard.state import get_context

    audit(get_context().store.engine, "sign_out", email=user.email)
    st.session_state.pop("_user", None)
    st.logout()


def _claim(name: str) -> str | None:
    value = st.user.get(name)
    return str(value) if value else None


def _filters_detail(filters: Filters) -> dict[str, object]:
    """What an audit row says of the filters: the period and the codes chosen."""
    return {"from": filters.start.isoformat(), "to": filters.end.isoformat(), **{
        name: list(values) for name, values in (
            ("municipalities", filters.municipalities), ("regions", filters.regions), ("channels", filters.channels),
            ("service_lines", filters.service_lines), ("age_bands", filters.age_bands),
        ) if values
    }}


def audit_page_view(user: User, page: str, filters: Filters, engine: Engine) -> None:
    """A row in the audit trail when the page or its filters change (not on live refreshes).
    Codes and dates only. A database that cannot be written (it went away) loses the row,
    with a line in the server log: the page stays."""
    seen = (page, filters)
    if st.session_state.get("_audited_view") == seen:
        return
    try:
        audit(engine, "page", email=user.email, page=page, detail=_filters_detail(filters))
    except sa.exc.DBAPIError:
        log.warning("the audit row of a page view could not be written", exc_info=True)
        return
    st.session_state["_audited_view"] = seen


def audited_download(ctx: Context, key: str, make: Callable[[], bytes]) -> Callable[[], bytes]:
    """The download button's deferred data: when pressed, an audit row (who downloaded which
    table with which filters), then the file. Runs outside the page script: it holds what it
    needs instead of reading the session."""
    engine, email, filters = ctx.store.engine, ctx.user.email, ctx.filters

    def made() -> bytes:
        try:
            audit(engine, "download", email=email, page=key, detail={"table": key, **_filters_detail(filters)})
        except sa.exc.DBAPIError:
            log.warning("the audit row of a download could not be written", exc_info=True)
        return make()

    return made
