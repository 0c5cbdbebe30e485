"""The store's incremental refresh gives exactly the frames a full load gives."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
import pytest
import sqlalchemy as sa
from polars.testing import assert_frame_equal

from data_access.engine import data_version, reserve_change_seq
from data_access.models import Contact, Referral
from data_access.snapshot import HELSINKI_ZONE, MAX_CHUNKS, TABLES, FactStore, _recontact, splice
from tests.factories import add_contacts, add_feedback, add_referrals, make_store, ts

START = dt.datetime(2025, 1, 6, 8, tzinfo=dt.UTC)
CHANNELS = ["phone", "chat", "callback", "walk_in", "e_message"]
MUNICIPALITIES = ["853", "091", "202", "272"]


def _contact(rng: random.Random, *, contact_id: str, days: float) -> dict:
    return {
        "contact_id": contact_id,
        "occurred_at": START + dt.timedelta(days=days, seconds=rng.randrange(0, 8 * 3600)),
        "client_id": rng.choice([None, "A", "B", "C", "D", "E"]),
        "channel": rng.choice(CHANNELS),
        "municipality_code": rng.choice(MUNICIPALITIES),
        "resolved_first_contact": rng.choice([None, True, False]),
        "age_band": rng.choice([None, "0-17", "18-64", "65-79", "80+"]),
    }


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String)).sort("id")


def _correct_contact(engine: sa.Engine, contact_id: str, **values) -> None:
    table = Contact.__table__
    with engine.begin() as conn:
        seq = reserve_change_seq(conn, 1)
        conn.execute(sa.update(table).where(table.c.contact_id == contact_id).values(change_seq=seq, **values))


def test_incremental_refresh_equals_a_full_load(engine, settings):
    rng = random.Random(2026)
    known: list[str] = []

    def new_contacts(count: int, *, around: float) -> None:
        rows = []
        for _ in range(count):
            known.append(f"k{len(known)}")
            rows.append(_contact(rng, contact_id=known[-1], days=max(0.0, around + rng.uniform(-10, 3))))
        add_contacts(engine, rows)

    new_contacts(60, around=20)
    add_referrals(engine, [
        {"contact_id": rng.choice(known), "referred_at": START + dt.timedelta(days=rng.uniform(0, 30)),
         "destination": rng.choice(["physio_rehab", "none_needed", "adult_social_services"])}
        for _ in range(30)
    ])
    add_feedback(engine, [{"answered_at": START + dt.timedelta(days=rng.uniform(0, 30)), "recommend_score": 8}])
    store = make_store(engine, settings)

    for round_ in range(MAX_CHUNKS + 2):
        day = 30 + round_ * 2
        new_contacts(rng.randrange(1, 5), around=day)  # mostly recent, some a week or more back
        if round_ % 3 == 0:  # a correction to an old contact: new time, client, channel, place
            _correct_contact(
                engine, rng.choice(known[:40]), occurred_at=START + dt.timedelta(days=rng.uniform(0, 60)),
                client_id=rng.choice(["A", "B", None]), channel=rng.choice(CHANNELS), municipality_code="091",
            )
        if round_ % 4 == 1:  # a referral whose contact has not arrived yet, then the contact
            add_referrals(engine, [{"contact_id": f"late{round_}", "referred_at": START + dt.timedelta(days=day),
                                    "destination": "physio_rehab"}])
            assert store.refresh()
            add_contacts(engine, [_contact(rng, contact_id=f"late{round_}", days=day - 1)])
        if round_ % 5 == 2:
            add_feedback(engine, [{"answered_at": START + dt.timedelta(days=day), "recommend_score": 3}])
        assert store.refresh()
        _assert_same_as_full_load(store, engine, settings)

    # Many small live updates over dense data: each leaves the rows a window back as a new
    # chunk, and the recent end is rebuilt as one chunk now and then.
    dense = START + dt.timedelta(days=53)
    add_contacts(engine, [{**_contact(rng, contact_id=f"dense{i}", days=0), "occurred_at": dense + dt.timedelta(minutes=i)}
                          for i in range(MAX_CHUNKS * 4)])
    assert store.refresh()
    for minute in range(MAX_CHUNKS * 3):
        add_contacts(engine, [{**_contact(rng, contact_id=f"live{minute}", days=0),
                               "occurred_at": START + dt.timedelta(days=60, minutes=minute)}])
        assert store.refresh()
        assert store.contacts.n_chunks() <= MAX_CHUNKS + 1
    _assert_same_as_full_load(store, engine, settings)


def _assert_same_as_full_load(store: FactStore, engine: sa.Engine, settings) -> None:
    full = FactStore(engine, settings)
    full.refresh()
    for name, time in (("contacts", "occurred_at"), ("referrals", "referred_at"), ("feedback", "answered_at")):
        incremental = store.whole(name)
        assert incremental[time].is_sorted(), f"{name} out of time order"
        assert_frame_equal(_plain(incremental), _plain(full.whole(name)), check_column_order=False)


def test_a_late_contact_gives_its_pending_referral_a_place(engine, settings):
    add_referrals(engine, [{"contact_id": "x1", "referred_at": "2025-03-03T10:00:00", "destination": "physio_rehab"}])
    store = make_store(engine, settings)
    assert store.whole("referrals")["municipality_code"].to_list() == [None]
    add_contacts(engine, [{"contact_id": "x1", "occurred_at": "2025-03-03T09:50:00", "municipality_code": "272"}])
    store.refresh()
    assert store.whole("referrals")["municipality_code"].cast(pl.String).to_list() == ["272"]
    table = Referral.__table__
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 1


def test_splice_derives_only_what_a_change_touches():
    """Nothing changed and nothing named: the frame comes back as it was, without deriving
    (a new contact with no referral must not re-derive the referrals); a change re-derives
    from the earliest time it touches, and ``since`` reaches back further."""
    frame = pl.DataFrame({
        "id": [1, 2, 3, 4],
        "t": [START + dt.timedelta(hours=h) for h in range(4)],
        "v": [10, 20, 30, 40],
    }).with_columns((pl.col("v") * 2).alias("derived"))
    derived: list[list[int]] = []

    def derive(raw: pl.DataFrame) -> pl.DataFrame:
        derived.append(sorted(raw["id"].to_list()))
        return raw.with_columns((pl.col("v") * 2).alias("derived"))

    empty = frame.select("id", "t", "v").clear()
    assert splice(frame, empty, time="t", derive=derive) is frame
    assert splice(frame, empty, time="t", derive=derive, extra_ids=pl.Series("id", [], pl.Int64)) is frame
    assert derived == []
    changed = pl.DataFrame({"id": [3, 5], "t": [START + dt.timedelta(hours=2), START + dt.timedelta(hours=5)], "v": [31, 50]})
    result = splice(frame, changed, time="t", derive=derive)
    assert derived == [[3, 4, 5]]
    assert result["derived"].to_list() == [20, 40, 62, 80, 100]
    again = splice(result, empty, time="t", derive=derive, since=START + dt.timedelta(hours=1))
    assert derived[-1] == [2, 3, 4, 5]
    assert_frame_equal(again, result)


def test_splice_by_client_equals_deriving_every_row():
    """Re-deriving only the touched clients and the rows the clock moved past gives what
    deriving every row gives: new contacts, corrections that move a contact to another time
    or client, and steps with no change while the clock runs on."""
    rng = random.Random(2026)
    window = dt.timedelta(hours=6)
    clock = START + dt.timedelta(days=2)

    def derive(raw: pl.DataFrame) -> pl.DataFrame:
        again = raw.with_columns(_recontact(raw, window).alias("again"))
        verifiable = pl.col("client_id").is_not_null() & (pl.col("occurred_at") <= clock - window)
        return again.with_columns(pl.when(verifiable).then(~pl.col("again")).alias("verified"))

    def drawn(ids: list[int], around: dt.datetime) -> pl.DataFrame:
        return pl.DataFrame({
            "id": ids,
            "occurred_at": [around - dt.timedelta(minutes=rng.randrange(0, 600)) for _ in ids],
            "client_id": [rng.choice([None, "A", "B", "C", "D", "E", "F"]) for _ in ids],
        }, schema={"id": pl.Int64, "occurred_at": pl.Datetime("us", "UTC"), "client_id": pl.String})

    stored = drawn(list(range(200)), clock)
    frame = derive(stored).sort("occurred_at")
    next_id = 200
    for _ in range(60):
        previous, clock = clock, clock + dt.timedelta(minutes=rng.randrange(0, 180))
        new_ids = list(range(next_id, next_id + rng.randrange(0, 4)))
        next_id += len(new_ids)
        corrected = rng.sample(stored["id"].to_list(), rng.randrange(0, 3))
        changed = drawn(new_ids + corrected, clock)
        frame = splice(frame, changed, time="occurred_at", derive=derive, lead=window, since=previous - window,
                       until=clock - window, group="client_id")
        stored = pl.concat([stored.filter(~pl.col("id").is_in(changed["id"].implode())), changed])
        assert frame["occurred_at"].is_sorted()
        assert_frame_equal(frame.sort("id"), derive(stored).sort("id"), check_column_order=False)


def test_a_first_read_by_quarters_gives_late_contacts_their_referrals(engine, settings):
    """A first read goes a quarter at a time and looks for rows naming a new contact only
    among those still waiting for theirs: a referral and an answer recorded minutes before
    their contact, across a quarter's end, get its place and unit as in one read of every row."""
    edge = dt.datetime(2025, 4, 1, tzinfo=HELSINKI_ZONE).astimezone(dt.UTC)
    add_contacts(engine, [
        {"contact_id": "early", "occurred_at": edge - dt.timedelta(days=50), "municipality_code": "091", "unit_code": "u1"},
        {"contact_id": "across", "occurred_at": edge + dt.timedelta(minutes=5), "municipality_code": "272", "unit_code": "u2"},
    ])
    add_referrals(engine, [
        {"contact_id": contact, "referred_at": edge - dt.timedelta(minutes=5), "destination": "physio_rehab"}
        for contact in ("across", "early", "never")
    ])
    add_feedback(engine, [{"contact_id": "across", "answered_at": edge - dt.timedelta(minutes=5), "recommend_score": 9}])
    by_quarters = make_store(engine, settings)
    assert by_quarters.history.rows("contacts") == 2, "both quarters were read and moved to the history"
    whole = make_store(engine, settings.model_copy(update={"memory_days": 0}))
    places = {"across": "272", "early": "091", "never": None}
    for store in (by_quarters, whole):
        referrals = store.whole("referrals").select("contact_id", pl.col("municipality_code").cast(pl.String)).rows()
        assert dict(referrals) == places
        assert store.whole("feedback")["unit_code"].cast(pl.String).to_list() == ["u2"]


