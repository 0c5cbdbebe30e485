"""Shared screen components: KPI cards, chart blocks with their table and download,
freshness, empty and error states."""

from __future__ import annotations

import datetime as dt
import io
import math
from typing import Any, Literal

import altair as alt
import polars as pl
import streamlit as st

from dashboard.definitions import entry_link
from dashboard.elements import shown_chart, shown_table, table_expander, text_table
from dashboard.export import Figures, chart_image, safe_frame, xlsx_bytes
from dashboard.formatting import (
    SECONDARY_MARK,
    format_date,
    format_number,
    format_time,
    format_value,
    hidden_text,
)
from dashboard.i18n import t
from dashboard.presenters import change_text, place_names, reason_label, value_text
from dashboard.signin import audited_download
from dashboard.state import (
    Context,
    freshness,
    get_context,
    pending,
    period_records,
    quarantined,
    query,
    with_period,
)
from data_access.config import get_settings
from data_access.engine import DatabaseUnavailable
from data_access.metrics import REGISTRY, Filters
from data_access.periods import HELSINKI


def csv_bytes(table: pl.DataFrame) -> bytes:
    """The table as a Finnish spreadsheet expects it: semicolons, UTF-8 with BOM, no formulas."""
    buffer = io.BytesIO()
    safe_frame(table).write_csv(buffer, separator=";")
    return "\ufeff".encode() + buffer.getvalue()


def chart_block(
    chart: alt.TopLevelMixin | dict[str, Any], table: pl.DataFrame, *, key: str, language: str, caption: str | None = None,
    figures: Figures | None = None, parquet: bool = False,
) -> None:
    """A chart (an Altair chart, or its spec from charts.cached_spec) with its data table
    within reach and a CSV download of exactly that table."""
    if isinstance(chart, dict):
        shown_chart(chart, key=f"chart_{key}")
    else:
        st.altair_chart(chart, theme=None, key=f"chart_{key}")  # type: ignore[call-overload]  # any top-level chart
    if caption:
        st.caption(caption)
    hidden_legend(table, language=language)
    shelf = table_expander(t("common.show_table", language), key=f"table_{key}")
    if shelf.open:
        with shelf:
            shown_table(table, key=f"table_{key}")
    _download(table, key=key, language=language, figures=figures, chart=chart, parquet=parquet)


def table_with_download(table: pl.DataFrame, *, key: str, language: str, figures: Figures | None = None) -> None:
    shown_table(table, key=f"table_{key}")
    hidden_legend(table, language=language)
    _download(table, key=key, language=language, figures=figures)


def hidden_legend(table: pl.DataFrame, *, language: str) -> None:
    """What "<5", "(n<5)" and ".." mean, under a chart or table that shows one of them."""
    threshold = get_settings().small_cell_threshold
    marks = [f"<{threshold}", f"(n<{threshold})", SECONDARY_MARK]
    text = [name for name, dtype in table.schema.items() if dtype == pl.String]
    if text and table.select(pl.any_horizontal(pl.col(c).is_in(marks) for c in text).any()).item():
        st.caption(t("common.suppressed_note", language, threshold=threshold))


