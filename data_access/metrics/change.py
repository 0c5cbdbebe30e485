"""Before and after a change (a pilot's start): the difference of a figure between two
periods and its 95 % interval, defined once for the dashboard and the CLI.

- A share: the difference in proportions with Newcombe's hybrid score interval (his method 10),
  made of the two periods' own Wilson intervals, which the registry already gives; it stays
  within -1..1 and behaves with small counts and shares near 0 or 1, where the Wald interval
  does not (Newcombe 1998, Statistics in Medicine 17:873-890).
- A daily volume (contacts a day): the difference of the means with Welch's interval from the
  spread of the weeks' daily averages, so week-to-week variation widens it as it should (a
  Poisson interval, blind to it, would be several times too narrow) while the weekly rhythm,
  whole in every week, does not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Sequence

from data_access.metrics.types import Z95


@dataclasses.dataclass(frozen=True)
class Difference:
    before: float
    after: float
    difference: float
    low: float
    high: float


def share_difference(before: tuple[float, float, float], after: tuple[float, float, float]) -> Difference:
    """``after - before`` of two shares, each given as (value, Wilson low, Wilson high)."""
    p1, low1, high1 = before
    p2, low2, high2 = after
    difference = p2 - p1
    return Difference(
        before=p1, after=p2, difference=difference,
        low=difference - math.sqrt((p2 - low2) ** 2 + (high1 - p1) ** 2),
        high=difference + math.sqrt((high2 - p2) ** 2 + (p1 - low1) ** 2),
    )


def _t_quantile(df: float, z: float = Z95) -> float:
    """Student's t at the 97.5th percentile for ``df`` degrees of freedom, from the normal
    one (Cornish-Fisher expansion: 2.225 for the table's 2.228 at 10 degrees of freedom, 2.547
    for 2.571 at 5; a week on each side gives about 6 and more)."""
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_difference(before: Sequence[float], after: Sequence[float]) -> Difference | None:
    """``after - before`` of the means of two samples (the weeks' daily averages) with Welch's
    95 % interval; None with fewer than two on either side."""
    if len(before) < 2 or len(after) < 2:
        return None
    m1, m2 = sum(before) / len(before), sum(after) / len(after)
    v1 = sum((x - m1) ** 2 for x in before) / (len(before) - 1) / len(before)
    v2 = sum((x - m2) ** 2 for x in after) / (len(after) - 1) / len(after)
    error = math.sqrt(v1 + v2)
    if error == 0:
        return Difference(m1, m2, m2 - m1, m2 - m1, m2 - m1)
    df = (v1 + v2) ** 2 / ((v1**2 / (len(before) - 1) if v1 else 0) + (v2**2 / (len(after) - 1) if v2 else 0))
    half = _t_quantile(df) * error
    return Difference(m1, m2, m2 - m1, m2 - m1 - half, m2 - m1 + half)


def before_after_periods(start: dt.date, *, weeks: int, today: dt.date) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]] | None:
    """The periods to compare around a change on ``start``: as many whole weeks after it as
    have passed (at most ``weeks``, to yesterday) and as many just before it, so both hold
    each weekday equally often. None before a whole week has passed."""
    passed = (today - start).days // 7
    length = min(weeks, passed)
    if length < 1:
        return None
    after = (start, start + dt.timedelta(weeks=length, days=-1))
    before = (start - dt.timedelta(weeks=length), start - dt.timedelta(days=1))
    return before, after
