"""Before and after a change: the differences and their intervals, against published values."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from data_access.metrics.change import before_after_periods, mean_difference, share_difference
from data_access.metrics.computation import wilson_interval


def _share(successes: int, trials: int) -> tuple[float, float, float]:
    low, high = wilson_interval(np.array([float(successes)]), np.array([float(trials)]))
    return successes / trials, float(low[0]), float(high[0])


def test_the_share_difference_has_newcombes_interval_as_he_published_it():
    """Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 against 48/80,
    method 10 gives 0.0524 to 0.3339."""
    difference = share_difference(_share(48, 80), _share(56, 70))
    assert difference.difference == pytest.approx(0.2)
    assert (round(difference.low, 4), round(difference.high, 4)) == (0.0524, 0.3339)


def test_the_share_difference_interval_stays_within_what_is_possible_at_the_edges():
    difference = share_difference(_share(0, 10), _share(10, 10))
    assert difference.difference == 1.0 and -1.0 <= difference.low < 1.0 and difference.high <= 1.0 + 1e-12
    same = share_difference(_share(5, 10), _share(5, 10))
    assert same.low < 0 < same.high


def test_the_daily_mean_difference_is_welchs_interval():
    """Two groups of four: difference 4, standard error sqrt(5/6), 6 degrees of freedom
    (t 2.447 in the table)."""
    difference = mean_difference([1, 2, 3, 4], [5, 6, 7, 8])
    assert difference is not None and difference.difference == 4
    half = 2.447 * (5 / 6) ** 0.5
    assert difference.low == pytest.approx(4 - half, abs=0.02) and difference.high == pytest.approx(4 + half, abs=0.02)
    assert mean_difference([3], [1, 2]) is None, "one day has no spread"
    steady = mean_difference([5, 5], [7, 7])
    assert steady is not None and (steady.low, steady.high) == (2, 2)


@pytest.mark.parametrize(
    ("start", "today", "expected"),
    [
        (dt.date(2026, 10, 5), dt.date(2026, 12, 3), ((dt.date(2026, 8, 10), dt.date(2026, 10, 4)), (dt.date(2026, 10, 5), dt.date(2026, 11, 29)))),
        # three whole weeks passed: three on each side, not eight
        (dt.date(2026, 11, 10), dt.date(2026, 12, 3), ((dt.date(2026, 10, 20), dt.date(2026, 11, 9)), (dt.date(2026, 11, 10), dt.date(2026, 11, 30)))),
        (dt.date(2026, 11, 30), dt.date(2026, 12, 3), None),
        (dt.date(2027, 1, 1), dt.date(2026, 12, 3), None),
    ],
)
def test_the_periods_are_as_many_whole_weeks_on_each_side_as_have_passed(start, today, expected):
    assert before_after_periods(start, weeks=8, today=today) == expected


def test_the_weekly_rhythm_is_not_counted_as_chance_and_a_hidden_day_gives_no_interval():
    import polars as pl

    from dashboard.before_after import _weekly

    days = [dt.date(2026, 11, 2) + dt.timedelta(days=i) for i in range(14)]
    week = [100.0, 110.0, 100.0, 90.0, 80.0, 20.0, 10.0]
    rows = pl.DataFrame({"period": [0] * 14, "day": days, "value": week * 2, "suppressed": [False] * 14})
    averages = _weekly(rows.filter(pl.col("day") != days[6]), 0, days)  # a Sunday without rows counts as zero
    assert averages == [sum(week[:6]) / 7, sum(week) / 7]
    steady = mean_difference(_weekly(rows, 0, days), _weekly(rows, 0, days))
    assert steady is not None and steady.low == steady.high == 0, "the same weeks: no spread, whatever the weekdays"
    hidden = rows.with_columns(suppressed=pl.col("day") == days[5])
    assert _weekly(hidden, 0, days) is None
