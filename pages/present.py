"""Esitystila: the key figures one view at a time, for a board room (dashboard.presentation)."""

from dashboard.presentation import show
from dashboard.state import get_context

show(get_context())