def test_bulk_read_through_arrow_equals_the_cursor(engine):
    """The Arrow path (ADBC; a child process on SQLite) returns what the cursor returns,
    including columns whose first rows are empty."""
    add_contacts(engine, [{"occurred_at": "2025-03-03T10:00:00"}] * 3 + [
        {"occurred_at": "2025-03-04T10:00:00", "client_id": "A", "resolved_first_contact": True, "queue_seconds": 7,
         "callback_requested_at": "2025-03-04T09:00:00", "unit_code": "=1+1"},
    ])
    add_referrals(engine, [{"contact_id": "nope", "referred_at": "2025-03-03T10:00:00", "destination": "physio_rehab"}])
    arrow = read_changes_with(engine, bulk=True)
    cursor = read_changes_with(engine, bulk=False)
    for name in TABLES:
        assert_frame_equal(arrow[name].sort("id"), cursor[name].sort("id"))
    assert arrow["contact"]["unit_code"].cast(pl.String).to_list()[-1] == "=1+1"
    assert arrow["contact"]["queue_seconds"].to_list() == [None, None, None, 7]


def test_one_bulk_reader_serves_a_run_of_reads_and_says_what_failed(engine):
    """A first read's quarters go through one reader (on SQLite one child process): each
    read sees the rows committed before it; a failing query is said with the database's
    own message, and the reader is closed, not left half-way."""
    from data_access.columnar import BulkReader
    from data_access.snapshot import select_columns

    add_contacts(engine, [{"occurred_at": "2025-03-03T10:00:00", "client_id": "A"}])
    select, schema = select_columns(TABLES["contact"], ["id", "client_id", "occurred_at"])
    keep = lambda _name, frame: frame  # noqa: E731
    with BulkReader(engine) as reader:
        first = reader.read({"contact": (select, schema)}, keep)
        child = reader._child
        add_contacts(engine, [{"occurred_at": "2025-03-04T10:00:00", "client_id": "B"}])
        second = reader.read({"contact": (select, schema)}, keep)
        assert reader._child is child  # the same process (None on PostgreSQL: a connection)
        assert first["contact"]["client_id"].to_list() == ["A"]
        assert sorted(second["contact"]["client_id"].to_list()) == ["A", "B"]
        assert min(second["contact"]["occurred_at"].to_list()) == int(ts("2025-03-03T10:00:00").timestamp())  # epoch seconds
        missing = sa.select(sa.column("id")).select_from(sa.table("no_such_table"))
        with pytest.raises(Exception, match="no_such_table"):
            reader.read({"nothing": (missing, {"id": pl.Int64()})}, lambda _name, frame: frame)
        assert reader._child is None
        if engine.dialect.name == "sqlite":
            assert child is not None and child.poll() is not None  # ended, not left running


