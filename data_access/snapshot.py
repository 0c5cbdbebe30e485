"""The columnar snapshot of the facts: polars frames refreshed incrementally.

One store per database per server process. ``refresh`` reads only rows whose
``change_seq`` is above the last one seen, so an unchanged database costs one
single-row query. Derived columns (local day, week, hour, electronic, same-day
callback, verified resolution, care-guarantee days) are computed here once, not per
query.
"""

from __future__ import annotations

import datetime as dt
import threading

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access import codes
from data_access.config import Settings
from data_access.engine import data_version, epoch_seconds
from data_access.models import Contact, Feedback, Referral, UTCDateTime
from data_access.reference import reference_frames

HELSINKI = "Europe/Helsinki"
FETCH_ROWS = 200_000

CONTACT_ATTRIBUTES = (
    "municipality_code", "channel", "service_line", "age_band", "initiator", "unit_code",
    "professional_group", "source_system",
)


def select_columns(table: sa.Table, names: list[str] | None = None) -> tuple[sa.Select, dict[str, pl.DataType]]:
    """Select columns of ``table`` (default: all but batch_id and updated_at) with their
    polars types; timestamps as epoch seconds, which are cheap to read on both databases."""
    columns, schema = [], {}
    wanted = names or [c.name for c in table.columns if c.name not in {"batch_id", "updated_at"}]
    for column in (table.c[name] for name in wanted):
        if isinstance(column.type, UTCDateTime):
            columns.append(epoch_seconds(column).label(column.name))
            schema[column.name] = pl.Int64
        elif isinstance(column.type, sa.Boolean):
            columns.append(column)
            schema[column.name] = pl.Int8
        elif isinstance(column.type, (sa.Integer, sa.BigInteger)):
            columns.append(column)
            schema[column.name] = pl.Int64
        else:
            columns.append(column)
            schema[column.name] = pl.String
    return sa.select(*columns), schema


