"""What the linked tables' boxes (data_access/metrics/linked.py) cost and hide, per question.

    python benchmarks/disclosure_benchmark.py [--database-url sqlite:////tmp/ohjaustaulu_bench_300000.sqlite3] [--repeat 5]

For the tables the pages and the explorer ask (a day, a week and 30 days; by municipality,
by channel, by day and channel, by municipality and channel, by county and channel, by
day and municipality), computes each cold (no result cache: ``compute`` itself) with the audit
and with the lines' rules alone (the boxes' pass replaced by nothing, in this process only), and
prints the median and the largest time of each and the cells hidden by each. The database is
page_benchmark.py's (``--contacts 300000`` builds one in about a minute). Results go to
benchmarks/results/disclosure_<database>_<contacts>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_access.config import Settings
from data_access.engine import create_db_engine
from data_access.metrics import Filters, compute, disclosure
from data_access.periods import HELSINKI
from data_access.snapshot import FactStore

QUESTIONS = [
    (["contacts", "first_contact_resolution", "electronic_share"], ["municipality"]),
    (["contacts", "contact_share"], ["channel"]),
    (["contacts", "contact_share"], ["day", "channel"]),
    (["contacts", "first_contact_resolution"], ["municipality", "channel"]),
    (["contacts"], ["region", "channel"]),
    (["contacts", "first_contact_resolution"], ["day", "municipality"]),
    (["referrals"], ["municipality", "destination"]),
    (["recommend_mean", "nps"], ["municipality"]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="sqlite:////tmp/ohjaustaulu_bench_300000.sqlite3")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine = create_db_engine(args.database_url)
    snapshots = tempfile.TemporaryDirectory(prefix="ohjaustaulu-disclosure-")
    store = FactStore(engine, Settings(database_url=args.database_url, snapshot_dir=Path(snapshots.name)))
    store.refresh()
    today = dt.datetime.now(HELSINKI).date()
    periods = {"yesterday": 1, "7 days": 7, "30 days": 30}
    boxes = disclosure.protect_boxes
    rows = []
    for label, days in periods.items():
        end = today - dt.timedelta(days=1)
        filters = Filters(start=end - dt.timedelta(days=days - 1), end=end)
        for metrics, by in QUESTIONS:
            timings: dict[str, list[float]] = {"linked": [], "lines": []}
            hidden: dict[str, int] = {}
            for mode in ("lines", "linked", "lines", "linked") * args.repeat:
                disclosure.protect_boxes = boxes if mode == "linked" else (lambda *a, **k: False)
                started = time.perf_counter()
                result = compute(store, metrics=metrics, filters=filters, by=by)
                timings[mode].append((time.perf_counter() - started) * 1000)
                hidden[mode] = int(result["suppressed"].sum())
            disclosure.protect_boxes = boxes
            row = {
                "period": label, "metrics": metrics, "by": by, "cells": result.height,
                **{f"{m}_median_ms": round(statistics.median(v), 2) for m, v in timings.items()},
                **{f"{m}_max_ms": round(max(v), 2) for m, v in timings.items()},
                **{f"{m}_hidden": hidden[m] for m in timings},
            }
            rows.append(row)
            print(f"{label:9s} {'x'.join(by):24s} cells {row['cells']:5d}  lines {row['lines_median_ms']:8.1f} ms (max {row['lines_max_ms']:8.1f})"
                  f"  linked {row['linked_median_ms']:8.1f} ms (max {row['linked_max_ms']:8.1f})  hidden {row['lines_hidden']:5d} -> {row['linked_hidden']:5d}",
                  flush=True)
    out = ROOT / "benchmarks" / "results" / f"disclosure_{engine.dialect.name}_{store.contacts.height + store.history.rows('contacts')}.json"
    out.write_text(json.dumps({"database": engine.dialect.name, "repeat": args.repeat, "questions": rows}, indent=1))
    store.close() if hasattr(store, "close") else None
    snapshots.cleanup()
    print(f"written {out}")


if __name__ == "__main__":
    main()
