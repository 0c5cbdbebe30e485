"""The one exit: scoped, computed, suppressed.

``compute`` applies the caller's access scope before anything is computed and disclosure
control (``disclosure.protect``) before anything is returned, so no page, export or CLI
output can forget either.

A result is a long frame: the grouping columns, then ``metric``, ``value``, ``numerator``,
``denominator``, ``ci_low``, ``ci_high``, ``suppressed``, ``secondary`` and ``note``; asked
for several filter sets at once, a ``period`` column (the filter set's index) comes first.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from data_access.history import FRAMES
from data_access.metrics.cells import Cells, GroupKeys
from data_access.metrics.definitions import NPS_PARTS, get_metric, nps_figures
from data_access.metrics.disclosure import protect
from data_access.metrics.publication import perturb, record_key, seed_of
from data_access.metrics.types import (
    COLUMN_OF,
    DIMENSIONS,
    RESULT_SCHEMA,
    Z95,
    Filters,
    Metric,
    MetricError,
    Scope,
    Source,
)
from data_access.pathway import multi_service_clients
from data_access.snapshot import FactSource


def compute(
    store: FactSource,
    *,
    metrics: list[str] | tuple[str, ...],
    filters: Filters | tuple[Filters, ...],
    by: list[str] | tuple[str, ...] = (),
    scope: Scope = Scope(),
    publication: bool = False,
) -> pl.DataFrame:
    """The one exit: scoped, computed, suppressed; for ``publication`` every count is first
    perturbed by the cell-key method (publication.py) and shares are made of perturbed counts.

    ``filters`` may be several filter sets (the overview's cards: today so far, yesterday, the
    last 7 days and the week before each). The result then starts with a ``period`` column,
    the index of each row's filter set, and each period's rows are exactly what a call with
    that filter set alone gives: cells, suppression and populations are each period's own.
    One pass over the rows serves them all (a call has 2-4 ms of fixed cost however few rows
    it reads)."""
    by = list(by)
    for dimension in by:
        if dimension not in DIMENSIONS:
            raise MetricError(f"unknown grouping {dimension!r}; known: {', '.join(DIMENSIONS)}")
    periods = list(filters) if isinstance(filters, tuple) else [filters]
    if not periods:
        raise MetricError("no filters given")
    # Plain lists, read once per call: a polars filter on this 300-row frame costs more than
    # the lookup.
    places = list(zip(*(store.municipalities[c].to_list() for c in PLACE_COLUMNS), strict=True))
    allowed = [_allowed_places(places, f, scope) for f in periods]
    counties = dict(places)
    chosen = [get_metric(key) for key in metrics]
    cells: dict[str, Cells] = {}
    if publication and not store.settings.publication_ready:
        raise MetricError("set OHJAUSTAULU_PUBLICATION_KEY to the county's own secret before publishing: the demo key is public")
    seed = seed_of(store.settings.publication_key.get_secret_value()) if publication else None
    for members, together in _aggregate_together(store, chosen, periods, by, allowed, seed=seed):
        if together is None:
            continue
        if by and set(by) <= {"municipality", "region"}:
            together = _with_empty_places(together, by, allowed)
        period = together[PERIOD].to_numpy().astype(np.int64) if PERIOD in together.columns else np.zeros(together.height, dtype=np.int64)
        keys = GroupKeys(pl.DataFrame([together[d] for d in by]), by, period=period, counties=counties)
        for metric in members:
            finished = _finish(store, metric, together, keys, periods, allowed, published=seed is not None)
            # Published counts carry cell-key noise, which protects the tables one can set side
            # by side (the same cell always gets the same noise): the linked audit is for exact figures.
            protect(finished, threshold=store.settings.small_cell_threshold, linked=seed is None)
            cells[metric.key] = finished
    return _long([cells[m.key] for m in chosen if m.key in cells], by, periods=isinstance(filters, tuple))


PLACE_COLUMNS = ("municipality_code", "region_code")  # a place: (municipality, county)


def _allowed_places(places: list[tuple[str, str]], filters: Filters, scope: Scope) -> list[tuple[str, str]]:
    """The places (municipality and county codes) that the filters and scope allow, by code."""
    return sorted(
        (code, region) for code, region in places
        if (not filters.regions or region in filters.regions)
        and (not filters.municipalities or code in filters.municipalities)
        and (scope.municipalities is None or code in scope.municipalities)
    )


def _filtered(
    store: FactSource, metric: Metric, filters: Filters, allowed: list[tuple[str, str]], seed: int | None = None
) -> pl.LazyFrame:
    frame = source_frame(store, metric.source, filters)
    conditions = [pl.col("municipality_code").is_in([code for code, _ in allowed])]
    for values, column in (
        (filters.channels, "channel"),
        (filters.service_lines, "service_line"),
        (filters.age_bands, "age_band"),
    ):
        if values and column in frame.columns:
            conditions.append(pl.col(column).is_in(list(values)))
    if filters.until_minute is not None and "minute_of_day" in frame.columns:
        conditions.append(pl.col("minute_of_day") < filters.until_minute)
    if metric.extra_filter is not None:
        conditions.append(metric.extra_filter())
    lazy = period_rows(store, metric.source, frame, filters).filter(*conditions)
    return lazy if seed is None else lazy.with_columns(record_key(pl.col("id"), seed))


def source_frame(store: FactSource, source: Source, filters: Filters) -> pl.DataFrame:
    """The rows a metric's source counts: a fact frame (its recent rows: the history's are
    added by ``period_rows``), a guidance-case frame, or for multi-service clients the
    clients of the window ending on the period's last day."""
    if source in ("contacts", "referrals", "feedback"):
        frame: pl.DataFrame = getattr(store, source)
        return frame
    if source == "clients":
        return clients_at(store, filters.end)
    return store.pathway[source]


