"""Disclosure control: what of a result may be shown inside the county.

The rules are DOMAIN.md's, written out in docs/privacy.md:

- **Primary**: a figure is hidden when a count it shows or implies is 1..threshold-1. A
  count shows itself; a share shows its numerator, its denominator and the complement
  (denominator - numerator: 0,99 of 300 says 3 were not resolved); a mean, median or NPS
  shows its number of answers; a rate per 1 000 residents shows its count.
- **Secondary**: totals are public (a card, another chart, the CLI without ``--by``), so in a
  breakdown the hidden cells of every line (each grouping with the others held fixed) must
  not let subtraction give a small count back. For every count a figure implies, a line
  that hides a count must hide at least two that are not zero (one alone is its total less
  the shown cells, and once known opens its other lines), and a line that hides a small
  count must also hide one of at least ``threshold + 1``: then each hidden count could be one
  more or one less, that one making up the total. An open line hides its smallest shown
  count above zero (for a small one, of at least ``threshold + 1``, else its largest) and is
  looked at again, until no line is open. Not ``threshold``: a secondary cell is known not to
  be 1..threshold-1, so "<5" beside a hidden 5 with a total 6 more would leave 1 and 5.
- A cell hidden only to protect another is marked ``secondary``: its true value may be large,
  and "<5" would say something false.

What this does not close (differencing overlapping periods or filters) is the accepted risk
of the operational, inside-the-county mode: docs/privacy.md.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from data_access.metrics.cells import Cells, GroupKeys
from data_access.metrics.definitions import SCALE_MIN_ANSWERS
from data_access.metrics.linked import protect_boxes

# Rounds of closing lines; each round can only add hidden cells, so it ends, and in practice
# after two or three.
MAX_ROUNDS = 50


def implied_counts(cells: Cells) -> list[np.ndarray]:
    """The counts each of the metric's figures shows or implies (NaN where there is none)."""
    metric = cells.metric
    people = [*([] if cells.people is None else [cells.people]), *(cells.parts or [])]
    if metric.unit in ("count", "per_1000") or metric.share_of_total:
        # A share of the line's total shows its count (share x the public total) and nothing
        # more; protected as that count alone, it hides exactly the cells the count hides.
        return [cells.numerator, *people]
    if metric.unit == "share":
        return [cells.numerator, cells.denominator, cells.denominator - cells.numerator, *people]
    return [cells.denominator, *people]  # a mean, quantile or NPS: its number of answers


def small(values: np.ndarray, *, threshold: int) -> np.ndarray:
    return (values >= 1) & (values <= threshold - 1)


def protect(cells: Cells, *, threshold: int, linked: bool = True) -> None:
    """Hide, in place, what the rules above hide; ``cells.suppressed`` says which figures are
    hidden and ``cells.secondary`` which of those only to protect another.

    Each implied count is protected on its own and the hidden cells are the union. So a
    share's hidden cells include those of every count it implies *as that count alone would
    be protected* (the electronic share by municipality hides every cell that contacts by
    municipality hides, whatever else it hides): a figure of another metric on the same
    screen cannot show what this one hides. Hiding more cells never opens a closed line."""
    primary = np.zeros(cells.keys.height, dtype=bool)
    hidden = np.zeros(cells.keys.height, dtype=bool)
    unmarked = np.zeros(cells.keys.height, dtype=bool)
    counts = implied_counts(cells)
    for i, count in enumerate(counts):
        values = np.nan_to_num(count, nan=0.0)
        if i < len(counts) - len(cells.parts or []):
            # A figure hidden for a small part (one detractor of an NPS of 80 answers) is not
            # built on a small n: it reads "..", as one hidden to protect another.
            primary |= small(values, threshold=threshold)
        hidden_here, unmarked_here = protect_count(values, cells.keys, threshold=threshold, linked=linked)
        hidden |= hidden_here
        unmarked |= unmarked_here
    if cells.metric.unit == "score":
        # A mean of a 0-10 scale over fewer answers than SCALE_MIN_ANSWERS can give a set of
        # answers back (definitions.py); "(n<5)" would say something false of its n.
        few = np.nan_to_num(cells.denominator, nan=0.0) < SCALE_MIN_ANSWERS
        hidden |= few & (np.nan_to_num(cells.denominator, nan=0.0) > 0)
    cells.suppressed = hidden
    cells.secondary = hidden & (~primary | unmarked)
    for column in ("value", "numerator", "ci_low", "ci_high"):
        getattr(cells, column)[hidden] = np.nan
    if cells.metric.unit != "per_1000":  # the population stays: it reveals nothing
        cells.denominator = np.where(hidden, np.nan, cells.denominator)


