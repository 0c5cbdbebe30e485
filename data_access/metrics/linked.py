"""Linked tables: no hidden small count may follow from every table one user can get together.

A user who can ask for contacts by municipality and channel can also ask, for the same
period and filters, for contacts by municipality alone, by channel alone, by county and
channel, by county, and the whole area's total; by day also by week and month. Each is a sum
of cells of the first table: together they are a system of linear equations in its hidden
cells. Closing each line on its own (disclosure.py) left systems that could be solved:
e-messages in a column less the shown cells gave Askola + Halsua; Askola's row gave Askola's
e-messages + home visits; the home-visit column gave Askola's home visits; so Halsua's
e-messages were 1. And a county's total less its other municipalities gave Perho's 1.

**The rule (the hypercube method of statistical offices).** Every hidden small count must lie
on a *box* of hidden cells: for each grouping, another value of it (the box's other side),
and every corner of the box hidden, with signs alternating from corner to corner. Adding one
to the counts of one sign and taking one from the others changes no total of any margin: no
line, no one-way table, no whole-area figure. So the box gives a second solution for every
equation an attacker can write, and the small count is never determined. The other side of a
municipality is a municipality of the same county (the county's total is kept) unless the
county table hides that total; the other side of a day is a day of the same week and month
(their totals are kept). A corner moves only where the marks allow it: a hidden small count
stays 1..threshold-1, any other hidden count at least the threshold, and a zero never moves (a
hidden zero could not become a small count unseen). A grouping with no other value in reach is
not a side of the box (its margin along that grouping is the cell itself).

Where a small count lies on no such box, the cheapest box is completed: the fewest shown cells
hidden, then the smallest of them; equal ones by the groups' order. Hiding never breaks a box
already there, so one pass in the groups' order is enough. Where no box can be made at all, the
count's cells read ``..`` (``unmarked``), as a line that cannot be closed does.

Not in the linked set: tables over other filters or periods (differencing, docs/privacy.md),
a day's weekday margin (a box cannot keep both a week's and a weekday's totals), and units
above their municipality. tests/test_linked.py attacks the result with an integer program
written apart from this module.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl


def protect_boxes(
    values: np.ndarray, hidden: np.ndarray, frame: pl.DataFrame, by: list[str], period: np.ndarray, rank: np.ndarray,
    *, threshold: int, counties: dict[str, str], county_shown: np.ndarray | None, unmarked: np.ndarray,
) -> bool:
    """Hide, in place, more cells until every hidden small count lies on a box of hidden cells
    (module docstring); True when anything was hidden. ``county_shown``: for each row, whether
    the county table shows its county's total (None: no municipality grouping)."""
    grid = _Grid(values, frame, by, period, counties, county_shown)
    small = hidden & (values >= 1) & (values < threshold)
    if len(by) == 1:
        # A one-way table's only total is the whole area's: where it is small it is hidden
        # wherever it is shown, and nothing here can be worked out from it.
        totals = np.bincount(np.unique(period, return_inverse=True)[1], weights=values)
        small &= ~((totals >= 1) & (totals < threshold))[np.unique(period, return_inverse=True)[1]]
    changed = False
    for cell in sorted(np.flatnonzero(small).tolist(), key=lambda c: rank[c]):
        boxes = grid.boxes(cell, hidden, threshold=threshold)
        if boxes is None:
            continue  # a box of hidden cells is there already
        if not len(boxes):
            lines = grid.neighbours(cell)
            if grid.total_shown(cell, threshold=threshold):
                # Some total it lies in is shown: the marks must not say which hidden cell is small.
                unmarked[lines] |= hidden[lines]
                unmarked[cell] = True
            continue
        shown = ~hidden[boxes]
        cost = np.lexsort((rank[boxes].sum(axis=1), np.where(shown, values[boxes], 0.0).sum(axis=1), shown.sum(axis=1)))
        hidden[boxes[cost[0]]] = True
        changed = True
    return changed


