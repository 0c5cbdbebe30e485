"""The guidance pathway, outcome and multi-service measures against small literal data, on
SQLite and PostgreSQL: each figure computed by hand here and by the registry there."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from data_access.config import Settings
from data_access.metrics import Filters, compute, population_for
from data_access.periods import local_now
from tests.conftest import COUNTY_SECRET
from tests.factories import add_cases, add_contacts, add_measurements, add_referrals, make_store
from tests.test_metrics import _value as figure

MARCH = Filters(start=dt.date(2025, 3, 1), end=dt.date(2025, 3, 31))


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    """The smallest threshold the settings allow (3), so that small literal frames show."""
    return Settings(database_url=database_url, data_dir=tmp_path / "data", publication_key=COUNTY_SECRET, small_cell_threshold=3)




def test_cases_consent_plan_and_time_to_plan(engine, settings):
    plan_days = [1, 2, 3, 5, 8, 13]
    cases = [
        {
            "opened_at": f"2025-03-{3 + i:02d}T08:00:00",
            "consent_at": f"2025-03-{3 + i:02d}T09:00:00" if i < 7 else None,  # three never consented: stalled
            "plan_at": (dt.datetime(2025, 3, 3 + i, 8, tzinfo=dt.UTC) + dt.timedelta(days=plan_days[i])) if i < 6 else None,
        }
        for i in range(10)
    ]
    cases.append({"opened_at": "2025-04-01T08:00:00"})  # another month
    add_cases(engine, cases)
    result = compute(
        make_store(engine, settings), filters=MARCH,
        metrics=["cases_opened", "case_consent_share", "case_plan_share", "days_to_plan_median"],
    )
    assert figure(result, "cases_opened")["value"] == 10
    assert (figure(result, "case_consent_share")["numerator"], figure(result, "case_consent_share")["denominator"]) == (7, 10)
    assert figure(result, "case_plan_share")["value"] == pytest.approx(0.6)
    median = figure(result, "days_to_plan_median")
    assert (median["value"], median["denominator"]) == (4.0, 6)


def test_closed_cases_visits_against_the_guideline_and_time_in_the_pathway(engine, settings):
    visits = [1, 2, 3, 6, 7, 8, 0]
    add_cases(engine, [
        {"case_id": f"g{i}", "opened_at": dt.datetime(2025, 1, 1, 8, tzinfo=dt.UTC), "closed_at": dt.datetime(2025, 1, 1, 8, tzinfo=dt.UTC) + dt.timedelta(days=60 + 5 * i)}
        for i in range(len(visits))
    ] + [{"case_id": "open", "opened_at": "2025-01-02T08:00:00"}])  # still open: not among the closed
    add_contacts(engine, [
        {"occurred_at": f"2025-01-{2 + n:02d}T10:00:00", "case_id": f"g{i}", "unit_code": "853-1"}
        for i, count in enumerate(visits) for n in range(count)
    ] + [{"occurred_at": "2025-01-05T10:00:00", "case_id": "open"}, {"occurred_at": "2025-01-05T10:00:00"}])
    # Closed 2 March ... 1 April: the last one falls outside March.
    result = compute(
        make_store(engine, settings), filters=MARCH,
        metrics=["cases_closed", "pathway_days_median", "visits_per_case_mean", "visits_within_guideline_share"],
    )
    closed_in_march = visits[:6]
    assert figure(result, "cases_closed")["value"] == 6
    assert figure(result, "pathway_days_median")["value"] == pytest.approx(72.5)  # 60, 65, ..., 85
    mean = figure(result, "visits_per_case_mean")
    expected = sum(closed_in_march) / 6
    sd = math.sqrt(sum((v - expected) ** 2 for v in closed_in_march) / 5)
    assert mean["value"] == pytest.approx(expected)
    assert mean["ci_low"] == pytest.approx(expected - 1.959964 * sd / math.sqrt(6), abs=1e-5)
    within = figure(result, "visits_within_guideline_share")
    assert (within["numerator"], within["denominator"]) == (3, 6)  # 1, 2, 3 of 1, 2, 3, 6, 7, 8


def test_follow_ups_on_time_late_overdue_and_not_yet_due(engine, settings):
    due = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)
    rows = (
        [{"follow_up_due": due, "follow_up_at": due - dt.timedelta(days=d)} for d in (0, 1, 5, 20)]  # on time
        + [{"follow_up_due": due, "follow_up_at": due + dt.timedelta(days=d)} for d in (1, 3, 30)]  # late
        + [{"follow_up_due": due} for _ in range(3)]  # never done: overdue
    )
    today = local_now().replace(hour=12, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    rows += [{"follow_up_due": today} for _ in range(3)]  # due today, not done: not late yet
    add_cases(engine, [{"opened_at": "2024-12-01T08:00:00", "plan_at": "2024-12-05T08:00:00", **row} for row in rows])
    store = make_store(engine, settings)
    metrics = ["follow_ups_due", "follow_up_on_time_share", "follow_ups_overdue"]
    march = compute(store, filters=MARCH, metrics=metrics)
    assert figure(march, "follow_ups_due")["value"] == 10
    on_time = figure(march, "follow_up_on_time_share")
    assert (on_time["numerator"], on_time["denominator"]) == (4, 10)
    assert figure(march, "follow_ups_overdue")["value"] == 3
    now = compute(store, filters=Filters(start=today.date(), end=today.date()), metrics=metrics)
    assert figure(now, "follow_ups_due")["value"] == 3
    assert figure(now, "follow_up_on_time_share")["value"] is None  # nothing judged yet
    assert figure(now, "follow_ups_overdue")["value"] == 0


def test_outcome_change_from_first_to_last_measurement(engine, settings):
    changes = [10, 4, -2, 8, 5]
    add_cases(engine, [{"case_id": f"g{i}", "opened_at": "2025-01-02T08:00:00"} for i in range(7)])
    measurements = []
    for i, change in enumerate(changes):
        for domain in ("physical", "psychological"):
            measurements += [
                {"case_id": f"g{i}", "measured_at": "2025-01-05T10:00:00", "phase": "start", "domain": domain, "score": 50.0},
                {"case_id": f"g{i}", "measured_at": "2025-02-05T10:00:00", "phase": "interim", "domain": domain, "score": 80.0},
                {"case_id": f"g{i}", "measured_at": "2025-03-05T10:00:00", "phase": "end", "domain": domain, "score": 50.0 + change},
            ]
    # Measured once: no change to count. A Kykyviisari change of another case is another measure.
    measurements.append({"case_id": "g5", "measured_at": "2025-03-05T10:00:00", "domain": "physical", "score": 40.0})
    measurements += [
        {"case_id": "g6", "measured_at": f"2025-0{m}-05T10:00:00", "instrument": "kykyviisari", "domain": "overall", "score": s}
        for m, s in ((1, 5.0), (3, 9.0))
    ]
    add_measurements(engine, measurements)
    store = make_store(engine, settings)
    metrics = ["whoqol_bref_change_mean", "whoqol_bref_change_median", "whoqol_bref_clients"]
    by_domain = compute(store, filters=MARCH, metrics=metrics, by=["domain"])
    mean = figure(by_domain, "whoqol_bref_change_mean", domain="physical")
    sd = math.sqrt(sum((c - 5) ** 2 for c in changes) / 4)
    assert (mean["value"], mean["denominator"]) == (5.0, 5)
    assert (mean["ci_low"], mean["ci_high"]) == pytest.approx((5 - 1.959964 * sd / math.sqrt(5), 5 + 1.959964 * sd / math.sqrt(5)), abs=1e-5)
    median = figure(by_domain, "whoqol_bref_change_median", domain="physical")
    # n = 5: ranks 2.5 -/+ 1.96 * sqrt(5) / 2 = 0.31 .. 4.69, so the 1st and 5th of -2, 4, 5, 8, 10.
    assert (median["value"], median["ci_low"], median["ci_high"]) == (5.0, -2.0, 10.0)
    assert figure(by_domain, "whoqol_bref_clients", domain="psychological")["value"] == 5
    # Without a domain: five clients, not ten client-domains.
    assert figure(compute(store, filters=MARCH, metrics=["whoqol_bref_clients"]), "whoqol_bref_clients")["value"] == 5
    # The Kykyviisari change (one client) is hidden, like any figure about fewer than 3 people.
    kyky = figure(compute(store, filters=MARCH, metrics=["kykyviisari_change_mean"]), "kykyviisari_change_mean")
    assert kyky["suppressed"] and kyky["value"] is None


def test_multi_service_clients_in_the_window_ending_on_the_last_day(engine, settings):
    end = dt.date(2025, 3, 31)
    lines = {"a": ["health", "social", "elderly"], "b": ["health", "family", "disability"], "c": ["social", "employment", "health"],
             "d": ["health", "social"], "e": ["health"]}
    contacts = [
        {"occurred_at": f"2025-0{1 + n % 3}-1{n}T10:00:00", "client_id": client, "service_line": line, "age_band": "18-64"}
        for client, client_lines in lines.items() for n, line in enumerate(client_lines)
    ]
    # A year and more before the end: outside the 365-day window, so d stays at two lines.
    contacts.append({"occurred_at": "2024-03-30T10:00:00", "client_id": "d", "service_line": "elderly"})
    add_contacts(engine, contacts)
    add_cases(engine, [{"client_id": "a", "process": "multi_service", "opened_at": "2025-03-20T08:00:00"}])
    store = make_store(engine, settings)
    result = compute(
        store, filters=Filters(start=dt.date(2025, 3, 1), end=end, municipalities=("853",)),
        metrics=["multi_service_clients", "multi_service_per_1000", "multi_service_contact_share", "multi_service_in_process_share"],
    )
    assert figure(result, "multi_service_clients")["value"] == 3
    population = population_for(store, 2025)["853"]
    assert figure(result, "multi_service_per_1000")["value"] == pytest.approx(3 / population * 1000)
    share = figure(result, "multi_service_contact_share")
    assert (share["numerator"], share["denominator"]) == (9, 12)
    # One of three taken into the process: a count of one, hidden.
    assert figure(result, "multi_service_in_process_share")["suppressed"]
    by_age = compute(store, filters=Filters(start=end, end=end), metrics=["multi_service_clients"], by=["age_band"])
    assert figure(by_age, "multi_service_clients", age_band="18-64")["value"] == 3


def test_a_handful_of_multi_service_clients_hides_their_share_of_contacts(engine, settings):
    add_contacts(engine, [
        {"occurred_at": "2025-03-10T10:00:00", "client_id": "a", "service_line": line} for line in ("health", "social", "family") * 10
    ] + [{"occurred_at": "2025-03-11T10:00:00", "client_id": f"x{i}", "service_line": "health"} for i in range(40)])
    share = figure(compute(make_store(engine, settings), filters=MARCH, metrics=["multi_service_contact_share"]), "multi_service_contact_share")
    # 30 of 70 contacts is no small count, but it is one person's.
    assert share["suppressed"] and share["value"] is None


def test_services_started_from_a_case(engine, settings):
    add_cases(engine, [{"case_id": "g1", "opened_at": "2025-03-01T08:00:00"}])
    add_contacts(engine, [
        {"contact_id": f"v{i}", "occurred_at": "2025-03-05T10:00:00", "case_id": "g1"} for i in range(4)
    ] + [{"contact_id": f"o{i}", "occurred_at": "2025-03-05T10:00:00"} for i in range(2)])
    started = "2025-03-12T10:00:00"
    add_referrals(engine, [
        {"contact_id": f"v{i}", "referred_at": "2025-03-05T10:30:00", "destination": "tk_doctor", "service_started_at": started, "status": "started"}
        for i in range(3)
    ] + [
        {"contact_id": "v3", "referred_at": "2025-03-05T10:30:00", "destination": "tk_doctor", "status": "planned"},
        *({"contact_id": f"o{i}", "referred_at": "2025-03-05T10:30:00", "destination": "kela", "service_started_at": started} for i in range(2)),
    ])
    result = compute(make_store(engine, settings), filters=MARCH, metrics=["case_services_started", "referrals"])
    assert figure(result, "case_services_started")["value"] == 3
    assert figure(result, "referrals")["value"] == 6


def test_a_case_update_and_a_new_visit_reach_the_store(engine, settings):
    add_cases(engine, [{"case_id": f"g{i}", "opened_at": "2025-03-02T08:00:00"} for i in range(3)])
    store = make_store(engine, settings)
    assert figure(compute(store, filters=MARCH, metrics=["case_plan_share"]), "case_plan_share")["numerator"] == 0
    add_cases(engine, [{"case_id": f"g{i}", "opened_at": "2025-03-02T08:00:00", "plan_at": "2025-03-04T08:00:00"} for i in range(3, 6)])
    add_contacts(engine, [{"occurred_at": "2025-03-03T10:00:00", "case_id": "g0"}])
    store.refresh()
    assert figure(compute(store, filters=MARCH, metrics=["case_plan_share"]), "case_plan_share")["numerator"] == 3
    assert store.pathway["cases"].filter(pl.col("case_id") == "g0")["visits"].item() == 1


def test_one_clients_four_domain_changes_are_not_four_answers(engine, settings):
    add_cases(engine, [{"case_id": "g0", "opened_at": "2025-01-02T08:00:00"}])
    add_measurements(engine, [
        {"case_id": "g0", "measured_at": f"2025-0{m}-05T10:00:00", "domain": domain, "score": score}
        for domain in ("physical", "psychological", "social", "environment") for m, score in ((1, 40.0), (3, 70.0))
    ])
    result = compute(make_store(engine, settings), filters=MARCH, metrics=["whoqol_bref_change_mean", "whoqol_bref_change_median"])
    for metric in ("whoqol_bref_change_mean", "whoqol_bref_change_median"):
        assert figure(result, metric)["suppressed"], "four changes, but one person's"


def test_feedback_by_unit_is_its_contacts_unit_even_when_the_contact_arrives_later(engine, settings):
    from tests.factories import add_feedback

    add_contacts(engine, [{"contact_id": f"a{i}", "occurred_at": "2025-03-10T10:00:00", "unit_code": "853-1"} for i in range(4)])
    add_feedback(engine, [{"contact_id": f"a{i}", "answered_at": "2025-03-10T12:00:00", "recommend_score": 9} for i in range(4)])
    # 21 answers: a 0-10 mean is shown from that many on (definitions.SCALE_MIN_ANSWERS)
    add_feedback(engine, [{"contact_id": f"b{i}", "answered_at": "2025-03-11T12:00:00", "recommend_score": 3} for i in range(21)])
    store = make_store(engine, settings)
    by_unit = compute(store, filters=MARCH, metrics=["feedback_answers"], by=["unit"])
    assert figure(by_unit, "feedback_answers", unit="853-1")["value"] == 4
    assert by_unit.filter(pl.col("unit").is_null())["value"].item() == 21  # their contacts have not arrived
    add_contacts(engine, [{"contact_id": f"b{i}", "occurred_at": "2025-03-11T10:00:00", "unit_code": "853-2"} for i in range(21)])
    store.refresh()
    by_unit = compute(store, filters=MARCH, metrics=["feedback_answers", "recommend_mean"], by=["unit"])
    assert figure(by_unit, "feedback_answers", unit="853-2")["value"] == 21
    assert figure(by_unit, "recommend_mean", unit="853-2")["value"] == 3.0
