"""Data time of every dashboard page, cold and warm, against the plain GROUP BY a BI tool
would send for the same figures.

    python benchmarks/page_benchmark.py [--contacts 5000000] [--database sqlite|postgresql] [--combos 20]

1. Seeds a database with N contacts over three years (reused when it already holds them).
2. Loads the fact store and times it (the server's cold start).
3. Opens every page once through Streamlit's AppTest and records the registry calls it makes,
   so the benchmark replays exactly what the pages ask, with no second definition.
4. For random filter combinations (period length 7 days to 3 years, county, municipality,
   channel, service line, age band) replays each page's calls on the store: cold (computed)
   and warm (the result cache).
5. Times the BI-style GROUP BY for the same figures (one query per registry call and fact
   table) on the same database, filters and periods.
6. Times a live update: one contact written, the store refreshed, the overview recomputed.
Store timings: a first read of every row (no saved snapshot) and a restart from the saved
snapshot (data_access/snapshot_file.py), with the process's resident memory.
Medians, 95th percentiles and ratios per page, and per page and drawn period length (the
medians depend on which lengths were drawn). Results go to benchmarks/results/pages_<database>_<N>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.live import Results
from data_access import codes
from data_access.config import Settings, get_settings
from data_access.engine import create_db_engine, upgrade_database
from data_access.metrics import Filters, compute
from data_access.metrics.requests import MetricsRequest
from data_access.snapshot import FactStore

HELSINKI = ZoneInfo("Europe/Helsinki")
PAGES = ["overview.py", "channels.py", "resolution.py", "referrals.py", "comparison.py", "quality.py"]


def ensure_database(url: str, contacts: int) -> None:
    engine = create_db_engine(url)
    upgrade_database(engine)
    with engine.connect() as conn:
        have = conn.execute(sa.text("select count(*) from contact")).scalar()
    if have >= contacts:
        print(f"database holds {have:,} contacts", flush=True)
        return
    from sample_data.seed import seed_database

    started = time.perf_counter()
    report = seed_database(engine, contacts=contacts, days=3 * 365, seed=2026, progress=lambda m: print(" ", m, flush=True))
    print(f"seeded {report.contacts:,} contacts in {time.perf_counter() - started:.0f} s", flush=True)


def record_calls(url: str) -> dict[str, list[tuple]]:
    """The registry calls each page makes, recorded through AppTest."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import dashboard.live as live

    os.environ["OHJAUSTAULU_DATABASE_URL"] = url
    get_settings.cache_clear()
    calls: dict[str, list[tuple]] = {}
    current: list[tuple] = []
    real = live.answer

    def recording(store, request):
        if isinstance(request, MetricsRequest):
            current.append((tuple(request.metrics), request.periods if request.several else request.periods[0], request.by))
        return real(store, request)

    live.answer = recording
    try:
        for page in PAGES:
            st.cache_data.clear()
            live._results.clear()
            current.clear()
            at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
            at.run()
            if page != "overview.py":
                at.switch_page(str(ROOT / "pages" / page))
                st.cache_data.clear()
                live._results.clear()
                current.clear()
                at.run()
            assert not at.exception, [e.value for e in at.exception]
            calls[page] = list(current)
            print(f"  {page}: {len(current)} registry calls", flush=True)
    finally:
        live.answer = real
    return calls


def random_filters(rng: random.Random, store: FactStore) -> dict:
    """A random combination of the shared filters (the period stays as the page chose it)."""
    municipalities = store.municipalities
    choice: dict = {}
    if rng.random() < 0.5:
        region = rng.choice(sorted(municipalities["region_code"].unique().to_list()))
        choice["regions"] = (region,)
        if rng.random() < 0.5:
            pool = municipalities.filter(municipalities["region_code"] == region)["municipality_code"].to_list()
            choice["municipalities"] = tuple(rng.sample(pool, k=min(len(pool), rng.randint(1, 3))))
    if rng.random() < 0.3:
        choice["channels"] = tuple(rng.sample(codes.CHANNELS, k=rng.randint(1, 3)))
    if rng.random() < 0.2:
        choice["service_lines"] = tuple(rng.sample(codes.SERVICE_LINES, k=rng.randint(1, 2)))
    if rng.random() < 0.2:
        choice["age_bands"] = (rng.choice(codes.AGE_BANDS),)
    return choice


