"""The guidance pathway and multi-service clients, as frames the registry counts.

Guidance cases (seed 003's personal guidance, seed 002's multi-service process) are few
(thousands where contacts are millions), so their frames are derived whole from the stored
rows whenever cases, their visits or their measurements change. Each frame is one kind of
event in time order by its own local day, as the registry's period slicing expects:

- ``cases``: a case on the day it opened (consent, plan, days to plan, its unit, visits);
- ``case_reasons``: a case once for each reason it was opened for, on the day it opened;
- ``case_closures``: a closed case on the day it closed (days in the pathway, visits);
- ``follow_ups``: a planned control visit on the day it was due (done on time, late, open);
- ``outcomes``: a case's change per instrument and domain, first to last measurement, on the
  day of the last one (a case measured once has no change and is not counted).

Multi-service clients (``clients``) depend on the period's end, not on a day of their own:
they are counted from the contacts of the window of ``multi_service_window_days`` ending at
the period's last day, one row per client (never shown as a list: only counted).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_access import codes

HELSINKI = "Europe/Helsinki"
SECONDS_A_DAY = 86400
# The columns each derived case frame starts with: what the registry filters and groups by.
PLACE = ("municipality_code", "region_code")


def local_day(column: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(HELSINKI).dt.date()


def days_between(start: str, end: str) -> pl.Expr:
    return (pl.col(end) - pl.col(start)).dt.total_seconds() / SECONDS_A_DAY


def visit_rows(contacts: pl.DataFrame) -> pl.DataFrame:
    """The contacts that are visits of a case (their ``case_id`` is set)."""
    return contacts.filter(pl.col("case_id").is_not_null())


def case_frames(cases: pl.DataFrame, visits: pl.DataFrame, measurements: pl.DataFrame, regions: dict[str, str]) -> dict[str, pl.DataFrame]:
    """Every derived case frame from the stored rows (see the module's docstring)."""
    key = ["source_system", "case_id"]
    per_case = (
        visits.sort("occurred_at")
        .group_by(key)
        .agg(pl.len().cast(pl.Int32).alias("visits"), pl.col("unit_code").drop_nulls().last().alias("unit_code"))
    )
    base = (
        cases.join(per_case, on=key, how="left")
        .with_columns(
            pl.col("visits").fill_null(0),
            pl.col("unit_code").cast(pl.Categorical),
            pl.col("municipality_code").cast(pl.String).replace_strict(regions, default=None, return_dtype=pl.String)
            .cast(pl.Categorical).alias("region_code"),
            pl.col("municipality_code").cast(pl.Categorical),
        )
    )
    common = ["id", "source_system", "case_id", *PLACE, "unit_code", "process", "identified_by"]
    opened = base.with_columns(
        local_day("opened_at").alias("day"),
        pl.col("consent_at").is_not_null().alias("has_consent"),
        pl.col("plan_at").is_not_null().alias("has_plan"),
        days_between("opened_at", "plan_at").alias("days_to_plan"),
    ).sort("opened_at")
    reasons = (
        opened.select(*common, "day", pl.col("reasons").str.split("|").alias("reason"))
        .explode("reason")
        .filter(pl.col("reason").is_not_null())
        .with_columns(pl.col("reason").cast(pl.Enum(codes.REASONS)))
    )
    closed = (
        base.filter(pl.col("closed_at").is_not_null())
        .with_columns(local_day("closed_at").alias("day"), days_between("opened_at", "closed_at").alias("pathway_days"))
        .sort("closed_at")
        .select(*common, "day", "pathway_days", "visits")
    )
    low, high = codes.GUIDELINE_VISITS
    closed = closed.with_columns(pl.col("visits").is_between(low, high).alias("within_guideline"))
    follow_ups = (
        base.filter(pl.col("follow_up_due").is_not_null())
        .with_columns(
            local_day("follow_up_due").alias("day"),
            local_day("follow_up_at").alias("done_day"),
        )
        .sort("follow_up_due")
        .select(*common, "day", "done_day")
    )
    return {
        "cases": opened.select(*common, "client_id", "day", "has_consent", "has_plan", "days_to_plan", "visits"),
        "case_reasons": reasons,
        "case_closures": closed,
        "follow_ups": follow_ups,
        "outcomes": outcome_frame(measurements, base.select(*common)),
    }


def outcome_frame(measurements: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """One row per case, instrument and domain measured: the first and last scores (by time,
    then by phase), how many measurements, and the change (None for a case measured once)."""
    key = ["source_system", "case_id"]
    phase_order = pl.col("phase").cast(pl.String).replace_strict({p: i for i, p in enumerate(codes.PHASES)}, default=9, return_dtype=pl.Int8)
    ordered = measurements.sort("measured_at", phase_order, "id")
    per_domain = ordered.group_by([*key, "instrument", "domain"]).agg(
        pl.col("score").first().alias("first_score"),
        pl.col("score").last().alias("last_score"),
        pl.len().cast(pl.Int32).alias("measurements"),
        pl.col("measured_at").last().alias("last_at"),
        pl.col("id").last().alias("id"),
    )
    joined = per_domain.join(cases.drop("id"), on=key, how="inner")
    return (
        joined.with_columns(
            local_day("last_at").alias("day"),
            pl.when(pl.col("measurements") >= 2).then(pl.col("last_score") - pl.col("first_score")).alias("change"),
            pl.col("instrument").cast(pl.Enum(codes.INSTRUMENTS)),
            pl.col("domain").cast(pl.Enum(codes.DOMAINS)),
        )
        # Ties broken by the last measurement's id: a published count of clients keeps the
        # record key of each case's first row, which must not depend on the group order.
        .sort("last_at", "id")
        .drop("last_at")
    )


def empty_case_frames() -> dict[str, pl.DataFrame]:
    return {name: pl.DataFrame() for name in ("cases", "case_reasons", "case_closures", "follow_ups", "outcomes")}


def multi_service_clients(
    contacts: pl.DataFrame, cases: pl.DataFrame, *, end: dt.date, window_days: int, min_lines: int
) -> pl.DataFrame:
    """One row per client with contacts in the window of ``window_days`` ending on ``end``:
    their contacts, service lines, whether they are multi-service clients (contacts in at
    least ``min_lines`` service lines) and whether they were taken into the multi-service
    process (a case of that process opened by the end). The client's municipality and age
    band are those of their latest contact. ``day`` is the window's end, so the registry's
    period slicing keeps the rows of a period ending on ``end``."""
    start = end - dt.timedelta(days=window_days - 1)
    if contacts.is_empty():
        return pl.DataFrame()
    low, high = contacts["day"].search_sorted(pl.Series([start, end + dt.timedelta(days=1)]), side="left")
    window = contacts.slice(low, high - low).filter(pl.col("client_id").is_not_null())
    clients = window.group_by("client_id").agg(
        pl.len().cast(pl.Int64).alias("contacts"),
        pl.col("service_line").drop_nulls().n_unique().alias("service_lines"),
        pl.col("municipality_code").last(),
        pl.col("region_code").last(),
        pl.col("age_band").last(),
        pl.col("id").min().alias("id"),
    )
    in_process = (
        cases.filter((pl.col("process") == "multi_service") & (pl.col("day") <= end))["client_id"].unique()
        if not cases.is_empty() else pl.Series("client_id", [], pl.String)
    )
    return clients.with_columns(
        (pl.col("service_lines") >= min_lines).alias("multi_service"),
        pl.col("client_id").cast(pl.String).is_in(in_process.cast(pl.String).implode()).alias("in_process"),
        pl.lit(end).alias("day"),
    ).sort("client_id")
