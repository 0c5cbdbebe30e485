"""The watch folder and the live simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa

from data_access.engine import data_version
from data_access.ingest import load_profile
from data_access.ingest.watch import Watcher
from data_access.models import Contact, Referral
from sample_data.simulate import simulate

HEADER = "source_system,contact_id,occurred_at,municipality_code,channel"


def _count(engine, table=Contact) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_half_written_file_is_not_read_until_it_settles(engine, tmp_path):
    watcher = Watcher(engine, tmp_path, load_profile(), settle_seconds=2.0)
    path = tmp_path / "contacts.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\ns,2,2025-03-03T10:0")  # cut mid-line
        handle.flush()
        assert watcher.poll(now=0.0) == []  # first sight: remember, do not read
        handle.write("1:00,853,chat\n")
    assert watcher.poll(now=1.0) == []  # it changed: wait again
    assert watcher.poll(now=2.0) == []  # unchanged, but not long enough
    ((done, report),) = watcher.poll(now=3.5)
    assert done == path and report.inserted == 2 and report.quarantined == 0
    assert (tmp_path / "done" / "contacts.csv").exists() and not path.exists()


def test_temporary_names_are_never_read(engine, tmp_path):
    (tmp_path / "contacts.csv.part").write_text(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    (tmp_path / ".hidden.csv").write_text(HEADER + "\ns,2,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    watcher = Watcher(engine, tmp_path, load_profile(), settle_seconds=0.0)
    watcher.poll(now=0.0)
    assert watcher.poll(now=1.0) == []
    assert _count(engine) == 0


def test_unprocessable_file_moves_to_failed_with_its_reason(engine, tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    watcher = Watcher(engine, tmp_path, load_profile(), kind="contacts", settle_seconds=0.0)
    watcher.poll(now=0.0)
    ((_, message),) = watcher.poll(now=1.0)
    assert "missing required column(s)" in message
    assert (tmp_path / "failed" / "bad.csv").exists()
    assert "missing required column(s)" in (tmp_path / "failed" / "bad.csv.error.txt").read_text(encoding="utf-8")


def test_after_a_restart_nothing_is_loaded_twice(engine, tmp_path):
    (tmp_path / "c.csv").write_text(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    first = Watcher(engine, tmp_path, load_profile(), settle_seconds=0.0)
    first.poll(now=0.0)
    first.poll(now=1.0)
    version = data_version(engine)
    # A new watcher (a restarted process) on the same folder, and the same file delivered again.
    (tmp_path / "c.csv").write_text(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    again = Watcher(engine, tmp_path, load_profile(), settle_seconds=0.0)
    again.poll(now=0.0)
    ((_, report),) = again.poll(now=1.0)
    assert (report.inserted, report.unchanged) == (0, 1)
    assert data_version(engine) == version and _count(engine) == 1
    names = sorted(p.name for p in (tmp_path / "done").iterdir())
    assert len(names) == 2 and "c.csv" in names  # the second copy kept beside the first, renamed


def test_simulate_writes_contacts_just_after_midnight(engine):
    """Today has no sample contacts yet at 00.10 local time; the stream must not stop (or
    fail, as it did) until morning."""
    just_after_midnight = dt.datetime(2026, 11, 23, 22, 10, tzinfo=dt.UTC)  # 00.10 in Helsinki
    ticks = itertools.count()
    written = simulate(
        engine, rate=20, duration=1, seed=4, sleep=lambda _s: None,
        clock=lambda: just_after_midnight + dt.timedelta(seconds=next(ticks)),
    )
    assert written > 0 and _count(engine) == written
    with engine.connect() as conn:
        oldest = conn.execute(sa.select(sa.func.min(Contact.occurred_at))).scalar()
    assert oldest == just_after_midnight


def test_simulate_writes_live_contacts_and_referrals(engine):
    written = simulate(engine, rate=20, duration=2, seed=3, sleep=lambda _s: None)
    assert written > 0 and _count(engine) == written
    with engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(Contact.occurred_at))).scalar()
        oldest = conn.execute(sa.select(sa.func.min(Contact.occurred_at))).scalar()
    assert (newest - oldest).total_seconds() < 60  # happening now, not spread over a day
    assert _count(engine, Referral) > 0