def test_bulk_files_go_to_the_tmpfs_only_where_it_has_room(engine, monkeypatch, tmp_path):
    """A container's /dev/shm is often 64 MB, less than a month of a large county's contacts:
    the files then go to the system's temporary folder, and a read works either way."""
    import os
    from types import SimpleNamespace

    from data_access import columnar

    roomy = tmp_path / "roomy"
    roomy.mkdir()
    monkeypatch.setattr(columnar, "MEMORY_FOLDER", str(roomy))
    free = {"blocks": 1 << 20}  # 4 GB in 4 kB blocks
    real = os.statvfs

    def statvfs(path):
        if str(path) == str(roomy):
            return SimpleNamespace(f_bavail=free["blocks"], f_frsize=4096)
        return real(path)

    monkeypatch.setattr(columnar.os, "statvfs", statvfs)
    assert columnar.scratch_folder() == str(roomy)
    free["blocks"] = (64 << 20) // 4096  # 64 MB
    assert columnar.scratch_folder() is None
    monkeypatch.setattr(columnar, "MEMORY_FOLDER", str(tmp_path / "absent"))
    assert columnar.scratch_folder() is None

    add_contacts(engine, [{"occurred_at": "2025-03-03T10:00:00", "client_id": "A"}])
    assert read_changes_with(engine, bulk=True)["contact"]["client_id"].cast(pl.String).to_list() == ["A"]


