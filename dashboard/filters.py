"""The shared filters in the frame. Each widget is bound to a URL query parameter, so a
view can be shared and reopened, and the values survive moving between pages."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from data_access import codes
from data_access.metrics import Filters
from data_access.periods import COMPARISONS, PRESETS, comparison_range, local_now, preset_range
from data_access.snapshot import FactStore
from dashboard.i18n import LANGUAGES, code_label, t

LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}


def language_selector(default: str) -> str:
    return st.sidebar.selectbox(
        "Kieli / Språk / Language", LANGUAGES, index=LANGUAGES.index(default),
        format_func=LANGUAGE_NAMES.get, key="lang", bind="query-params",
    )


def filter_sidebar(store: FactStore, language: str) -> tuple[Filters, Filters | None, str]:
    """Draw the filters and return (filters, comparison filters or None, period preset)."""
    sidebar = st.sidebar
    sidebar.subheader(t("filter.heading", language))
    today = local_now().date()
    preset = sidebar.selectbox(
        t("filter.period", language), PRESETS, index=PRESETS.index("last_30_days"),
        format_func=lambda p: t(f"preset.{p}", language), key="period", bind="query-params",
    )
    if preset == "custom":
        default = preset_range("last_30_days", today=today)
        chosen = sidebar.date_input(
            t("filter.custom_range", language), value=default, max_value=today, format="DD.MM.YYYY",
            key="range", bind="query-params",
        )
        if isinstance(chosen, tuple) and len(chosen) == 2:
            start, end = chosen
        else:
            sidebar.caption(t("filter.range_incomplete", language))
            start, end = default
    else:
        start, end = preset_range(preset, today=today)
    compare = sidebar.selectbox(
        t("filter.comparison", language), COMPARISONS, format_func=lambda c: t(f"compare.{c}", language),
        key="compare", bind="query-params",
    )

    municipalities = store.municipalities
    name_column = "name_sv" if language == "sv" else "name_fi"
    region_column = "region_name_sv" if language == "sv" else "region_name_fi"
    region_names = dict(municipalities.select("region_code", region_column).unique().sort("region_code").iter_rows())
    region = sidebar.selectbox(
        t("filter.region", language), ["all", *region_names],
        format_func=lambda r: t("filter.all", language) if r == "all" else region_names.get(r, r),
        key="region", bind="query-params",
    )
    in_region = municipalities if region == "all" else municipalities.filter(municipalities["region_code"] == region)
    municipality_names = dict(in_region.select("municipality_code", name_column).sort(name_column).iter_rows())
    chosen_municipalities = sidebar.multiselect(
        t("filter.municipalities", language), list(municipality_names), format_func=municipality_names.get,
        placeholder=t("filter.all", language), key="municipality", bind="query-params",
    )
    channels = _code_filter(sidebar, "channels", "channel", codes.CHANNELS, language)
    service_lines = _code_filter(sidebar, "service_lines", "service_line", codes.SERVICE_LINES, language)
    age_bands = _code_filter(sidebar, "age_bands", "age_band", codes.AGE_BANDS, language)

    filters = Filters(
        start=start, end=end,
        municipalities=tuple(chosen_municipalities),
        regions=() if region == "all" else (region,),
        channels=channels, service_lines=service_lines, age_bands=age_bands,
    )
    period = comparison_range(start, end, compare)
    comparison = None if period is None else Filters(**{**filters.__dict__, "start": period[0], "end": period[1]})
    return filters, comparison, preset


def _code_filter(sidebar, label_key: str, kind: str, values: tuple[str, ...], language: str) -> tuple[str, ...]:
    chosen = sidebar.multiselect(
        t(f"filter.{label_key}", language), list(values), format_func=lambda c: code_label(kind, c, language),
        placeholder=t("filter.all", language), key=kind, bind="query-params",
    )
    return tuple(chosen)


def today_local() -> dt.date:
    return local_now().date()
