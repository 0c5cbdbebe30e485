"""Memory of the fact store against the length of the history (data_access/history.py).

    python benchmarks/memory_benchmark.py --contacts 5000000 [--years 3] [--database sqlite|postgresql]
        [--memory-days 120 0]

For each memory setting (0: every row in memory, the design before), in fresh child
processes so each number is its own:
1. a first read of every row (no saved snapshot): seconds and peak resident memory;
2. a restart from the saved snapshot: seconds; then the overview's questions (today so far,
   yesterday, 7 days and the weeks before) and a 30-day page's, timed; resident memory after
   them (anonymous memory, which is the process's own, and file pages, the history's files
   in the operating system's cache, given back under pressure, reported apart);
3. a question over a year and over the whole history (the history read from its files),
   timed, and resident memory after them.
The database is seeded with the benchmark's generator (0.45 referrals and 0.05 feedback
answers per contact) over ``--years`` years and reused when it holds the contacts.
Results go to benchmarks/results/memory_<database>_<contacts>_<years>y.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_access.config import Settings
from data_access.engine import create_db_engine, upgrade_database

OVERVIEW = ("contacts", "first_contact_resolution", "verified_resolution", "electronic_share", "referrals", "same_day_callback_share")


def memory() -> dict[str, float]:
    """The process's resident memory (MB): all, anonymous, file pages, and the peak."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            found[name] = round(int(value.split()[0]) / 1024, 1)
    return found


def ensure_database(url: str, contacts: int, years: int) -> None:
    engine = create_db_engine(url)
    upgrade_database(engine)
    with engine.connect() as conn:
        have = conn.execute(sa.text("select count(*) from contact")).scalar() or 0
    if have >= contacts:
        print(f"database holds {have:,} contacts", flush=True)
        return
    from sample_data.seed import seed_database

    started = time.perf_counter()
    report = seed_database(engine, contacts=contacts, days=years * 365, seed=2026, progress=lambda m: print(" ", m, flush=True))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("vacuum analyze"))
    print(f"seeded {report.contacts:,} contacts over {years} years in {time.perf_counter() - started:.0f} s", flush=True)


def _timed(store, metrics, filters, by=()) -> float:
    from data_access.metrics import compute

    started = time.perf_counter()
    compute(store, metrics=list(metrics), filters=filters, by=list(by))
    return round((time.perf_counter() - started) * 1000, 1)


def phase(kind: str, url: str, snapshot_dir: str, memory_days: int, queue: multiprocessing.Queue) -> None:
    """One child process: a first read (``first``) or a restart and the questions (``restart``)."""
    from data_access.metrics import Filters
    from data_access.snapshot import HELSINKI_ZONE, FactStore

    settings = Settings(database_url=url, snapshot_dir=Path(snapshot_dir), memory_days=memory_days)
    engine = create_db_engine(url)
    started = time.perf_counter()
    store = FactStore(engine, settings)
    store.refresh()
    seconds = round(time.perf_counter() - started, 2)
    store.wait_for_save()
    out: dict = {"seconds": seconds, "memory_after_load": memory(), "restored": store.restored_version is not None,
                 "rows_in_memory": store.contacts.height, "rows_in_history": store.history.rows("contacts")}
    if kind == "restart":
        today = dt.datetime.now(HELSINKI_ZONE).date()
        week = dt.timedelta(days=7)
        overview = tuple(
            Filters(start=start, end=end) for start, end in (
                (today, today), (today - dt.timedelta(days=1), today - dt.timedelta(days=1)),
                (today - week + dt.timedelta(days=1), today), (today - 2 * week + dt.timedelta(days=1), today - week),
            )
        )
        month = Filters(start=today - dt.timedelta(days=29), end=today)
        out["overview_ms"] = [_timed(store, OVERVIEW, overview) for _ in range(3)]
        out["month_by_municipality_ms"] = [_timed(store, OVERVIEW, month, ("municipality",)) for _ in range(3)]
        out["memory_after_recent_pages"] = memory()
        year = Filters(start=today - dt.timedelta(days=364), end=today)
        out["year_by_month_ms"] = [_timed(store, OVERVIEW, year, ("month",)) for _ in range(3)]
        everything = Filters(start=dt.date(2000, 1, 1), end=today)
        out["history_by_municipality_ms"] = [_timed(store, OVERVIEW, everything, ("municipality",)) for _ in range(3)]
        out["memory_after_long_periods"] = memory()
    queue.put(out)


def run(kind: str, url: str, snapshot_dir: str, memory_days: int) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=phase, args=(kind, url, snapshot_dir, memory_days, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=5_000_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql+psycopg://root@127.0.0.1:5432/ohjaustaulu_mem")
    parser.add_argument("--memory-days", type=int, nargs="+", default=[120, 0])
    args = parser.parse_args()
    os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0")  # as the server
    if args.database == "sqlite":
        url = f"sqlite:////tmp/ohjaustaulu_mem_{args.contacts}_{args.years}y.sqlite3"
    else:
        made = sa.engine.make_url(args.postgres).set(database=f"ohjaustaulu_mem_{args.contacts}_{args.years}y")
        url = made.render_as_string(hide_password=False)
        admin = sa.create_engine(made.set(database="test"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": made.database}).first():
                conn.execute(sa.text(f'create database "{made.database}"'))
    ensure_database(url, args.contacts, args.years)
    results: dict = {"contacts": args.contacts, "years": args.years, "database": args.database, "runs": {}}
    for memory_days in args.memory_days:
        with tempfile.TemporaryDirectory(prefix="ohjaustaulu-memory-") as folder:
            first = run("first", url, folder, memory_days)
            print(f"memory_days {memory_days}: first read {first['seconds']} s, peak {first['memory_after_load']['VmHWM']:.0f} MB", flush=True)
            restart = run("restart", url, folder, memory_days)
            print(f"memory_days {memory_days}: restart {restart['seconds']} s (restored {restart['restored']}), "
                  f"after recent pages {restart['memory_after_recent_pages']}, after long periods {restart['memory_after_long_periods']}; "
                  f"overview {restart['overview_ms']} ms, 30 days by municipality {restart['month_by_municipality_ms']} ms, "
                  f"a year by month {restart['year_by_month_ms']} ms, everything by municipality {restart['history_by_municipality_ms']} ms",
                  flush=True)
            results["runs"][str(memory_days)] = {"first_read": first, "restart": restart}
    out = ROOT / "benchmarks" / "results" / f"memory_{args.database}_{args.contacts}_{args.years}y.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
