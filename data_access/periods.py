"""Reporting periods: presets, comparison periods and holiday-aware week-earlier days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import holidays

HELSINKI = ZoneInfo("Europe/Helsinki")
PRESETS = (
    "today", "yesterday", "last_7_days", "last_30_days", "this_month", "last_month", "last_quarter",
    "this_year", "last_12_months", "custom",
)
COMPARISONS = ("previous_period", "previous_year", "none")


def local_now() -> dt.datetime:
    return dt.datetime.now(HELSINKI)


def so_far_minute(now: dt.datetime) -> int:
    """``Filters.until_minute`` for "today so far" at local time ``now``: every record up to
    and including the current minute. (Up to the minute before, a contact that arrived while
    a page was open stayed off it until the minute turned and something else arrived.) Days
    compared with today are cut at the same minute."""
    return now.hour * 60 + now.minute + 1


def preset_range(preset: str, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of a preset; "last N days" end yesterday (complete days)."""
    yesterday = today - dt.timedelta(days=1)
    if preset == "today":
        return today, today
    if preset == "yesterday":
        return yesterday, yesterday
    if preset == "last_7_days":
        return today - dt.timedelta(days=7), yesterday
    if preset == "last_30_days":
        return today - dt.timedelta(days=30), yesterday
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last
    if preset == "last_quarter":
        first_of_this = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
        last = first_of_this - dt.timedelta(days=1)
        return last.replace(month=(last.month - 1) // 3 * 3 + 1, day=1), last
    if preset == "this_year":
        return today.replace(month=1, day=1), today
    if preset == "last_12_months":
        return _shift_year(today, -1) + dt.timedelta(days=1), today
    raise ValueError(f"unknown period preset {preset!r}")


def whole_buckets(start: dt.date, end: dt.date, grain: str) -> tuple[dt.date, dt.date] | None:
    """The part of [start, end] made of whole weeks (Monday to Sunday) or whole months, or
    None when no whole one fits. A trend whose first or last point counted only a few days
    of its week would show a drop that is not there."""
    if grain == "week":
        first = start + dt.timedelta(days=(7 - start.weekday()) % 7)
        last = end - dt.timedelta(days=(end.weekday() + 1) % 7)
    elif grain == "quarter":
        first = start if start.day == 1 and start.month % 3 == 1 else _quarter_start(start, next_one=True)
        following = end + dt.timedelta(days=1)
        last = end if following.day == 1 and following.month % 3 == 1 else _quarter_start(end) - dt.timedelta(days=1)
    elif grain == "month":
        first = start if start.day == 1 else (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        following = end + dt.timedelta(days=1)
        last = end if following.day == 1 else end.replace(day=1) - dt.timedelta(days=1)
    else:
        return start, end
    return (first, last) if first <= last else None


def align_bucket(day: dt.date, grain: str, *, source: dt.date, target: dt.date) -> dt.date:
    """A bucket of a period starting at ``source`` moved onto the period starting at
    ``target``, so a comparison period's trend can be drawn over the current one: months move
    by whole months; days and weeks by whole weeks, so a Monday lies over a Monday (contacts
    follow the week: 30 days back, Mondays would lie over Saturdays). Days moved past the
    period's ends are the caller's to drop."""
    if grain in ("month", "quarter"):
        months = (target.year - source.year) * 12 + target.month - source.month
        index = day.year * 12 + day.month - 1 + months
        return dt.date(index // 12, index % 12 + 1, 1)
    return day + dt.timedelta(weeks=round((target - source).days / 7))


def _quarter_start(day: dt.date, *, next_one: bool = False) -> dt.date:
    index = day.year * 12 + (day.month - 1) // 3 * 3 + (3 if next_one else 0)
    return dt.date(index // 12, index % 12 + 1, 1)


def comparison_range(start: dt.date, end: dt.date, mode: str) -> tuple[dt.date, dt.date] | None:
    """The period to compare with: the one just before (whole months: as many whole months
    before, so November is compared with October, not with 2.10.-31.10.), or a year earlier."""
    if mode == "previous_period":
        if start.day == 1 and (end + dt.timedelta(days=1)).day == 1:
            months = (end.year - start.year) * 12 + end.month - start.month + 1
            first = start.year * 12 + start.month - 1 - months
            return dt.date(first // 12, first % 12 + 1, 1), start - dt.timedelta(days=1)
        length = (end - start).days + 1
        return start - dt.timedelta(days=length), start - dt.timedelta(days=1)
    if mode == "previous_year":
        return _shift_year(start, -1), _shift_year(end, -1)
    return None


def _shift_year(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def is_holiday(day: dt.date) -> bool:
    return day in holidays.country_holidays("FI", years=day.year)


def same_weekday_week_earlier(day: dt.date, *, max_weeks: int = 4) -> dt.date:
    """The same weekday one week earlier; a public holiday there (unless ``day`` is one
    too) moves the comparison a further week back, so a normal Tuesday is not compared
    with Easter."""
    candidate = day - dt.timedelta(weeks=1)
    if is_holiday(day):
        return candidate
    for _ in range(max_weeks):
        if not is_holiday(candidate):
            return candidate
        candidate -= dt.timedelta(weeks=1)
    return day - dt.timedelta(weeks=1)
