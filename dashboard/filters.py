"""The shared filters in the frame, kept in the URL as codes.

Streamlit's own ``bind="query-params"`` writes the *displayed labels* into the URL
(``?period=Viimeiset+7+päivää``), so a shared link would break when the reader's language
differs. Here the URL holds codes (``?period=last_7_days&municipality=853``): it seeds the
widgets once per session and is rewritten from them on every run, which also restores it
after a page change (Streamlit clears query parameters when the page changes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
import streamlit as st

from dashboard.i18n import LANGUAGES, code_label, t
from dashboard.presenters import place_names
from data_access import codes
from data_access.metrics import Filters, Scope
from data_access.periods import (
    COMPARISONS,
    PRESETS,
    comparison_range,
    local_now,
    preset_range,
)
from data_access.snapshot import FactSource

LANGUAGE_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}
MULTI = ("municipality", "channel", "service_line", "age_band")
SINGLE_DEFAULTS = {"period": "last_30_days", "compare": "previous_period", "region": "all"}


def browser_language(locale: str | None, default: str) -> str:
    """Swedish when the browser asks for it; otherwise the configured default (Finnish): an
    English browser is common among Finnish-speaking staff and is not a choice of language."""
    return "sv" if (locale or "").lower().startswith("sv") else default


def _seed_once(key: str, default: object, valid: Callable[[object], bool], parse: Callable[[list[str]], object]) -> None:
    """Put the URL's value (or the default) in session state before the widget is drawn."""
    if key in st.session_state:
        return
    raw = st.query_params.get_all(key)
    value = default
    if raw:
        try:
            candidate = parse(raw)
            if valid(candidate):
                value = candidate
        except ValueError:
            pass
    st.session_state[key] = value


def _single(options: tuple[str, ...] | list[str]) -> tuple[Callable, Callable]:
    return (lambda v: v in options), (lambda raw: raw[-1])


def _multi(options: tuple[str, ...] | list[str]) -> tuple[Callable, Callable]:
    """Unknown codes in a list are dropped one by one, not the whole list."""
    return (lambda v: True), (lambda raw: [x for x in dict.fromkeys(raw) if x in options])


def language_selector(default: str, *, draw: bool = True) -> str:
    """The language: the URL's, else Swedish for a browser set to Swedish (a Swedish-speaking
    person coming back from signing in, which drops the URL's language), else the default."""
    st.session_state["_default_language"] = default
    _seed_once("lang", browser_language(st.context.locale, default), *_single(LANGUAGES))
    if not draw:
        return str(st.session_state["lang"])
    chosen: str = st.sidebar.selectbox("Kieli / Språk / Language", LANGUAGES, format_func=lambda code: LANGUAGE_NAMES[code], key="lang")
    previous = st.session_state.get("_labels_in")
    st.session_state["_labels_in"] = chosen
    if previous is not None and previous != chosen:
        _choices_again()
    return chosen


def _choices_again() -> None:
    """After a language change, give every choice to its widget again. A select box keeps in
    the browser the label it showed; the next run got back a label of the old language, which
    matched no option, and the choice fell back to the first (switching Swedish to English
    made the period "today"). A value set from the code is sent with the new language's
    label. Only text choices (select boxes, multiselects, segmented controls): buttons and
    uploads cannot be set, and the language's own box is drawn already."""
    for key in list(st.session_state.keys()):
        value = st.session_state[key]
        if not isinstance(key, str) or key == "lang" or key.startswith("_"):
            continue
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            st.session_state[key] = value


class _Unseen:
    """The filters' widgets when they are not drawn (presentation mode): each gives the value
    the URL seeded, as the widget would have."""

    def subheader(self, *_: object) -> None:
        return None

    def caption(self, *_: object) -> None:
        return None

    def _value(self, *_: object, key: str, **__: object) -> Any:
        return st.session_state[key]

    selectbox = multiselect = date_input = _value


def _seed_public() -> None:
    _seed_once("public", False, lambda v: isinstance(v, bool), lambda raw: raw[-1] == "1")


