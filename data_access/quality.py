"""Freshness of the data per source system, within the user's scope."""

from __future__ import annotations

import datetime as dt

import polars as pl

from data_access.metrics import Scope
from data_access.snapshot import FactStore


def source_freshness(store: FactStore, *, scope: Scope, now: dt.datetime | None = None) -> pl.DataFrame:
    """Newest record per source system, minutes since it, and whether the source is quiet."""
    now = now or dt.datetime.now(dt.UTC)
    contacts = store.contacts
    if contacts.is_empty():
        return pl.DataFrame(schema={"source_system": pl.String, "newest": pl.Datetime("us", "UTC"), "minutes": pl.Float64, "quiet": pl.Boolean})
    if scope.municipalities is not None:
        contacts = contacts.filter(pl.col("municipality_code").is_in(sorted(scope.municipalities)))
    quiet_after = store.settings.quiet_source_minutes
    return (
        contacts.group_by("source_system")
        .agg(pl.col("occurred_at").max().alias("newest"))
        .with_columns(((pl.lit(now) - pl.col("newest")).dt.total_seconds() / 60).alias("minutes"))
        .with_columns((pl.col("minutes") > quiet_after).alias("quiet"))
        .sort("source_system")
    )