def _download(
    table: pl.DataFrame, *, key: str, language: str, figures: Figures | None = None,
    chart: alt.TopLevelMixin | dict[str, Any] | None = None, parquet: bool = False,
) -> None:
    """The figures as CSV and Excel (and Parquet, for analysts), for the roles that may download; each download is in the
    audit trail. With ``figures``, numbers as numbers with intervals and n; else the table as
    shown (the audit trail, the freshness lists)."""
    ctx = get_context()
    if not ctx.user.may_download:
        return
    make_csv = figures.csv if figures is not None else (lambda: csv_bytes(table))
    make_xlsx = figures.xlsx if figures is not None else (lambda: xlsx_bytes(table))
    # The file is made when the button is pressed (on a thread of its own, no rerun), and the
    # audit row with it. A callback instead reran the page, and the rerun cancelled the
    # download it was recording (seen in Chromium).
    row = st.container(horizontal=True, gap="small")
    row.download_button(
        t("common.download_csv", language), data=audited_download(ctx, key, make_csv),
        file_name=f"ohjaustaulu_{key}.csv", mime="text/csv", key=f"download_{key}", icon=":material/download:",
        on_click="ignore",
    )
    row.download_button(
        t("common.download_xlsx", language), data=audited_download(ctx, f"{key}.xlsx", make_xlsx),
        file_name=f"ohjaustaulu_{key}.xlsx", mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key=f"download_{key}_xlsx", icon=":material/table_view:", on_click="ignore",
    )
    if parquet and figures is not None:
        row.download_button(
            t("common.download_parquet", language), data=audited_download(ctx, f"{key}.parquet", figures.parquet),
            file_name=f"ohjaustaulu_{key}.parquet", mime="application/vnd.apache.parquet", key=f"download_{key}_parquet",
            icon=":material/database:", on_click="ignore",
        )
    if chart is None or figures is None:
        return
    for fmt, mime, icon in (("png", "image/png", ":material/image:"), ("svg", "image/svg+xml", ":material/draw:")):
        def picture(fmt: str = fmt, chart: alt.TopLevelMixin | dict[str, Any] = chart, figures: Figures = figures) -> bytes:
            """Drawn when pressed, with the subtitle made then too: nothing on the page's run."""
            return chart_image(chart, fmt=fmt, title=figures.title, subtitle=figures.subtitle())

        row.download_button(
            t(f"common.download_{fmt}", language), data=audited_download(ctx, f"{key}.{fmt}", picture),
            file_name=f"ohjaustaulu_{key}.{fmt}", mime=mime, key=f"download_{key}_{fmt}", icon=icon, on_click="ignore",
        )


def empty_state(language: str, result: pl.DataFrame | None = None) -> None:
    """Nothing to draw: no rows, or (``result`` holds hidden rows) every figure hidden."""
    if result is not None and result.height and result["suppressed"].any():
        threshold = get_settings().small_cell_threshold
        st.info(t("common.all_hidden", language, threshold=threshold), icon=":material/visibility_off:")
        return
    st.info(t("common.empty", language), icon=":material/filter_alt_off:")


def _delta(current: dict[str, Any] | None, previous: dict[str, Any] | None, *, metric: str, language: str) -> str | None:
    if not current or not previous or current["suppressed"] or previous["suppressed"]:
        return None
    return change_text(current["value"], previous["value"], unit=REGISTRY[metric].unit, language=language, zero_as_none=True)


def _help(metric: str, record: dict | None, ctx: Context) -> str:
    definition = REGISTRY[metric].definition(ctx.language)
    lines = [definition]
    target = REGISTRY[metric].target(ctx.settings)
    if target is not None:
        lines.append(t("card.target", ctx.language, target=value_text({"value": target, "suppressed": False}, metric=metric, threshold=0, language=ctx.language)))
    if record and not record["suppressed"]:
        if record["denominator"] is not None and REGISTRY[metric].unit in ("share", "seconds", "score", "nps", "days", "mean"):
            lines.append(t("card.n", ctx.language, n=format_number(record["denominator"], language=ctx.language)))
        if record["ci_low"] is not None:
            lines.append(
                t(
                    "card.interval", ctx.language,
                    low=format_number(record["ci_low"] * 100, decimals=1, language=ctx.language),
                    high=format_number(record["ci_high"] * 100, decimals=1, language=ctx.language) + "\u00a0%",
                )
            )
    elif record and record["suppressed"]:
        lines.append(t("card.suppressed", ctx.language))
    if record and record.get("note") == "population_missing":
        lines.append(t("card.population_missing", ctx.language))
    lines.append(entry_link(metric, ctx.language))
    return "\n\n".join(lines)


def card_colour(metric: str, status: str | None) -> Literal["green", "red", "off", "normal", "inverse"]:
    """The colour of a card's change and sparkline. Against a target it is the target badge's
    (green on target, red below): a red line above "on target" read as a warning. Without
    one, the change's direction: green when better, red when worse, grey for volumes."""
    if status is not None:
        return "green" if status == "meets" else "red"
    better = REGISTRY[metric].higher_is_better
    return "off" if better is None else "normal" if better else "inverse"


def target_status(metric: str, record: dict | None, ctx: Context) -> str | None:
    """'below', 'meets' or None when the metric has no target or no value."""
    target = REGISTRY[metric].target(ctx.settings)
    if target is None or not record or record["suppressed"] or record["value"] is None:
        return None
    ok = record["value"] >= target if REGISTRY[metric].higher_is_better else record["value"] <= target
    return "meets" if ok else "below"


