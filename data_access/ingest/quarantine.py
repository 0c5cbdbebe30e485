"""The quarantine: list, export and re-process refused rows after a mapping is fixed."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access.engine import reserve_change_seq
from data_access.ingest.pipeline import (
    IngestReport,
    canonical_columns,
    finish_batch,
    load_frames,
    loading,
    prepare_frame,
    start_batch,
)
from data_access.ingest.profiles import Profile
from data_access.ingest.validate import SPECS
from data_access.models import QuarantinedRow, table_of


def quarantine_frame(engine: Engine, *, include_reprocessed: bool = False) -> pl.DataFrame:
    q = table_of(QuarantinedRow)
    select = sa.select(q.c.id, q.c.batch_id, q.c.kind, q.c.file_name, q.c.line_number, q.c.reasons, q.c.raw).order_by(q.c.id)
    if not include_reprocessed:
        select = select.where(q.c.reprocessed_at.is_(None))
    with engine.connect() as conn:
        rows = conn.execute(select).all()
    return pl.DataFrame(
        [tuple(r) for r in rows],
        schema={"id": pl.Int64, "batch_id": pl.Int64, "kind": pl.String, "file_name": pl.String,
                "line_number": pl.Int64, "reasons": pl.String, "raw": pl.String},
        orient="row",
    )


def reprocess(engine: Engine, *, profile: Profile, source_system: str | None = None) -> list[IngestReport]:
    """Run waiting rows through ingestion again, file by file; the old quarantine rows are
    marked re-processed and rows still refused are quarantined anew with today's reasons."""
    waiting = quarantine_frame(engine)
    reports = []
    q = table_of(QuarantinedRow)
    for (kind, file_name), group in waiting.group_by(["kind", "file_name"], maintain_order=True):
        spec = SPECS[kind]
        records = [json.loads(raw) for raw in group["raw"]]
        columns = list(dict.fromkeys(k for record in records for k in record))
        frame = pl.DataFrame(
            {c: [None if r.get(c) is None else str(r.get(c)) for r in records] for c in columns},
            schema={c: pl.String for c in columns},
        ).with_columns(group["line_number"].alias("_line"))
        mapping = canonical_columns(columns, {f.name for f in spec.fields}, profile)
        report = IngestReport(file=file_name, kind=kind)
        with loading(engine) as conn:
            conn.execute(
                sa.update(q).where(q.c.id.in_(group["id"].to_list())).values(reprocessed_at=dt.datetime.now(dt.UTC))
            )
            reserve_change_seq(conn, 1)  # the quarantine counts are cached per data version
            report.batch_id = start_batch(conn, kind=kind, file_name=file_name, source_system=source_system)
            load_frames(conn, spec, [prepare_frame(frame, mapping, source_system or profile.source_system)], profile=profile, report=report)
            finish_batch(conn, report)
        reports.append(report)
    return reports
