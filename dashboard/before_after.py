"""Before and after a change: each key figure in the weeks before a pilot's start and in as
many weeks after it, with the difference and its 95 % interval (data_access.metrics.change).

The periods are whole weeks on both sides of the start, so each weekday counts equally often;
the other filters (county, municipalities, channels, ...) hold, the sidebar's period does not.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import streamlit as st

from dashboard.charts import cached_spec, difference_chart
from dashboard.components import empty_state, table_with_download
from dashboard.elements import shown_chart
from dashboard.formatting import format_number, format_range, format_value
from dashboard.i18n import t
from dashboard.presenters import change_text
from dashboard.state import Context, query, with_period
from data_access.metrics import REGISTRY
from data_access.metrics.change import Difference, before_after_periods, mean_difference, share_difference
from data_access.periods import local_now

SHARES = ["first_contact_resolution", "verified_resolution", "electronic_share", "same_day_callback_share", "failure_demand_share"]
WEEKS = (4, 8, 12, 26)


def pilot_controls(ctx: Context) -> tuple[dt.date, int]:
    """The change's first day and the weeks on each side; both in the URL."""
    today = local_now().date()
    monday = today - dt.timedelta(weeks=8, days=today.weekday())
    left, right = st.columns([1, 2])
    start = left.date_input(
        t("before_after.start", ctx.language), value=monday, max_value=today, format="DD.MM.YYYY", key="pilot", bind="query-params",
    )
    weeks = right.segmented_control(
        t("before_after.weeks", ctx.language), WEEKS, default=8, key="weeks", required=True, bind="query-params",
    )
    return start if isinstance(start, dt.date) else monday, int(weeks or 8)


def _usable(record: dict | None) -> bool:
    return record is not None and not record["suppressed"] and record["value"] is not None and record["ci_low"] is not None


def _share_row(label: str, before: dict | None, after: dict | None) -> tuple[dict[str, object], Difference | None]:
    row: dict[str, object] = {"label": label, "before": before, "after": after}
    if before is None or after is None or not (_usable(before) and _usable(after)):
        return row, None
    return row, share_difference(
        (before["value"], before["ci_low"], before["ci_high"]), (after["value"], after["ci_low"], after["ci_high"])
    )


def _weekly(result: pl.DataFrame, period: int, days: list[dt.date]) -> list[float] | None:
    """A period's contacts a day, week by week (each week's count over 7: a whole weekly
    rhythm in each, so Monday's peak and Sunday's calm do not count as chance variation); a
    day without rows is zero. None when a day is hidden (its count cannot go into an interval
    that is shown)."""
    rows = result.filter(pl.col("period") == period)
    if rows["suppressed"].any():
        return None
    counts = dict(zip(rows["day"].to_list(), rows["value"].to_list(), strict=True))
    daily = [float(counts.get(day, 0.0) or 0.0) for day in days]
    return [sum(daily[i:i + 7]) / 7 for i in range(0, len(daily), 7)]


