"""What the guidance-pathway frames and multi-service clients cost, at a county's size.

    python benchmarks/pathway_benchmark.py [--contacts 2000000] [--days 1095] [--repeat 5]

Generates sample facts in memory (no database: this times the derivations, not the reading),
then times, as the store and the registry do them:
- ``pathway.case_frames``: every derived case frame from the cases, visits and measurements
  (done again whole on each change of any of them, and on each live contact);
- ``pathway.multi_service_clients``: the clients of the year ending on a day (done once per
  question and window end, then kept: computation.clients_at).
Prints medians and maxima in milliseconds and the frames' sizes, as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time

import polars as pl

from data_access import codes, pathway
from data_access.engine import create_db_engine, upgrade_database
from sample_data.generator import generate
from sample_data.seed import municipalities_with_population

HELSINKI = "Europe/Helsinki"


def timed(repeat: int, work) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return {"median_ms": round(statistics.median(seconds) * 1000, 1), "max_ms": round(max(seconds) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    engine = create_db_engine("sqlite://")  # only the shipped reference data, in memory
    upgrade_database(engine)
    municipalities = municipalities_with_population(engine)
    end = dt.datetime(2026, 11, 30, 18, tzinfo=dt.UTC)
    started = time.perf_counter()
    data = generate(municipalities, contacts=args.contacts, days=args.days, seed=7, end=end)
    generated = time.perf_counter() - started
    regions = dict(municipalities.select("municipality_code", "region_code").iter_rows())
    contacts = data.contacts.with_row_index("id", offset=1).with_columns(
        pl.col("id").cast(pl.Int64),
        pl.col("occurred_at").dt.convert_time_zone(HELSINKI).dt.date().alias("day"),
        pl.col("municipality_code").replace_strict(regions, default=None).alias("region_code"),
        pl.col("client_id").cast(pl.Categorical),
        pl.col("service_line").cast(pl.Enum(codes.SERVICE_LINES)),
    )
    cases = data.cases.with_row_index("id", offset=1).with_columns(
        pl.col("id").cast(pl.Int64), pl.col("process").cast(pl.Enum(codes.PROCESSES)),
        pl.col("identified_by").cast(pl.Enum(codes.INITIATORS)),
    )
    measurements = data.measurements.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    visits = pathway.visit_rows(contacts.select("id", "source_system", "contact_id", "case_id", "occurred_at", "unit_code"))
    frames = pathway.case_frames(cases, visits, measurements, regions)
    last_day = end.date()
    results = {
        "contacts": contacts.height, "days": args.days, "cases": cases.height, "visits": visits.height,
        "measurements": measurements.height, "generate_s": round(generated, 1),
        "case_frames": timed(args.repeat, lambda: pathway.case_frames(cases, visits, measurements, regions)),
        "multi_service_clients": timed(
            args.repeat,
            lambda: pathway.multi_service_clients(contacts, frames["cases"], end=last_day, window_days=365, min_lines=3),
        ),
        "case_frames_mb": round(sum(f.estimated_size("mb") for f in frames.values()), 2),
    }
    clients = pathway.multi_service_clients(contacts, frames["cases"], end=last_day, window_days=365, min_lines=3)
    results["clients_in_window"] = clients.height
    results["multi_service_share_of_clients"] = round(float(clients["multi_service"].mean() or 0), 3)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