def bi_queries(metrics: tuple[str, ...], filters: Filters, by: tuple[str, ...], dialect: str) -> list[str]:
    """The plain GROUP BY a BI tool would send for the same figures as one registry call: one
    query per fact table the call's metrics read, over the call's period, filters and
    grouping (referrals joined to their contact for its attributes)."""
    from data_access.metrics import REGISTRY

    queries = []
    for source in sorted({REGISTRY[m].source for m in metrics}):
        table, time, alias = {"contacts": ("contact", "occurred_at", "c"), "referrals": ("referral", "referred_at", "r"),
                              "feedback": ("feedback", "answered_at", "f")}[source]
        attributes = "f" if source == "feedback" else "c"
        # The product's days are Helsinki days: the period is cut at Helsinki midnight and rows
        # are grouped by their Helsinki day, week (its Monday), month, hour and ISO weekday.
        # SQLite has no time zones: its 'localtime' is the process's, set to Helsinki in main().
        start, end = (
            dt.datetime.combine(day, dt.time(), tzinfo=HELSINKI).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            for day in (filters.start, filters.end + dt.timedelta(days=1))
        )
        stamp = f"{alias}.{time}"
        local = f"datetime({stamp}, 'localtime')" if dialect == "sqlite" else f"({stamp} at time zone 'Europe/Helsinki')"
        groups = {
            "day": f"date({local})" if dialect == "sqlite" else f"cast({local} as date)",
            "week": f"date({local}, '-6 days', 'weekday 1')" if dialect == "sqlite" else f"date_trunc('week', {local})",
            "month": f"strftime('%Y-%m', {local})" if dialect == "sqlite" else f"date_trunc('month', {local})",
            "hour": f"strftime('%H', {local})" if dialect == "sqlite" else f"extract(hour from {local})",
            "weekday": f"(cast(strftime('%w', {local}) as integer) + 6) % 7 + 1" if dialect == "sqlite" else f"extract(isodow from {local})",
            "municipality": f"{attributes}.municipality_code", "region": "m.region_code", "unit": "c.unit_code",
            "destination": "r.destination",
        }
        columns = [groups.get(d, f"{attributes}.{d}") for d in by]
        where = [f"{stamp} >= '{start}'", f"{stamp} < '{end}'"]
        if filters.until_minute is not None:  # "today so far": the same minutes of each day
            minute = (f"(cast(strftime('%H', {local}) as integer) * 60 + cast(strftime('%M', {local}) as integer))"
                      if dialect == "sqlite" else f"(extract(hour from {local}) * 60 + extract(minute from {local}))")
            where.append(f"{minute} < {filters.until_minute}")
        for values, column in ((filters.municipalities, "municipality_code"), (filters.channels, "channel"),
                               (filters.service_lines, "service_line"), (filters.age_bands, "age_band")):
            if values and not (source == "feedback" and column in ("service_line", "age_band")):
                where.append(f"{attributes}.{column} in (" + ",".join(f"'{v}'" for v in values) + ")")
        if filters.regions:
            where.append("m.region_code in (" + ",".join(f"'{v}'" for v in filters.regions) + ")")
        joins = ""
        if source == "referrals":
            joins += " left join contact c on c.source_system = r.source_system and c.contact_id = r.contact_id"
        if filters.regions or "region" in by:
            joins += f" join municipality m on m.code = {attributes}.municipality_code"
        measures = {
            "contacts": "count(*), sum(case when c.resolved_first_contact then 1 else 0 end), count(c.resolved_first_contact), "
                        "sum(case when c.channel in ('chat','chatbot','e_message','digital_form','video') then 1 else 0 end)",
            "referrals": "count(*), sum(case when r.service_started_at is not null then 1 else 0 end)",
            "feedback": "count(*), avg(f.recommend_score)",
        }[source]
        select = ", ".join([*columns, measures])
        group = f" group by {', '.join(columns)}" if columns else ""
        queries.append(f"select {select} from {table} {alias}{joins} where {' and '.join(where)}{group}")
    return queries