def test_a_killed_servers_reading_folder_is_removed_by_the_next_read(tmp_path):
    """A server killed mid-read leaves its folder (up to a month of contacts) on the tmpfs.
    The next read removes a folder whose process is gone and which nothing has touched for
    ten minutes; its own, a running process's, a fresh one and other names stay."""
    import os
    import subprocess  # nosec B404
    import sys
    from pathlib import Path

    from data_access import columnar

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = int(gone.stdout)
    old = columnar.ORPHAN_SECONDS + 60

    def folder(name: str, *, age: float) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "contact_0.arrow").write_bytes(b"x" * 100)
        stamp = path.stat().st_mtime - age
        os.utime(path, (stamp, stamp))
        return path

    orphan = folder(f"ohjaustaulu-{dead}-abc", age=old)
    mine = folder(f"ohjaustaulu-{os.getpid()}-def", age=old)
    parent = folder(f"ohjaustaulu-{os.getppid()}-ghi", age=old)
    fresh = folder(f"ohjaustaulu-{dead}-jkl", age=0)
    other = folder("ohjaustaulu-notes", age=old)
    assert columnar.remove_orphaned_scratch(str(tmp_path)) == [orphan]
    assert not orphan.exists() and all(p.exists() for p in (mine, parent, fresh, other))


