"""Lokitiedot: the audit trail, for administrators only (the navigation offers it to no one else)."""

import polars as pl
import streamlit as st

from dashboard.components import table_with_download
from dashboard.formatting import format_moment
from dashboard.i18n import catalogue, t
from dashboard.presenters import audit_detail_text
from dashboard.state import audit_trail, get_context

ctx = get_context()
language = ctx.language
if not ctx.user.is_admin:  # reached by its address without the right: say nothing of it
    st.stop()
st.title(t("page.audit", language))
st.caption(t("audit.intro", language, days=ctx.settings.audit_keep_days))
rows = audit_trail(ctx)


def _event(action: str) -> str:
    """The event in the reader's language; one this version does not know, as it is stored."""
    return t(f"audit.event.{action}", language) if f"audit.event.{action}" in catalogue() else action


if not rows:
    st.info(t("audit.empty", language))
else:
    table = pl.DataFrame(
        {
            t("audit.at", language): [format_moment(r["at"], language) for r in rows],
            t("audit.who", language): [r["email"] or "" for r in rows],
            t("audit.action", language): [_event(r["action"]) for r in rows],
            t("audit.page", language): [r["page"] or "" for r in rows],
            t("audit.detail", language): [audit_detail_text(r["detail"], language) for r in rows],
        },
        schema={name: pl.String for name in (t(f"audit.{k}", language) for k in ("at", "who", "action", "page", "detail"))},
    )
    table_with_download(table, key="audit", language=language)
