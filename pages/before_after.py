"""Ennen ja jälkeen: each key figure before and after a pilot's start (dashboard.before_after)."""

import streamlit as st

from dashboard.before_after import before_after_section, pilot_controls
from dashboard.i18n import t
from dashboard.state import get_context

ctx = get_context()
st.title(t("page.before_after", ctx.language))
st.caption(t("before_after.help", ctx.language))
start, weeks = pilot_controls(ctx)
before_after_section(ctx, start, weeks, key="before_after")