def test_a_run_of_reads_given_at_once_answers_each_in_order_and_a_failure_leaves_no_answer_behind(engine):
    """A quarter's months are given to the reader at once (on SQLite the child reads the next
    month while the last is taken in): each read gets its own rows, in order. When one read
    fails half-way, or what is done with a frame fails, the answers still owed for the rest
    of the run are not taken by the next read: it gets its own rows."""
    from data_access.columnar import BulkReader
    from data_access.snapshot import select_columns

    add_contacts(engine, [{"occurred_at": f"2025-0{month}-03T10:00:00", "client_id": f"c{month}"} for month in (1, 2, 3)])
    table = TABLES["contact"]
    select, schema = select_columns(table, ["id", "client_id"])

    def month(number: int) -> dict:
        low, high = ts(f"2025-0{number}-01T00:00:00"), ts(f"2025-0{number + 1}-01T00:00:00")
        return {"contact": (select.where(table.c.occurred_at >= low, table.c.occurred_at < high), schema),
                "again": (select.where(table.c.occurred_at >= low, table.c.occurred_at < high), schema)}

    def clients(frames: dict) -> list[list[str]]:
        return [frame["client_id"].to_list() for frame in frames.values()]

    keep = lambda _name, frame: frame  # noqa: E731
    missing = {"nothing": (sa.select(sa.column("id")).select_from(sa.table("no_such_table")), {"id": pl.Int64()})}
    with BulkReader(engine) as reader:
        assert [clients(frames) for frames in reader.read_many([month(1), month(2), month(3)], keep)] == [
            [["c1"], ["c1"]], [["c2"], ["c2"]], [["c3"], ["c3"]],
        ]
        with pytest.raises(Exception, match="no_such_table"):
            reader.read_many([month(1), missing, month(3)], keep)
        assert clients(reader.read(month(2), keep)) == [["c2"], ["c2"]]

        def failing(name: str, frame: pl.DataFrame) -> pl.DataFrame:
            if frame["client_id"].to_list() == ["c1"]:
                raise ValueError("a value outside its code list")
            return frame

        with pytest.raises(ValueError, match="code list"):
            reader.read_many([month(1), month(2), month(3)], failing)
        assert clients(reader.read(month(3), keep)) == [["c3"], ["c3"]]


def read_changes_with(engine: sa.Engine, *, bulk: bool) -> dict[str, pl.DataFrame]:
    from data_access import snapshot

    threshold = snapshot.BULK_ROWS
    snapshot.BULK_ROWS = -1 if bulk else 10**12
    try:
        return snapshot.read_changes(engine, after_seq=0, upto_seq=data_version(engine))
    finally:
        snapshot.BULK_ROWS = threshold


def _saved_store(engine, settings, monkeypatch) -> FactStore:
    from data_access import snapshot

    monkeypatch.setattr(snapshot, "BULK_ROWS", 3)
    store = FactStore(engine, settings)
    store.refresh()
    store.wait_for_save()
    return store


def test_a_restarted_store_starts_from_its_saved_snapshot(engine, settings, monkeypatch):
    add_contacts(engine, [{"occurred_at": f"2025-03-0{d}T10:00:00", "client_id": "A", "resolved_first_contact": True}
                          for d in range(1, 8)])
    add_referrals(engine, [{"contact_id": "nope", "referred_at": "2025-03-03T10:00:00", "destination": "physio_rehab"}])
    first = _saved_store(engine, settings, monkeypatch)
    saved = list(settings.resolved_snapshot_dir.glob("v*/meta.json"))
    assert [p.parent.name for p in saved] == [f"v{first.version}"]

    add_contacts(engine, [{"occurred_at": "2025-03-09T10:00:00", "client_id": "A"}])  # after the save
    restarted = FactStore(engine, settings)
    restarted.refresh()
    assert restarted.restored_version == first.version
    assert restarted.version > first.version
    _assert_same_as_full_load(restarted, engine, settings.model_copy(update={"snapshot_dir": settings.data_dir / "none"}))


