"""Presenters: small literal frames in, the table a user reads out."""

from __future__ import annotations

import polars as pl

from dashboard.presenters import usual_volume_table


def _day(rows: list[tuple[str, float | None, bool]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"source_system": pl.String, "value": pl.Float64, "suppressed": pl.Boolean}, orient="row")
    return frame.with_columns(secondary=pl.lit(False))


def test_the_usual_counts_a_day_without_rows_as_zero_and_is_not_shown_with_a_hidden_day():
    today = _day([("a", 30.0, False), ("b", 12.0, False), ("c", 8.0, False), ("new", 7.0, False)])
    earlier = [
        _day([("a", 20.0, False), ("b", 10.0, False), ("c", 6.0, False)]),
        _day([("a", 20.0, False), ("c", None, True)]),  # b had no rows that day; c's count is hidden
        _day([("a", 20.0, False), ("b", 10.0, False), ("c", 6.0, False)]),
        _day([("a", 20.0, False), ("b", 10.0, False), ("c", 6.0, False)]),
    ]
    table = usual_volume_table(today, earlier, language="fi", threshold=5)
    assert table.rows() == [
        ("a", "30", "20,0", "150\u00a0%"),
        ("b", "12", "7,5", "160\u00a0%"),  # (10 + 0 + 10 + 10) / 4, not 10
        ("c", "8", "—", "—"),
        ("new", "7", "0,0", "—"),  # no rows on any earlier day
    ]


def test_one_change_definition_for_cards_and_tables():
    from dashboard.presenters import change_text

    nbsp = "\u00a0"
    assert change_text(0.52, 0.487, unit="share", language="fi") == f"+3,3{nbsp}%-yks."
    assert change_text(110, 100, unit="count", language="fi") == f"+10,0{nbsp}%"
    assert change_text(90, 100, unit="per_1000", language="en") == f"-10.0{nbsp}%"
    assert change_text(95, 100, unit="seconds", language="fi").startswith("-5")
    assert change_text(5, 0, unit="count", language="fi") is None  # no per cent of nothing
    assert change_text(None, 0.4, unit="share", language="fi") is None  # hidden or missing
    assert change_text(0.5, 0.5, unit="share", language="fi", zero_as_none=True) is None  # a card shows no arrow
    assert change_text(0.5, 0.5, unit="share", language="fi") == f"0,0{nbsp}%-yks."