def before_after_section(ctx: Context, start: dt.date, weeks: int, *, key: str) -> None:
    language = ctx.language
    periods = before_after_periods(start, weeks=weeks, today=local_now().date())
    if periods is None:
        st.info(t("before_after.too_soon", language), icon=":material/hourglass_empty:")
        return
    (b_start, b_end), (a_start, a_end) = periods
    sides = (with_period(ctx.filters, b_start, b_end), with_period(ctx.filters, a_start, a_end))
    st.caption(t(
        "before_after.periods", language, weeks=(a_end - a_start).days // 7 + 1,
        before=format_range(b_start, b_end, language), after=format_range(a_start, a_end, language),
    ))
    result = query(ctx, [*SHARES, "contacts"], filters=sides)
    records = [{row["metric"]: row for row in result.filter(pl.col("period") == p).iter_rows(named=True)} for p in (0, 1)]
    if not records[0].get("contacts") or not records[1].get("contacts"):
        empty_state(language, result)
        return

    threshold = ctx.settings.small_cell_threshold
    rows: list[dict[str, object]] = []
    chart_rows: list[dict[str, object]] = []
    for metric in SHARES:
        label = REGISTRY[metric].label(language)
        row, difference = _share_row(label, records[0].get(metric), records[1].get(metric))
        rows.append(_row_text(row, difference, unit="share", threshold=threshold, language=language))
        if difference is not None:
            chart_rows.append({"label": label, "value": 100 * difference.difference, "low": 100 * difference.low, "high": 100 * difference.high})

    days = [(b_start + dt.timedelta(days=i)) for i in range((b_end - b_start).days + 1)], [(a_start + dt.timedelta(days=i)) for i in range((a_end - a_start).days + 1)]
    daily = query(ctx, ["contacts"], by=["day"], filters=sides)
    before_weeks, after_weeks = _weekly(daily, 0, days[0]), _weekly(daily, 1, days[1])
    per_day = mean_difference(before_weeks, after_weeks) if before_weeks is not None and after_weeks is not None else None
    rows.append(_volume_row(records, per_day, days, threshold=threshold, language=language))

    # Whether the change is clear before its interval: at 1024 px (a projector) the last
    # column of this table was out of sight.
    table = pl.DataFrame(rows).select("label", "before", "after", "change", "clear", "interval", "n").rename({
        "label": t("common.metric", language), "before": t("before_after.before", language), "after": t("before_after.after", language),
        "change": t("before_after.change", language), "interval": t("before_after.interval", language),
        "clear": t("before_after.clear", language), "n": t("before_after.n", language),
    })
    change_title = t("before_after.change_axis", language)
    frame = pl.DataFrame(chart_rows, schema={"label": pl.String, "value": pl.Float64, "low": pl.Float64, "high": pl.Float64}).rename({
        "label": t("common.metric", language), "value": change_title,
        "low": t("before_after.low", language), "high": t("before_after.high", language),
    })
    table_with_download(table, key=key, language=language)
    if not frame.is_empty():
        chart = cached_spec(
            difference_chart, frame, category=t("common.metric", language), value=change_title,
            low=t("before_after.low", language), high=t("before_after.high", language), language=language,
        )
        shown_chart(chart, key=f"chart_{key}")
    st.caption(t("before_after.caution", language))


def _row_text(row: dict, difference: Difference | None, *, unit: str, threshold: int, language: str) -> dict[str, object]:
    def shown(record: dict | None) -> str:
        if record is None:
            return "—"
        if record["suppressed"]:
            return f"(n<{threshold})"
        return format_value(record["value"], unit, language=language)

    before, after = row["before"], row["after"]
    n = "—" if before is None or after is None or before["suppressed"] or after["suppressed"] else (
        f"{format_number(before['denominator'], language=language)} / {format_number(after['denominator'], language=language)}"
    )
    return {
        "label": row["label"], "before": shown(before), "after": shown(after),
        "change": "—" if difference is None else change_text(difference.after, difference.before, unit="share", language=language),
        "interval": "—" if difference is None else t("delta.pp", language, value=f"{_signed(100 * difference.low, language)} … {_signed(100 * difference.high, language)}"),
        "clear": "—" if difference is None else t("before_after.yes" if difference.low > 0 or difference.high < 0 else "before_after.no", language),
        "n": n,
    }


def _volume_row(records: list[dict], per_day: Difference | None, days: tuple[list[dt.date], list[dt.date]], *, threshold: int, language: str) -> dict[str, object]:
    """Contacts a day: the means from the periods' counts; the interval only when no day is hidden."""
    label = t("before_after.contacts_per_day", language)
    counts = [records[p].get("contacts") for p in (0, 1)]
    if any(c is None or c["suppressed"] for c in counts):
        return {"label": label, "before": f"<{threshold}", "after": f"<{threshold}", "change": "—", "interval": "—", "clear": "—", "n": "—"}
    means = [float(c["value"]) / len(d) for c, d in zip(counts, days, strict=True)]  # type: ignore[index]
    return {
        "label": label, "before": format_number(means[0], decimals=1, language=language), "after": format_number(means[1], decimals=1, language=language),
        "change": _signed(means[1] - means[0], language),
        "interval": "—" if per_day is None else f"{_signed(per_day.low, language)} … {_signed(per_day.high, language)}",
        "clear": "—" if per_day is None else t("before_after.yes" if per_day.low > 0 or per_day.high < 0 else "before_after.no", language),
        "n": t("before_after.days", language, before=len(days[0]), after=len(days[1])),
    }


def _signed(value: float, language: str) -> str:
    text = format_number(abs(value), decimals=1, language=language)
    return ("+" if value > 0 else "-" if value < 0 else "±") + text  # the sign change_text uses