def kpi_card(
    metric: str, *, record: dict | None, previous: dict | None, sparkline: list[float | None] | None, ctx: Context,
) -> None:
    """One figure: its title (wrapping: st.metric's own label is cut at one line, and at
    1024 px, as on a projector, "Ratkaistu ensikontaktissa" read "Ratkaistu ensikont..."),
    value, change, sparkline and target badge."""
    definition = REGISTRY[metric]
    card = st.container(border=True)
    status = target_status(metric, record, ctx)
    help_text = _help(metric, record, ctx)
    card.markdown(f"**{definition.label(ctx.language)}**", help=help_text)
    card.metric(
        definition.label(ctx.language),
        value_text(record, metric=metric, threshold=ctx.settings.small_cell_threshold, language=ctx.language),
        delta=_delta(record, previous, metric=metric, language=ctx.language),
        delta_color=card_colour(metric, status),
        label_visibility="collapsed",
        # st.metric takes numbers only; a suppressed or empty day is a gap (NaN).
        chart_data=[math.nan if v is None else v for v in sparkline] if sparkline and any(v is not None for v in sparkline) else None,
    )
    target = definition.target(ctx.settings)
    if status is not None:
        target_text = format_value(target, definition.unit, language=ctx.language)
        # Coloured text, not st.badge: a badge is one line and was cut at 1024 px.
        if status == "below":
            card.markdown(f":red[:material/warning: {t('card.below_target', ctx.language, target=target_text)}]")
        else:
            card.markdown(f":green[:material/check_circle: {t('card.meets_target', ctx.language, target=target_text)}]")


def compared_with(period: Filters, language: str) -> str:
    """'vs. 16.11.2026' or 'vs. 9.11.2026–15.11.2026' under a card's change."""
    if period.start == period.end:
        return t("delta.description", language, date=format_date(period.start, language))
    return t("delta.description_range", language, start=format_date(period.start, language), end=format_date(period.end, language))


def kpi_column(
    ctx: Context, *, title: str, metrics: list[str], previous: Filters, now: dict[str, dict], before: dict[str, dict],
    sparklines: dict[str, list[float | None]],
) -> None:
    """A column of cards for one period (``now``, figures by metric from ``period_records``)
    against an earlier one (``previous``, its figures ``before``)."""
    st.markdown(f"**{title}**")
    st.caption(t("card.changes_against", ctx.language, period=compared_with(previous, ctx.language)))
    for metric in metrics:
        kpi_card(metric, record=now.get(metric), previous=before.get(metric), sparkline=sparklines.get(metric), ctx=ctx)


def sparklines(ctx: Context, metrics: list[str], *, start: dt.date, end: dt.date) -> dict[str, list[float | None]]:
    """Daily values of each metric for a small trend line; suppressed days are gaps."""
    result = query(ctx, metrics, by=["day"], filters=with_period(ctx.filters, start, end))
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    lines: dict[str, list[float | None]] = {}
    for metric in metrics:
        values = dict(result.filter(pl.col("metric") == metric).select("day", "value").iter_rows())
        lines[metric] = [values.get(day) for day in days]
    return lines


def freshness_panel(ctx: Context, *, by: str = "source_system") -> None:
    """Newest record per source system (or municipality); a quiet one is flagged."""
    newest = freshness(ctx, by=by)
    if not newest:
        empty_state(ctx.language)
        return
    language = ctx.language
    names = place_names(ctx.store, "municipality", language)
    title = t("freshness.source", language) if by == "source_system" else t("dimension.municipality", language)
    # While the database cannot be reached nobody knows whether a source is up to date.
    reachable = ctx.store.origin.health.reachable
    rows = []
    for record in newest:
        local = record.newest.astimezone(HELSINKI)
        rows.append(
            {
                title: record.key if by == "source_system" else names.get(record.key, record.key),
                t("freshness.newest_record", language): f"{format_date(local.date(), language)} {format_time(local, language)}",
                t("freshness.status", language): (
                    "? " + t("freshness.unknown", language) if not reachable
                    else "⚠ " + t("freshness.quiet", language, minutes=ctx.settings.quiet_source_minutes) if record.quiet
                    else "✓ " + t("freshness.ok", language)
                ),
            }
        )
    if by == "source_system":  # a few rows, on the overview
        text_table(rows)
    else:
        shown_table(pl.DataFrame(rows), key=f"freshness_{by}")