def fetch_frame(conn: sa.Connection, select: sa.Select, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Run ``select`` through the DBAPI cursor (no per-row SQLAlchemy objects) into a frame."""
    compiled = select.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(str(compiled))
        chunks = []
        while rows := cursor.fetchmany(FETCH_ROWS):
            chunks.append(pl.DataFrame(rows, schema=schema, orient="row"))
    finally:
        cursor.close()
    return pl.concat(chunks) if chunks else pl.DataFrame(schema=schema)


def read_table(engine: Engine, table: sa.Table, *, after_seq: int, upto_seq: int) -> pl.DataFrame:
    """Rows changed in (after_seq, upto_seq], read through the DBAPI cursor in chunks."""
    select, schema = select_columns(table)
    select = select.where(table.c.change_seq > after_seq, table.c.change_seq <= upto_seq)
    with engine.connect() as conn:
        frame = fetch_frame(conn, select, schema)
    timestamps = [name for name, col in table.c.items() if isinstance(col.type, UTCDateTime) and name in schema]
    return frame.with_columns(
        *(pl.from_epoch(pl.col(name), time_unit="s").dt.replace_time_zone("UTC") for name in timestamps),
        *(pl.col(name).cast(pl.Boolean) for name, dtype in schema.items() if dtype == pl.Int8),
    )


def _local_calendar(column: str) -> list[pl.Expr]:
    local = pl.col(column).dt.convert_time_zone(HELSINKI)
    return [
        local.dt.date().alias("day"),
        local.dt.hour().cast(pl.Int8).alias("hour"),
        (local.dt.hour().cast(pl.Int16) * 60 + local.dt.minute().cast(pl.Int16)).alias("minute_of_day"),
        local.dt.weekday().cast(pl.Int8).alias("weekday"),
        local.dt.date().dt.truncate("1w").alias("week"),
        local.dt.date().dt.truncate("1mo").alias("month"),
    ]


class FactStore:
    """Contacts, referrals and feedback as polars frames, plus reference data."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.version = 0
        self.as_of = dt.datetime.now(dt.UTC)
        self._lock = threading.Lock()
        self._raw: dict[str, pl.DataFrame] = {}
        self.contacts = pl.DataFrame()
        self.referrals = pl.DataFrame()
        self.feedback = pl.DataFrame()
        self.municipalities = pl.DataFrame()
        self.populations = pl.DataFrame()
        self._loaded = False

    def refresh(self) -> bool:
        """Bring the frames up to the database's data version. True when anything changed."""
        current = data_version(self.engine)
        if self._loaded and current == self.version:
            return False
        with self._lock:
            if self._loaded and current == self.version:
                return False
            for name, table in (("contact", Contact), ("referral", Referral), ("feedback", Feedback)):
                tail = read_table(self.engine, table.__table__, after_seq=self.version, upto_seq=current)
                old = self._raw.get(name)
                if old is None or old.is_empty():
                    merged = tail
                elif tail.is_empty():
                    merged = old
                else:
                    # A correction keeps its primary key: the newer row replaces the older.
                    merged = pl.concat([old.filter(~pl.col("id").is_in(tail["id"].implode())), tail])
                self._raw[name] = merged
            self.municipalities, self.populations = reference_frames(self.engine)
            self.as_of = dt.datetime.now(dt.UTC)
            self._derive()
            self.version = current
            self._loaded = True
        return True

    def _derive(self) -> None:
        electronic = list(self.settings.electronic_channels)
        window = dt.timedelta(days=self.settings.verified_resolution_days)
        contacts = self._raw["contact"].sort("client_id", "occurred_at").with_columns(
            *_local_calendar("occurred_at"),
            pl.col("channel").is_in(electronic).alias("electronic"),
            pl.col("municipality_code").replace_strict(
                dict(self.municipalities.select("municipality_code", "region_code").iter_rows()),
                default=None, return_dtype=pl.String,
            ).alias("region_code"),
            pl.when(pl.col("callback_requested_at").is_not_null()).then(
                pl.col("callback_done_at").is_not_null()
                & (
                    pl.col("callback_done_at").dt.convert_time_zone(HELSINKI).dt.date()
                    == pl.col("callback_requested_at").dt.convert_time_zone(HELSINKI).dt.date()
                )
            ).alias("callback_same_day"),
            (
                pl.col("occurred_at").shift(-1).over("client_id") - pl.col("occurred_at") <= window
            ).fill_null(False).alias("_recontact"),
        )
        verifiable = (
            pl.col("resolved_first_contact").is_not_null()
            & pl.col("client_id").is_not_null()
            & (pl.col("occurred_at") <= self.as_of - window)
        )
        self.contacts = contacts.with_columns(
            pl.when(verifiable).then(pl.col("resolved_first_contact") & ~pl.col("_recontact")).alias("verified_resolved")
        ).drop("_recontact").sort("occurred_at")

        referrals = self._raw["referral"].join(
            self.contacts.select("source_system", "contact_id", *CONTACT_ATTRIBUTES[:-1], "region_code"),
            on=["source_system", "contact_id"], how="left",
        )
        # Every frame is kept in time order, so a period is a binary-search slice (metrics.py).
        self.referrals = referrals.sort("referred_at").with_columns(
            *_local_calendar("referred_at"),
            ((pl.col("service_started_at") - pl.col("referred_at")).dt.total_seconds() / 86400).alias("days_to_start"),
            guarantee_days_expr(self.settings).alias("guarantee_days"),
        )
        self.feedback = self._raw["feedback"].sort("answered_at").with_columns(*_local_calendar("answered_at"))


def guarantee_days_expr(settings: Settings) -> pl.Expr:
    """Care-guarantee days for each referral by its date and the client's age band."""
    expr: pl.Expr | None = None
    for effective_from in sorted({rule.effective_from for rule in settings.care_guarantee}, reverse=True):
        by_band = {
            band: settings.care_guarantee_days(on=effective_from, age=midpoint)
            for band, midpoint in codes.AGE_BAND_MIDPOINTS.items()
        }
        unknown = settings.care_guarantee_days(on=effective_from, age=None)
        days = pl.col("age_band").replace_strict(by_band, default=unknown, return_dtype=pl.Int32)
        starts = pl.col("referred_at").dt.convert_time_zone(HELSINKI).dt.date() >= effective_from
        expr = pl.when(starts).then(days) if expr is None else expr.when(starts).then(days)
    earliest = settings.care_guarantee_days(on=dt.date.min, age=None)
    return pl.lit(earliest, dtype=pl.Int32) if expr is None else expr.otherwise(pl.lit(earliest, dtype=pl.Int32))
