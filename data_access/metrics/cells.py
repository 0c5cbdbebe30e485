"""A result's grid while it is finished: its groups (``GroupKeys``) and one metric's figures
over them (``Cells``), as numpy arrays. Shared by computation and disclosure control."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from data_access.metrics.types import Metric


class GroupKeys:
    """The result's groups, and what disclosure control needs of them: the lines each row
    belongs to and the rows' order."""

    def __init__(self, groups: pl.DataFrame, by: list[str], *, period: np.ndarray, counties: dict[str, str] | None = None) -> None:
        # A frame of no columns has no height: the period index (0 with one period) has one.
        self.frame, self.by, self.period, self.height = groups, by, period, len(period)
        # Each municipality's county: a table by municipality has its counties' totals beside it.
        self.counties = counties or {}
        self._lines: list[np.ndarray] | None = None
        self._rank: np.ndarray | None = None
        # The cells disclosure control hides of each count it was given over these groups: the
        # metrics of one result often imply the same count (contacts, and contacts per 1 000).
        self.protected: dict[tuple[bytes, int, bool], tuple[np.ndarray, np.ndarray]] = {}

    @property
    def lines(self) -> list[np.ndarray]:
        """For each grouping, 0, 1, ... for each row's line along it: the rows of one period
        that share every other grouping. A line's total is public (another chart or a card
        shows it), so disclosure control looks at each line."""
        if self._lines is None:
            lines = []
            for free in range(len(self.by)):
                fixed = [d for i, d in enumerate(self.by) if i != free]
                if fixed:
                    within = self.frame.select(pl.struct(fixed).rank("dense")).to_series().to_numpy().astype(np.int64) - 1
                else:
                    within = np.zeros(self.height, dtype=np.int64)
                lines.append(np.unique(self.period * (within.max(initial=0) + 1) + within, return_inverse=True)[1].astype(np.int64))
            self._lines = lines
        return self._lines

    @property
    def along_last(self) -> np.ndarray:
        """Each row's line along the last grouping (a share of the whole is of that line's
        total); with no grouping, its period."""
        return self.lines[-1] if self.by else np.unique(self.period, return_inverse=True)[1].astype(np.int64)

    @property
    def rank(self) -> np.ndarray:
        """Each row's place in the order of its groups (nulls first): equal counts are told
        apart by it, so the same cell is chosen every time."""
        if self._rank is None:
            if not self.by:
                self._rank = np.zeros(self.height, dtype=np.int64)
            else:
                self._rank = self.frame.select(pl.struct(self.by).rank("ordinal")).to_series().to_numpy().astype(np.int64)
        return self._rank


@dataclass
class Cells:
    """One metric's figures over the result's groups, as float arrays with NaN for none."""

    metric: Metric
    keys: GroupKeys
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    note: list[str | None]
    suppressed: np.ndarray | None = None
    secondary: np.ndarray | None = None
    # The people a figure is about when its counts are not people (the contacts of
    # multi-service clients): protected like any count the figure implies.
    people: np.ndarray | None = None
    # Counts a figure is made of besides its numerator and denominator (NPS: promoters,
    # passives and detractors): protected like any count the figure implies.
    parts: list[np.ndarray] | None = None