def period_rows(store: FactSource, source: Source, frame: pl.DataFrame, filters: Filters) -> pl.LazyFrame:
    """The rows of ``frame`` (``source_frame``) in the period, with the history's rows of
    the period before them where it reaches back beyond the recent window (history.py)."""
    recent = period_slice(frame, filters).lazy()
    if source in FRAMES and (older := store.history.scan(source, filters.start, filters.end)) is not None:
        return pl.concat([older, recent])
    return recent


def rows_between(store: FactSource, source: str, start: dt.date, end: dt.date, columns: list[str]) -> pl.DataFrame:
    """``columns`` of the fact frame's rows with a local day in [start, end], history included."""
    frame: pl.DataFrame = getattr(store, source)
    if frame.is_empty() and not frame.columns:
        return frame
    recent = period_slice(frame, Filters(start=start, end=end)).select(columns)
    older = store.history.scan(source, start, end)
    return recent if older is None else pl.concat([older.select(columns).collect(), recent], how="vertical_relaxed")


def _has_rows(store: FactSource, source: Source, frame: pl.DataFrame) -> bool:
    return not frame.is_empty() or (source in FRAMES and store.history.rows(source) > 0)


# Multi-service clients of recent (data version, window end, settings): a page asks for
# several measures of the same window, each a pass over a year of contacts (~0.1-0.3 s).
_CLIENTS: dict[tuple[object, ...], pl.DataFrame] = {}
_CLIENTS_KEPT = 16


def clients_at(store: FactSource, end: dt.date) -> pl.DataFrame:
    settings = store.settings
    key = (id(store.origin), store.key, end, settings.multi_service_window_days, settings.multi_service_min_lines)
    found = _CLIENTS.get(key)
    if found is None:
        start = end - dt.timedelta(days=settings.multi_service_window_days - 1)
        contacts = rows_between(
            store, "contacts", start, end,
            ["day", "client_id", "service_line", "municipality_code", "region_code", "age_band", "id"],
        )
        found = multi_service_clients(
            contacts, store.pathway["cases"], end=end, window_days=settings.multi_service_window_days,
            min_lines=settings.multi_service_min_lines,
        )
        if len(_CLIENTS) >= _CLIENTS_KEPT:
            _CLIENTS.pop(next(iter(_CLIENTS)))
        _CLIENTS[key] = found
    return found


