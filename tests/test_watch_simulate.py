"""The watch folder and the live simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from data_access.engine import data_version
from data_access.ingest import load_profile, watch
from data_access.ingest.pipeline import ingest_file
from data_access.ingest.watch import Watcher
from data_access.models import Contact, Referral
from sample_data.simulate import simulate

HEADER = "source_system,contact_id,occurred_at,municipality_code,channel"


def _count(engine, table=Contact) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def _rows(first: int, last: int) -> str:
    return "".join(f"s,{i},2025-03-03T10:{i // 60:02d}:{i % 60:02d},853,phone\n" for i in range(first, last))


def _writer_unseen(monkeypatch) -> None:
    """As on a network share, or for another user's file when the watcher is not root."""
    monkeypatch.setattr(watch, "scan_writers", lambda folder: watch.Writers(), raising=False)


@pytest.fixture
def inbox(tmp_path) -> Path:
    """The watched folder, beside (not around) a SQLite test database."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_half_written_file_is_not_read_until_it_settles(engine, inbox):
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=2.0)
    path = inbox / "contacts.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\ns,2,2025-03-03T10:0")  # cut mid-line
        handle.flush()
        assert watcher.poll(now=0.0) == []  # first sight: remember, do not read
        handle.write("1:00,853,chat\n")
    assert watcher.poll(now=1.0) == []  # it changed: wait again
    assert watcher.poll(now=2.0) == []  # unchanged, but not long enough
    ((done, report),) = watcher.poll(now=3.5)
    assert done == path and report.inserted == 2 and report.quarantined == 0
    assert (inbox / "done" / "contacts.csv").exists() and not path.exists()  # closed by its writer, seen in /proc


def test_a_writer_that_pauses_twice_the_settle_time_mid_file_loses_no_row(engine, inbox):
    """The old watcher read the first half after the pause had lasted `settle`, moved the file to
    done/, and the writer's last rows went into the moved file, lost without a word."""
    settle = 0.3
    path = inbox / "contacts.csv"
    opened = threading.Event()

    def write() -> None:
        with path.open("w", encoding="utf-8") as handle:
            handle.write(HEADER + "\n" + _rows(0, 11))
            handle.flush()
            opened.set()
            time.sleep(2 * settle)
            handle.write(_rows(11, 20))

    writer = threading.Thread(target=write)
    writer.start()
    opened.wait()
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=settle)
    reports = []
    deadline = time.monotonic() + 20
    while not (inbox / "done" / "contacts.csv").exists() and time.monotonic() < deadline:
        reports += [report for _, report in watcher.poll()]
        time.sleep(0.05)
    writer.join()
    # Never read while the writer had it open; read again (all unchanged) only when it was
    # completed between the watcher's look and its read.
    assert _count(engine) == 20 and reports and {r.read for r in reports} == {20} and sum(r.inserted for r in reports) == 20
    assert _listing(inbox) == ["done/contacts.csv"]


def test_a_file_that_grows_after_its_first_load_is_loaded_again_and_each_row_stored_once(engine, inbox, monkeypatch):
    """A writer the watcher cannot see (a network share) that pauses longer than the settle time:
    the first half is loaded, the file stays, and the whole is loaded again when it has grown."""
    _writer_unseen(monkeypatch)
    path = inbox / "contacts.csv"
    path.write_text(HEADER + "\n" + _rows(0, 11), encoding="utf-8")
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=2.0, done_after_seconds=30.0)
    assert watcher.poll(now=0.0) == []
    ((_, first),) = watcher.poll(now=2.0)
    assert (first.read, first.inserted) == (11, 11) and path.exists()  # loaded, but kept
    with path.open("a", encoding="utf-8") as handle:
        handle.write(_rows(11, 20))
    assert watcher.poll(now=10.0) == []  # it changed: settle again
    ((_, second),) = watcher.poll(now=12.0)
    assert (second.read, second.inserted, second.unchanged) == (20, 9, 11)
    assert watcher.poll(now=30.0) == [] and path.exists()  # 20 s unchanged: not yet
    assert watcher.poll(now=40.5) == [] and (inbox / "done" / "contacts.csv").exists() and not path.exists()
    assert _count(engine) == 20


