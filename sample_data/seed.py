"""Fill a database with generated sample data."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access.bulk import write_frame
from data_access.config import Settings
from data_access.engine import reserve_change_seq
from data_access.models import Contact, Feedback, GuidanceCase, IngestBatch, Measurement, Referral, Unit, table_of
from data_access.reference import load_shipped_reference, reference_frames
from sample_data.generator import generate


@dataclass(frozen=True)
class SeedReport:
    contacts: int
    referrals: int
    feedback: int
    generate_seconds: float
    write_seconds: float


def seed_database(
    engine: Engine,
    *,
    contacts: int,
    days: int,
    seed: int = 2025,
    end: dt.datetime | None = None,
    regions: tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    say = progress or (lambda _msg: None)
    municipalities = municipalities_with_population(engine)
    started = time.perf_counter()
    data = generate(municipalities, contacts=contacts, days=days, seed=seed, end=end, regions=regions, progress=say)
    generated = time.perf_counter()
    write_sample(engine, data, label=f"seed:{seed}", progress=say)
    return SeedReport(
        contacts=data.contacts.height,
        referrals=data.referrals.height,
        feedback=data.feedback.height,
        generate_seconds=generated - started,
        write_seconds=time.perf_counter() - generated,
    )


def municipalities_with_population(engine: Engine) -> pl.DataFrame:
    load_shipped_reference(engine)
    municipalities, populations = reference_frames(engine)
    latest_population = populations.sort("year").group_by("municipality_code").last()
    return municipalities.join(latest_population.select("municipality_code", "population"), on="municipality_code", how="left")


def write_sample(engine: Engine, data, *, label: str, progress: Callable[[str], None] | None = None) -> None:
    """Write generated facts in one transaction, as one batch, with change sequences."""
    say = progress or (lambda _msg: None)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        batch_id = conn.execute(
            sa.insert(table_of(IngestBatch))
            .values(kind="seed", file_name=label, started_at=now, status="running")
            .returning(table_of(IngestBatch).c.id)
        ).scalar_one()
        existing_units = set(conn.execute(sa.select(table_of(Unit).c.code)).scalars())
        write_frame(conn, table_of(Unit), data.units.filter(~pl.col("code").is_in(list(existing_units))))
        total = data.contacts.height + data.referrals.height + data.feedback.height + data.cases.height + data.measurements.height
        first_seq = reserve_change_seq(conn, total)
        for table, frame in (
            (table_of(Contact), data.contacts),
            (table_of(Referral), data.referrals),
            (table_of(Feedback), data.feedback),
            (table_of(GuidanceCase), data.cases),
            (table_of(Measurement), data.measurements),
        ):
            say(f"writing {frame.height:,} rows into {table.name}")
            write_frame(
                conn,
                table,
                frame.with_columns(
                    change_seq=pl.int_range(first_seq, first_seq + pl.len(), dtype=pl.Int64),
                    batch_id=pl.lit(batch_id, dtype=pl.Int64),
                ),
            )
            first_seq += frame.height
        conn.execute(
            sa.update(table_of(IngestBatch))
            .where(table_of(IngestBatch).c.id == batch_id)
            .values(
                finished_at=dt.datetime.now(dt.UTC), status="done", rows_read=total, rows_inserted=total,
            )
        )


def seed_first_run(engine: Engine, settings: Settings, *, progress: Callable[[str], None]) -> None:
    """The embedded database's sample data on a first run (``ohjaustaulu run``): only an
    embedded database without contacts, and only when a size is configured."""
    from data_access.bootstrap import holds_contacts

    if not settings.is_embedded or not settings.seed_contacts or holds_contacts(engine):
        return
    progress(f"Creating sample data: {settings.seed_contacts:,} contacts over {settings.seed_days} days…")
    report = seed_database(engine, contacts=settings.seed_contacts, days=settings.seed_days, progress=progress)
    progress(f"Sample data ready in {report.generate_seconds + report.write_seconds:.1f} s.")
