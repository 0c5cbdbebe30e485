"""All tables, in one module.

Timestamps are stored in UTC (timestamptz on PostgreSQL, UTC text on SQLite) and read
back as timezone-aware datetimes on both. Every fact row carries ``change_seq``, the
value of the data version when it was last written: caches refresh from it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A datetime that is always UTC: naive values are refused, not guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone-aware value")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(*, nullable: bool = True, index: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class Region(SQLModel, table=True):
    """Wellbeing services county (hyvinvointialue)."""

    __tablename__ = "region"
    code: str = Field(primary_key=True, max_length=2)
    name_fi: str
    name_sv: str


class Municipality(SQLModel, table=True):
    __tablename__ = "municipality"
    code: str = Field(primary_key=True, max_length=3)
    name_fi: str
    name_sv: str
    region_code: str = Field(foreign_key="region.code", index=True)


class Population(SQLModel, table=True):
    __tablename__ = "population"
    municipality_code: str = Field(primary_key=True, foreign_key="municipality.code", max_length=3)
    year: int = Field(primary_key=True)
    population: int = Field(ge=0)
    source: str = ""


class Unit(SQLModel, table=True):
    """Service point or team."""

    __tablename__ = "unit"
    code: str = Field(primary_key=True)
    name: str
    municipality_code: str | None = Field(default=None, foreign_key="municipality.code")


class DataVersion(SQLModel, table=True):
    """One row: the highest change sequence handed out. Caches key on it."""

    __tablename__ = "data_version"
    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0, sa_type=BIGINT_PK)
    # Random, made once: tells a saved snapshot which database it belongs to (snapshot.py).
    database_id: str | None = Field(default=None, max_length=32)


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (
        sa.UniqueConstraint("source_system", "contact_id", name="uq_contact_natural_key"),
        sa.Index("ix_contact_municipality_occurred", "municipality_code", "occurred_at"),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    source_system: str = Field(max_length=100)
    contact_id: str = Field(max_length=100)
    occurred_at: dt.datetime = Field(sa_column=_ts(nullable=False, index=True))
    municipality_code: str = Field(max_length=3)
    channel: str = Field(max_length=20)
    resolved_first_contact: bool | None = None
    client_id: str | None = Field(default=None, max_length=100)
    unit_code: str | None = Field(default=None, max_length=100)
    contact_type: str | None = Field(default=None, max_length=3)
    initiator: str | None = Field(default=None, max_length=30)
    service_line: str | None = Field(default=None, max_length=30)
    reason: str | None = Field(default=None, max_length=40)
    professional_group: str | None = Field(default=None, max_length=30)
    age_band: str | None = Field(default=None, max_length=5)
    outcome: str | None = Field(default=None, max_length=30)
    queue_seconds: int | None = Field(default=None, ge=0)
    callback_requested_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    callback_done_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    case_id: str | None = Field(default=None, max_length=100)
    updated_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    batch_id: int | None = None  # provenance, no foreign-key check (migration 0004)
    change_seq: int = Field(default=0, sa_type=sa.BigInteger, index=True)


class Referral(SQLModel, table=True):
    __tablename__ = "referral"
    __table_args__ = (
        sa.UniqueConstraint("source_system", "referral_id", name="uq_referral_natural_key"),
        sa.Index("ix_referral_contact", "source_system", "contact_id"),
    )
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    source_system: str = Field(max_length=100)
    referral_id: str = Field(max_length=100)
    contact_id: str = Field(max_length=100)
    referred_at: dt.datetime = Field(sa_column=_ts(nullable=False, index=True))
    destination: str = Field(max_length=40)
    service_started_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    status: str | None = Field(default=None, max_length=20)
    updated_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    batch_id: int | None = None  # provenance, no foreign-key check (migration 0004)
    change_seq: int = Field(default=0, sa_type=sa.BigInteger, index=True)


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"
    __table_args__ = (sa.UniqueConstraint("source_system", "feedback_id", name="uq_feedback_natural_key"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    source_system: str = Field(max_length=100)
    feedback_id: str = Field(max_length=100)
    contact_id: str | None = Field(default=None, max_length=100)
    answered_at: dt.datetime = Field(sa_column=_ts(nullable=False, index=True))
    channel: str | None = Field(default=None, max_length=20)
    municipality_code: str = Field(max_length=3)
    recommend_score: int = Field(ge=0, le=10)
    updated_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    batch_id: int | None = None  # provenance, no foreign-key check (migration 0004)
    change_seq: int = Field(default=0, sa_type=sa.BigInteger, index=True)


class GuidanceCase(SQLModel, table=True):
    __tablename__ = "guidance_case"
    __table_args__ = (sa.UniqueConstraint("source_system", "case_id", name="uq_case_natural_key"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    source_system: str = Field(max_length=100)
    case_id: str = Field(max_length=100)
    client_id: str = Field(max_length=100)
    municipality_code: str = Field(max_length=3)
    opened_at: dt.datetime = Field(sa_column=_ts(nullable=False, index=True))
    process: str | None = Field(default=None, max_length=30)
    identified_by: str | None = Field(default=None, max_length=30)
    reasons: str | None = None
    consent_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    plan_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    follow_up_due: dt.datetime | None = Field(default=None, sa_column=_ts())
    follow_up_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    closed_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    close_reason: str | None = None
    updated_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    batch_id: int | None = None  # provenance, no foreign-key check (migration 0004)
    change_seq: int = Field(default=0, sa_type=sa.BigInteger, index=True)


class Measurement(SQLModel, table=True):
    __tablename__ = "measurement"
    __table_args__ = (sa.UniqueConstraint("source_system", "measurement_id", name="uq_measurement_natural_key"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    source_system: str = Field(max_length=100)
    measurement_id: str = Field(max_length=100)
    case_id: str = Field(max_length=100)
    measured_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    instrument: str = Field(max_length=20)
    phase: str = Field(max_length=10)
    domain: str = Field(max_length=20)
    score: float
    updated_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    batch_id: int | None = None  # provenance, no foreign-key check (migration 0004)
    change_seq: int = Field(default=0, sa_type=sa.BigInteger, index=True)


class IngestBatch(SQLModel, table=True):
    """One loaded file (or one seeding run) and its report."""

    __tablename__ = "ingest_batch"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    file_name: str
    source_system: str | None = None
    started_at: dt.datetime = Field(sa_column=_ts(nullable=False))
    finished_at: dt.datetime | None = Field(default=None, sa_column=_ts())
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    status: str = Field(default="running", max_length=20)
    message: str | None = None


class QuarantinedRow(SQLModel, table=True):
    """An input row that was refused, kept as it came with every reason."""

    __tablename__ = "quarantined_row"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    batch_id: int = Field(foreign_key="ingest_batch.id", index=True)
    kind: str = Field(max_length=20)
    file_name: str
    line_number: int
    raw: str
    reasons: str
    reprocessed_at: dt.datetime | None = Field(default=None, sa_column=_ts())


class AppUser(SQLModel, table=True):
    """A person who may sign in (by the e-mail address the identity provider gives), and their role."""

    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str | None = Field(default=None, max_length=200)
    role: str = Field(max_length=20)
    active: bool = True
    created_at: dt.datetime = Field(sa_column=_ts(nullable=False))


class UserGrant(SQLModel, table=True):
    """One municipality, or one county, a user may see."""

    __tablename__ = "user_grant"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    municipality_code: str | None = Field(default=None, max_length=3)
    region_code: str | None = Field(default=None, max_length=2)


class AuditEvent(SQLModel, table=True):
    """Who signed in, looked at or downloaded what, when: codes and dates, never client data."""

    __tablename__ = "audit_event"
    id: int | None = Field(default=None, primary_key=True, sa_type=BIGINT_PK)
    at: dt.datetime = Field(sa_column=_ts(nullable=False, index=True))
    email: str | None = Field(default=None, max_length=254)
    action: str = Field(max_length=20)
    page: str | None = Field(default=None, max_length=60)
    detail: str = Field(default="{}", sa_type=sa.Text)


FACT_TABLES = (Contact, Referral, Feedback, GuidanceCase, Measurement)


def table_of(model: type[SQLModel]) -> sa.Table:
    """A table model's SQLAlchemy table (SQLModel sets ``__table__``; its type stubs do not
    say so)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table