def same_daily_figures(engine: sa.Engine, store: FactStore, days: int = 300) -> dict:
    """The BI query's contacts per Helsinki day against the registry's over the last ``days``
    days: the baseline must time the same figures (cells the registry hides are left out)."""
    end = store.contacts["day"].max()
    filters = Filters(start=end - dt.timedelta(days=days - 1), end=end)
    ours = compute(store, metrics=["contacts"], filters=filters, by=["day"]).filter(~pl.col("suppressed"))
    with engine.connect() as conn:
        theirs = {
            str(row[0])[:10]: row[1]
            for row in conn.execute(sa.text(bi_queries(("contacts",), filters, ("day",), engine.dialect.name)[0])).all()
        }
    differ = [(str(day), value, theirs.get(str(day))) for day, value in ours.select("day", "numerator").iter_rows() if theirs.get(str(day)) != value]
    return {"cells": ours.height, "differ": len(differ), "examples": differ[:5]}


PERIOD_DAYS = (7, 30, 91, 365, 3 * 365)


def replay(filters: Filters | tuple[Filters, ...], choice: dict, days: int) -> Filters | tuple[Filters, ...]:
    """A recorded call's filters with the random choice: calls over the chosen period (the
    default 30 days, or its comparison period) get the random period length; fixed windows
    (today, yesterday, 7 days) stay as asked. Each period of a several-period call alike."""
    if isinstance(filters, tuple):
        return tuple(replay(f, choice, days) for f in filters)
    moved = {"start": filters.end - dt.timedelta(days=days - 1)} if (filters.end - filters.start).days == 29 else {}
    return dataclasses.replace(filters, **choice, **moved)


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def live_update(engine: sa.Engine, store: FactStore, overview_calls: list[tuple]) -> list[float]:
    """Milliseconds from a committed contact to the overview's figures including it."""
    from tests.factories import add_contacts

    times = []
    for _ in range(5):
        before = store.version
        add_contacts(engine, [{"occurred_at": dt.datetime.now(dt.UTC), "municipality_code": "091", "client_id": "bench"}])
        started = time.perf_counter()
        store.refresh()
        for metrics, filters, by in overview_calls:
            compute(store, metrics=list(metrics), filters=filters, by=list(by))
        times.append((time.perf_counter() - started) * 1000)
        assert store.version > before
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=5_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql+psycopg://root@127.0.0.1:5432/ohjaustaulu_bench")
    parser.add_argument("--combos", type=int, default=20)
    args = parser.parse_args()
    os.environ["TZ"] = "Europe/Helsinki"  # SQLite's 'localtime' in the BI queries
    time.tzset()
    if args.database == "sqlite":
        url = f"sqlite:////tmp/ohjaustaulu_bench_{args.contacts}.sqlite3"
    else:
        url = args.postgres
        admin = sa.create_engine(sa.engine.make_url(url).set(database="test"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(sa.text("select 1 from pg_database where datname = :n"), {"n": sa.engine.make_url(url).database}).first():
                conn.execute(sa.text(f'create database "{sa.engine.make_url(url).database}"'))
    ensure_database(url, args.contacts)

    engine = create_db_engine(url)
    upgrade_database(engine)
    # The snapshot folder holds the store's history files (months on disk): it must outlive
    # the store, so it is removed at the end, not when the store has been made.
    snapshots = tempfile.TemporaryDirectory(prefix="ohjaustaulu-bench-")
    settings = Settings(database_url=url, snapshot_dir=Path(snapshots.name))
    started = time.perf_counter()
    first = FactStore(engine, settings)
    first.refresh()
    first_seconds = time.perf_counter() - started
    first.wait_for_save()
    del first
    gc.collect()
    print(f"fact store: first read of every row {first_seconds:.1f} s", flush=True)
    started = time.perf_counter()
    store = FactStore(engine, settings)
    store.refresh()
    load_seconds = time.perf_counter() - started
    frames_mb = sum(getattr(store, n).estimated_size("mb") for n in ("contacts", "referrals", "feedback"))
    print(f"fact store: restart from the saved snapshot {load_seconds:.1f} s (restored: {store.restored_version is not None}; "
          f"{store.contacts.height:,} contacts, frames {frames_mb:.0f} MB, process {resident_mb():.0f} MB resident)", flush=True)

    results_check = same_daily_figures(engine, store)
    print(f"BI baseline against the registry, contacts per Helsinki day: {results_check['differ']} of {results_check['cells']} cells differ", flush=True)
    calls = record_calls(url)
    rng = random.Random(7)
    results: dict = {
        "contacts": store.contacts.height, "database": args.database, "store_first_read_seconds": first_seconds,
        "store_restart_seconds": load_seconds, "frames_mb": frames_mb, "resident_mb": resident_mb(), "pages": {},
        "bi_same_daily_figures": results_check,
    }
    for page, page_calls in calls.items():
        cold, warm, bi, drawn, choices = [], [], [], [], []
        for _ in range(args.combos):
            choice = random_filters(rng, store)
            days = rng.choice(PERIOD_DAYS)
            drawn.append(days)
            choices.append(choice)
            replayed = [(m, replay(f, choice, days), b) for m, f, b in page_calls]
            # The server's result cache (dashboard/live.py), new for each combination: the first
            # round computes, the second finds.
            cache, view = Results(), store.view()
            requests = [MetricsRequest.of(m, f, by=b) for m, f, b in replayed]
            t0 = time.perf_counter()
            for request in requests:
                cache.get(view, request)
            cold.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            for request in requests:
                cache.get(view, request)
            warm.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            with engine.connect() as conn:
                for metrics, filters, by in replayed:
                    # Several periods in one call (the overview's cards): a query per period.
                    for period in (filters if isinstance(filters, tuple) else (filters,)):
                        for sql in bi_queries(metrics, period, by, engine.dialect.name):
                            conn.execute(sa.text(sql)).all()
            bi.append((time.perf_counter() - t0) * 1000)
        summary = {
            "calls": len(page_calls),
            "cold_median_ms": statistics.median(cold), "cold_p95_ms": percentile(cold, 0.95),
            "warm_median_ms": statistics.median(warm),
            "bi_median_ms": statistics.median(bi) if bi else None,
            "ratio_to_bi": statistics.median(cold) / statistics.median(bi) if bi else None,
            # The medians above depend on which period lengths were drawn (a 3-year period
            # costs both sides ten times a 30-day one): the same per period length.
            "by_period_days": {
                days: {"combos": len(ours), "cold_median_ms": statistics.median(ours), "bi_median_ms": statistics.median(theirs),
                       "ratio_to_bi": statistics.median(ours) / statistics.median(theirs)}
                for days in sorted(set(drawn))
                for ours, theirs in [([c for c, d in zip(cold, drawn, strict=False) if d == days], [b for b, d in zip(bi, drawn, strict=False) if d == days])]
            },
            # Each draw, to see which filters make a ratio (a municipality filter lets the
            # database answer from its index in a few milliseconds).
            "draws": [
                {"period_days": d, "filters": {k: list(v) for k, v in c.items()}, "cold_ms": round(ours, 2), "bi_ms": round(theirs, 2)}
                for d, c, ours, theirs in zip(drawn, choices, cold, bi, strict=True)
            ],
        }
        results["pages"][page] = summary
        print(f"{page:16s} calls {summary['calls']:3d}  cold median {summary['cold_median_ms']:7.1f} ms  p95 {summary['cold_p95_ms']:7.1f} ms"
              f"  warm {summary['warm_median_ms']:5.1f} ms  BI {summary['bi_median_ms'] or 0:8.1f} ms  ratio {summary['ratio_to_bi'] or 0:.2f}"
              "  by period: " + ", ".join(f"{d} d {v['ratio_to_bi']:.2f}" for d, v in summary["by_period_days"].items()), flush=True)
    results["live_update_ms"] = live_update(engine, store, calls["overview.py"])
    print(f"live update (write one contact, refresh, recompute the overview): median {statistics.median(results['live_update_ms']):.0f} ms", flush=True)
    out = ROOT / "benchmarks" / "results" / f"pages_{args.database}_{args.contacts}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    snapshots.cleanup()
    print(f"written {out}")


if __name__ == "__main__":
    main()
