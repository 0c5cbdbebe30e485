"""Linked tables: no hidden small count follows from every table one user can get together.

The attacker here is written apart from the product's audit (data_access/metrics/linked.py):
an integer program (HiGHS, as a mixed-integer model) over a table's hidden cells, given every
shown cell, every margin total that is not itself small (the one-way tables, the counties
above the municipalities, the whole area) and what the marks mean: "<5" is 1..4, and a ".."
is 0 or at least 5 unless it is a small count left unmarked (then 0 or more). For each hidden
small count it finds the lowest and highest whole value; one value is a disclosure."""

from __future__ import annotations

import datetime as dt
import itertools

import highspy
import numpy as np
import polars as pl
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from data_access.metrics import Filters, compute, linked
from data_access.metrics.cells import GroupKeys
from data_access.metrics.disclosure import protect_count, small
from tests.factories import add_contacts, make_store

THRESHOLD = 5


def attack(values: np.ndarray, hidden: np.ndarray, unmarked: np.ndarray, totals: list[tuple[np.ndarray, float]]) -> dict[int, tuple[int, int]]:
    """Each hidden small count's (lowest, highest) whole value, from the shown cells and
    ``totals``: (the cells a total adds up, its value)."""
    unknown = np.flatnonzero(hidden)
    position = {int(c): i for i, c in enumerate(unknown)}
    found = {}
    for target in unknown.tolist():
        if not 1 <= values[target] < THRESHOLD or unmarked[target]:
            continue
        bounds = []
        for sense in (1, -1):
            h = highspy.Highs()
            h.silent()
            x = []
            for cell in unknown.tolist():
                if 1 <= values[cell] < THRESHOLD and not unmarked[cell]:
                    x.append(h.addVariable(lb=1, ub=THRESHOLD - 1, type=highspy.HighsVarType.kInteger))
                elif unmarked[cell]:
                    x.append(h.addVariable(lb=0, ub=highspy.kHighsInf, type=highspy.HighsVarType.kInteger))
                else:  # 0 or at least the threshold
                    var = h.addVariable(lb=0, ub=10_000, type=highspy.HighsVarType.kInteger)
                    on = h.addVariable(lb=0, ub=1, type=highspy.HighsVarType.kInteger)
                    h.addConstr(var >= THRESHOLD * on)
                    h.addConstr(var <= 10_000 * on)
                    x.append(var)
            for cells, total in totals:
                inside = [position[c] for c in cells.tolist() if c in position]
                if not inside:
                    continue
                rest = total - values[[c for c in cells.tolist() if c not in position]].sum()
                h.addConstr(sum(x[i] for i in inside) == rest)
            if sense == 1:
                h.minimize(x[position[target]])
            else:
                h.maximize(x[position[target]])
            bounds.append(round(h.getInfo().objective_function_value))
        found[target] = (bounds[0], bounds[1])
    return found


def _table(counts: list[int], rows: int, columns: int, county_of_row: list[str]) -> tuple[np.ndarray, GroupKeys]:
    grid = list(itertools.product(range(rows), range(columns)))
    frame = pl.DataFrame({"municipality": [f"m{r}" for r, _ in grid], "channel": [f"c{c}" for _, c in grid]})
    counties = {f"m{r}": county_of_row[r] for r in range(rows)}
    keys = GroupKeys(frame, ["municipality", "channel"], period=np.zeros(len(grid), dtype=np.int64), counties=counties)
    return np.array(counts, dtype=float), keys


