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

# Box corners worked out at once (cells x boxes x corners), to bound the memory for a large table.
BOX_BUDGET = 1_000_000


def protect_boxes(
    values: np.ndarray, hidden: np.ndarray, frame: pl.DataFrame, by: list[str], period: np.ndarray, rank: np.ndarray,
    *, threshold: int, counties: dict[str, str], county_shown: np.ndarray | None, unmarked: np.ndarray,
) -> bool:
    """Hide, in place, more cells until every hidden small count lies on a box of hidden cells
    (module docstring); True when anything was hidden. ``county_shown``: for each row, whether
    the county table shows its county's total (None: no municipality grouping)."""
    order = small_counts(values, hidden, by, period, rank, threshold=threshold)
    if by == ["day"]:
        return _protect_days(values, hidden, frame["day"].to_list(), period, rank, order, threshold=threshold, unmarked=unmarked)
    return _protect_grid(_Grid(values, frame, by, period, counties, county_shown), hidden, rank, order, threshold=threshold, unmarked=unmarked)


def small_counts(values: np.ndarray, hidden: np.ndarray, by: list[str], period: np.ndarray, rank: np.ndarray, *, threshold: int) -> list[int]:
    """The hidden small counts that need a box, in the groups' order."""
    small = hidden & (values >= 1) & (values < threshold)
    if len(by) == 1:
        # A one-way table's only total is the whole area's: where it is small it is hidden
        # wherever it is shown, and nothing here can be worked out from it.
        inverse = np.unique(period, return_inverse=True)[1]
        totals = np.bincount(inverse, weights=values)
        small &= ~((totals >= 1) & (totals < threshold))[inverse]
    return sorted(np.flatnonzero(small).tolist(), key=lambda c: rank[c])


def _protect_grid(grid: _Grid, hidden: np.ndarray, rank: np.ndarray, order: list[int], *, threshold: int, unmarked: np.ndarray) -> bool:
    """``protect_boxes`` for any table: the small counts in ``order``, each on a box of hidden
    cells or the cheapest one completed."""
    values = grid.values
    changed = False
    # Which boxes a cell may lie on depends on the counts alone, not on what is hidden: they are
    # found for every cell at once, with the cells on a box of hidden cells already left out
    # (hiding more never breaks one); the loop looks again only at the others.
    candidates = grid.open_boxes(order, hidden, threshold=threshold)
    for cell in order:
        if cell not in candidates:
            continue
        boxes = candidates[cell]
        if len(boxes) and hidden[boxes].all(axis=1).any():
            continue  # a box of hidden cells is there now
        if not len(boxes):
            if grid.total_shown(cell, threshold=threshold):
                # Some total it lies in is shown: the marks must not say which hidden cell is small.
                for line in grid.lines_through(cell):
                    unmarked[line] |= hidden[line]
                unmarked[cell] = True
            continue
        shown = ~hidden[boxes]
        cost = np.lexsort((rank[boxes].sum(axis=1), np.where(shown, values[boxes], 0.0).sum(axis=1), shown.sum(axis=1)))
        hidden[boxes[cost[0]]] = True
        changed = True
    return changed


def _protect_days(
    values: np.ndarray, hidden: np.ndarray, days: list[object], period: np.ndarray, rank: np.ndarray, order: list[int],
    *, threshold: int, unmarked: np.ndarray,
) -> bool:
    """``protect_boxes`` for a table by day alone, where a box is a pair: the small count and
    another day of its week and month moving the other way. The same choices as the boxes
    of any table (tests/test_linked.py compares them), in plain Python: the other days are
    at most six, and a three-year daily trend has a thousand small days."""
    up, down = _moves(values, threshold)
    periods = period.tolist()
    mates: dict[tuple[int, object], list[int]] = {}
    for cell, day in enumerate(days):
        mates.setdefault((periods[cell], _week_and_month(day)), []).append(cell)
    changed = False
    for cell in order:
        movable = [
            other for other in mates[(periods[cell], _week_and_month(days[cell]))]
            if other != cell and ((up[cell] and down[other]) or (down[cell] and up[other]))
        ]
        if any(hidden[other] for other in movable):
            continue  # a pair of hidden days is there already
        if not movable:
            # No pair: the period's total is shown (a small one left the cell out above), so
            # the marks must not say which hidden day is small.
            same = period == period[cell]
            unmarked[same] |= hidden[same]
            unmarked[cell] = True
            continue
        hidden[min(movable, key=lambda other: (values[other], rank[other]))] = True
        changed = True
    return changed


