"""Small factories: facts written through the same bulk path as production, with change sequences."""

from __future__ import annotations

import datetime as dt
import uuid

import polars as pl
import sqlalchemy as sa

from data_access.bulk import write_frame
from data_access.config import Settings
from data_access.engine import reserve_change_seq
from data_access.models import Contact, Feedback, GuidanceCase, Measurement, Referral
from data_access.snapshot import FactStore

UTC = dt.UTC


def ts(text: str) -> dt.datetime:
    """An ISO timestamp; without an offset it is UTC (tests say what they mean)."""
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


CONTACT_DEFAULTS = {
    "source_system": "test", "municipality_code": "853", "channel": "phone",
    "resolved_first_contact": None, "client_id": None, "initiator": None, "service_line": None,
    "age_band": None, "outcome": None, "queue_seconds": None, "callback_requested_at": None,
    "callback_done_at": None, "unit_code": None, "professional_group": None, "case_id": None,
}
CONTACT_SCHEMA = {
    "source_system": pl.String, "contact_id": pl.String, "occurred_at": pl.Datetime("us", "UTC"),
    "municipality_code": pl.String, "channel": pl.String, "resolved_first_contact": pl.Boolean,
    "client_id": pl.String, "initiator": pl.String, "service_line": pl.String, "age_band": pl.String,
    "outcome": pl.String, "queue_seconds": pl.Int64, "callback_requested_at": pl.Datetime("us", "UTC"),
    "callback_done_at": pl.Datetime("us", "UTC"), "unit_code": pl.String, "professional_group": pl.String,
    "case_id": pl.String,
}


def add_contacts(engine: sa.Engine, rows: list[dict]) -> None:
    """Insert contacts given as dicts (occurred_at as ISO text or datetime)."""
    records = []
    for i, row in enumerate(rows):
        record = {**CONTACT_DEFAULTS, "contact_id": f"c{uuid.uuid4().hex[:8]}{i}", **row}
        for key in ("occurred_at", "callback_requested_at", "callback_done_at"):
            if isinstance(record[key], str):
                record[key] = ts(record[key])
        records.append(record)
    frame = pl.DataFrame(records, schema=CONTACT_SCHEMA)
    _write(engine, Contact.__table__, frame)


def add_referrals(engine: sa.Engine, rows: list[dict]) -> None:
    records = []
    for i, row in enumerate(rows):
        record = {"source_system": "test", "referral_id": f"r{uuid.uuid4().hex[:8]}{i}", "service_started_at": None, "status": None, **row}
        for key in ("referred_at", "service_started_at"):
            if isinstance(record[key], str):
                record[key] = ts(record[key])
        records.append(record)
    frame = pl.DataFrame(
        records,
        schema={
            "source_system": pl.String, "referral_id": pl.String, "contact_id": pl.String,
            "referred_at": pl.Datetime("us", "UTC"), "destination": pl.String,
            "service_started_at": pl.Datetime("us", "UTC"), "status": pl.String,
        },
    )
    _write(engine, Referral.__table__, frame)


def add_feedback(engine: sa.Engine, rows: list[dict]) -> None:
    records = [
        {"source_system": "test", "feedback_id": f"f{uuid.uuid4().hex[:8]}{i}", "contact_id": None, "channel": "phone", "municipality_code": "853", **row}
        for i, row in enumerate(rows)
    ]
    for record in records:
        if isinstance(record["answered_at"], str):
            record["answered_at"] = ts(record["answered_at"])
    frame = pl.DataFrame(
        records,
        schema={
            "source_system": pl.String, "feedback_id": pl.String, "contact_id": pl.String, "channel": pl.String,
            "municipality_code": pl.String, "answered_at": pl.Datetime("us", "UTC"), "recommend_score": pl.Int64,
        },
    )
    _write(engine, Feedback.__table__, frame)


CASE_TIMES = ("opened_at", "consent_at", "plan_at", "follow_up_due", "follow_up_at", "closed_at")
CASE_SCHEMA = {
    "source_system": pl.String, "case_id": pl.String, "client_id": pl.String, "municipality_code": pl.String,
    "process": pl.String, "identified_by": pl.String, "reasons": pl.String, **{name: pl.Datetime("us", "UTC") for name in CASE_TIMES},
}


def add_cases(engine: sa.Engine, rows: list[dict]) -> None:
    """Guidance cases given as dicts (times as ISO text or datetimes); the case id names it."""
    records = []
    for i, row in enumerate(rows):
        record = {
            "source_system": "test", "case_id": f"g{i}", "client_id": f"k{uuid.uuid4().hex[:8]}", "municipality_code": "853",
            "process": "personal_guidance", "identified_by": None, "reasons": None, **dict.fromkeys(CASE_TIMES[1:]), **row,
        }
        for key in CASE_TIMES:
            if isinstance(record[key], str):
                record[key] = ts(record[key])
        records.append(record)
    _write(engine, GuidanceCase.__table__, pl.DataFrame(records, schema=CASE_SCHEMA))


def add_measurements(engine: sa.Engine, rows: list[dict]) -> None:
    records = [
        {"source_system": "test", "measurement_id": f"m{uuid.uuid4().hex[:8]}{i}", "instrument": "whoqol_bref", "phase": "start", **row}
        for i, row in enumerate(rows)
    ]
    for record in records:
        if isinstance(record["measured_at"], str):
            record["measured_at"] = ts(record["measured_at"])
    frame = pl.DataFrame(
        records,
        schema={
            "source_system": pl.String, "measurement_id": pl.String, "case_id": pl.String, "measured_at": pl.Datetime("us", "UTC"),
            "instrument": pl.String, "phase": pl.String, "domain": pl.String, "score": pl.Float64,
        },
    )
    _write(engine, Measurement.__table__, frame)


def _write(engine: sa.Engine, table: sa.Table, frame: pl.DataFrame) -> None:
    with engine.begin() as conn:
        first = reserve_change_seq(conn, frame.height)
        write_frame(conn, table, frame.with_columns(change_seq=pl.int_range(first, first + pl.len(), dtype=pl.Int64)))


def make_store(engine: sa.Engine, settings: Settings) -> FactStore:
    store = FactStore(engine, settings)
    store.refresh()
    return store


def admin_of_every_county(engine: sa.Engine, email: str, *, name: str) -> None:
    """``email`` an administrator with a grant to every county of the reference data (added
    if not there yet): a signed-in person who sees every figure."""
    from data_access.access import add_user, find_user, grant
    from data_access.models import Region, table_of

    if find_user(engine, email) is None:
        add_user(engine, email, role="admin", name=name)
    with engine.connect() as conn:
        counties = conn.execute(sa.select(table_of(Region).c.code)).scalars().all()
    for county in counties:
        grant(engine, email, region=county)
