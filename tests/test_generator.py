import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from data_access.reference import SHIPPED_MUNICIPALITIES
from sample_data.generator import generate

END = dt.datetime(2025, 11, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def municipalities() -> pl.DataFrame:
    return pl.read_csv(SHIPPED_MUNICIPALITIES, schema_overrides={"municipality_code": pl.String, "region_code": pl.String})


@pytest.fixture(scope="module")
def sample(municipalities):
    return generate(municipalities, contacts=60_000, days=400, seed=7, end=END)


def test_same_seed_gives_the_same_rows(municipalities, sample):
    again = generate(municipalities, contacts=60_000, days=400, seed=7, end=END)
    assert_frame_equal(sample.contacts, again.contacts)
    assert_frame_equal(sample.referrals, again.referrals)
    assert_frame_equal(sample.feedback, again.feedback)
    other = generate(municipalities, contacts=60_000, days=400, seed=8, end=END)
    assert not other.contacts.equals(sample.contacts)


def test_requested_size_and_period(sample):
    contacts = sample.contacts
    assert contacts.height == 60_000
    assert contacts["occurred_at"].max() <= END
    assert contacts["occurred_at"].min() >= END - dt.timedelta(days=400)
    assert contacts.select(pl.struct("source_system", "contact_id").is_unique().all()).item()


def test_volume_follows_population(sample):
    counts = dict(sample.contacts.group_by("municipality_code").len().iter_rows())
    # Turku (206 073) against Lestijärvi (665): roughly 310 times the contacts.
    assert 200 < counts["853"] / counts["421"] < 450


def test_weekends_and_holidays_are_quieter(sample):
    local = sample.contacts.with_columns(day=pl.col("occurred_at").dt.convert_time_zone("Europe/Helsinki").dt.date())
    per_day = local.group_by("day").len().with_columns(weekday=pl.col("day").dt.weekday())
    weekday_mean = per_day.filter(pl.col("weekday") <= 5)["len"].mean()
    sunday_mean = per_day.filter(pl.col("weekday") == 7)["len"].mean()
    assert sunday_mean < weekday_mean * 0.3
    christmas = per_day.filter(pl.col("day") == dt.date(2024, 12, 25))["len"].item()
    assert christmas < weekday_mean * 0.4


def test_channel_mix_moves_toward_electronic_channels(sample):
    electronic = ["chat", "chatbot", "e_message", "digital_form", "video"]
    shares = (
        sample.contacts.with_columns(half=pl.col("occurred_at") > END - dt.timedelta(days=200))
        .group_by("half").agg(pl.col("channel").is_in(electronic).mean()).sort("half")
    )["channel"].to_list()
    assert 0.25 < shares[0] < shares[1] < 0.5


def test_resolution_and_initiators_are_realistic(sample):
    fcr = sample.contacts["resolved_first_contact"].drop_nulls().mean()
    assert 0.40 <= fcr <= 0.58
    initiators = sample.contacts["initiator"].value_counts(normalize=True)
    primary = initiators.filter(pl.col("initiator") == "primary_care")["proportion"].item()
    assert primary == pytest.approx(0.70, abs=0.02)
    repeat = sample.contacts.drop_nulls("client_id").group_by("client_id").len()
    assert repeat.filter(pl.col("len") > 1).height > repeat.height * 0.2  # clients come back


def test_referrals_point_at_contacts_and_include_none_needed(sample):
    keys = sample.contacts.select("source_system", "contact_id")
    linked = sample.referrals.join(keys, on=["source_system", "contact_id"], how="semi")
    assert linked.height == sample.referrals.height
    assert "none_needed" in sample.referrals["destination"].to_list()
    mean_score = sample.feedback["recommend_score"].mean()
    assert 9.0 < mean_score < 9.5
