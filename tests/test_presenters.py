"""Presenters: small literal frames in, the table a user reads out."""

from __future__ import annotations

import polars as pl

from dashboard.presenters import audit_detail_text, usual_volume_table


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
        ("c", "8", "..", "—"),  # hidden: marked as such, with the legend's meaning
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


def test_an_audit_rows_details_read_as_words_and_a_strange_stored_value_as_it_is():
    page_view = '{"from": "2026-11-01", "municipalities": ["091", "853"], "to": "2026-11-30"}'
    assert audit_detail_text(page_view, "fi") == "1.11.2026–30.11.2026 · Kunnat: 091, 853"
    assert audit_detail_text(page_view, "en") == "1 Nov 2026–30 Nov 2026 · Municipalities: 091, 853"
    assert audit_detail_text('{"deleted": 3, "before": "2025-10-27"}', "sv") == "Raderade rader: 3 · Före dagen: 2025-10-27"
    assert audit_detail_text('{"signed_in_at": 1796133600}', "fi").startswith("Kirjautumisaika: ")
    assert "1796133600" not in audit_detail_text('{"signed_in_at": 1796133600}', "fi")
    for stored in ("not json", "[1, 2]", '{"from": "eilen", "to": "tänään"}', '{"x": {"y": 1}}', "", None):
        assert isinstance(audit_detail_text(stored, "fi"), str)
    assert audit_detail_text("not json", "fi") == "not json"
    assert audit_detail_text('{"from": "eilen", "to": "tänään"}', "fi") == "eilen–tänään"


def test_a_name_from_the_identity_provider_is_shown_as_written_not_as_markdown():
    import re

    from dashboard.formatting import plain

    hostile = "**Iso** [klikkaa](javascript:alert(1)) $x$ <b>a</b> anna@example.fi \\"
    escaped = plain(hostile)
    assert re.sub(r"\\(.)", r"\1", escaped).replace("\u2060", "") == hostile, "nothing lost but invisible word joiners"
    assert not re.search(r"(?<!\\)[*\[\]()$<>@]", escaped), "every markup character escaped"


def test_a_comparison_period_lies_over_the_period_weekday_over_weekday_and_month_over_month():
    import datetime as dt

    from data_access.periods import align_bucket

    # 30 days back: a Monday lands on a Monday (4 weeks on), not on the Saturday 30 days on.
    monday = dt.date(2026, 10, 5)
    moved = align_bucket(monday, "day", source=dt.date(2026, 10, 4), target=dt.date(2026, 11, 3))
    assert moved.weekday() == 0 and moved == dt.date(2026, 11, 2)
    # A year back by days: 52 weeks, the same weekday.
    assert align_bucket(dt.date(2025, 12, 1), "day", source=dt.date(2025, 12, 1), target=dt.date(2026, 12, 1)) == dt.date(2026, 11, 30)
    assert align_bucket(dt.date(2025, 11, 1), "month", source=dt.date(2025, 11, 1), target=dt.date(2026, 2, 1)) == dt.date(2026, 2, 1)
    assert align_bucket(dt.date(2025, 12, 1), "month", source=dt.date(2025, 11, 1), target=dt.date(2026, 2, 1)) == dt.date(2026, 3, 1)
    assert align_bucket(dt.date(2026, 10, 12), "week", source=dt.date(2026, 10, 5), target=dt.date(2026, 11, 2)) == dt.date(2026, 11, 9)


def test_the_comparison_series_keeps_its_values_on_the_periods_axis_without_a_band_or_days_outside():
    import datetime as dt

    from dashboard.presenters import with_comparison
    from data_access.metrics import Filters

    now = Filters(start=dt.date(2026, 11, 3), end=dt.date(2026, 12, 2))
    before = Filters(start=dt.date(2026, 10, 4), end=dt.date(2026, 11, 2))

    def frame(start: dt.date, values: list[float]) -> pl.DataFrame:
        days = [start + dt.timedelta(days=i) for i in range(len(values))]
        return pl.DataFrame({"Päivä": days, "Osuus": values, "ci_low": [v - 0.1 for v in values], "ci_high": [v + 0.1 for v in values]})

    both, (column, period, compared) = with_comparison(
        frame(now.start, [0.5] * 30), frame(before.start, [0.1 * (i % 7) for i in range(30)]), grain="day", now=now, before=before, language="fi",
    )
    assert period == "3.11.2026–2.12.2026" and compared == "vertailujakso 4.10.2026–2.11.2026"
    earlier = both.filter(pl.col(column) == compared)
    assert earlier["Päivä"].min() >= now.start and earlier["Päivä"].max() <= now.end, "no point outside the period's axis"
    assert earlier.height == 28, "two days fell outside when moved by whole weeks"
    assert earlier["ci_low"].is_null().all(), "no band for the comparison"
    # Each comparison value sits on the same weekday it was measured on.
    for row in earlier.iter_rows(named=True):
        original = row["Päivä"] - dt.timedelta(weeks=4)
        assert row["Osuus"] == 0.1 * ((original - before.start).days % 7)


