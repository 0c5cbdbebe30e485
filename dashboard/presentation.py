"""Presentation mode (``?present=1``): the key figures one view at a time, for a board room.

No sidebar and no controls but the previous/next buttons (the arrow keys too); large type; each
view titled, with the period, the comparison period and the filters under the title. The
filters come from the URL, so a link made on any page opens the same figures; with
``public=1`` they are the published ones (cell-key method). Live data reruns it like any page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from dashboard.charts import for_projector
from dashboard.components import empty_state
from dashboard.elements import shown_chart
from dashboard.export import Figures
from dashboard.formatting import plain
from dashboard.i18n import t
from dashboard.report import key_figures
from dashboard.sections import breakdown_figure, default_grain, figures_of, trend_figure
from dashboard.state import Context, query
from data_access.metrics import REGISTRY

TREND_SLIDES = ("first_contact_resolution", "electronic_share", "contacts")
SLIDES = ("summary", *TREND_SLIDES, "destinations", "municipalities")
# Fits under the title and subtitle at 1024 x 768, as on a projector.
CHART_HEIGHT = 360
# A bar per place, tall enough for its name in the projector's type.
ROW_HEIGHT = 30


def slide_number(count: int) -> int:
    """The view in the URL (``slide``, from 1), kept within the views there are."""
    try:
        number = int(st.query_params.get("slide", "1"))
    except ValueError:
        number = 1
    return min(max(number, 1), count)


def _go(number: int) -> None:
    st.query_params["slide"] = str(number)


def _leave() -> None:
    """Back to the dashboard with the same filters."""
    for key in ("present", "slide"):
        st.query_params.pop(key, None)


def _summary(ctx: Context) -> tuple[str, Figures]:
    """The key figures against their targets and the comparison period."""
    lines = key_figures(
        lambda metrics, filters: query(ctx, metrics, filters=filters), ctx.filters, ctx.comparison,
        settings=ctx.settings, language=ctx.language,
    )
    result = query(ctx, [line["key"] for line in lines])
    for row_start in range(0, len(lines), 3):
        for column, line in zip(st.columns(3), lines[row_start:row_start + 3], strict=False):
            better = REGISTRY[line["key"]].higher_is_better
            change = line["change"]
            still = change is None or not change.startswith(("+", "-"))  # rounds to no change: no arrow
            with column.container(border=True):
                # The label as a heading: a card's own label is too small for the back of a room.
                st.subheader(line["label"], anchor=False)
                st.metric(
                    line["label"], line["value"], delta=change or "—", label_visibility="collapsed",
                    delta_color="off" if still else "normal" if better else "inverse" if better is False else "off",
                    delta_arrow="off" if still else "auto", delta_description=line["target"] or t("present.no_target", ctx.language),
                )
    return t("present.summary", ctx.language), figures_of(ctx, result, [], [line["key"] for line in lines], comparison=ctx.comparison)


def _chart(ctx: Context, chart: dict[str, Any] | None, figures: Figures, key: str) -> None:
    if chart is None:
        empty_state(ctx.language, figures.result)
        return
    shown_chart(for_projector(chart), key=f"present_{key}")


def _view(ctx: Context, slide: str, body: Any) -> tuple[str, Figures]:
    """Draw one view's figure into ``body``; its title and figures."""
    with body:
        if slide == "summary":
            return _summary(ctx)
        if slide in TREND_SLIDES:
            chart, _, figures = trend_figure(ctx, slide, grain=default_grain(ctx), height=CHART_HEIGHT)
            _chart(ctx, chart, figures, slide)
            return t("present.trend", ctx.language, metric=REGISTRY[slide].label(ctx.language)), figures
        if slide == "destinations":
            chart, _, figures = breakdown_figure(ctx, "referrals", "destination", height=CHART_HEIGHT)
            _chart(ctx, chart, figures, slide)
            return t("present.destinations", ctx.language), figures
        # Every municipality of a whole country is a wall of bars: counties, until one is chosen.
        places = _places(ctx)
        level = "region" if places["region_code"].n_unique() > 1 else "municipality"
        rows = max(places[f"{level}_code"].n_unique(), 1)
        chart, _, figures = breakdown_figure(ctx, "first_contact_resolution", level, height=max(CHART_HEIGHT, ROW_HEIGHT * rows))
        _chart(ctx, chart, figures, slide)
        return t(f"present.by_{level}", ctx.language), figures


def _places(ctx: Context) -> pl.DataFrame:
    """The municipalities the view covers: the chosen ones, else the chosen county's, within
    the user's scope."""
    places = ctx.store.municipalities
    if ctx.scope.municipalities is not None:
        places = places.filter(pl.col("municipality_code").is_in(sorted(ctx.scope.municipalities)))
    if ctx.filters.municipalities:
        return places.filter(pl.col("municipality_code").is_in(list(ctx.filters.municipalities)))
    if ctx.filters.regions:
        return places.filter(pl.col("region_code").is_in(list(ctx.filters.regions)))
    return places


def show(ctx: Context) -> None:
    """The view the URL names, with the way to the others."""
    number = slide_number(len(SLIDES))
    title_area, subtitle_area, body = st.empty(), st.empty(), st.container()
    title, figures = _view(ctx, SLIDES[number - 1], body)
    title_area.title(title, anchor=False)
    subtitle_area.markdown(f"#### {plain(' · '.join(figures.subtitle()))}")
    # Wide enough for "Föregående" at 1024 px.
    back, counter, forward, leave = st.columns([2, 1, 2, 3], vertical_alignment="center")
    back.button(
        t("present.previous", ctx.language), icon=":material/arrow_back:", shortcut="Left", disabled=number == 1,
        on_click=_go, args=(number - 1,), key="present_previous",
    )
    counter.markdown(f"**{number} / {len(SLIDES)}**")
    forward.button(
        t("present.next", ctx.language), icon=":material/arrow_forward:", shortcut="Right", disabled=number == len(SLIDES),
        on_click=_go, args=(number + 1,), key="present_next",
    )
    leave.button(t("present.leave", ctx.language), icon=":material/close:", shortcut="Esc", on_click=_leave, key="present_leave", type="tertiary")


def link() -> str:
    """This view in presentation mode: the URL's filters (filters._write_url keeps them there)
    with ``present=1``, relative, so it works under any base path."""
    params = [(key, value) for key in st.query_params if key not in ("present", "slide") for value in st.query_params.get_all(key)]
    return "./?" + urlencode([*params, ("present", "1")])
