"""Mittarit: every measure and code list, generated from the registry and the catalogue, so
the page cannot say other than what is computed. Each "?" on the other pages links here."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboard.elements import shown_table
from dashboard.formatting import format_value, plain
from dashboard.i18n import LANGUAGES, code_label, t
from data_access import codes
from data_access.config import Settings
from data_access.metrics import REGISTRY, Metric

PAGE_PATH = "mittarit"
CODE_LISTS = (
    "channel", "service_line", "initiator", "reason", "outcome", "destination", "age_band", "professional_group", "contact_type", "status",
    "process", "instrument", "phase", "domain",
)


def entry_link(metric: str, language: str) -> str:
    """A Markdown link to a measure's entry, for the "?" of a card or chart."""
    return f"[{t('definitions.link', language)}]({PAGE_PATH}?lang={language}#{metric.replace('_', '-')})"


def facts(metric: Metric, settings: Settings, language: str) -> list[str]:
    """What is known of a measure besides its definition: unit, target, direction, source."""
    lines = [t("definitions.unit", language, unit=t(f"definitions.unit_{metric.unit}", language))]
    target = metric.target(settings)
    if target is not None:
        lines.append(t("definitions.target", language, target=format_value(target, metric.unit, language=language)))
    if metric.higher_is_better is not None:
        lines.append(t("definitions.better_higher" if metric.higher_is_better else "definitions.better_lower", language))
    lines.append(t("definitions.source", language, source=t(f"definitions.source_{metric.source}", language)))
    return lines


def code_table(kind: str, language: str) -> pl.DataFrame:
    """A code list with its labels in every language (each language named in itself), the
    code column titled in ``language``."""
    values = codes.BY_COLUMN[kind]
    return pl.DataFrame({
        t("definitions.code", language): list(values),
        **{name: [code_label(kind, value, language) for value in values] for language, name in zip(LANGUAGES, ("suomi", "svenska", "English"), strict=True)},
    })


def show(settings: Settings, language: str) -> None:
    st.title(t("page.definitions", language))
    st.caption(t("definitions.intro", language))
    st.header(t("definitions.caveats", language), anchor="caveats")
    electronic = ", ".join(code_label("channel", c, language) for c in settings.electronic_channels)
    for key in ("definitions.caveat_self_reported", "definitions.caveat_electronic", "definitions.caveat_small"):
        st.markdown("- " + plain(t(key, language, channels=electronic, threshold=settings.small_cell_threshold)))
    st.header(t("definitions.measures", language), anchor="measures")
    for key, metric in REGISTRY.items():
        # Its anchor is its key, for the "?" links: the heading's text differs by language.
        st.subheader(metric.label(language), anchor=key.replace("_", "-"))
        st.markdown(plain(metric.definition(language)))
        st.caption(" · ".join(facts(metric, settings, language)) + f" · `{key}`")
    st.header(t("definitions.codes", language), anchor="codes")
    for kind in CODE_LISTS:
        with st.expander(t(f"dimension.{kind}", language) if kind not in ("contact_type", "status") else t(f"definitions.list_{kind}", language)):
            shown_table(code_table(kind, language), key=f"codes_{kind}")