def quality_counts(ctx: Context) -> None:
    """Rows waiting in quarantine by reason, and referrals waiting for their contact."""
    language = ctx.language
    try:
        waiting: pl.DataFrame | None = quarantined(ctx)
    except DatabaseUnavailable:  # read from the database, not the store: the frame says why
        waiting = None
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{t('quality.quarantine', language)}**")
        if waiting is None:
            st.info(t("quality.unreadable", language), icon=":material/cloud_off:")
        elif waiting.is_empty():
            st.success(t("quality.quarantine_empty", language), icon=":material/check:")
        else:
            labels = {reason: reason_label(reason, language) for reason in waiting["reason"].unique().to_list()}
            # the count before the long reason text, so a half-width table does not hide it
            waiting = _count_text(waiting, "rows", ctx).with_columns(pl.col("reason").replace_strict(labels, return_dtype=pl.String))
            table = waiting.select("kind", "rows", "reason").rename(
                {"kind": t("quality.kind", language), "reason": t("quality.reason", language), "rows": t("quality.rows", language)}
            )
            shown_table(table, key="quality_quarantine")
            hidden_legend(table, language=language)
            st.caption(t("quality.quarantine_help", language))
    with right:
        st.markdown(f"**{t('quality.pending', language)}**")
        waiting_referrals = pending(ctx)
        if waiting_referrals.is_empty():
            st.success(t("quality.pending_none", language), icon=":material/check:")
        else:
            table = _count_text(waiting_referrals, "pending", ctx).select("source_system", "pending").rename(
                {"source_system": t("freshness.source", language), "pending": t("quality.rows", language)}
            )
            shown_table(table, key="quality_pending")
            hidden_legend(table, language=language)


def _count_text(frame: pl.DataFrame, column: str, ctx: Context) -> pl.DataFrame:
    """A protected count column as text: the number, or its mark where hidden."""
    threshold = ctx.settings.small_cell_threshold
    texts = [
        hidden_text(row, threshold) if row["suppressed"] else format_number(row[column], language=ctx.language)
        for row in frame.select(column, "suppressed", "secondary").iter_rows(named=True)
    ]
    return frame.with_columns(pl.Series(column, texts, dtype=pl.String))


def kpi_row(ctx: Context, metrics: list[str]) -> None:
    """Cards for the selected period, with the change against the comparison period."""
    now, *earlier = period_records(ctx, metrics, [ctx.filters, *([ctx.comparison] if ctx.comparison else [])])
    before = earlier[0] if earlier else {}
    if ctx.comparison:
        st.caption(t("card.changes_against", ctx.language, period=compared_with(ctx.comparison, ctx.language)))
    for column, metric in zip(st.columns(len(metrics)), metrics, strict=True):
        with column:
            kpi_card(metric, record=now.get(metric), previous=before.get(metric), sparkline=None, ctx=ctx)


def report_button(ctx: Context) -> None:
    """The board report (PDF) of the chosen period and county, for the roles that may
    download: made when pressed (a few seconds), with its row in the audit trail. Its figures
    are published ones (cell-key method), as a public paper needs."""
    if not ctx.user.may_download:
        return
    if not ctx.settings.publication_ready:
        st.sidebar.caption(t("report.needs_key", ctx.language))
        return
    from dashboard.report import ReportRequest, build_report

    filters, comparison = ctx.filters, ctx.comparison
    request = ReportRequest(
        start=filters.start, end=filters.end,
        compare_start=comparison.start if comparison else None, compare_end=comparison.end if comparison else None,
        region=filters.regions[0] if len(filters.regions) == 1 else None, language=ctx.language, scope=ctx.scope,
    )
    store = ctx.store
    st.sidebar.download_button(
        t("report.button", ctx.language), data=audited_download(ctx, "board_report", lambda: build_report(store, request)),
        file_name=f"ohjaustaulu_{filters.start.isoformat()}_{filters.end.isoformat()}.pdf", mime="application/pdf",
        key="board_report", icon=":material/picture_as_pdf:", on_click="ignore", help=t("report.button_help", ctx.language),
    )