def period_slice(frame: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """The rows of the period: the store keeps frames in time order, so the local day is
    sorted and the period is found by binary search instead of a scan of every row."""
    if frame.is_empty():
        return frame
    low, high = frame["day"].search_sorted(pl.Series([filters.start, filters.end + dt.timedelta(days=1)]), side="left")
    return frame.slice(low, high - low)


PERIOD = "__period"  # the filter set's index while several are aggregated together


def _aggregate_together(
    store: FactSource, chosen: list[Metric], periods: list[Filters], by: list[str], allowed: list[list[tuple[str, str]]],
    *, seed: int | None = None,
) -> list[tuple[list[Metric], pl.DataFrame | None]]:
    """Raw aggregates, one wide frame per set of metrics over the same rows (same source and
    row filter): with several periods the period's index (``PERIOD``) first, then the
    grouping columns under their dimension names, then each metric's aggregates as
    ``<metric>__<name>``. A page asks for several metrics at once; one pass over the rows
    serves them all, and with several periods one query serves every period. None where the
    source holds no rows at all."""
    for metric in chosen:
        for dimension in by:
            if metric.source not in DIMENSIONS[dimension]:
                raise MetricError(f"metric {metric.key!r} cannot be grouped by {dimension!r}")
    columns = [COLUMN_OF.get(d, d) for d in by]
    sets: dict[tuple[Source, object], list[Metric]] = {}
    for metric in chosen:
        sets.setdefault((metric.source, metric.extra_filter), []).append(metric)
    out: list[tuple[list[Metric], pl.DataFrame | None]] = []
    for (source_name, _), members in sets.items():
        source = source_frame(store, source_name, periods[-1])
        if not _has_rows(store, source_name, source):
            out.append((members, None))
            continue
        # The sums of record keys are read only when publishing (the frame then has the keys).
        expressions = [
            aggregate.alias(f"{metric.key}__{aggregate.meta.output_name()}")
            for metric in members
            for aggregate in metric.aggregate(store.settings)
            if seed is not None or not aggregate.meta.output_name().endswith("_key")
        ]

        def grouped(lazy: pl.LazyFrame, extra: list[str], expressions: list[pl.Expr] = expressions) -> pl.LazyFrame:
            # Weeks, months and quarters are cut from the local day of the rows in the period only.
            if truncated := [c for c in columns if c in ("week", "month", "quarter")]:
                lazy = lazy.with_columns(pl.col("day").dt.truncate({"week": "1w", "month": "1mo", "quarter": "1q"}[c]).alias(c) for c in truncated)
            keys = [*extra, *columns]
            lazy = lazy.group_by(keys).agg(expressions) if keys else lazy.select(expressions)
            # Code columns are categorical in the store; results carry plain text.
            return lazy.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String)).rename(dict(zip(columns, by, strict=True)))

        if len(periods) == 1:
            out.append((members, grouped(_filtered(store, members[0], periods[0], allowed[0], seed), []).collect()))
            continue
        together = grouped(
            pl.concat([
                _filtered(store, members[0], filters, allowed[index], seed).with_columns(pl.lit(index, dtype=pl.Int32).alias(PERIOD))
                for index, filters in enumerate(periods)
            ]),
            [PERIOD],
        ).collect()
        present = set(together[PERIOD].to_list())
        if not by and len(present) < len(periods):
            # A period without rows: what one call gives over no rows (a count of zero).
            empty_rows = source.clear().lazy()
            empty = grouped(empty_rows if seed is None else empty_rows.with_columns(record_key(pl.col("id"), seed)), []).collect()
            together = pl.concat(
                [together, *(empty.select(pl.lit(i, dtype=pl.Int32).alias(PERIOD), pl.all()) for i in range(len(periods)) if i not in present)],
                how="diagonal_relaxed",
            )
        out.append((members, together))
    return out


def _with_empty_places(together: pl.DataFrame, by: list[str], allowed: list[list[tuple[str, str]]]) -> pl.DataFrame:
    """Every allowed municipality (or county) appears, in every period, with no aggregates
    where nothing happened (``_finish`` makes counts and shares of those a true zero)."""
    several = PERIOD in together.columns
    have = set(zip(*(together[c].to_list() for c in ([PERIOD] if several else []) + by), strict=True))
    missing = sorted({
        (index, *place) if several else place
        for index, places in enumerate(allowed)
        for place in _places(places, [COLUMN_OF[d] for d in by])
    } - have)
    if not missing:
        return together
    return pl.concat([together, pl.DataFrame(missing, schema=([PERIOD] if several else []) + by, orient="row")], how="diagonal_relaxed")


def _places(allowed: list[tuple[str, str]], columns: list[str]) -> list[tuple[str, ...]]:
    """``columns`` (of ``PLACE_COLUMNS``) of each allowed place."""
    at = [PLACE_COLUMNS.index(column) for column in columns]
    return [tuple(place[i] for i in at) for place in allowed]



def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)


def _finish(
    store: FactSource, metric: Metric, together: pl.DataFrame, keys: GroupKeys, periods: list[Filters],
    allowed: list[list[tuple[str, str]]], *, published: bool = False,
) -> Cells:
    """``_figures``, with the number of people each figure is about where its counts are not
    people (``people``: disclosure control protects it like any count the figure implies)."""
    cells = _figures(store, metric, together, keys, periods, allowed, published=published)
    if metric.unit == "nps":
        parts = [np.nan_to_num(_column(together, f"{metric.key}__part_{name}"), nan=0.0) for name in NPS_PARTS]
        if published:
            threshold = store.settings.small_cell_threshold
            parts = [perturb(part, _column(together, f"{metric.key}__part_{name}_key"), threshold=threshold) for part, name in zip(parts, NPS_PARTS, strict=True)]
        cells.parts = parts
        cells.value, cells.ci_low, cells.ci_high = nps_figures(*parts)
        cells.denominator = parts[0] + parts[1] + parts[2]
    if f"{metric.key}__people" in together.columns:
        cells.people = np.nan_to_num(_column(together, f"{metric.key}__people"), nan=0.0)
    return cells


