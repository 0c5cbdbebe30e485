"""Mittarit: every measure's definition and every code list (dashboard.definitions)."""

from dashboard.definitions import show
from dashboard.state import get_context

ctx = get_context()
show(ctx.settings, ctx.language)
