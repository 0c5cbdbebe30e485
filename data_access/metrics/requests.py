"""What can be asked of the one exit, as frozen (hashable) values: a result is cached and
shared by its request, so two sessions that ask the same get the same object.

- ``MetricsRequest``: metrics over one or several periods, by some groupings, within a scope;
- ``FreshnessRequest``: the newest record per source system or municipality;
- ``PendingRequest``: referrals waiting for their contact, per source system;
- ``QuarantineRequest``: rows waiting in quarantine, by kind and reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from data_access.metrics.definitions import MetricName, get_metric
from data_access.metrics.types import DIMENSION_TYPES, DIMENSIONS, RESULT_SCHEMA, Filters, MetricError, Scope


@dataclass(frozen=True)
class MetricsRequest:
    """Metrics (registry names, checked), periods, groupings and scope. ``several``: the
    result starts with a ``period`` column (the period's index), as asked with several."""

    metrics: tuple[MetricName, ...]
    periods: tuple[Filters, ...]
    by: tuple[str, ...] = ()
    scope: Scope = Scope()
    several: bool = False
    # For what leaves the county: counts perturbed by the cell-key method (publication.py).
    publication: bool = False

    def __post_init__(self) -> None:
        if not self.periods:
            raise MetricError("no filters given")
        for dimension in self.by:
            if dimension not in DIMENSIONS:
                raise MetricError(f"unknown grouping {dimension!r}; known: {', '.join(DIMENSIONS)}")

    @classmethod
    def of(
        cls, metrics: Iterable[str], filters: Filters | tuple[Filters, ...], *, by: Iterable[str] = (), scope: Scope = Scope(),
        publication: bool = False,
    ) -> MetricsRequest:
        """A request from names: checked against the registry, in one order whatever order
        they were given in (the same metrics asked in another order are the same request)."""
        names = tuple(sorted({MetricName(get_metric(name).key) for name in metrics}))
        several = isinstance(filters, tuple)
        periods = filters if isinstance(filters, tuple) else (filters,)
        return cls(metrics=names, periods=periods, by=tuple(by), scope=scope, several=several, publication=publication)

    def with_metrics(self, metrics: Iterable[str]) -> MetricsRequest:
        return dataclasses.replace(self, metrics=tuple(sorted({MetricName(get_metric(m).key) for m in metrics})))

    def result_schema(self) -> dict[str, pl.DataType]:
        """The type of the answer: a ``period`` column (with several periods), the groupings,
        then ``metric``, ``value``, ``numerator``, ``denominator``, ``ci_low``, ``ci_high``,
        ``suppressed``, ``secondary`` and ``note`` (tests/test_disclosure.py holds every
        answer to it)."""
        return {
            **({"period": pl.Int32()} if self.several else {}),
            **{d: DIMENSION_TYPES[d] for d in self.by},
            **{name: dtype() if isinstance(dtype, type) else dtype for name, dtype in RESULT_SCHEMA.items()},
        }

    def same_rows(self) -> tuple[tuple[Filters, ...], tuple[str, ...], Scope, bool, bool]:
        """What two requests must share to be answered together (all but their metrics)."""
        return self.periods, self.by, self.scope, self.several, self.publication


@dataclass(frozen=True)
class FreshnessRequest:
    by: str  # "source_system" or "municipality"
    scope: Scope = Scope()


@dataclass(frozen=True)
class PendingRequest:
    scope: Scope = Scope()


@dataclass(frozen=True)
class QuarantineRequest:
    scope: Scope = Scope()


Request = MetricsRequest | FreshnessRequest | PendingRequest | QuarantineRequest
