"""Daily aggregates for a national roll-up: what leaves the county, so published figures.

Each wellbeing services county is its own data controller and runs its own instance; a
national picture is the sum of the counties' daily aggregates. These are made through the
registry's one exit with ``publication=True``: every count perturbed by the cell-key method
with the county's own key (the same rows always get the same noise, so a day's figure and a
month's sum agree from one export to the next) and small cells hidden (docs/privacy.md).
A day, place and channel without rows has no row: its count is zero.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import polars as pl

from data_access.metrics.computation import compute
from data_access.metrics.definitions import get_metric
from data_access.metrics.types import Filters, Scope
from data_access.snapshot import FactSource

# File name -> (grouping beside the day and municipality, measures).
FEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "municipality_day": ((), (
        "contacts", "first_contact_resolution", "verified_resolution", "electronic_share", "same_day_callback_share",
        "failure_demand_share", "referrals", "no_referral_needed", "service_start_within_guarantee", "feedback_answers",
    )),
    "channel_day": (("channel",), ("contacts", "first_contact_resolution")),
    "service_line_day": (("service_line",), ("contacts", "first_contact_resolution")),
    "destination_day": (("destination",), ("referrals",)),
}
COLUMNS = ("metric", "value", "numerator", "denominator", "suppressed")
FORMAT = 1  # bump when the files' columns or meaning change


def daily_aggregates(store: FactSource, *, start: dt.date, end: dt.date) -> dict[str, pl.DataFrame]:
    """Each feed as a long frame: day, county, municipality, its grouping, then the measure,
    its published value, numerator and denominator, and whether the cell is hidden."""
    counties = store.municipalities.select(
        pl.col("municipality_code").cast(pl.String).alias("municipality"), pl.col("region_code").cast(pl.String).alias("county")
    )
    feeds = {}
    for name, (extra, metrics) in FEEDS.items():
        by = ["day", "municipality", *extra]
        result = compute(store, metrics=list(metrics), filters=Filters(start=start, end=end), by=by, scope=Scope.everything(), publication=True)
        feeds[name] = (
            result.join(counties, on="municipality", how="left")
            .select("day", "county", "municipality", *extra, *COLUMNS)
            .sort("day", "municipality", *extra, "metric")
        )
    return feeds


def write_aggregates(store: FactSource, *, start: dt.date, end: dt.date, folder: Path) -> dict[str, int]:
    """Write the feeds as Parquet files in ``folder`` (made if missing), with ``meta.json``;
    each file is written beside and renamed into place, so a reader never finds half of one.
    Returns the rows written per file."""
    if end < start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder")
    feeds = daily_aggregates(store, start=start, end=end)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT, "from": start.isoformat(), "to": end.isoformat(), "data_as_of": store.as_of.isoformat(),
        "counties": sorted({c for frame in feeds.values() for c in frame["county"].drop_nulls().unique().to_list()}),
        "perturbation": "cell-key method with the county's own key; counts below the threshold hidden (suppressed)",
        "small_cell_threshold": store.settings.small_cell_threshold,
        "files": {
            f"{name}.parquet": {
                "grouping": ["day", "municipality", *FEEDS[name][0]],
                "metrics": {key: get_metric(key).labels["en"] for key in FEEDS[name][1]},
                "rows": frame.height,
            }
            for name, frame in feeds.items()
        },
    }
    for name, frame in feeds.items():
        partial = folder / f".{name}.parquet.{os.getpid()}.partial"
        frame.write_parquet(partial)
        partial.replace(folder / f"{name}.parquet")
    partial_meta = folder / f".meta.json.{os.getpid()}.partial"
    partial_meta.write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    shutil.move(partial_meta, folder / "meta.json")
    return {name: frame.height for name, frame in feeds.items()}