class _Grid:
    """The table's cells by their groups, per period, and the other sides each group may take."""

    def __init__(
        self, values: np.ndarray, frame: pl.DataFrame, by: list[str], period: np.ndarray, counties: dict[str, str], county_shown: np.ndarray | None
    ) -> None:
        self.values, self.by, self.period = values, by, period
        self.columns = [frame[name].to_list() for name in by]
        self.cells = {(int(p), *coords): i for i, (p, *coords) in enumerate(zip(period.tolist(), *self.columns, strict=True))}
        self.counties, self.county_shown = counties, county_shown
        self._sides: dict[tuple[int, int, object, bool], list[object]] = {}
        if county_shown is not None and "municipality" in by:
            names = [counties.get(str(v), "") for v in self.columns[by.index("municipality")]]
            lookup = {name: k for k, name in enumerate(sorted(set(names)))}
            self.county_of = np.array([lookup[name] for name in names], dtype=np.int64)
        self.present: dict[tuple[int, int], list[object]] = {}
        self.position: dict[tuple[int, int], dict[object, int]] = {}
        # Each period's cells as a dense array over its groupings' values (-1: no such cell).
        self.dense: dict[int, np.ndarray] = {}
        for p in np.unique(period).tolist():
            rows = np.flatnonzero(period == p)
            for d in range(len(by)):
                self.present[(p, d)] = sorted({self.columns[d][i] for i in rows.tolist()}, key=_order)
                self.position[(p, d)] = {v: k for k, v in enumerate(self.present[(p, d)])}
            dense = np.full(tuple(len(self.present[(p, d)]) for d in range(len(by))), -1, dtype=np.int64)
            coords = tuple(np.array([self.position[(p, d)][self.columns[d][i]] for i in rows.tolist()], dtype=np.int64) for d in range(len(by)))
            dense[coords] = rows
            self.dense[p] = dense

    def _lines(self, cell: int) -> list[np.ndarray]:
        """The cells of each line through ``cell`` (one grouping free, the rest its own)."""
        p = int(self.period[cell])
        own_at = [self.position[(p, d)][column[cell]] for d, column in enumerate(self.columns)]
        lines = []
        for d in range(len(self.by)):
            index: list[int | slice] = list(own_at)
            index[d] = slice(None)
            line = self.dense[p][tuple(index)].ravel()
            lines.append(line[line >= 0])
        return lines

    def neighbours(self, cell: int) -> np.ndarray:
        """The cells sharing a line with ``cell``."""
        out: np.ndarray = np.unique(np.concatenate(self._lines(cell)))
        return out

    def total_shown(self, cell: int, *, threshold: int) -> bool:
        """Whether a total ``cell`` lies in (one of its lines, or the whole period's) is not small,
        so that some table shows it."""
        dense = self.dense[int(self.period[cell])]
        totals = [float(self.values[dense[dense >= 0]].sum()), *(float(self.values[line].sum()) for line in self._lines(cell))]
        return any(not 1 <= total < threshold for total in totals)

    def sides(self, cell: int, d: int) -> list[object]:
        """The other values grouping ``d`` may take on a box through ``cell``."""
        p, own = int(self.period[cell]), self.columns[d][cell]
        within_county = self.by[d] == "municipality" and bool(self.counties) and (self.county_shown is None or bool(self.county_shown[cell]))
        key = (p, d, own, within_county)
        if key not in self._sides:
            self._sides[key] = self._find_sides(p, d, own, within_county)
        return self._sides[key]

    def _find_sides(self, p: int, d: int, own: object, within_county: bool) -> list[object]:
        name = self.by[d]
        options = [v for v in self.present[(p, d)] if v != own]
        if within_county:
            # Its county's total is shown: the other side keeps it, in the same county. (Where it
            # is hidden, a box may cross counties if every county total it touches is hidden.)
            options = [v for v in options if self.counties.get(str(v)) == self.counties.get(str(own))]
        if name == "day" and isinstance(own, dt.date):
            week, month = own - dt.timedelta(days=own.weekday()), (own.year, own.month)
            options = [v for v in options if isinstance(v, dt.date) and v - dt.timedelta(days=v.weekday()) == week and (v.year, v.month) == month]
        return options

    def boxes(self, cell: int, hidden: np.ndarray, *, threshold: int) -> np.ndarray | None:
        """None when a box of hidden cells runs through ``cell`` already; else every box through
        it whose corners can all move (shown or hidden), as rows of corner indices with
        ``cell`` first (none: an empty array)."""
        sides = [self.sides(cell, d) for d in range(len(self.by))]
        active = [d for d in range(len(self.by)) if sides[d]]
        if not active:
            return np.zeros((0, 1), dtype=np.int64)
        p = int(self.period[cell])
        own = [column[cell] for column in self.columns]
        # Every box at once: its corners' rows, one column per corner (-1: no such cell, a zero).
        own_at = [self.position[(p, d)][own[d]] for d in range(len(self.by))]
        grids = np.meshgrid(*(np.array([self.position[(p, d)][v] for v in sides[d]], dtype=np.int64) for d in active), indexing="ij")
        flips = list(itertools.product((0, 1), repeat=len(active)))
        columns = []
        for flip in flips:
            coords: list[np.ndarray | int] = list(own_at)
            for k, (d, turned) in enumerate(zip(active, flip, strict=True)):
                if turned:
                    coords[d] = grids[k]
            columns.append(np.broadcast_to(self.dense[p][tuple(coords)], grids[0].shape).ravel())
        corners = np.stack(columns, axis=1)
        signs = np.array([-1 if sum(flip) % 2 else 1 for flip in flips])
        values = np.where(corners >= 0, self.values[np.maximum(corners, 0)], 0.0)
        small = (values >= 1) & (values < threshold)
        up_ok = np.where(small, values <= threshold - 2, values >= threshold)
        down_ok = np.where(small, values >= 2, values >= threshold + 1)
        movable = np.zeros(len(corners), dtype=bool)
        for direction in (1, -1):
            step = signs * direction
            movable |= np.where(step > 0, up_ok, down_ok).all(axis=1)
        movable &= (corners >= 0).all(axis=1) & self._keep_counties(corners)
        found = corners[movable]
        if hidden[found].all(axis=1).any():
            return None
        return found

    def _keep_counties(self, corners: np.ndarray) -> np.ndarray:
        """For each box: one within one county keeps every county total; one across counties
        changes each county total it touches, so every one of them must be hidden in the
        county table."""
        if self.county_shown is None or "municipality" not in self.by:
            return np.ones(len(corners), dtype=bool)
        county = self.county_of[np.maximum(corners, 0)]
        within = (county == county[:, :1]).all(axis=1)
        hidden_totals = ~np.where(corners >= 0, self.county_shown[np.maximum(corners, 0)], True).any(axis=1)
        keeps: np.ndarray = within | hidden_totals
        return keeps


def _order(value: object) -> tuple[bool, str]:
    return (value is not None, str(value))
