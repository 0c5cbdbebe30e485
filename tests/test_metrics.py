"""Metric definitions against small hand-computed cases, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from data_access.metrics import (
    REGISTRY,
    Filters,
    MetricError,
    Scope,
    compute,
    wilson_interval,
)
from tests.factories import add_contacts, add_feedback, add_referrals, make_store

MARCH = Filters(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31))


def _value(result: pl.DataFrame, metric: str, **where) -> dict:
    frame = result.filter(pl.col("metric") == metric)
    for column, value in where.items():
        frame = frame.filter(pl.col(column) == value)
    assert frame.height == 1, frame
    return frame.row(0, named=True)


def test_first_contact_resolution_ignores_unknown_values(engine, settings):
    flags = [True] * 12 + [False] * 8 + [None] * 3
    add_contacts(engine, [{"occurred_at": "2025-03-10T08:00:00", "resolved_first_contact": f} for f in flags])
    result = compute(make_store(engine, settings), metrics=["first_contact_resolution", "contacts"], filters=MARCH)
    fcr = _value(result, "first_contact_resolution")
    assert (fcr["numerator"], fcr["denominator"], fcr["value"]) == (12, 20, 0.6)
    # 95 % Wilson interval of 12/20, from the closed formula.
    assert fcr["ci_low"] == pytest.approx(0.386582, abs=1e-6)
    assert fcr["ci_high"] == pytest.approx(0.781193, abs=1e-6)
    assert _value(result, "contacts")["value"] == 23


def test_electronic_share_uses_the_configured_group(engine, settings):
    channels = ["chat"] * 5 + ["video"] + ["phone"] * 6 + ["walk_in"] * 2
    add_contacts(engine, [{"occurred_at": "2025-03-11T09:00:00", "channel": c} for c in channels])
    store = make_store(engine, settings)
    share = _value(compute(store, metrics=["electronic_share"], filters=MARCH), "electronic_share")
    assert share["numerator"] == 6 and share["denominator"] == 14
    assert share["value"] == pytest.approx(6 / 14)

    narrow = settings.model_copy(update={"electronic_channels": ("chat",)})
    narrow_store = make_store(engine, narrow)
    assert _value(compute(narrow_store, metrics=["electronic_share"], filters=MARCH), "electronic_share")["numerator"] == 5


def test_per_1000_uses_latest_earlier_population_and_dash_when_missing(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-12T10:00:00", "municipality_code": "853"} for _ in range(13)])
    add_contacts(engine, [{"occurred_at": "2025-03-12T10:00:00", "municipality_code": "018"} for _ in range(7)])
    store = make_store(engine, settings)
    result = compute(store, metrics=["contacts_per_1000"], filters=MARCH, by=["municipality"])
    expected = pl.DataFrame(
        {
            "municipality": ["018", "853"],
            "value": [None, 13 / 206_073 * 1000],  # Turku 2024 population used for 2025
            "note": ["population_missing", None],
        }
    )
    shown = result.filter(pl.col("municipality").is_in(["018", "853"])).sort("municipality")
    assert_frame_equal(shown.select("municipality", "value", "note"), expected)
    # Municipalities without contacts are listed with a true zero, not left out.
    assert result.height == 74
    assert result.filter(pl.col("municipality") == "272")["value"].item() == 0

    # No population for 2023 or earlier: no rate, and the reason says why.
    early = Filters(start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 31), municipalities=("853",))
    add_contacts(engine, [{"occurred_at": "2023-05-02T10:00:00"} for _ in range(6)])
    store.refresh()
    record = _value(compute(store, metrics=["contacts_per_1000"], filters=early), "contacts_per_1000")
    assert record["value"] is None and record["note"] == "population_missing"


def test_whole_area_rate_is_missing_when_any_municipality_lacks_population(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-12T10:00:00", "municipality_code": "853"} for _ in range(10)])
    store = make_store(engine, settings)
    everything = _value(compute(store, metrics=["contacts_per_1000"], filters=MARCH), "contacts_per_1000")
    assert everything["value"] is None  # Askola and others have no verified population
    only_turku = Filters(start=MARCH.start, end=MARCH.end, municipalities=("853",))
    assert _value(compute(store, metrics=["contacts_per_1000"], filters=only_turku), "contacts_per_1000")["value"] == pytest.approx(
        10 / 206_073 * 1000
    )


def test_small_counts_are_suppressed_with_their_rates(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-13T10:00:00", "municipality_code": "421", "resolved_first_contact": True} for _ in range(3)])
    add_contacts(engine, [{"occurred_at": "2025-03-13T10:00:00", "municipality_code": "853", "resolved_first_contact": True} for _ in range(9)])
    result = compute(
        make_store(engine, settings), metrics=["contacts", "first_contact_resolution", "contacts_per_1000"],
        filters=MARCH, by=["municipality"],
    )
    small = result.filter(pl.col("municipality") == "421")
    assert small["suppressed"].to_list() == [True, True, True]
    assert small["value"].to_list() == [None, None, None]
    assert small["numerator"].to_list() == [None, None, None]
    # With one suppressed count in the breakdown, the next count (Turku's 9) is hidden too, or
    # the 3 could be recovered from the total; so is its rate per 1,000 (rate x population =
    # count) and its resolution share (9 of 9: the whole area's 12 of 12 would give 3 of 3).
    # Hidden only to protect another, each says so.
    turku = result.filter(pl.col("municipality") == "853").sort("metric")
    assert turku["metric"].to_list() == ["contacts", "contacts_per_1000", "first_contact_resolution"]
    assert turku["suppressed"].to_list() == [True, True, True]
    assert turku["secondary"].to_list() == [True, True, True]
    assert small["secondary"].to_list() == [False, False, False]


def test_secondary_suppression_hides_a_second_cell(engine, settings):
    rows = [("phone", 8), ("chat", 6), ("video", 2), ("walk_in", 12)]
    add_contacts(engine, [{"occurred_at": "2025-03-14T10:00:00", "channel": c} for c, n in rows for _ in range(n)])
    result = compute(make_store(engine, settings), metrics=["contacts"], filters=MARCH, by=["channel"])
    expected = pl.DataFrame(
        {
            "channel": ["chat", "phone", "video", "walk_in"],
            "value": [None, 8.0, None, 12.0],
            "suppressed": [True, False, True, False],
        }
    )
    assert_frame_equal(result.sort("channel").select("channel", "value", "suppressed"), expected)


def test_secondary_suppression_picks_the_same_cell_every_time_on_equal_counts(engine, settings):
    rows = [("walk_in", 6), ("phone", 8), ("video", 2), ("chat", 6)]
    add_contacts(engine, [{"occurred_at": "2025-03-14T10:00:00", "channel": c} for c, n in rows for _ in range(n)])
    store = make_store(engine, settings)
    for _ in range(5):  # the grouping's row order varies from run to run; the choice must not
        result = compute(store, metrics=["contacts"], filters=MARCH, by=["channel"]).sort("channel")
        assert result.select("channel", "suppressed").rows() == [("chat", True), ("phone", False), ("video", True), ("walk_in", False)]


def test_threshold_setting_changes_what_is_suppressed(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-14T10:00:00"} for _ in range(4)])
    strict = make_store(engine, settings)
    assert _value(compute(strict, metrics=["contacts"], filters=MARCH), "contacts")["suppressed"] is True
    lenient = make_store(engine, settings.model_copy(update={"small_cell_threshold": 3}))
    assert _value(compute(lenient, metrics=["contacts"], filters=MARCH), "contacts")["value"] == 4


def test_scope_limits_what_a_user_can_see(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-15T10:00:00", "municipality_code": "853"} for _ in range(10)])
    add_contacts(engine, [{"occurred_at": "2025-03-15T10:00:00", "municipality_code": "272"} for _ in range(20)])
    store = make_store(engine, settings)
    kokkola_only = Scope(frozenset({"272"}))
    assert _value(compute(store, metrics=["contacts"], filters=MARCH, scope=kokkola_only), "contacts")["value"] == 20
    # Asking for a municipality outside the scope gives nothing, not the other municipality.
    outside = Filters(start=MARCH.start, end=MARCH.end, municipalities=("853",))
    assert _value(compute(store, metrics=["contacts"], filters=outside, scope=kokkola_only), "contacts")["value"] == 0


def test_verified_resolution_requires_no_recontact_within_seven_days(engine, settings):
    add_contacts(
        engine,
        [
            {"occurred_at": "2025-03-03T10:00:00", "client_id": "A", "resolved_first_contact": True},
            {"occurred_at": "2025-03-06T10:00:00", "client_id": "A", "resolved_first_contact": True},
            {"occurred_at": "2025-03-03T10:00:00", "client_id": "B", "resolved_first_contact": True},
            {"occurred_at": "2025-03-20T10:00:00", "client_id": "B", "resolved_first_contact": False},
            {"occurred_at": "2025-03-03T10:00:00", "client_id": None, "resolved_first_contact": True},
        ],
    )
    store = make_store(engine, settings)
    frame = (
        store.whole("contacts").with_columns(pl.col("client_id").cast(pl.String))
        .sort("client_id", "occurred_at")
        .select("client_id", "verified_resolved")
    )
    expected = pl.DataFrame(
        {"client_id": [None, "A", "A", "B", "B"], "verified_resolved": [None, False, True, True, False]}
    )
    assert_frame_equal(frame, expected)


def test_same_day_callback_and_queue_median(engine, settings):
    rows = [
        {"channel": "callback", "occurred_at": "2025-03-17T08:00:00", "callback_requested_at": "2025-03-17T08:00:00",
         "callback_done_at": "2025-03-17T12:00:00", "queue_seconds": 10},
        {"channel": "callback", "occurred_at": "2025-03-17T08:00:00", "callback_requested_at": "2025-03-17T08:00:00",
         "callback_done_at": "2025-03-17T21:30:00", "queue_seconds": 20},  # 23.30 local: same day
        {"channel": "callback", "occurred_at": "2025-03-17T08:00:00", "callback_requested_at": "2025-03-17T08:00:00",
         "callback_done_at": "2025-03-17T22:30:00", "queue_seconds": 30},  # 00.30 local next day
        {"channel": "callback", "occurred_at": "2025-03-17T08:00:00", "callback_requested_at": "2025-03-17T08:00:00",
         "callback_done_at": None, "queue_seconds": 40},
        {"channel": "callback", "occurred_at": "2025-03-17T08:00:00", "callback_requested_at": "2025-03-17T08:00:00",
         "callback_done_at": "2025-03-17T09:00:00", "queue_seconds": 50},
        {"channel": "walk_in", "occurred_at": "2025-03-17T08:00:00", "queue_seconds": 999},  # not a queued channel
    ]
    add_contacts(engine, rows * 3)  # thrice, so no count (nor 15 - 9) falls under the threshold
    result = compute(make_store(engine, settings), metrics=["same_day_callback_share", "queue_median_seconds"], filters=MARCH)
    callback = _value(result, "same_day_callback_share")
    assert (callback["numerator"], callback["denominator"]) == (9, 15)
    assert _value(result, "queue_median_seconds")["value"] == 30


def test_referral_destinations_and_no_referral_needed(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-18T08:00:00", "contact_id": f"k{i}"} for i in range(20)])
    destinations = ["tk_doctor"] * 10 + ["kela"] * 6 + ["none_needed"] * 5
    add_referrals(
        engine,
        [{"contact_id": f"k{i % 20}", "referred_at": "2025-03-18T09:00:00", "destination": d} for i, d in enumerate(destinations)],
    )
    result = compute(make_store(engine, settings), metrics=["referrals", "referral_share", "no_referral_needed"], filters=MARCH, by=["destination"])
    assert _value(result, "referrals", destination="tk_doctor")["value"] == 10
    assert _value(result, "referral_share", destination="kela")["value"] == pytest.approx(6 / 16)
    assert _value(result, "no_referral_needed", destination="none_needed")["value"] == 5
    assert result.filter((pl.col("metric") == "referrals") & (pl.col("destination") == "none_needed")).is_empty()


def test_service_start_within_care_guarantee_depends_on_date_and_age(engine, settings):
    contacts = [{"occurred_at": "2025-03-18T08:00:00", "contact_id": f"a{i}", "age_band": "18-64"} for i in range(5)]
    contacts += [{"occurred_at": "2025-03-18T08:00:00", "contact_id": f"y{i}", "age_band": "0-17"} for i in range(5)]
    add_contacts(engine, contacts)
    # 30 days to start: within 90 days for adults (2025 rule), over 14 days for under-23s.
    add_referrals(
        engine,
        [
            {"contact_id": c["contact_id"], "referred_at": "2025-03-18T09:00:00", "destination": "tk_doctor",
             "service_started_at": "2025-04-17T09:00:00", "status": "started"}
            for c in contacts
        ],
    )
    result = compute(make_store(engine, settings), metrics=["service_start_within_guarantee"], filters=MARCH, by=["age_band"])
    assert _value(result, "service_start_within_guarantee", age_band="18-64")["value"] == 1.0
    assert _value(result, "service_start_within_guarantee", age_band="0-17")["value"] == 0.0


def test_feedback_mean_and_nps(engine, settings):
    # 12 promoters, 5 passives, 6 detractors: each NPS count at least the threshold, and more
    # answers than a 0-10 mean needs (definitions.SCALE_MIN_ANSWERS).
    scores = [10] * 8 + [9] * 4 + [8] * 3 + [7] * 2 + [6] * 3 + [3] * 2 + [0]
    n = len(scores)
    add_feedback(engine, [{"answered_at": "2025-03-19T10:00:00", "recommend_score": s} for s in scores])
    result = compute(make_store(engine, settings), metrics=["recommend_mean", "nps"], filters=MARCH)
    mean = round(sum(scores) / n, 1)
    assert _value(result, "recommend_mean")["value"] == pytest.approx(mean)
    assert _value(result, "nps")["value"] == pytest.approx((12 - 6) / n * 100)
    # The intervals, computed here by hand: the mean's is Wilson's for mean / 10 with n answers
    # (from the shown mean and n alone); the NPS's from each answer scored +1 / 0 / -1.
    p, z = mean / 10, 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    low, high = _value(result, "recommend_mean")["ci_low"], _value(result, "recommend_mean")["ci_high"]
    assert (low, high) == (pytest.approx((centre - half) * 10, abs=1e-3), pytest.approx((centre + half) * 10, abs=1e-3))
    points = [1 if s >= 9 else -1 if s <= 6 else 0 for s in scores]
    var = sum(p * p for p in points) / n - (sum(points) / n) ** 2
    nps = _value(result, "nps")
    assert nps["ci_high"] - nps["value"] == pytest.approx(1.96 * (var / n) ** 0.5 * 100, abs=0.05)
    assert nps["denominator"] == n
    answers = compute(make_store(engine, settings), metrics=["feedback_answers"], filters=MARCH)
    assert _value(answers, "feedback_answers")["value"] == n


def test_a_0_10_mean_needs_enough_answers_and_nps_hides_a_small_group(engine, settings):
    """20 answers: the mean is hidden (its n is not small: the mark is ".."); one detractor
    among 20 hides the NPS, whose value, interval and n would give the 1 back. Its n of 20 is
    not small either, so its mark is ".." too: "(n<5)" beside 20 answers would be false."""
    add_feedback(engine, [{"answered_at": "2025-03-19T10:00:00", "recommend_score": s} for s in [10] * 12 + [8] * 7 + [2]])
    result = compute(make_store(engine, settings), metrics=["recommend_mean", "nps"], filters=MARCH)
    mean, nps = _value(result, "recommend_mean"), _value(result, "nps")
    assert mean["suppressed"] and mean["secondary"] and mean["value"] is None and mean["ci_low"] is None
    assert nps["suppressed"] and nps["value"] is None and nps["denominator"] is None and nps["ci_high"] is None
    assert nps["secondary"]


def test_feedback_figures_with_few_answers_are_hidden_with_their_intervals(engine, settings):
    add_feedback(engine, [{"answered_at": "2025-03-19T10:00:00", "recommend_score": s} for s in (10, 3, 9)])
    result = compute(make_store(engine, settings), metrics=["recommend_mean", "nps", "feedback_answers"], filters=MARCH)
    for key in ("recommend_mean", "nps", "feedback_answers"):
        row = _value(result, key)
        assert row["suppressed"] and row["value"] is None and row["ci_low"] is None and row["ci_high"] is None, (key, row)


def test_days_are_helsinki_local_days(engine, settings):
    # 22.30 UTC on 31 March is 01.30 on 1 April in Helsinki (summer time).
    add_contacts(engine, [{"occurred_at": "2025-03-31T22:30:00"} for _ in range(5)])
    store = make_store(engine, settings)
    april = Filters(start=dt.date(2025, 4, 1), end=dt.date(2025, 4, 1))
    assert _value(compute(store, metrics=["contacts"], filters=april), "contacts")["value"] == 5
    assert _value(compute(store, metrics=["contacts"], filters=MARCH), "contacts")["value"] == 0


def test_store_refresh_picks_up_new_rows_only_when_version_moves(engine, settings):
    add_contacts(engine, [{"occurred_at": "2025-03-20T10:00:00"} for _ in range(5)])
    store = make_store(engine, settings)
    assert store.refresh() is False
    add_contacts(engine, [{"occurred_at": "2025-03-20T11:00:00"} for _ in range(6)])
    assert store.refresh() is True
    assert _value(compute(store, metrics=["contacts"], filters=MARCH), "contacts")["value"] == 11


def test_unknown_metric_or_grouping_is_a_clear_error(engine, settings):
    store = make_store(engine, settings)
    with pytest.raises(MetricError, match="unknown metric"):
        compute(store, metrics=["nope"], filters=MARCH)
    with pytest.raises(MetricError, match="unknown grouping"):
        compute(store, metrics=["contacts"], filters=MARCH, by=["colour"])
    with pytest.raises(MetricError, match="cannot be grouped"):
        compute(store, metrics=["recommend_mean"], filters=MARCH, by=["destination"])


def test_wilson_interval_formula():
    low, high = wilson_interval(np.array([8.0, 0.0]), np.array([10.0, 5.0]))
    assert low.tolist() == pytest.approx([0.490162, 0.0], abs=1e-6)
    assert high.tolist() == pytest.approx([0.943318, 0.434482], abs=1e-6)


def test_every_metric_has_labels_and_definitions_in_three_languages():
    for metric in REGISTRY.values():
        for language in ("fi", "sv", "en"):
            assert metric.labels.get(language), (metric.key, language)
            assert metric.definitions.get(language), (metric.key, language)


def test_quiet_flag_follows_the_clock_not_the_data(engine, settings):
    from data_access.quality import source_freshness

    add_contacts(engine, [{"occurred_at": "2025-03-20T10:00:00", "source_system": "s1"}])
    store = make_store(engine, settings)
    soon = source_freshness(store, scope=Scope(), now=dt.datetime(2025, 3, 20, 10, 30, tzinfo=dt.UTC))
    later = source_freshness(store, scope=Scope(), now=dt.datetime(2025, 3, 20, 12, 0, tzinfo=dt.UTC))
    assert soon["quiet"].to_list() == [False] and later["quiet"].to_list() == [True]
    assert later["minutes"].to_list() == [120.0]


@hsettings(max_examples=200, deadline=None)
@given(start=st.dates(min_value=dt.date(2023, 1, 1), max_value=dt.date(2026, 12, 31)), days=st.integers(0, 400),
       grain=st.sampled_from(["week", "month"]))
def test_whole_buckets_are_the_whole_weeks_and_months_inside_the_period(start, days, grain):
    from data_access.periods import whole_buckets

    end = start + dt.timedelta(days=days)
    inside = [start + dt.timedelta(days=i) for i in range(days + 1)]
    if grain == "week":
        whole = [d for d in inside if d - dt.timedelta(days=d.weekday()) >= start and d + dt.timedelta(days=6 - d.weekday()) <= end]
    else:
        def month_end(d):
            return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        whole = [d for d in inside if d.replace(day=1) >= start and month_end(d) <= end]
    expected = (whole[0], whole[-1]) if whole else None
    assert whole_buckets(start, end, grain) == expected


def test_places_are_named_in_the_users_language(engine, settings):
    """Swedish names in Swedish, Finnish ones in Finnish and English, wherever a place is
    named: chart and table labels and the CSV export."""
    from dashboard.export import metrics_table
    from dashboard.presenters import label_for

    add_contacts(engine, [{"occurred_at": dt.datetime(2025, 3, 10, 9, tzinfo=dt.UTC), "municipality_code": "853"}] * 6)
    store = make_store(engine, settings)
    assert [label_for(store, "municipality", "853", language) for language in ("fi", "sv", "en")] == ["Turku", "Åbo", "Turku"]
    region = store.municipalities.filter(store.municipalities["municipality_code"] == "853")
    for language, column in (("fi", "region_name_fi"), ("sv", "region_name_sv")):
        assert label_for(store, "region", region["region_code"][0], language) == region[column][0]
    result = compute(store, metrics=["contacts"], filters=MARCH, by=["municipality"])
    exported = metrics_table(result.filter(result["municipality"] == "853"), by=["municipality"], store=store, language="sv")
    assert exported["municipality_name"].to_list() == ["Åbo"]


def test_a_callback_still_due_today_is_not_judged(engine, settings):
    from data_access.periods import local_now

    now = local_now().replace(second=0, microsecond=0)
    today, yesterday = now.date(), now.date() - dt.timedelta(days=1)
    early_today = dt.datetime.combine(today, dt.time(0, 5), tzinfo=now.tzinfo).astimezone(dt.UTC)
    early_yesterday = dt.datetime.combine(yesterday, dt.time(0, 5), tzinfo=now.tzinfo).astimezone(dt.UTC)
    done = [{"channel": "callback", "occurred_at": at, "callback_requested_at": at, "callback_done_at": at + dt.timedelta(minutes=30)}
            for at in (early_today, early_yesterday) for _ in range(6)]
    waiting = [{"channel": "callback", "occurred_at": at, "callback_requested_at": at, "callback_done_at": None}
               for at in (early_today, early_yesterday) for _ in range(5)]
    add_contacts(engine, done + waiting)
    store = make_store(engine, settings)
    on_day = {day: _value(compute(store, metrics=["same_day_callback_share"], filters=Filters(start=day, end=day)), "same_day_callback_share")
              for day in (today, yesterday)}
    assert (on_day[today]["numerator"], on_day[today]["denominator"]) == (6, 6)  # the 5 waiting are still due
    assert (on_day[yesterday]["numerator"], on_day[yesterday]["denominator"]) == (6, 11)  # yesterday's 5 were missed


@pytest.mark.parametrize("by", [(), ("municipality",), ("day", "channel"), ("month", "region"), ("weekday", "hour"), ("destination",)])
@pytest.mark.parametrize("several", [False, True])
def test_every_answer_has_its_requests_result_type(engine, settings, by, several):
    """The result type: the exit's answer to a request has exactly the columns and types the
    request promises, with rows and without (an empty period)."""
    from data_access.metrics.exit import answer
    from data_access.metrics.requests import MetricsRequest
    from tests.factories import add_referrals

    add_contacts(engine, [{"occurred_at": "2025-03-10T08:00:00", "resolved_first_contact": i % 2 == 0, "contact_id": f"k{i}"} for i in range(12)])
    add_referrals(engine, [{"contact_id": "k1", "referred_at": "2025-03-10T08:05:00", "destination": "kela"}])
    store = make_store(engine, settings)
    metrics = ["referrals"] if by == ("destination",) else ["contacts", "first_contact_resolution", "contact_share"]
    empty = Filters(start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 2))
    for filters in ((MARCH, empty) if several else MARCH, (empty,) if several else empty):
        request = MetricsRequest.of(metrics, filters, by=by)
        result = answer(store, request)
        assert dict(result.schema) == request.result_schema(), (by, several)


def test_a_quarter_counts_what_its_months_count_by_local_day(engine, settings):
    """Quarters are cut from the local (Helsinki) day: 31 March 23:30 UTC is 1 April there."""
    import datetime as dt

    times = ["2025-01-15T10:00:00"] * 6 + ["2025-03-31T20:00:00"] * 5 + ["2025-03-31T23:30:00"] * 7 + ["2025-05-02T10:00:00"] * 8
    add_contacts(engine, [{"occurred_at": at} for at in times])
    store = make_store(engine, settings)
    filters = Filters(start=dt.date(2025, 1, 1), end=dt.date(2025, 6, 30))
    quarters = compute(store, metrics=["contacts"], filters=filters, by=["quarter"])
    months = compute(store, metrics=["contacts"], filters=filters, by=["month"])
    assert dict(zip(quarters["quarter"].to_list(), quarters["value"].to_list(), strict=True)) == {dt.date(2025, 1, 1): 11, dt.date(2025, 4, 1): 15}
    by_quarter = months.with_columns(pl.col("month").dt.truncate("1q").alias("q")).group_by("q").agg(pl.col("value").sum())
    assert dict(zip(by_quarter["q"].to_list(), by_quarter["value"].to_list(), strict=True)) == {dt.date(2025, 1, 1): 11, dt.date(2025, 4, 1): 15}


def test_feedback_is_counted_in_its_municipalitys_county(engine, settings):
    add_feedback(engine, [{"answered_at": "2025-03-19T10:00:00", "recommend_score": 9, "municipality_code": "853"}] * 8)
    add_feedback(engine, [{"answered_at": "2025-03-20T10:00:00", "recommend_score": 7, "municipality_code": "018"}] * 6)
    store = make_store(engine, settings)
    county = dict(store.municipalities.select("municipality_code", "region_code").iter_rows())
    assert county["853"] != county["018"]
    result = compute(store, metrics=["feedback_answers"], filters=MARCH, by=["region"])
    assert _value(result, "feedback_answers", region=county["853"])["value"] == 8
    assert _value(result, "feedback_answers", region=county["018"])["value"] == 6
    assert result.filter(pl.col("value") > 0).height == 2