def _margins(values: np.ndarray, keys: GroupKeys) -> list[tuple[np.ndarray, float]]:
    """Every margin's shown totals, as the product shows them: each margin is a table of its
    own (the one-way tables, the counties by channel, the counties, the whole area), protected
    by the same rules; its shown cells are known."""
    frame = keys.frame.with_columns(pl.col("municipality").replace_strict(keys.counties).alias("region"))
    out = []
    for columns in (["municipality"], ["channel"], ["region", "channel"], ["region"], []):
        groups = frame.select(pl.struct(columns).rank("dense")).to_series().to_numpy() - 1 if columns else np.zeros(len(values), dtype=np.int64)
        size = int(groups.max()) + 1
        totals = np.bincount(groups, weights=values, minlength=size)
        first = np.unique(groups, return_index=True)[1]
        margin_keys = GroupKeys(
            frame[first].select(columns), columns, period=np.zeros(size, dtype=np.int64),
            counties=keys.counties if "municipality" in columns else None,
        )
        hidden, _ = protect_count(totals.copy(), margin_keys, threshold=THRESHOLD)
        out.extend((np.flatnonzero(groups == group), float(totals[group])) for group in range(size) if not hidden[group])
    return out


small_heavy = st.one_of(st.integers(0, 6), st.integers(0, 30))


@hsettings(max_examples=300, deadline=None)
@given(st.integers(2, 4), st.integers(2, 4), st.data())
def test_no_hidden_small_count_of_a_two_way_table_follows_from_its_margins_and_counties(rows, columns, data):
    counts = data.draw(st.lists(small_heavy, min_size=rows * columns, max_size=rows * columns))
    county_of_row = data.draw(st.lists(st.sampled_from(["A", "B"]), min_size=rows, max_size=rows))
    values, keys = _table(counts, rows, columns, county_of_row)
    hidden, unmarked = protect_count(values, keys, threshold=THRESHOLD)
    assert (hidden >= ((values >= 1) & (values < THRESHOLD))).all()
    for cell, (low, high) in attack(values, hidden, unmarked, _margins(values, keys)).items():
        assert high > low, f"cell {cell} (true {values[cell]:.0f}) is {low} whatever else is hidden: {values.reshape(rows, columns)}"


def _days(counts: list[int], first: dt.date) -> tuple[np.ndarray, GroupKeys]:
    days = [first + dt.timedelta(days=k) for k in range(len(counts))]
    return np.array(counts, dtype=float), GroupKeys(pl.DataFrame({"day": days}), ["day"], period=np.zeros(len(days), dtype=np.int64))


def _calendar_totals(values: np.ndarray, keys: GroupKeys) -> list[tuple[np.ndarray, float]]:
    """The totals one can get beside a daily table: by week, by month and the whole period,
    each protected as its own table (a small one is hidden there too)."""
    days = keys.frame["day"].to_list()
    out = []
    for of in (lambda d: d - dt.timedelta(days=d.weekday()), lambda d: (d.year, d.month), lambda d: None):
        labels = [of(d) for d in days]
        groups = {label: np.flatnonzero([x == label for x in labels]) for label in dict.fromkeys(labels)}
        totals = np.array([values[cells].sum() for cells in groups.values()])
        if len(groups) > 1:
            margin = GroupKeys(pl.DataFrame({"week": list(range(len(groups)))}), ["week"], period=np.zeros(len(groups), dtype=np.int64))
            hidden, _ = protect_count(totals.copy(), margin, threshold=THRESHOLD)
        else:
            hidden = (totals >= 1) & (totals < THRESHOLD)
        out.extend((cells, float(total)) for cells, total, off in zip(groups.values(), totals, hidden, strict=True) if not off)
    return out


@hsettings(max_examples=200, deadline=None)
@given(st.integers(8, 24), st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)), st.data())
def test_no_hidden_small_day_follows_from_the_weeks_months_and_the_whole_period(length, first, data):
    """A daily trend beside the same figures by week and by month: a hidden small day may be
    worked out from neither (its box partner is a day of the same week and month)."""
    values, keys = _days(data.draw(st.lists(small_heavy, min_size=length, max_size=length)), first)
    hidden, unmarked = protect_count(values, keys, threshold=THRESHOLD)
    assert (hidden >= ((values >= 1) & (values < THRESHOLD))).all()
    for cell, (low, high) in attack(values, hidden, unmarked, _calendar_totals(values, keys)).items():
        assert high > low, f"day {cell} (true {values[cell]:.0f}) is {low}: {values.tolist()} from {first}"


