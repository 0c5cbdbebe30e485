"""The recent window in memory and the history on disk (data_access/history.py) give the
same figures as every row in memory: for every registry measure, on random periods and
groupings, before and after changes that reach into the history, and after a restart from
the saved snapshot."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import random

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from data_access import snapshot
from data_access.config import Settings
from data_access.engine import create_db_engine, reserve_change_seq
from data_access.history import month_of
from data_access.metrics import DIMENSIONS, REGISTRY, Filters, compute
from data_access.metrics.exit import pending_referrals
from data_access.metrics.types import Scope
from data_access.models import Contact
from data_access.quality import newest_records
from data_access.snapshot import HELSINKI_ZONE, FactStore
from tests.conftest import COUNTY_SECRET, seeded_database_fixture
from tests.factories import add_contacts, add_referrals

history_database = seeded_database_fixture(contacts=12_000, days=420, seed=33, doc="Fourteen months of sample data per backend.")
MEMORY_DAYS = 40
GROUPINGS = [(), ("municipality",), ("channel",), ("month",), ("day",), ("unit",), ("week", "service_line"), ("region",)]


def _settings(url: str, tmp_path, memory_days: int) -> Settings:
    return Settings(
        database_url=url, data_dir=tmp_path / f"data{memory_days}", snapshot_dir=tmp_path / f"snapshots{memory_days}",
        publication_key=COUNTY_SECRET, memory_days=memory_days, small_cell_threshold=3,
    )


def _stores(url: str, tmp_path) -> tuple[FactStore, FactStore]:
    engine = create_db_engine(url)
    in_memory, windowed = FactStore(engine, _settings(url, tmp_path, 0)), FactStore(engine, _settings(url, tmp_path, MEMORY_DAYS))
    in_memory.refresh()
    windowed.refresh()
    return in_memory, windowed


def _draws(rng: random.Random, today: dt.date, count: int) -> list[tuple[str, Filters, tuple[str, ...], bool]]:
    """Random (metric, period, grouping, published): periods inside the window, across its
    edge and wholly in the history; every measure of the registry first, then any."""
    draws = []
    metrics = sorted(REGISTRY)
    for index in range(count):
        metric = metrics[index] if index < len(metrics) else rng.choice(metrics)
        source = REGISTRY[metric].source
        by = rng.choice([g for g in GROUPINGS if all(source in DIMENSIONS[d] for d in g)])
        end = today - dt.timedelta(days=rng.choice([0, 1, 20, 45, 90, 200, 380]))
        start = end - dt.timedelta(days=rng.choice([0, 6, 29, 90, 364, 500]))
        filters = Filters(start=start, end=end)
        if rng.random() < 0.3:
            filters = dataclasses.replace(filters, channels=("phone", "chat"))
        draws.append((metric, filters, by, rng.random() < 0.2))
    return draws


def _assert_same_figures(expected: FactStore, actual: FactStore, draws: list) -> None:
    for metric, filters, by, published in draws:
        want = compute(expected.view(), metrics=[metric], filters=filters, by=by, publication=published)
        got = compute(actual.view(), metrics=[metric], filters=filters, by=by, publication=published)
        sort = [*by, "metric"]
        try:
            assert_frame_equal(got.sort(sort, nulls_last=True), want.sort(sort, nulls_last=True), check_exact=False, rel_tol=1e-9)
        except AssertionError as error:
            raise AssertionError(f"{metric} by {by} over {filters} (published: {published}): {error}") from None


def test_the_history_on_disk_gives_the_figures_of_every_row_in_memory(history_database, tmp_path):
    in_memory, windowed = _stores(history_database, tmp_path)
    today = dt.datetime.now(HELSINKI_ZONE).date()
    cutoff = month_of(today - dt.timedelta(days=MEMORY_DAYS))
    assert windowed.history.until == cutoff
    assert windowed.thawed == 0, "a first read, a quarter at a time, never brings a moved month back"
    assert windowed.history.rows("contacts") > 0.6 * in_memory.contacts.height, "most of the fourteen months moved to disk"
    assert windowed.contacts["day"].min() >= cutoff
    assert windowed.contacts.height + windowed.history.rows("contacts") == in_memory.contacts.height
    rng = random.Random(33)
    _assert_same_figures(in_memory, windowed, _draws(rng, today, 90))
    for by in ("source_system", "municipality"):
        assert_frame_equal(newest_records(windowed, scope=Scope(), by=by), newest_records(in_memory, scope=Scope(), by=by))
    assert_frame_equal(pending_referrals(windowed), pending_referrals(in_memory))

    # Changes that reach into the history: a correction of an old contact (another place and
    # day), a late contact one of whose client's earlier contacts it makes a re-contact, a
    # referral naming a contact of last year, and one waiting for a contact that then arrives.
    engine = in_memory.engine
    old = windowed.history.scan("contacts").head(400).collect()
    table = Contact.__table__
    with engine.begin() as conn:
        seq = reserve_change_seq(conn, 1)
        conn.execute(
            sa.update(table).where(table.c.id == int(old["id"][0])).values(
                change_seq=seq, municipality_code="091", occurred_at=old["occurred_at"][300] + dt.timedelta(minutes=1),
            )
        )
    client = old.filter(pl.col("client_id").is_not_null())["client_id"][5]
    named = old.filter(pl.col("source_system") == old["source_system"][10])[10]
    add_contacts(engine, [
        {"contact_id": "late-1", "client_id": str(client), "occurred_at": old["occurred_at"][350] + dt.timedelta(days=2),
         "municipality_code": "853", "channel": "phone", "resolved_first_contact": True},
    ])
    add_referrals(engine, [
        {"source_system": str(named["source_system"][0]), "contact_id": str(named["contact_id"][0]),
         "referred_at": named["occurred_at"][0] + dt.timedelta(hours=3), "destination": "physio_rehab"},
        {"contact_id": "waiting-1", "referred_at": old["occurred_at"][200], "destination": "tk_doctor"},
    ])
    for store in (in_memory, windowed):
        assert store.refresh()
    assert windowed.thawed == 1
    assert windowed.history.until == cutoff, "the months brought back were moved out again"
    assert windowed.contacts["day"].min() >= cutoff
    _assert_same_figures(in_memory, windowed, _draws(rng, today, 40))
    assert_frame_equal(pending_referrals(windowed), pending_referrals(in_memory))
    add_contacts(engine, [
        {"contact_id": "waiting-1", "occurred_at": old["occurred_at"][199], "municipality_code": "272", "channel": "chat"},
    ])
    for store in (in_memory, windowed):
        assert store.refresh()
    for name in ("contacts", "referrals", "feedback"):
        assert_frame_equal(
            windowed.whole(name).sort("id"), in_memory.whole(name).sort("id"), check_column_order=False, check_dtypes=False,
        )
    _assert_same_figures(in_memory, windowed, _draws(rng, today, 30))


def test_a_restart_from_the_snapshot_keeps_the_history(history_database, tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "BULK_ROWS", 1)  # save after any change, as after a large load
    settings = _settings(history_database, tmp_path, MEMORY_DAYS)
    engine = create_db_engine(history_database)
    first = FactStore(engine, settings)
    first.refresh()
    first.wait_for_save()
    assert first.history.rows("contacts") > 0
    first._folder.remove()  # the first process's own files gone: the saved ones are linked, not shared

    restarted = FactStore(engine, settings)
    restarted.refresh()
    assert restarted.restored_version == first.version
    assert restarted.history.rows("contacts") == first.history.rows("contacts")
    assert all(part.path.parent == restarted.history.folder for part in restarted.history.parts["contacts"])
    whole = FactStore(engine, _settings(history_database, tmp_path, 0))
    whole.refresh()
    _assert_same_figures(whole, restarted, _draws(random.Random(7), dt.datetime.now(HELSINKI_ZONE).date(), 25))


def test_memory_days_must_leave_changing_rows_in_memory():
    with pytest.raises(ValueError, match="memory_days"):
        Settings(memory_days=30, verified_resolution_days=7)
    assert Settings(memory_days=0).memory_days == 0


def test_history_files_removed_under_a_running_store_are_read_again(history_database, tmp_path):
    settings = _settings(history_database, tmp_path, MEMORY_DAYS)
    store = FactStore(create_db_engine(history_database), settings)
    store.refresh()
    counted = store.history.rows("contacts")
    today = dt.datetime.now(HELSINKI_ZONE).date()
    year = Filters(start=today - dt.timedelta(days=364), end=today)
    before = compute(store.view(), metrics=["contacts"], filters=year)
    for part in store.history.parts["contacts"]:
        part.path.unlink()  # a clean-up of the folder under the running server
    store.refresh()
    assert store.generation == 1 and store.history.rows("contacts") == counted
    assert_frame_equal(compute(store.view(), metrics=["contacts"], filters=year), before)


def test_history_folders_of_ended_servers_are_removed_at_start(history_database, tmp_path):
    settings = _settings(history_database, tmp_path, MEMORY_DAYS)
    ended = settings.resolved_snapshot_dir / "live" / "4194999-0badc0de"
    running = settings.resolved_snapshot_dir / "live" / f"{os.getppid()}-0fabc0de"
    for folder in (ended, running):
        folder.mkdir(parents=True)
        (folder / "contacts-2025-01-0000000000.arrow").write_bytes(b"left behind")
    store = FactStore(create_db_engine(history_database), settings)
    store.refresh()
    assert not ended.exists(), "a server that has ended leaves nothing behind for long"
    assert running.exists(), "a running server's files stay"
    assert store.history.folder.is_dir() and store.history.rows("contacts") > 0


def test_pending_rows_carried_into_a_grown_history_are_those_its_parts_hold(tmp_path):
    """A first read adds the history a quarter at a time; the referrals still waiting for their
    contact are carried from each history to the next, not read from every part again. What
    is carried equals what the parts give read afresh, rows added after the first asking
    included."""
    from data_access.history import History

    rng = random.Random(22)

    def referrals(month: int, count: int, first_id: int) -> pl.DataFrame:
        return pl.DataFrame({
            "id": range(first_id, first_id + count),
            "source_system": [rng.choice(["a", "b"]) for _ in range(count)],
            "contact_id": [f"k{rng.randrange(50)}" for _ in range(count)],
            "day": [dt.date(2025, month, rng.randrange(1, 28)) for _ in range(count)],
            "channel": [rng.choice(["phone", None]) for _ in range(count)],
        }, schema_overrides={"source_system": pl.Categorical}).sort("day")

    missing = pl.col("channel").is_null()
    empty = pl.DataFrame(schema={"id": pl.Int64, "day": pl.Date})
    history = History(tmp_path).with_rows({"referrals": referrals(1, 40, 0)}, dt.date(2025, 2, 1))
    history.pending("referrals", missing)  # asked once: from here on carried
    for month in range(2, 6):
        history = history.with_rows(
            {"referrals": referrals(month, 30, month * 100), "contacts": empty, "feedback": empty}, dt.date(2025, month + 1, 1),
        )
        carried = history.pending("referrals", missing)
        afresh = History(history.folder, history.until, history.parts).pending("referrals", missing)
        assert ("pending", "referrals") in history.memo
        assert_frame_equal(carried.sort(["day", "contact_id", "source_system"]), afresh.sort(["day", "contact_id", "source_system"]),
                           check_dtypes=False)
        assert carried.height > 0
