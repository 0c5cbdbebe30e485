"""The metric registry and its one exit.

- ``types``: the vocabulary (filters, scope, units, dimensions, what a metric is);
- ``definitions``: every metric, defined once (``REGISTRY``);
- ``computation``: ``compute``, the one exit, scoped and protected;
- ``disclosure``: what of a result may be shown (docs/privacy.md);
- ``cells``: a result's grid while it is finished.

A newcomer looking for what a figure means reads ``definitions``; for why a cell reads "<5",
``disclosure``.
"""

from data_access.metrics.computation import (
    compute,
    funnel_limits,
    period_slice,
    population_for,
    wilson_interval,
)
from data_access.metrics.definitions import REGISTRY, MetricName, get_metric
from data_access.metrics.types import (
    COLUMN_OF,
    DIMENSIONS,
    RESULT_SCHEMA,
    TIME_DIMENSIONS,
    Filters,
    Metric,
    MetricError,
    Scope,
    Source,
    Unit,
)

__all__ = [
    "COLUMN_OF", "DIMENSIONS", "REGISTRY", "RESULT_SCHEMA", "TIME_DIMENSIONS", "Filters", "Metric", "MetricError",
    "MetricName", "Scope", "Source", "Unit", "compute", "funnel_limits", "get_metric", "period_slice",
    "population_for", "wilson_interval",
]
