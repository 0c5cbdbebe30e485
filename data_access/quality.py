"""Data quality: freshness (newest records and whether a source or place has gone quiet).

The counts the data-quality page shows (pending referrals, quarantine) leave through the
registry's exit (``metrics.exit.answer``) like every other figure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import polars as pl

from data_access.metrics.types import Scope
from data_access.periods import HELSINKI
from data_access.snapshot import FactSource

# A place's usual activity is read from this many earlier days.
USUAL_DAYS = 28
# A municipality is quiet when its usual rate would have given at least this many contacts in
# its silence: a Poisson count with this mean is 0 about one time in twenty.
EXPECTED_IN_SILENCE = 3.0


def newest_records(source: FactSource, *, scope: Scope, by: str = "source_system") -> pl.DataFrame:
    """Newest record per source system (or municipality) within the scope; by municipality
    also each place's usual contacts per local hour of the day over the last 28 days
    (``hourly``, 24 numbers), for ``freshness_rows`` to judge a silence against."""
    contacts = source.contacts
    schema: dict[str, pl.DataType] = {by: pl.String(), "newest": pl.Datetime("us", "UTC")}
    if by == "municipality":
        schema["hourly"] = pl.List(pl.Float64)
    past = source.history
    if contacts.is_empty() and not past.rows("contacts"):
        return pl.DataFrame(schema=schema)
    column = "municipality_code" if by == "municipality" else by
    # Lazily: the eager group_by over 5 M contacts took 127 ms, this 21 ms (only two columns read).
    lazy = contacts.lazy()
    if scope.municipalities is not None:
        lazy = lazy.filter(pl.col("municipality_code").is_in(sorted(scope.municipalities)))
    newest = lazy.group_by(column).agg(pl.col("occurred_at").max().alias("newest")).with_columns(pl.col(column).cast(pl.String))
    if past.rows("contacts"):  # a source or place silent since before the recent window
        older = past.newest("contacts", list(dict.fromkeys(["municipality_code", column])), "occurred_at").lazy()
        if scope.municipalities is not None:
            older = older.filter(pl.col("municipality_code").is_in(sorted(scope.municipalities)))
        newest = pl.concat([newest, older.select(column, "newest")]).group_by(column).agg(pl.col("newest").max())
    if by != "municipality":
        return newest.sort(column).rename({column: by}).collect()
    # The usual hours come from the last 28 days of data, from the history where they reach it.
    if contacts.is_empty():
        everything = past.scan("contacts")
        assert everything is not None  # the history holds contacts: see above
        last_day = everything.select(pl.col("day").max()).collect().item()
    else:
        last_day = contacts["day"][-1]
    first_day = last_day - dt.timedelta(days=USUAL_DAYS - 1)
    earlier = past.scan("contacts", first_day, last_day)
    if earlier is not None:
        if scope.municipalities is not None:
            earlier = earlier.filter(pl.col("municipality_code").is_in(sorted(scope.municipalities)))
        lazy = pl.concat([earlier, lazy])
    recent = lazy.filter(pl.col("day") >= first_day)
    hours = (
        recent.group_by(column, "hour").len("n")
        .with_columns(pl.col(column).cast(pl.String))
        .group_by(column)
        .agg(pl.struct("hour", "n").alias("counts"))
        .collect()
    )
    hourly = {
        code: [0.0] * 24 for code in hours[column].to_list()
    }
    for code, counts in hours.iter_rows():
        for item in counts:
            hourly[code][item["hour"]] = item["n"] / USUAL_DAYS
    frame = newest.sort(column).rename({column: by}).collect()
    return frame.with_columns(
        pl.Series("hourly", [hourly.get(code, [0.0] * 24) for code in frame[by].to_list()], dtype=pl.List(pl.Float64))
    )


class Freshness(NamedTuple):
    """One source system's (or municipality's) newest record, and whether it has gone quiet."""

    key: str
    newest: dt.datetime
    minutes: float
    quiet: bool


def freshness_rows(
    newest: list[tuple[Any, ...]], *, now: dt.datetime, quiet_after_minutes: int
) -> list[Freshness]:
    """The one definition of quiet: no new record for more than ``quiet_after_minutes`` and,
    for a municipality (rows with a third item, its usual contacts per local hour), a silence
    in which its usual rate would have given at least ``EXPECTED_IN_SILENCE`` contacts. A
    small municipality whose first contact of the day usually comes at ten is not quiet at
    eight.

    Minutes since and quiet depend on the clock, not on the data, so they are computed when
    shown, never cached with the data. Plain Python over the few rows, not polars: every page
    run calls this, and building or extending a frame can give up the interpreter lock, which
    with 20 sessions rendering at once took 7-35 ms to get back (docs/performance.md).
    """
    rows = []
    for key, at, *usual in newest:
        minutes = (now - at).total_seconds() / 60
        quiet = minutes > quiet_after_minutes
        if quiet and usual:
            quiet = expected_between(usual[0], at, now) >= EXPECTED_IN_SILENCE
        rows.append(Freshness(key, at, minutes, quiet))
    return rows


def expected_between(hourly: list[float], start: dt.datetime, end: dt.datetime) -> float:
    """Contacts a place's usual hourly rates (by local hour) give between two moments."""
    expected = 0.0
    moment = start.astimezone(HELSINKI)
    end = end.astimezone(HELSINKI)
    # At most a week of hours is looked at: beyond that any place with contacts is quiet.
    for _ in range(24 * 7):
        if moment >= end:
            break
        step_end = min(end, moment.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1))
        expected += hourly[moment.hour] * (step_end - moment).total_seconds() / 3600
        moment = step_end
    else:
        return float("inf") if sum(hourly) else 0.0
    return expected


def source_freshness(
    source: FactSource, *, scope: Scope, by: str = "source_system", now: dt.datetime | None = None
) -> pl.DataFrame:
    """``newest_records`` with minutes since and quiet, as columns (the CLI and tests)."""
    now = now or dt.datetime.now(dt.UTC)
    newest = newest_records(source, scope=scope, by=by)
    rows = freshness_rows(newest.rows(), now=now, quiet_after_minutes=source.settings.quiet_source_minutes)
    return newest.select(by, "newest").hstack([
        pl.Series("minutes", [row.minutes for row in rows], dtype=pl.Float64),
        pl.Series("quiet", [row.quiet for row in rows], dtype=pl.Boolean),
    ])
