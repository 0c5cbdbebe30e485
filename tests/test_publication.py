"""Figures that leave the county: the cell-key method's three promises (docs/privacy.md) —
the same rows always get the same perturbation, the parts of a table add up to its whole, no
published count is 1-4 — and that differencing two overlapping periods gives noise."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from data_access.codes import CHANNELS
from data_access.metrics import Filters, compute
from data_access.metrics.publication import KEYS, perturb, record_key, seed_of
from tests.factories import add_contacts, add_feedback, make_store

THRESHOLD = 5
NOVEMBER = Filters(start=dt.date(2025, 11, 1), end=dt.date(2025, 11, 30))


@given(st.lists(st.tuples(st.integers(0, 400), st.integers(0, 10**12)), min_size=1, max_size=60))
def test_no_published_count_is_between_one_and_four_and_zero_stays_zero(cells):
    counts = np.array([c for c, _ in cells], dtype=np.float64)
    keys = np.array([k for _, k in cells], dtype=np.float64)
    published = perturb(counts, keys, threshold=THRESHOLD)
    assert not np.any((published >= 1) & (published < THRESHOLD))
    assert np.all(published[counts == 0] == 0)
    big = counts >= THRESHOLD
    assert np.all(published[big] >= THRESHOLD) and np.all(np.abs(published[big] - counts[big]) <= 2)
    assert np.array_equal(perturb(counts, keys, threshold=THRESHOLD), published), "the same cell key, the same count"


def test_the_perturbation_adds_no_bias_over_the_cell_keys():
    """Over every cell key a count's published values average to the count itself (a small
    count published as 0 or 5 with the right odds); only 5 and 6, which may not fall below
    the threshold, lean up."""
    every_key = np.arange(KEYS, dtype=np.float64)
    for n in (1, 2, 3, 4, 7, 8, 20, 1000):
        mean = perturb(np.full(KEYS, float(n)), every_key, threshold=THRESHOLD).mean()
        assert abs(mean - n) < 0.001, (n, mean)


def test_record_keys_are_a_fixed_hash_of_the_id_and_the_secret():
    """The same on every machine and polars version: a stored value pins the hash."""
    keys = pl.DataFrame({"id": [1, 2, 3, 10**12]}).select(record_key(pl.col("id"), seed_of("x"))).to_series().to_list()
    assert keys == [54168, 38549, 6253, 58470]
    other = pl.DataFrame({"id": [1, 2, 3, 10**12]}).select(record_key(pl.col("id"), seed_of("y"))).to_series().to_list()
    assert other != keys and all(0 <= k < KEYS for k in other)


def test_differencing_two_overlapping_periods_gives_noise_not_a_person():
    """1-15 November minus 1-14 November, where one person contacted on the 15th: published
    counts differ by that one only by chance. Over 400 counties' secrets (record keys drawn
    at random) the difference takes many values and is 1 in a minority of them."""
    rng = random.Random(7)
    differences = []
    for _ in range(400):
        before = [rng.randrange(KEYS) for _ in range(37)]
        person = rng.randrange(KEYS)
        published = perturb(np.array([38.0, 37.0]), np.array([float(sum(before) + person), float(sum(before))]), threshold=THRESHOLD)
        differences.append(int(published[0] - published[1]))
    assert len(set(differences)) >= 5
    assert differences.count(1) < 0.4 * len(differences)


def _november_contacts(engine, rows: list[tuple[int, str]], *, month: str = "2025-11") -> None:
    add_contacts(engine, [
        {"occurred_at": f"{month}-{day:02d}T10:00:00", "municipality_code": "853", "channel": channel, "resolved_first_contact": day % 3 != 0}
        for day, channel in rows
    ])


def test_the_same_rows_get_the_same_perturbation_whatever_the_route(engine, settings):
    """Chat contacts asked by channel, asked with a channel filter, and asked over a longer
    period that holds no more of them: the same rows, so the same published count."""
    rng = random.Random(3)
    _november_contacts(engine, [(rng.randint(1, 14), rng.choice(CHANNELS[:4])) for _ in range(150)])
    store = make_store(engine, settings)
    first_half = Filters(start=dt.date(2025, 11, 1), end=dt.date(2025, 11, 14))
    by_channel = compute(store, metrics=["contacts"], filters=first_half, by=["channel"], publication=True)
    for channel in CHANNELS[:4]:
        one = by_channel.filter(pl.col("channel") == channel)["value"].item()
        alone = compute(store, metrics=["contacts"], filters=Filters(start=first_half.start, end=first_half.end, channels=(channel,)), publication=True)
        longer = compute(store, metrics=["contacts"], filters=Filters(start=first_half.start, end=dt.date(2025, 11, 30), channels=(channel,)), publication=True)
        assert one == alone["value"].item() == longer["value"].item(), channel
    exact = compute(store, metrics=["contacts"], filters=first_half, by=["channel"])
    assert exact["value"].to_list() != by_channel["value"].to_list(), "published counts are perturbed"


_MONTHS = iter(range(10_000))


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(1, 28), st.sampled_from(CHANNELS[:6])), min_size=1, max_size=120))
def test_within_a_table_the_parts_add_up_to_the_whole_shown(engine, settings, rows):
    """Each channel's published share is its published count over the sum of the published
    counts: the shares add up to one, and no published count is 1-4. (Each example writes
    its rows into a month of its own.)"""
    index = next(_MONTHS)
    year, month = 2000 + index // 12, index % 12 + 1
    _november_contacts(engine, rows, month=f"{year}-{month:02d}")
    store = make_store(engine, settings)
    period = Filters(start=dt.date(year, month, 1), end=dt.date(year, month, 28))
    result = compute(store, metrics=["contacts", "contact_share", "first_contact_resolution"], filters=period, by=["channel"], publication=True)
    counts = result.filter(pl.col("metric") == "contacts").sort("channel")
    shares = result.filter(pl.col("metric") == "contact_share").sort("channel")
    published = counts["numerator"].to_numpy()
    assert not np.any((published >= 1) & (published < THRESHOLD))
    total = published.sum()
    if total > 0:
        assert set(shares["denominator"].to_list()) == {total}
        assert np.array_equal(shares["numerator"].to_numpy(), published)
    resolution = result.filter(pl.col("metric") == "first_contact_resolution")
    assert (resolution["numerator"].fill_nan(0) <= resolution["denominator"].fill_nan(0)).all()


def test_the_metrics_command_publishes_the_same_perturbed_figures_and_says_so(engine, settings, monkeypatch, capsys):
    from dashboard.cli import main

    rng = random.Random(5)
    _november_contacts(engine, [(rng.randint(1, 28), rng.choice(CHANNELS[:4])) for _ in range(200)])
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("OHJAUSTAULU_DATA_DIR", str(settings.data_dir))
    args = ["metrics", "--from", "2025-11-01", "--to", "2025-11-30", "--by", "channel", "--metric", "contacts", "--format", "json"]
    assert main([*args, "--publication"]) == 0
    printed = capsys.readouterr()
    assert "perturbed for publication" in printed.err
    import json

    payload = json.loads(printed.out)
    assert payload["perturbed"] is True
    published = {r["channel"]: r["value"] for r in payload["rows"]}
    expected = compute(make_store(engine, settings), metrics=["contacts"], filters=NOVEMBER, by=["channel"], publication=True)
    assert published == {r["channel"]: r["value"] for r in expected.iter_rows(named=True)}
    assert main(args) == 0
    exact = capsys.readouterr()
    assert "perturbed" not in exact.err and json.loads(exact.out)["perturbed"] is False


def test_nothing_is_published_with_the_public_demo_key_on_a_county_database_and_a_short_key_is_refused(engine, settings):
    """The demo key is in this repository: anyone could undo its noise. On PostgreSQL (a
    county's database) publishing waits for the county's own secret; the embedded sample
    data may use the demo key."""
    import pytest
    from pydantic import ValidationError

    from data_access.config import DEMO_PUBLICATION_KEY, Settings
    from data_access.metrics import MetricError

    _november_contacts(engine, [(day, "phone") for day in range(1, 21)])
    demo = Settings(database_url=settings.database_url, data_dir=settings.data_dir, publication_key=DEMO_PUBLICATION_KEY)
    store = make_store(engine, demo)
    if settings.database_url.startswith("postgresql"):
        with pytest.raises(MetricError, match="OHJAUSTAULU_PUBLICATION_KEY"):
            compute(store, metrics=["contacts"], filters=NOVEMBER, publication=True)
    else:
        assert compute(store, metrics=["contacts"], filters=NOVEMBER, publication=True).height == 1
    assert compute(store, metrics=["contacts"], filters=NOVEMBER).height == 1, "the county's own figures are not held back"
    with pytest.raises(ValidationError, match="at least 8 characters"):
        Settings(database_url=settings.database_url, publication_key="  ")


def test_published_n_of_means_nps_and_quantiles_is_perturbed_and_their_intervals_follow_it(engine, settings):
    """Feedback answers and queued contacts on each day of November: every published figure
    whose n is a count (a 0-10 mean, NPS, a median queue time) publishes a perturbed n, never
    1-4 (NPS's: three perturbed counts, within 6 of the true n); NPS's three counts add up to it and its value and interval are theirs; a score's
    interval is the one its published n gives. The noise moves a count of 7 or more by -2..+2
    and leaves it as it is for half the cell keys: over 30 days and three measures the exact n
    comes back in about half the cells, and in no more than two thirds here."""
    rng = random.Random(11)
    add_feedback(engine, [
        {"answered_at": f"2025-11-{day:02d}T{rng.randint(8, 15):02d}:00:00", "recommend_score": rng.choice([0, 5, 7, 8, 9, 10, 10])}
        for day in range(1, 31) for _ in range(rng.randint(22, 40))
    ])
    add_contacts(engine, [
        {"occurred_at": f"2025-11-{day:02d}T10:00:00", "municipality_code": "853", "channel": "phone", "queue_seconds": rng.randint(0, 900)}
        for day in range(1, 31) for _ in range(rng.randint(8, 30))
    ])
    store = make_store(engine, settings)
    metrics = ["recommend_mean", "nps", "queue_median_seconds"]
    exact = compute(store, metrics=metrics, filters=NOVEMBER, by=["day"]).sort("metric", "day")
    published = compute(store, metrics=metrics, filters=NOVEMBER, by=["day"], publication=True).sort("metric", "day")
    true_n, shown_n = exact["denominator"].to_numpy(), published["denominator"].to_numpy()
    both = ~np.isnan(true_n) & ~np.isnan(shown_n)
    assert both.sum() >= 60
    assert not np.any((shown_n[both] >= 1) & (shown_n[both] < THRESHOLD))
    # NPS's n is the sum of its three perturbed counts; every other n is one perturbed count.
    nps = (published["metric"] == "nps").to_numpy()
    assert np.all(np.abs(shown_n[both] - true_n[both]) <= np.where(nps[both], 6, 2))
    assert (shown_n[both] == true_n[both]).mean() <= 2 / 3, "the published n is the true one too often"
    assert (shown_n[both] != true_n[both]).any()
    for row in published.filter(pl.col("metric") == "recommend_mean", ~pl.col("suppressed")).iter_rows(named=True):
        n, p, z = row["denominator"], row["value"] / 10, 1.959964
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
        assert row["ci_low"] == pytest.approx((centre - half) * 10) and row["ci_high"] == pytest.approx((centre + half) * 10)


def test_differencing_published_nps_over_overlapping_periods_gives_noise(engine, settings):
    """Published NPS n over 15-30 and 16-30 November: the difference is not the answers of
    the 15th (the attack of issue 38 found one answer that way with exact n)."""
    rng = random.Random(5)
    add_feedback(engine, [
        {"answered_at": f"2025-11-{day:02d}T10:00:00", "recommend_score": rng.choice([3, 7, 9, 10])} for day in range(16, 31) for _ in range(4)
    ])
    store = make_store(engine, settings)
    differences = []
    for answers in range(1, 13):
        add_feedback(engine, [{"answered_at": "2025-11-15T10:00:00", "recommend_score": 10}])
        store = make_store(engine, settings)
        longer = compute(store, metrics=["nps"], filters=Filters(start=dt.date(2025, 11, 15), end=NOVEMBER.end), publication=True)
        shorter = compute(store, metrics=["nps"], filters=Filters(start=dt.date(2025, 11, 16), end=NOVEMBER.end), publication=True)
        differences.append((answers, longer["denominator"].item() - shorter["denominator"].item()))
    assert sum(1 for answers, difference in differences if difference == answers) <= 8, differences