def test_quarters_are_whole_quarters_and_count_what_their_months_count():
    import datetime as dt

    from data_access.periods import whole_buckets

    assert whole_buckets(dt.date(2026, 1, 1), dt.date(2026, 12, 3), "quarter") == (dt.date(2026, 1, 1), dt.date(2026, 9, 30))
    assert whole_buckets(dt.date(2026, 2, 1), dt.date(2026, 12, 31), "quarter") == (dt.date(2026, 4, 1), dt.date(2026, 12, 31))
    assert whole_buckets(dt.date(2026, 11, 2), dt.date(2026, 12, 1), "quarter") is None
    assert whole_buckets(dt.date(2025, 10, 1), dt.date(2025, 12, 31), "quarter") == (dt.date(2025, 10, 1), dt.date(2025, 12, 31))


def test_the_explorers_top_groups_break_a_tie_by_the_groups_code_whatever_the_rows_order():
    from dashboard.explorer import top_groups

    frame = pl.DataFrame(
        {
            "municipality": ["005", "009", "010", "016", "018", "019", "020", "035"],
            "value": [40.0, 25.0, 25.0, 40.0, 25.0, 10.0, None, 25.0],
            "suppressed": [False, False, False, False, False, False, True, False],
        }
    )
    labels = {code: "sama nimi" for code in frame["municipality"]}  # equal labels too
    for seed in range(40):  # polars' group_by gives its groups in any order
        rows = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        assert top_groups(rows, "municipality", 3, "value", labels) == ["005", "016", "009"]
        assert top_groups(rows, "municipality", None, "value", labels) == ["005", "016", "009", "010", "018", "035", "019", "020"]
        assert top_groups(rows, "municipality", None, "label", labels) == ["005", "009", "010", "016", "018", "019", "020", "035"]
        assert top_groups(rows, "municipality", 3, "label", labels) == ["005", "009", "016"]


def test_the_explorers_unknown_group_is_a_row_of_its_own(engine, settings):
    """Contacts with no service line recorded are a group like any other: among the top
    groups and in the rows the explorer shows (is_in passed no null, so the group vanished)."""
    import datetime as dt

    from dashboard.explorer import among, top_groups
    from data_access.metrics import Filters, compute
    from tests.factories import add_contacts, make_store

    add_contacts(engine, [
        {"occurred_at": "2025-11-12T10:00:00", "municipality_code": "853", "service_line": line}
        for line, n in (("health", 30), (None, 12), ("social", 8)) for _ in range(n)
    ])
    store = make_store(engine, settings)
    result = compute(store, metrics=["contacts"], filters=Filters(start=dt.date(2025, 11, 1), end=dt.date(2025, 11, 30)), by=["service_line"])
    groups = top_groups(result, "service_line", 2, "value", {})
    assert groups == ["health", None]
    assert sorted(among(result, "service_line", groups)["value"].to_list()) == [12.0, 30.0]


def test_the_explorers_two_way_table_reads_a_pair_with_no_row_as_zero_or_no_figure():
    """Askola had no video contacts: the cell reads 0 for contacts and "—" for a share; the
    pivot left it empty and the page showed "None"."""
    from dashboard.explorer import cross_table

    table = pl.DataFrame({"Kunta": ["Askola", "Askola", "Halsua"], "Kanava": ["Puhelin", "Chat", "Video"], "Yhteydet": ["12", "<5", "7"]})
    counts = cross_table(table, "Kunta", "Kanava", "Yhteydet", "count", "fi")
    assert counts.filter(pl.col("Kunta") == "Askola")["Video"].item() == "0"
    assert counts.filter(pl.col("Kunta") == "Halsua")["Chat"].item() == "0"
    assert counts.filter(pl.col("Kunta") == "Askola")["Chat"].item() == "<5"
    shares = cross_table(table, "Kunta", "Kanava", "Yhteydet", "share", "fi")
    assert shares.filter(pl.col("Kunta") == "Askola")["Video"].item() == "—"
    assert None not in [v for c in counts.columns for v in counts[c].to_list()]