def _week_and_month(day: object) -> object:
    """What a day's box partner must share with it: its week and month (their totals are kept)."""
    if not isinstance(day, dt.date):
        return ("not a day", day)
    return (day - dt.timedelta(days=day.weekday()), day.year, day.month)


def _moves(values: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Whether each cell may take one more (``up``) or one less (``down``) and keep its mark: a
    small count stays 1..threshold-1, another count at least the threshold, a zero zero. One
    place more at the end stands for "no cell" (index -1), which never moves."""
    small = (values >= 1) & (values < threshold)
    up = np.where(small, values <= threshold - 2, values >= threshold)
    down = np.where(small, values >= 2, values >= threshold + 1)
    return np.append(up, False), np.append(down, False)


class _Grid:
    """The table's cells by their groups, per period, and the other sides each group may take."""

    def __init__(
        self, values: np.ndarray, frame: pl.DataFrame, by: list[str], period: np.ndarray, counties: dict[str, str], county_shown: np.ndarray | None
    ) -> None:
        self.values, self.by, self.period = values, by, period
        self.columns = [frame[name].to_list() for name in by]
        self.counties, self.county_shown = counties, county_shown
        self._sides: dict[tuple[int, int, object, bool], list[object]] = {}
        self._classes: dict[tuple[int, int, bool], dict[object, list[object]]] = {}
        self._padded_dense: dict[int, np.ndarray] = {}
        self._period_total: dict[int, float] = {}
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

    def lines_through(self, cell: int) -> list[np.ndarray]:
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

    def total_shown(self, cell: int, *, threshold: int) -> bool:
        """Whether a total ``cell`` lies in (one of its lines, or the whole period's) is not small,
        so that some table shows it."""
        p = int(self.period[cell])
        if p not in self._period_total:
            dense = self.dense[p]
            self._period_total[p] = float(self.values[dense[dense >= 0]].sum())
        totals = [self._period_total[p], *(float(self.values[line].sum()) for line in self.lines_through(cell))]
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
        # The values of grouping d in the period, by the class a box keeps them in: one pass
        # over them per period and grouping (a search per cell was quadratic in the days).
        key = (p, d, within_county)
        if key not in self._classes:
            classes: dict[object, list[object]] = {}
            for v in self.present[(p, d)]:
                classes.setdefault(self._class(d, v, within_county), []).append(v)
            self._classes[key] = classes
        return [v for v in self._classes[key].get(self._class(d, own, within_county), ()) if v != own]

    def _class(self, d: int, value: object, within_county: bool) -> object:
        """What a box's other side must share with ``value``: its county where that county's
        total is shown (where it is hidden, a box may cross counties if every county total it
        touches is hidden); for a day, its week and month (their totals are kept)."""
        if within_county:
            return self.counties.get(str(value))
        if self.by[d] == "day":
            return _week_and_month(value)
        return None

    def open_boxes(self, cells: list[int], hidden: np.ndarray, *, threshold: int) -> dict[int, np.ndarray]:
        """For each cell on no box of hidden cells, every box through it whose corners can all
        move, as rows of corner indices with the cell first (none: an empty array). Cells with
        the same period and the same groupings free are taken together, in numpy, up to
        BOX_BUDGET corners at a time."""
        together: dict[tuple[int, tuple[int, ...]], list[tuple[int, list[list[object]]]]] = {}
        out: dict[int, np.ndarray] = {}
        for cell in cells:
            sides = [self.sides(cell, d) for d in range(len(self.by))]
            active = tuple(d for d in range(len(self.by)) if sides[d])
            if not active:
                out[cell] = np.zeros((0, 1), dtype=np.int64)
                continue
            together.setdefault((int(self.period[cell]), active), []).append((cell, [sides[d] for d in active]))
        for (p, active), members in together.items():
            widths = [max(len(sides[k]) for _, sides in members) for k in range(len(active))]
            per_cell = int(np.prod(widths)) << len(active)
            step = max(1, BOX_BUDGET // per_cell)
            for first in range(0, len(members), step):
                out.update(self._boxes_of(members[first:first + step], p, active, widths, hidden, threshold=threshold))
        return out

    def _boxes_of(
        self, members: list[tuple[int, list[list[object]]]], p: int, active: tuple[int, ...], widths: list[int], hidden: np.ndarray,
        *, threshold: int,
    ) -> dict[int, np.ndarray]:
        cells = np.array([cell for cell, _ in members], dtype=np.int64)
        dense = self._padded(p)
        # Each cell's own position in every grouping, and its other sides in each free one,
        # padded with the position beyond the last (no cell there: such a box is dropped).
        own_at = [np.array([self.position[(p, d)][self.columns[d][c]] for c in cells.tolist()], dtype=np.int64) for d in range(len(self.by))]
        beyond = [len(self.present[(p, d)]) for d in active]
        side_at = []
        for k, d in enumerate(active):
            padded = np.full((len(members), widths[k]), beyond[k], dtype=np.int64)
            for row, (_, sides) in enumerate(members):
                padded[row, : len(sides[k])] = [self.position[(p, d)][v] for v in sides[k]]
            side_at.append(padded)
        shape = (len(members), *widths)
        flips = list(itertools.product((0, 1), repeat=len(active)))
        columns = []
        for flip in flips:
            coords = []
            for d in range(len(self.by)):
                k = active.index(d) if d in active else -1
                if k >= 0 and flip[k]:
                    coords.append(side_at[k].reshape((len(members), *(widths[j] if j == k else 1 for j in range(len(active))))))
                else:
                    coords.append(own_at[d].reshape((len(members), *(1 for _ in active))))
            columns.append(np.broadcast_to(dense[tuple(coords)], shape).reshape(len(members), -1))
        corners = np.stack(columns, axis=2)  # cell, box, corner
        signs = np.array([-1 if sum(flip) % 2 else 1 for flip in flips])
        # Whether each cell may take one more or one less and keep its mark (a small count stays
        # 1..threshold-1, another count at least the threshold, a zero zero); the last place
        # stands for "no cell" (-1), which never moves.
        up, down = _moves(self.values, threshold)
        plus, minus = corners[:, :, signs > 0], corners[:, :, signs < 0]
        movable = (up[plus].all(axis=2) & down[minus].all(axis=2)) | (down[plus].all(axis=2) & up[minus].all(axis=2))
        movable &= self._keep_counties(corners)
        covered = (movable & hidden[np.maximum(corners, 0)].all(axis=2)).any(axis=1)
        return {int(cells[row]): corners[row][movable[row]] for row in np.flatnonzero(~covered).tolist()}

    def _padded(self, p: int) -> np.ndarray:
        """The period's dense array with one more position in every grouping, holding no cell."""
        if p not in self._padded_dense:
            self._padded_dense[p] = np.pad(self.dense[p], [(0, 1)] * self.dense[p].ndim, constant_values=-1)
        return self._padded_dense[p]

    def _keep_counties(self, corners: np.ndarray) -> np.ndarray:
        """For each box: one within one county keeps every county total; one across counties
        changes each county total it touches, so every one of them must be hidden in the
        county table."""
        if self.county_shown is None or "municipality" not in self.by:
            return np.ones(corners.shape[:-1], dtype=bool)
        county = self.county_of[np.maximum(corners, 0)]
        within = (county == county[..., :1]).all(axis=-1)
        hidden_totals = ~np.where(corners >= 0, self.county_shown[np.maximum(corners, 0)], True).any(axis=-1)
        keeps: np.ndarray = within | hidden_totals
        return keeps


def _order(value: object) -> tuple[bool, str]:
    return (value is not None, str(value))