def protect_count(
    values: np.ndarray, keys: GroupKeys, *, threshold: int, linked: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The cells to hide of one count over a result's groups: primary, then secondary along
    every line until no line is open, then (``linked``) a box for every hidden small count
against every table one can get together with this one (linked.py); and
    the cells whose "<5" would tell too much: the hidden cells of a line that stays open
    because nothing is left to hide (one count of 1 and one of 5, the rest zero: "<5" and a
    secondary mark would give 1 and 5 back from the total of 6). They read as secondary, a
    mark that says nothing of size."""
    memo = (np.ascontiguousarray(values, dtype=np.float64).tobytes(), threshold, linked)
    if memo in keys.protected:
        hidden, unmarked = keys.protected[memo]
        return hidden.copy(), unmarked.copy()
    hidden = small(values, threshold=threshold)
    unmarked = np.zeros(len(values), dtype=bool)
    if keys.by and hidden.any():
        lines, tiebreak = keys.lines, keys.rank
        for _ in range(MAX_ROUNDS):
            changed = False
            for line in lines:
                changed |= _close(values, hidden, line, tiebreak, threshold=threshold, unmarked=unmarked)
            if not changed:
                break
        # Beside the lines, every table one can get together with this one (its one-way tables,
        # its counties, its weeks and months): each hidden small count lies on a box of hidden
        # cells that keeps all their totals (linked.py). One line alone is closed above.
        if linked and (len(keys.by) > 1 or keys.by[0] in ("municipality", "day")):
            county_shown = _county_shown(values, keys, threshold=threshold) if "municipality" in keys.by and keys.counties else None
            protect_boxes(
                values, hidden, keys.frame, keys.by, keys.period, tiebreak, threshold=threshold, counties=keys.counties,
                county_shown=county_shown, unmarked=unmarked,
            )
    keys.protected[memo] = (hidden.copy(), unmarked.copy())
    return hidden, unmarked


def _county_shown(values: np.ndarray, keys: GroupKeys, *, threshold: int) -> np.ndarray:
    """For each row, whether the table by county (the municipality replaced by its county, the
    other groupings kept) shows its county's total: protected there by these same rules."""
    names = [None if v is None else keys.counties.get(str(v)) for v in keys.frame["municipality"].to_list()]
    code = {name: k for k, name in enumerate(dict.fromkeys(names))}
    county = np.array([code[name] for name in names], dtype=np.int64)
    # The rows of one period with the same other groupings are a line along the municipality.
    along = keys.lines[keys.by.index("municipality")]
    ids = np.unique(along * len(code) + county, return_inverse=True)[1].astype(np.int64).ravel()
    _, first = np.unique(ids, return_index=True)
    by = ["region" if d == "municipality" else d for d in keys.by]
    frame = keys.frame[first].with_columns(pl.Series("municipality", [names[i] for i in first.tolist()], dtype=pl.String)).rename({"municipality": "region"})
    totals = np.bincount(ids, weights=values)
    county_keys = GroupKeys(frame, by, period=keys.period[first])
    county_hidden, _ = protect_count(totals, county_keys, threshold=threshold)
    shown: np.ndarray = ~county_hidden[ids]
    return shown


def _close(
    values: np.ndarray, hidden: np.ndarray, line: np.ndarray, tiebreak: np.ndarray, *, threshold: int, unmarked: np.ndarray
) -> bool:
    """Hide one more cell in each open line (where subtraction from the line's total could
    narrow a small hidden count down to one value); True when anything was hidden."""
    small_hidden = hidden & small(values, threshold=threshold)
    if not small_hidden.any():
        return False
    size = int(line.max(initial=0)) + 1
    hidden_sum = np.bincount(line, weights=np.where(hidden, values, 0.0), minlength=size)
    # A line that hides one non-zero count gives it back: its total less the shown ones. That
    # count may be large, but once known it opens the other lines it lies on.
    lone = np.bincount(line[hidden & (values > 0)], minlength=size) == 1
    # A line is closed when it hides, besides its small counts, one of at least threshold + 1:
    # then each hidden count could be one more or one less, the other making up the total.
    cover = np.zeros(size)
    np.maximum.at(cover, line[hidden], np.where(small(values[hidden], threshold=threshold), 0.0, values[hidden]))
    has_small = np.bincount(line[small_hidden], minlength=size) > 0
    uncovered = has_small & (cover < threshold + 1)
    is_open = uncovered | lone
    if not is_open.any():
        return False
    # Candidates of every open line at once (a Python loop per line cost 0.3 s on a
    # three-year trend by day and channel): shown counts above zero; for an uncovered line
    # the smallest of at least threshold + 1 first (tier 0), else the largest (tier 1); for a
    # lone one the smallest; equal ones by the groups' order. The first of each line wins.
    candidates = np.flatnonzero(is_open[line] & ~hidden & (values > 0))
    lines_of = line[candidates]
    fallback = uncovered[lines_of] & (values[candidates] < threshold + 1)
    order = np.lexsort((tiebreak[candidates], np.where(fallback, -values[candidates], values[candidates]), fallback, lines_of))
    ranked = candidates[order]
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = line[ranked][1:] != line[ranked][:-1]
    picks = ranked[first]
    hidden[picks] = True
    # Open lines with nothing left to hide: the line's total is the hidden cells' sum. Below
    # the threshold it is itself hidden wherever it is shown; otherwise the marks must not say
    # which hidden cell is the small one.
    stuck = is_open.copy()
    stuck[line[picks]] = False
    stuck &= hidden_sum >= threshold
    if stuck.any():
        unmarked |= stuck[line] & hidden
    return len(picks) > 0


def protect_table(frame: pl.DataFrame, *, count: str, by: list[str], threshold: int) -> pl.DataFrame:
    """A small table of counts (pending referrals, quarantine) under the same rules: the
    count column emptied where hidden, with ``suppressed`` and ``secondary`` beside it."""
    if frame.is_empty():
        return frame.with_columns(pl.lit(None, pl.Float64).alias(count), pl.lit(False).alias("suppressed"), pl.lit(False).alias("secondary"))
    values = frame[count].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    keys = GroupKeys(frame.select(by), by, period=np.zeros(frame.height, dtype=np.int64))
    hidden, unmarked = protect_count(values, keys, threshold=threshold)
    primary = small(values, threshold=threshold) & ~unmarked
    return frame.with_columns(
        pl.Series(count, np.where(hidden, np.nan, values), dtype=pl.Float64, nan_to_null=True),
        pl.Series("suppressed", hidden, dtype=pl.Boolean),
        pl.Series("secondary", hidden & ~primary, dtype=pl.Boolean),
    )