def test_a_file_that_changes_while_it_is_loaded_is_loaded_again(engine, inbox, monkeypatch):
    path = inbox / "contacts.csv"
    path.write_text(HEADER + "\n" + _rows(0, 5), encoding="utf-8")
    loads = []

    def load_and_append(*args, **kwargs):
        report = ingest_file(*args, **kwargs)
        if not loads:
            with path.open("a", encoding="utf-8") as handle:
                handle.write(_rows(5, 8))
        loads.append(report)
        return report

    monkeypatch.setattr(watch, "ingest_file", load_and_append)
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=1.0)
    watcher.poll(now=0.0)
    ((_, first),) = watcher.poll(now=1.0)
    assert first.inserted == 5 and path.exists()  # not moved: the load did not see the end
    assert watcher.poll(now=1.5) == []
    ((_, second),) = watcher.poll(now=2.5)
    assert (second.inserted, second.unchanged) == (3, 5) and (inbox / "done" / "contacts.csv").exists()
    assert _count(engine) == 8


def test_names_the_watcher_does_not_read_move_to_failed_with_one_sentence_once(engine, inbox):
    for name in ("export.xlsx", "contacts.csv.gz", "CONTACTS_EXPORT"):
        (inbox / name).write_bytes(b"PK\x03\x04 not a text file")
    for name in ("contacts.csv.tmp", "contacts.csv~", "contacts.csv.part"):  # still being written: they wait
        (inbox / name).write_text(HEADER + "\n" + _rows(0, 1), encoding="utf-8")
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=1.0)
    assert watcher.poll(now=0.0) == []
    results = dict(watcher.poll(now=1.0))
    assert sorted(p.name for p in results) == ["CONTACTS_EXPORT", "contacts.csv.gz", "export.xlsx"]
    assert "is compressed" in results[inbox / "contacts.csv.gz"]
    for name in ("export.xlsx", "contacts.csv.gz", "CONTACTS_EXPORT"):
        reason = (inbox / "failed" / f"{name}.error.txt").read_text(encoding="utf-8")
        assert reason.count(". ") == 0 and reason.strip().endswith(")"), reason  # one sentence
        assert "*.csv" in reason and "*.parquet" in reason and "not loaded" in reason
        assert (inbox / "failed" / name).exists() and not (inbox / name).exists()
    assert watcher.poll(now=5.0) == [] and watcher.poll(now=9.0) == []  # said once
    assert {p.name for p in inbox.iterdir() if p.is_file()} >= {"contacts.csv.tmp", "contacts.csv~", "contacts.csv.part"}
    assert _count(engine) == 0


def test_temporary_names_are_never_read(engine, inbox):
    (inbox / "contacts.csv.part").write_text(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    (inbox / ".hidden.csv").write_text(HEADER + "\ns,2,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=0.0)
    watcher.poll(now=0.0)
    assert watcher.poll(now=1.0) == []
    assert _count(engine) == 0


def test_unprocessable_file_moves_to_failed_with_its_reason(engine, inbox):
    (inbox / "bad.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    watcher = Watcher(engine, inbox, load_profile(), kind="contacts", settle_seconds=0.0)
    watcher.poll(now=0.0)
    ((_, message),) = watcher.poll(now=1.0)
    assert "missing required column(s)" in message
    assert (inbox / "failed" / "bad.csv").exists()
    assert "missing required column(s)" in (inbox / "failed" / "bad.csv.error.txt").read_text(encoding="utf-8")


def test_after_a_restart_nothing_is_loaded_twice(engine, inbox):
    (inbox / "c.csv").write_text(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    first = Watcher(engine, inbox, load_profile(), settle_seconds=0.0)
    first.poll(now=0.0)
    first.poll(now=1.0)
    version = data_version(engine)
    # A new watcher (a restarted process) on the same folder, and the same file delivered again.
    (inbox / "c.csv").write_text(HEADER + "\ns,1,2025-03-03T10:00:00,853,phone\n", encoding="utf-8")
    again = Watcher(engine, inbox, load_profile(), settle_seconds=0.0)
    again.poll(now=0.0)
    ((_, report),) = again.poll(now=1.0)
    assert (report.inserted, report.unchanged) == (0, 1)
    assert data_version(engine) == version and _count(engine) == 1
    names = sorted(p.name for p in (inbox / "done").iterdir())
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
