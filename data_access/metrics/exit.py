"""The one exit for every figure the product shows: ``answer`` takes a typed request and
gives a frame with the caller's scope applied and disclosure control done. Pages (through
the shared results of dashboard/live.py), the CLI, exports and benchmarks all ask here.

Scope for figures that have no municipality: a referral waiting for its contact and a row
refused at ingest cannot be placed in a municipality, so only a user who may see the whole
of every county (``Scope.everything()``) sees them; anyone else gets an empty table.
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from data_access.engine import unavailable
from data_access.metrics.computation import compute
from data_access.metrics.disclosure import protect_table
from data_access.metrics.requests import (
    FreshnessRequest,
    MetricsRequest,
    PendingRequest,
    QuarantineRequest,
    Request,
)
from data_access.models import QuarantinedRow, table_of
from data_access.snapshot import FactSource


def answer(source: FactSource, request: Request) -> pl.DataFrame:
    """The figures of ``request`` from ``source``: scoped and protected."""
    threshold = source.settings.small_cell_threshold
    if isinstance(request, MetricsRequest):
        filters = request.periods if request.several else request.periods[0]
        return compute(
            source, metrics=list(request.metrics), filters=filters, by=list(request.by), scope=request.scope,
            publication=request.publication,
        )
    if isinstance(request, FreshnessRequest):
        from data_access.quality import newest_records

        return newest_records(source, scope=request.scope, by=request.by)
    if isinstance(request, PendingRequest):
        pending = pending_referrals(source) if request.scope.municipalities is None else _empty_pending()
        return protect_table(pending, count="pending", by=["source_system"], threshold=threshold)
    if isinstance(request, QuarantineRequest):
        waiting = quarantine_summary(source.engine) if request.scope.municipalities is None else _empty_quarantine()
        return protect_table(waiting, count="rows", by=["kind", "reason"], threshold=threshold)
    raise TypeError(f"not a request: {request!r}")


def _empty_pending() -> pl.DataFrame:
    return pl.DataFrame(schema={"source_system": pl.String, "pending": pl.UInt32})


def pending_referrals(source: FactSource) -> pl.DataFrame:
    """Referrals whose contact has not arrived yet, per source system (exact: ask ``answer``)."""
    referrals, past = source.referrals, source.history
    if referrals.is_empty() and not past.rows("referrals"):
        return _empty_pending()
    waiting = referrals.filter(pl.col("channel").is_null()).select("source_system")
    if past.rows("referrals"):
        waiting = pl.concat([past.pending("referrals", pl.col("channel").is_null()).select("source_system"), waiting])
    return (
        waiting
        .group_by("source_system")
        .len("pending")
        .with_columns(pl.col("source_system").cast(pl.String))
        .sort("source_system")
    )


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema={"kind": pl.String, "reason": pl.String, "rows": pl.UInt32})


def quarantine_summary(engine: sa.Engine) -> pl.DataFrame:
    """Rows waiting in quarantine, by kind and reason (a row with two reasons counts in both;
    exact: ask ``answer``). Read once per data version: ingest moves the version when it
    quarantines or re-processes rows."""
    q = table_of(QuarantinedRow)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(q.c.kind, q.c.reasons).where(q.c.reprocessed_at.is_(None))).all()
    except sa.exc.DBAPIError as exc:
        raise unavailable(exc, engine) from exc
    frame = pl.DataFrame([tuple(r) for r in rows], schema={"kind": pl.String, "reasons": pl.String}, orient="row")
    return (
        frame.with_columns(pl.col("reasons").str.split("; "))
        .explode("reasons")
        .with_columns(pl.col("reasons").str.split(" '").list.first().alias("reason"))
        .group_by("kind", "reason")
        .len("rows")
        .sort("rows", "kind", "reason", descending=[True, False, False])
    )
