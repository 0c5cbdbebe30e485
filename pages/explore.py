"""Tutki: any measure by up to two dimensions (dashboard.explorer)."""

import streamlit as st

from dashboard import explorer
from dashboard.i18n import t
from dashboard.state import get_context

ctx = get_context()
st.title(t("page.explore", ctx.language))
st.caption(t("explore.intro", ctx.language))
explorer.show(ctx)