def publication_toggle(language: str, *, available: bool, draw: bool = True) -> bool:
    """Published figures (cell-key method) for showing outside the county: the whole view,
    its downloads and presentation mode. In the URL as ``public=1``. When they cannot be made
    (``available`` False) a request for them stays in the state and the URL, so that every
    run refuses it (``publication_refused``) instead of the next one showing exact figures."""
    _seed_public()
    if not available:
        return False
    if not draw:
        return bool(st.session_state["public"])
    return bool(st.sidebar.toggle(t("publication.toggle", language), key="public", help=t("publication.toggle_help", language)))


def publication_refused(publication: bool) -> bool:
    """Figures fit to publish were asked for (the URL's ``public=1``, held in the state) and
    cannot be given: the page must show none rather than the exact ones."""
    return bool(st.session_state.get("public")) and not publication


def filter_sidebar(store: FactSource, language: str, scope: Scope, *, draw: bool = True) -> tuple[Filters, Filters | None, str]:
    """Draw the filters and return (filters, comparison filters or None, period preset). Only
    the counties and municipalities of the user's scope are offered (the figures are scoped
    at the one exit whatever is chosen). Without ``draw`` (presentation mode) nothing is drawn
    and the URL's filters hold, checked as the widgets would check them."""
    sidebar = st.sidebar if draw else _Unseen()
    sidebar.subheader(t("filter.heading", language))
    today = local_now().date()
    municipalities = store.municipalities
    if scope.municipalities is not None:
        municipalities = municipalities.filter(pl.col("municipality_code").is_in(sorted(scope.municipalities)))
    region_codes = sorted(municipalities["region_code"].unique().to_list())
    all_municipalities = municipalities["municipality_code"].to_list()

    _seed_once("period", SINGLE_DEFAULTS["period"], *_single(PRESETS))
    _seed_once("compare", SINGLE_DEFAULTS["compare"], *_single(COMPARISONS))
    _seed_once("region", SINGLE_DEFAULTS["region"], *_single(["all", *region_codes]))
    _seed_once("municipality", [], *_multi(all_municipalities))
    for key, values in (("channel", codes.CHANNELS), ("service_line", codes.SERVICE_LINES), ("age_band", codes.AGE_BANDS)):
        _seed_once(key, [], *_multi(values))
    _seed_range(today)
    _seed_public()  # before the URL is written from the state (publication_toggle draws it)

    preset = sidebar.selectbox(
        t("filter.period", language), PRESETS, format_func=lambda p: t(f"preset.{p}", language), key="period"
    )
    if preset == "custom":
        chosen = sidebar.date_input(t("filter.custom_range", language), max_value=today, format="DD.MM.YYYY", key="range")
        if isinstance(chosen, tuple) and len(chosen) == 2:
            start, end = chosen
        else:
            sidebar.caption(t("filter.range_incomplete", language))
            start, end = st.session_state.get("_last_range", preset_range("last_30_days", today=today))
        st.session_state["_last_range"] = (start, end)
    else:
        start, end = preset_range(preset, today=today)
    compare = sidebar.selectbox(
        t("filter.comparison", language), COMPARISONS, format_func=lambda c: t(f"compare.{c}", language), key="compare"
    )

    region_names = place_names(store, "region", language)
    region = sidebar.selectbox(
        t("filter.region", language), ["all", *region_codes],
        format_func=lambda r: t("filter.all", language) if r == "all" else region_names.get(r, r), key="region",
    )
    in_region = municipalities if region == "all" else municipalities.filter(municipalities["region_code"] == region)
    all_names = place_names(store, "municipality", language)
    names = {code: all_names[code] for code in sorted(in_region["municipality_code"].to_list(), key=lambda code: all_names[code])}
    # A municipality chosen before the county changed stays chosen only if it is in the county.
    st.session_state["municipality"] = [m for m in st.session_state["municipality"] if m in names]
    chosen_municipalities = sidebar.multiselect(
        t("filter.municipalities", language), list(names), format_func=lambda code: names[code],
        placeholder=t("filter.all", language), key="municipality",
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
    if draw:
        _write_url(language=language, preset=preset, start=start, end=end)
    period = comparison_range(start, end, compare)
    comparison = None if period is None else dataclasses.replace(filters, start=period[0], end=period[1])
    return filters, comparison, preset


def _seed_range(today: dt.date) -> None:
    if "range" in st.session_state:
        return
    default = preset_range("last_30_days", today=today)
    try:
        start = dt.date.fromisoformat(st.query_params.get("from", ""))
        end = dt.date.fromisoformat(st.query_params.get("to", ""))
        st.session_state["range"] = (start, end) if start <= end else default
    except ValueError:
        st.session_state["range"] = default


def _code_filter(sidebar: object, label_key: str, kind: str, values: tuple[str, ...], language: str) -> tuple[str, ...]:
    chosen = sidebar.multiselect(  # type: ignore[attr-defined]  # the sidebar, or _Unseen
        t(f"filter.{label_key}", language), list(values), format_func=lambda c: code_label(kind, c, language),
        placeholder=t("filter.all", language), key=kind,
    )
    return tuple(chosen)


def _write_url(*, language: str, preset: str, start: dt.date, end: dt.date) -> None:
    """The view as codes in the URL; defaults are left out to keep links short."""
    params: dict[str, str | list[str]] = {}
    if language != st.session_state.get("_default_language", "fi"):
        params["lang"] = language
    for key, default in SINGLE_DEFAULTS.items():
        if st.session_state[key] != default:
            params[key] = st.session_state[key]
    if preset == "custom":
        params["from"], params["to"] = start.isoformat(), end.isoformat()
    for key in MULTI:
        if st.session_state[key]:
            params[key] = list(st.session_state[key])
    if st.session_state.get("public"):
        params["public"] = "1"
    current = {key: st.query_params.get_all(key) for key in st.query_params}
    # A page's own choices bound to the URL (grain, tab, funnel metric) are the widgets' to keep.
    managed = {"lang", "from", "to", "public", *SINGLE_DEFAULTS, *MULTI}
    for key, values in current.items():
        if key not in managed:
            params[key] = values if len(values) > 1 else values[0]
    wanted = {key: value if isinstance(value, list) else [value] for key, value in params.items()}
    if current != wanted:
        st.query_params.from_dict(params)


def _keep_in_url(key: str, code: str, default: str) -> None:
    """A page's own choice in the URL as its code, left out when it is the default."""
    if code == default:
        if key in st.query_params:
            del st.query_params[key]
    elif st.query_params.get(key) != code:
        st.query_params[key] = code


def _url_choice(
    widget: Callable[..., Any], label: str, options: Sequence[str], *, key: str, default: str, format_func: Callable[[str], str],
    **extra: Any,
) -> str:
    """A choice of codes whose code, not its label, is in the URL (``?grain=week``): a link
    opens the same choice in any language. Streamlit's ``bind`` wrote the label
    (``?grain=Viikko``), which a Swedish reader's page did not know."""
    _seed_once(key, default, *_single(tuple(options)))
    if st.session_state[key] not in options:  # the options changed (another measure)
        st.session_state[key] = default
    chosen = widget(label, options, format_func=format_func, key=key, **extra)
    code = str(chosen if chosen is not None else default)
    _keep_in_url(key, code, default)
    return code


def url_segmented(label: str, options: Sequence[str], *, key: str, default: str, format_func: Callable[[str], str]) -> str:
    """A segmented control of codes, its code in the URL (``_url_choice``)."""
    return _url_choice(st.segmented_control, label, options, key=key, default=default, format_func=format_func, required=True)


def url_select(label: str, options: Sequence[str], *, key: str, default: str, format_func: Callable[[str], str]) -> str:
    """A select box of codes, its code in the URL (``_url_choice``)."""
    return _url_choice(st.selectbox, label, options, key=key, default=default, format_func=format_func)


def url_tabs(labels: dict[str, str], *, key: str) -> tuple[list[Any], str]:
    """Tabs (code -> label) whose open tab's code is in the URL, and that code. The widget
    holds the label, so a label of another language (the language changed) is set again from
    the URL's code."""
    codes = list(labels)
    if st.session_state.get(key) not in labels.values():
        wanted = st.query_params.get(key)
        st.session_state[key] = labels[wanted] if wanted in labels else labels[codes[0]]
    tabs = st.tabs(list(labels.values()), key=key, on_change="rerun")
    by_label = {label: code for code, label in labels.items()}
    code = by_label.get(st.session_state.get(key, ""), codes[0])
    _keep_in_url(key, code, codes[0])
    return list(tabs), code

