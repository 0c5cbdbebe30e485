"""Ingestion throughput: a one-million-row canonical contacts CSV into SQLite and PostgreSQL,
loaded twice (the second time every row is unchanged). Prints rows/s and peak memory.

    python benchmarks/ingest_benchmark.py [--rows 1000000] [--repeat 3] [--postgres URL] [--out benchmarks/results/ingest.json]

Each load runs in a fresh process and reports its own peak memory (VmHWM; ru_maxrss would
carry the parent's high-water mark across exec). The CSV is generated in a process of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_csv(path: Path, rows: int) -> None:
    from data_access.engine import create_db_engine, upgrade_database
    from sample_data.generator import generate
    from sample_data.seed import municipalities_with_population

    engine = create_db_engine(f"sqlite:///{path.with_suffix('.ref.sqlite3')}")
    upgrade_database(engine)
    data = generate(municipalities_with_population(engine), contacts=rows, days=730, seed=99, end=dt.datetime(2025, 11, 1, tzinfo=dt.UTC))
    data.contacts.with_columns(
        *(data.contacts[c].dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias(c) for c in ("occurred_at", "callback_requested_at", "callback_done_at"))
    ).write_csv(path)


def peak_memory_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_once(url: str, path: str) -> None:
    """Child process: one load, then a JSON line with the report and peak memory."""
    from data_access.engine import create_db_engine
    from data_access.ingest import ingest_file

    engine = create_db_engine(url)
    started = time.perf_counter()
    report = ingest_file(engine, Path(path))
    seconds = time.perf_counter() - started
    peak_mb = peak_memory_mb()
    print(json.dumps({**report.as_dict(), "seconds": seconds, "rows_per_second": report.read / seconds, "peak_mb": peak_mb}))


def prepare(url: str) -> None:
    from data_access.engine import create_db_engine, upgrade_database
    from data_access.reference import load_shipped_reference

    engine = create_db_engine(url)
    upgrade_database(engine)
    load_shipped_reference(engine)


def loads(url: str, csv_path: Path, number: int) -> list[dict]:
    """Run ``number``: a first load into a new database, then the same file again."""
    prepare(url)
    results = []
    for attempt in ("first load", "second load (unchanged)"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", url, str(csv_path)], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout.strip().splitlines()[-1]
        result = json.loads(out) | {"load": attempt, "run": number}
        results.append(result)
        print(f"  run {number}, {attempt}: {result['read']:,} rows in {result['seconds']:.1f} s = {result['rows_per_second']:,.0f} rows/s, "
              f"inserted {result['inserted']:,}, unchanged {result['unchanged']:,}, peak {result['peak_mb']:.0f} MB", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://root@127.0.0.1:5432/test")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ingest.json"))
    parser.add_argument("--repeat", type=int, default=1, help="first + second load this many times, each into a new database")
    parser.add_argument("--child", nargs=2)
    parser.add_argument("--make-csv", nargs=2)
    args = parser.parse_args()
    if args.child:
        load_once(*args.child)
        return
    if args.make_csv:
        make_csv(Path(args.make_csv[0]), int(args.make_csv[1]))
        return
    work = Path(tempfile.mkdtemp(prefix="ohjaustaulu-bench-"))
    csv_path = work / "contacts.csv"
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--make-csv", str(csv_path), str(args.rows)], check=True, cwd=ROOT)
    print(f"wrote {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.1f} s")
    results: dict[str, list[dict]] = {"sqlite": [], "postgresql": []}
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    for number in range(1, args.repeat + 1):
        print("SQLite:")
        results["sqlite"] += loads(f"sqlite:///{work / f'bench_{number}.sqlite3'}", csv_path, number)
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            print("PostgreSQL:")
            results["postgresql"] += loads(sa.engine.make_url(args.postgres).set(database=name).render_as_string(hide_password=False), csv_path, number)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    for database, runs in results.items():
        for attempt in ("first load", "second load (unchanged)"):
            rates = sorted(r["rows_per_second"] for r in runs if r["load"] == attempt)
            peaks = [r["peak_mb"] for r in runs if r["load"] == attempt]
            print(f"{database}, {attempt}: {rates[0]:,.0f}-{rates[-1]:,.0f} rows/s over {len(rates)} run(s), peak <= {max(peaks):.0f} MB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": args.rows, "measured_at": dt.datetime.now(dt.UTC).isoformat(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