def test_a_snapshot_of_another_database_or_with_missing_rows_is_not_used(engine, settings, monkeypatch):
    add_contacts(engine, [{"occurred_at": "2025-03-03T10:00:00"} for _ in range(6)])
    _saved_store(engine, settings, monkeypatch)
    table = Contact.__table__
    with engine.begin() as conn:  # rows removed behind the change sequence's back
        conn.execute(sa.delete(table).where(table.c.id == conn.execute(sa.select(sa.func.min(table.c.id))).scalar()))
    store = FactStore(engine, settings)
    store.refresh()
    assert store.restored_version is None
    assert store.whole("contacts").height == 5

    _saved_store(engine, settings, monkeypatch)
    with engine.begin() as conn:  # as if the database had been re-created
        conn.execute(sa.text("update data_version set database_id = 'another'"))
    store = FactStore(engine, settings)
    store.refresh()
    assert store.restored_version is None
    assert store.whole("contacts").height == 5


def test_a_code_outside_its_list_stops_the_load_with_its_name(engine, settings):
    from data_access.snapshot import UnknownCode

    add_contacts(engine, [{"occurred_at": "2025-03-03T10:00:00", "channel": "phone"}, {"occurred_at": "2025-03-03T11:00:00", "channel": "faksi"}])
    with pytest.raises(UnknownCode, match=r"contact\.channel holds 'faksi'"):
        make_store(engine, settings)


def test_a_time_with_a_fraction_of_a_second_stays_in_its_own_second_on_both_databases(engine, settings):
    """Ingestion keeps fractions of a second. Both databases read a time to the millisecond
    and drop the fraction, so 23:59:59.6 Helsinki time is that day and hour (PostgreSQL
    rounded to the nearest second, and so to the next day, where SQLite truncates)."""
    add_contacts(engine, [
        {"occurred_at": "2026-11-02T21:59:59.600000+00:00", "callback_requested_at": "2026-11-02T21:59:59.700000+00:00",
         "callback_done_at": "2026-11-02T21:59:59.900000+00:00"},
        {"occurred_at": "2026-11-03T07:59:59.999600+00:00"},  # 08:00:00.000 to the millisecond
    ])
    add_referrals(engine, [{"contact_id": "c-late", "referred_at": "2026-11-02T21:59:59.500000+00:00", "destination": "physio_rehab",
                            "service_started_at": "2026-11-03T21:59:59.900000+00:00"}])
    store = make_store(engine, settings)
    contacts = store.whole("contacts").sort("occurred_at")
    assert contacts["occurred_at"].to_list() == [
        dt.datetime(2026, 11, 2, 21, 59, 59, tzinfo=dt.UTC), dt.datetime(2026, 11, 3, 8, 0, 0, tzinfo=dt.UTC),
    ]
    first = contacts.row(0, named=True)
    assert (first["day"], first["hour"], first["minute_of_day"]) == (dt.date(2026, 11, 2), 23, 23 * 60 + 59)
    assert first["callback_same_day"] is True
    referral = store.whole("referrals").row(0, named=True)
    assert referral["day"] == dt.date(2026, 11, 2) and referral["days_to_start"] == 1.0


def test_row_counts_in_parallel_ranges_equal_a_plain_count(engine):
    """The counts that guard a saved snapshot, summed over ranges of change_seq, count every
    row: the ends of the ranges, and a row inserted behind the change sequence's back."""
    from data_access.snapshot import row_counts

    add_contacts(engine, [{"occurred_at": f"2025-03-0{d}T10:00:00"} for d in range(1, 8)])
    add_contacts(engine, [{"occurred_at": "2025-03-09T10:00:00"}])
    add_referrals(engine, [{"contact_id": "nope", "referred_at": "2025-03-03T10:00:00", "destination": "physio_rehab"}])
    table = Contact.__table__
    with engine.begin() as conn:
        row = conn.execute(sa.select(table).limit(1)).mappings().one()
        conn.execute(sa.insert(table).values({**{k: v for k, v in row.items() if k != "id"}, "contact_id": "outside", "change_seq": 0}))
    with engine.connect() as conn:
        plain = {name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for name, t in TABLES.items()}
    assert plain == {"contact": 9, "referral": 1, "feedback": 0, "guidance_case": 0, "measurement": 0}
    for parts in (1, 3, 8):
        assert row_counts(engine, parts=parts) == plain