def _figures(
    store: FactSource, metric: Metric, together: pl.DataFrame, keys: GroupKeys, periods: list[Filters],
    allowed: list[list[tuple[str, str]]], *, published: bool = False,
) -> Cells:
    """Values, intervals and notes from one metric's raw aggregates.

    The aggregates are small (one row per group), so this is plain array arithmetic: a polars
    operation on a small frame costs 0.1-0.3 ms of fixed overhead, and a page asks for around
    30 of them per registry call."""
    numerator = _column(together, f"{metric.key}__numerator")
    denominator = _column(together, f"{metric.key}__denominator")
    exact_n = denominator.copy()
    nothing = np.full(keys.height, np.nan)
    note: list[str | None] = [None] * keys.height
    if metric.unit in ("count", "per_1000"):
        numerator = np.nan_to_num(numerator, nan=0.0)  # a place or period with no rows: a true zero
    if published:
        numerator, denominator = _perturbed(store, metric, together, numerator, denominator)
    if metric.share_of_total:
        totals = np.bincount(keys.along_last, weights=np.nan_to_num(numerator, nan=0.0))
        denominator = totals[keys.along_last]
    if metric.unit == "count":
        return Cells(metric, keys, numerator, denominator, numerator.copy(), nothing, nothing.copy(), note)
    if metric.unit == "share":
        numerator, denominator = np.nan_to_num(numerator, nan=0.0), np.nan_to_num(denominator, nan=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            known = denominator > 0
            low, high = wilson_interval(numerator, denominator)
            value = np.where(known, numerator / denominator, np.nan)
        return Cells(metric, keys, numerator, denominator, value, np.where(known, low, np.nan), np.where(known, high, np.nan), note)
    if metric.unit == "per_1000":
        population, missing = _populations(store, keys, periods, allowed)
        known = (missing == 0) & (population > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(known, numerator / population * 1000, np.nan)
        note = [None if k else "population_missing" for k in known.tolist()]
        return Cells(metric, keys, numerator, np.where(known, population, np.nan), value, nothing, nothing.copy(), note)
    value = _column(together, f"{metric.key}__value")
    if f"{metric.key}__half" in together.columns:  # a mean with its 95 % half-width
        half = _column(together, f"{metric.key}__half")
        cells = Cells(metric, keys, numerator, denominator, value, value - half, value + half, note)
    elif f"{metric.key}__ci_low" in together.columns:  # an interval of its own (a median's, a score's)
        low, high = _column(together, f"{metric.key}__ci_low"), _column(together, f"{metric.key}__ci_high")
        cells = Cells(metric, keys, numerator, denominator, value, low, high, note)
    else:
        cells = Cells(metric, keys, numerator, denominator, value, nothing, nothing.copy(), note)
    if published:
        _published_interval(metric, cells, exact_n)
    return cells


def _perturbed(
    store: FactSource, metric: Metric, together: pl.DataFrame, numerator: np.ndarray, denominator: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The counts a figure is made of, as published (publication.py): a count's rows, a
    share's numerator and denominator rows, each by the sum of its own rows' record keys. A
    share's numerator is never above its denominator. Means and medians keep their values
    (their counts are the threshold rule's)."""
    threshold = store.settings.small_cell_threshold
    has = {f"{metric.key}__numerator_key", f"{metric.key}__denominator_key"} & set(together.columns)
    if f"{metric.key}__numerator_key" in has:
        numerator = perturb(numerator, _column(together, f"{metric.key}__numerator_key"), threshold=threshold)
    if f"{metric.key}__denominator_key" in has:
        denominator = perturb(denominator, _column(together, f"{metric.key}__denominator_key"), threshold=threshold)
        numerator = np.fmin(numerator, denominator)
    return numerator, denominator


def _published_interval(metric: Metric, cells: Cells, exact_n: np.ndarray) -> None:
    """A published mean's, score's or quantile's interval, made with the published n: an
    interval from the true n gives it back (a score's Wilson interval is a function of its
    mean and n alone; a mean's half-width scales with 1/sqrt(n))."""
    n = cells.denominator
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric.unit == "score":
            low, high = wilson_interval(cells.value / 10 * n, n)
            cells.ci_low, cells.ci_high = np.where(n > 0, low * 10, np.nan), np.where(n > 0, high * 10, np.nan)
        elif metric.unit == "mean":
            scale = np.sqrt(exact_n / n)
            half = (cells.ci_high - cells.ci_low) / 2 * scale
            cells.ci_low, cells.ci_high = np.where(n > 0, cells.value - half, np.nan), np.where(n > 0, cells.value + half, np.nan)


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval for a proportion, as (low, high)."""
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return centre - half, centre + half


def funnel_limits(centre: float, *, n_min: float, n_max: float, points: int = 60) -> pl.DataFrame:
    """Control limits of a funnel plot around ``centre`` for denominators n_min..n_max:
    95 % (z 1.96) and 99.8 % (z 3.09), normal approximation, clipped to 0..1."""
    n_min = max(n_min, 1.0)
    n_max = max(n_max, n_min * 1.01)
    ns = [n_min * (n_max / n_min) ** (i / (points - 1)) for i in range(points)]
    rows = []
    for band, z in (("95", 1.959964), ("99.8", 3.090232)):
        for sign, suffix in ((-1, "low"), (1, "high")):
            for n in ns:
                limit = centre + sign * z * (centre * (1 - centre) / n) ** 0.5
                rows.append((f"{band}_{suffix}", band, n, min(max(limit, 0.0), 1.0)))
    return pl.DataFrame(rows, schema=["band", "level", "n", "limit"], orient="row")


def population_for(store: FactSource, year: int) -> dict[str, int | None]:
    """Population per municipality for ``year``: that year's, else the latest earlier one
    (None where no year up to ``year`` is known)."""
    latest: dict[str, tuple[int, int | None]] = {}
    columns = (store.populations[c].to_list() for c in ("municipality_code", "year", "population"))
    for code, row_year, population in zip(*columns, strict=True):
        if row_year <= year and (code not in latest or row_year > latest[code][0]):
            latest[code] = (row_year, population)
    return {code: population for code, (_, population) in latest.items()}


def _populations(
    store: FactSource, keys: GroupKeys, periods: list[Filters], allowed: list[list[tuple[str, str]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's population in its period's last year (the sum over its allowed
    municipalities) and how many of those municipalities have none known."""
    geography = [d for d in keys.by if d in ("municipality", "region")]
    places = list(zip(*(keys.frame[d].to_list() for d in geography), strict=True)) if geography else [()] * keys.height
    population, missing = np.zeros(keys.height, dtype=np.float64), np.zeros(keys.height, dtype=np.int64)
    for index, filters in enumerate(periods):
        rows = np.flatnonzero(keys.period == index)
        if not len(rows):
            continue
        known = population_for(store, filters.end.year)
        sums: dict[tuple[str, ...], list[int]] = {}
        for code, *place in _places(allowed[index], ["municipality_code", *(COLUMN_OF[d] for d in geography)]):
            total = sums.setdefault(tuple(place), [0, 0])
            people = known.get(code)
            if people is None:
                total[1] += 1
            else:
                total[0] += people
        for row in rows.tolist():
            population[row], missing[row] = sums.get(places[row], (0, 0))
    return population, missing



def _long(cells: list[Cells], by: list[str], *, periods: bool = False) -> pl.DataFrame:
    """The result frame: the grouping columns, then one row per metric and group; with
    ``periods``, the period's index first."""
    if not cells:
        schema = {**{d: pl.String for d in by}, **RESULT_SCHEMA}
        return pl.DataFrame(schema={"period": pl.Int32, **schema} if periods else schema)

    def floats(name: str) -> pl.Series:
        return pl.Series(name, np.concatenate([getattr(c, name) for c in cells]), dtype=pl.Float64, nan_to_null=True)

    figures = pl.DataFrame(
        [
            *([pl.Series("period", np.concatenate([c.keys.period for c in cells]), dtype=pl.Int32)] if periods else []),
            pl.Series("metric", [c.metric.key for c in cells for _ in range(c.keys.height)], dtype=pl.String),
            *(floats(name) for name in ("value", "numerator", "denominator", "ci_low", "ci_high")),
            pl.Series("suppressed", np.concatenate([c.suppressed for c in cells]), dtype=pl.Boolean),
            pl.Series("secondary", np.concatenate([c.secondary for c in cells]), dtype=pl.Boolean),
            pl.Series("note", [n for c in cells for n in c.note], dtype=pl.String),
        ]
    )
    if not by:
        return figures
    keys = pl.concat([c.keys.frame for c in cells], how="vertical_relaxed")
    if not periods:
        return keys.hstack(figures)
    return figures.select("period").hstack(keys).hstack(figures.drop("period"))

