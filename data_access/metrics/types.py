"""The registry's vocabulary: units, dimensions, filters, scope and what a metric is.

Nothing here computes; ``definitions`` holds the metrics, ``computation`` the one exit and
``disclosure`` what may be shown of a result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from data_access.config import Settings

Unit = Literal["count", "share", "per_1000", "seconds", "score", "nps", "days", "mean"]
Source = Literal[
    "contacts", "referrals", "feedback",
    # Guidance cases and multi-service clients (pathway.py).
    "cases", "case_reasons", "case_closures", "follow_ups", "outcomes", "clients",
]
FACT_SOURCES: tuple[Source, ...] = ("contacts", "referrals", "feedback")
CASE_SOURCES: tuple[Source, ...] = ("cases", "case_reasons", "case_closures", "follow_ups", "outcomes")

# The normal quantile of every 95 % interval.
Z95 = 1.959963984540054

RESULT_SCHEMA = {
    "metric": pl.String,
    "value": pl.Float64,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "suppressed": pl.Boolean,
    "secondary": pl.Boolean,
    "note": pl.String,
}

# Grouping dimensions and the frames that carry them.
TIME_DIMENSIONS = ("day", "week", "month", "quarter", "hour", "weekday")
DIMENSIONS: dict[str, tuple[Source, ...]] = {
    "municipality": (*FACT_SOURCES, *CASE_SOURCES, "clients"),
    "region": (*FACT_SOURCES, *CASE_SOURCES, "clients"),
    "channel": ("contacts", "referrals", "feedback"),
    "service_line": ("contacts", "referrals"),
    "age_band": ("contacts", "referrals", "clients"),
    "professional_group": ("contacts", "referrals"),
    "unit": ("contacts", "referrals", "feedback", "cases", "case_closures", "follow_ups"),
    "initiator": ("contacts", "referrals"),
    "reason": ("contacts", "case_reasons"),
    "outcome": ("contacts",),
    "source_system": (*FACT_SOURCES, *CASE_SOURCES),
    "destination": ("referrals",),
    "process": CASE_SOURCES,
    "identified_by": ("cases", "case_reasons", "case_closures"),
    "domain": ("outcomes",),
    **{name: (*FACT_SOURCES, *CASE_SOURCES) for name in ("day", "week", "month", "quarter")},
    **{name: FACT_SOURCES for name in ("hour", "weekday")},
}
# A grouping column's type in a result: days, weeks and months are dates (a week by its
# Monday, a month by its first day), hours and weekdays small integers, the rest codes as text.
DIMENSION_TYPES: dict[str, pl.DataType] = {
    **{d: pl.String() for d in DIMENSIONS}, "day": pl.Date(), "week": pl.Date(), "month": pl.Date(), "quarter": pl.Date(), "hour": pl.Int8(), "weekday": pl.Int8(),
}
# Dimension name -> column in the fact frames.
COLUMN_OF = {"municipality": "municipality_code", "region": "region_code", "unit": "unit_code"}


class MetricError(ValueError):
    """A request the registry cannot answer (unknown metric or grouping)."""


@dataclass(frozen=True)
class Scope:
    """What a user may see: None means every municipality."""

    municipalities: frozenset[str] | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    municipalities: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    service_lines: tuple[str, ...] = ()
    age_bands: tuple[str, ...] = ()
    # Only records before this local minute of each day (for "today so far" comparisons).
    until_minute: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise MetricError(f"period ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class Metric:
    key: str
    unit: Unit
    source: Source
    labels: dict[str, str]
    definitions: dict[str, str]
    aggregate: Callable[[Settings], list[pl.Expr]]
    target_setting: str | None = None
    # None: a change is neither good nor bad (volumes); shown without a colour.
    higher_is_better: bool | None = True
    # A share of the whole: the denominator is the total over every grouping but the last.
    share_of_total: bool = False
    extra_filter: Callable[[], pl.Expr] | None = None

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["fi"]

    def definition(self, language: str) -> str:
        return self.definitions.get(language) or self.definitions["fi"]

    def target(self, settings: Settings) -> float | None:
        return getattr(settings, self.target_setting) if self.target_setting else None