@hsettings(max_examples=200, deadline=None)
@given(st.integers(2, 60), st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)), st.data())
def test_a_daily_table_gets_the_same_cells_hidden_by_its_pairs_as_by_the_general_boxes(length, first, data):
    """linked._protect_days, the pairs of a table by day alone, hides and unmarks exactly what
    the general boxes (_protect_grid) would: it is only faster."""
    values, keys = _days(data.draw(st.lists(small_heavy, min_size=length, max_size=length)), first)
    start = small(values, threshold=THRESHOLD)
    order = linked.small_counts(values, start, ["day"], keys.period, keys.rank, threshold=THRESHOLD)
    results = []
    for way in ("days", "grid"):
        hidden, unmarked = start | (values == THRESHOLD + 3), np.zeros(length, dtype=bool)
        if way == "days":
            linked._protect_days(values, hidden, keys.frame["day"].to_list(), keys.period, keys.rank, order, threshold=THRESHOLD, unmarked=unmarked)
        else:
            grid = linked._Grid(values, keys.frame, ["day"], keys.period, {}, None)
            linked._protect_grid(grid, hidden, keys.rank, order, threshold=THRESHOLD, unmarked=unmarked)
        results.append((hidden.tolist(), unmarked.tolist()))
    assert results[0] == results[1]


def _contacts(municipality: str, channel: str, n: int) -> list[dict]:
    return [{"occurred_at": "2025-11-12T10:00:00", "municipality_code": municipality, "channel": channel} for _ in range(n)]


NOVEMBER = Filters(start=dt.date(2025, 11, 1), end=dt.date(2025, 11, 30))


def test_the_explorers_two_way_table_and_its_one_way_tables_do_not_give_back_a_hidden_count(engine, settings):
    """The attacks of issue 38 on the product itself: contacts by municipality and channel,
    by municipality, by channel, by county and channel, by county: each as the one exit
    answers it, every shown figure known to the attacker. Before the audit, Keski-Pohjanmaa's
    total (6) less Kannus's row (5) gave Halsua's one e-message; now it could be at least two
    values."""
    # Askola (Itä-Uusimaa) and Halsua, Kannus (Keski-Pohjanmaa)
    data = {
        ("018", "home_visit"): 2, ("018", "phone"): 22,
        ("074", "e_message"): 1,
        ("217", "home_visit"): 3, ("217", "phone"): 2,
    }
    add_contacts(engine, [row for (m, c), n in data.items() for row in _contacts(m, c, n)])
    store = make_store(engine, settings)
    scope = ("018", "074", "217")
    filters = Filters(start=NOVEMBER.start, end=NOVEMBER.end, municipalities=scope)
    table = compute(store, metrics=["contacts"], filters=filters, by=["municipality", "channel"])
    table = table.filter(pl.col("channel").is_in(["e_message", "home_visit", "phone"]))
    cells = list(zip(table["municipality"].to_list(), table["channel"].to_list(), strict=True))
    values = np.array([data.get(cell, 0) for cell in cells], dtype=float)
    hidden = table["suppressed"].to_numpy()
    unmarked = hidden & table["secondary"].to_numpy() & (values >= 1) & (values < THRESHOLD)
    assert hidden[cells.index(("074", "e_message"))]
    county = {"018": "01", "074": "18", "217": "18"}
    totals = []
    for by in (["municipality"], ["channel"], ["region", "channel"], ["region"], []):
        shown = compute(store, metrics=["contacts"], filters=filters, by=by).filter(~pl.col("suppressed"))
        for row in shown.iter_rows(named=True):
            members = [
                i for i, (m, c) in enumerate(cells)
                if ("municipality" not in by or row["municipality"] == m) and ("channel" not in by or row["channel"] == c)
                and ("region" not in by or row["region"] == county[m])
            ]
            if "channel" in by and row["channel"] not in ("e_message", "home_visit", "phone"):
                continue
            totals.append((np.array(members), float(row["value"])))
    for cell, (low, high) in attack(values, hidden, unmarked, totals).items():
        assert high > low, f"{cells[cell]} is {low}"
