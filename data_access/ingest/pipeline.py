"""Loading files: validate, upsert on natural keys, quarantine the rest, report.

One file is one transaction: a file that cannot be processed stores nothing, and a
processed file's counts always add up (read = inserted + updated + unchanged +
quarantined + repeated, the last being lines whose key a later line of the file repeats). Rows are compared with what is stored, so loading the same file again
changes nothing; a row with a newer ``updated_at`` replaces the stored one, an older
one is ignored. Without ``updated_at`` on either side, a changed row replaces.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlmodel import col

from data_access.bulk import write_frame
from data_access.columnar import fetch_frame
from data_access.config import get_settings
from data_access.engine import reserve_change_seq
from data_access.ingest.profiles import Profile, load_profile
from data_access.ingest.reading import FileError, open_batches
from data_access.ingest.validate import SPECS, KindSpec, TimeWindow, guess_kind, validate
from data_access.models import (
    Contact,
    IngestBatch,
    Municipality,
    QuarantinedRow,
    Referral,
    UTCDateTime,
    table_of,
)
from data_access.snapshot import select_columns

UNCHANGED = "unchanged"

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class IngestReport:
    file: str
    kind: str
    batch_id: int | None = None
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    # Lines whose key a later line of the same file repeats (only the newest, else the last,
    # is stored), and the repeated keys whose lines differ in their values, with the lines.
    repeated: int = 0
    conflicts: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    pending_referrals: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file, "kind": self.kind, "batch_id": self.batch_id, "read": self.read,
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "quarantined": self.quarantined, "repeated": self.repeated, "conflicts": self.conflicts,
            "reasons": dict(self.reasons.most_common()),
            "pending_referrals": self.pending_referrals, "seconds": round(self.seconds, 3),
        }

    def text(self) -> str:
        lines = [
            f"{self.file} ({self.kind}): read {self.read}, inserted {self.inserted}, updated {self.updated}, "
            f"unchanged {self.unchanged}, quarantined {self.quarantined}"
            + (f", repeated in the file {self.repeated}" if self.repeated else "") + f" in {self.seconds:.1f} s"
        ]
        if self.conflicts:
            lines.append(f"  the same key with different values on several lines (the newest, else the last, was stored): {len(self.conflicts)}")
            lines += [f"    {conflict}" for conflict in self.conflicts[:CONFLICTS_LISTED]]
        lines += [f"  quarantined: {count} × {reason}" for reason, count in self.reasons.most_common()]
        if self.pending_referrals:
            lines.append(f"  referrals waiting for their contact: {self.pending_referrals}")
        return "\n".join(lines)


CONFLICTS_LISTED = 10


def _conflicts(valid: pl.DataFrame, keys: list[str], values: list[str]) -> list[str]:
    """Keys repeated in the batch whose lines differ in any stored value, with the lines:
    'source_system=s, contact_id=c1: lines 2, 5'."""
    repeated = valid.filter(pl.struct(keys).is_duplicated())
    groups = (
        repeated.group_by(keys, maintain_order=True)
        .agg(pl.col("_line").sort().alias("lines"), pl.struct(values).n_unique().alias("versions"))
        .filter(pl.col("versions") > 1)
    )
    return [
        ", ".join(f"{k}={row[k]}" for k in keys) + ": lines " + ", ".join(str(line) for line in row["lines"])
        for row in groups.iter_rows(named=True)
    ]


def canonical_columns(columns: list[str], spec_fields: set[str], profile: Profile) -> dict[str, str]:
    """Export column -> canonical column, through the profile or by name in any case."""
    mapping: dict[str, str] = {}
    for column in columns:
        target = profile.columns.get(column.strip())
        if target is None and column.strip().lower() in spec_fields:
            target = column.strip().lower()
        if target is not None and target not in mapping.values():
            mapping[column] = target
    return mapping


def ingest_file(
    engine: Engine, path: Path, *, kind: str | None = None, source_system: str | None = None,
    profile: Profile | None = None,
) -> IngestReport:
    """Load one file. Raises FileError (nothing stored) when it cannot be processed at all."""
    started = time.perf_counter()
    profile = profile or load_profile()
    path = Path(path)
    report: IngestReport | None = None
    try:
        with open_batches(path, profile) as (columns, batches):
            chosen = kind or profile.kind or guess_kind([profile.columns.get(c, c).lower() for c in columns])
            if chosen not in SPECS:
                raise FileError(
                    f"{path}: cannot tell what the file holds; give --kind " + ", ".join(SPECS)
                )
            spec = SPECS[chosen]
            mapping = canonical_columns(columns, {f.name for f in spec.fields}, profile)
            source = source_system or profile.source_system
            needed = [name for name in spec.required if not (name == "source_system" and source)]
            missing = [name for name in needed if name not in mapping.values()]
            if missing:
                raise FileError(f"{path}: missing required column(s) {', '.join(missing)}")
            report = IngestReport(file=str(path), kind=chosen)
            # The batch is written and committed before the load: a load killed half-way leaves
            # it "running", and the next load of the kind marks it "interrupted".
            with engine.begin() as conn:
                report.batch_id = start_batch(conn, kind=chosen, file_name=str(path), source_system=source)
            with loading(engine) as conn:
                wait_for_other_loads(conn, kind=chosen, file_name=str(path))
                mark_interrupted(conn, kind=chosen, own_batch=report.batch_id)
                frames = (prepare_frame(batch, mapping, source) for batch in batches)
                load_frames(conn, spec, frames, profile=profile, report=report)
                finish_batch(conn, report)
    except Exception as exc:
        if report is not None and report.batch_id is not None:
            _record_failure(engine, kind=report.kind, file_name=str(path), message=str(exc) or type(exc).__name__, batch_id=report.batch_id)
        elif isinstance(exc, FileError):
            _record_failure(engine, kind=kind or "unknown", file_name=str(path), message=str(exc))
        raise
    report.seconds = time.perf_counter() - started
    return report


def wait_for_other_loads(conn: sa.Connection, *, kind: str, file_name: str) -> None:
    """One load of a kind at a time on PostgreSQL: two overlapping loads at once inserted the
    same new keys and the second died with a unique violation during COPY. A transaction lock
    (released at commit or rollback, also when the process is killed) makes the second wait,
    with a plain line saying so. SQLite lets one writer at a time anyway."""
    if conn.dialect.name != "postgresql":
        return
    key = LOAD_LOCKS.get(kind, 7_316_000)
    if not conn.execute(sa.text("select pg_try_advisory_xact_lock(:key)"), {"key": key}).scalar():
        log.warning("%s: waiting for another load of %s to finish", file_name, kind)
        conn.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": key})


# Advisory lock keys, one per kind (any fixed numbers, not used elsewhere).
LOAD_LOCKS = {"contacts": 7_316_001, "referrals": 7_316_002, "feedback": 7_316_003, "cases": 7_316_004, "measurements": 7_316_005}


# SQLite's page cache while a file loads (the default is 2 MB): secondary indexes take keys
# in no particular order, and a million-row load touched pages faster than it could keep them.
SQLITE_LOAD_CACHE_KIB = 64 * 1024


@contextmanager
def loading(engine: Engine) -> Iterator[sa.Connection]:
    """The one transaction a file loads in. On SQLite the connection keeps a larger page
    cache meanwhile, restored afterwards."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # outside any transaction, like every pragma that changes the connection
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_LOAD_CACHE_KIB}")
            conn.commit()
        try:
            with conn.begin():
                yield conn
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA cache_size=-2000")
                conn.commit()


def prepare_frame(batch: pl.DataFrame, mapping: dict[str, str], source: str | None) -> pl.DataFrame:
    """Canonical column names, the row as it came (``_raw``, a struct turned into JSON text by
    ``raw_text`` only for the rows that are quarantined) and any reading error (``_error``)."""
    originals = [c for c in batch.columns if c not in ("_line", "_error", "_ragged")]
    kept = [*originals, "_ragged"] if "_ragged" in batch.columns else originals
    error = pl.col("_error") if "_error" in batch.columns else pl.lit(None, pl.String)
    frame = batch.with_columns(pl.struct(kept).alias("_raw"), error.alias("_error"))
    frame = frame.select("_line", "_raw", "_error", *(pl.col(c).alias(target) for c, target in mapping.items()))
    if source:
        if "source_system" in frame.columns:
            empty = pl.col("source_system").is_null() | (pl.col("source_system").str.strip_chars() == "")
            frame = frame.with_columns(pl.when(empty).then(pl.lit(source)).otherwise(pl.col("source_system")).alias("source_system"))
        else:
            frame = frame.with_columns(pl.lit(source).alias("source_system"))
    return frame


def raw_text(frame: pl.DataFrame) -> pl.Series:
    """``_raw`` as stored in quarantine: the row's fields as a JSON object, or for a row with
    the wrong number of fields, the fields as they were split."""
    raw_type = frame.schema["_raw"]
    assert isinstance(raw_type, pl.Struct)
    fields = [f.name for f in raw_type.fields]
    row = pl.struct(pl.col("_raw").struct.field(*(f for f in fields if f != "_ragged"))).struct.json_encode()
    if "_ragged" in fields:
        row = pl.coalesce(pl.col("_raw").struct.field("_ragged"), row)
    return frame.select(row.alias("_raw")).to_series()


def load_frames(
    conn: sa.Connection, spec: KindSpec, frames: Iterable[pl.DataFrame], *, profile: Profile, report: IngestReport,
) -> None:
    """Validate and store text frames (canonical columns, ``_line``, ``_raw``) inside ``conn``'s transaction."""
    municipalities = list(conn.execute(sa.select(col(Municipality.code))).scalars())
    settings = get_settings()
    window = TimeWindow.around(
        dt.datetime.now(dt.UTC), earliest=settings.earliest_record_date, future_minutes=settings.future_tolerance_minutes
    )

    def validated() -> Iterator[tuple[int, pl.DataFrame, pl.DataFrame]]:
        for frame in frames:
            valid, bad = validate(frame, spec, profile, municipalities=municipalities, window=window)
            yield frame.height, valid, bad

    # Reading and validating the next batch overlaps with writing this one (polars and the
    # database drivers release the GIL); the queue holds at most two batches.
    new_sources = NewSources(spec)
    for read, valid, bad in _ahead(validated(), depth=2):
        report.read += read
        _quarantine(conn, bad, spec=spec, report=report)
        _upsert(conn, spec, valid, report=report, new_sources=new_sources)
    report.pending_referrals = _pending_referrals(conn)


_DONE = object()


def _ahead(items: Iterator[T], *, depth: int) -> Iterator[T]:
    """Produce ``items`` on a worker thread, at most ``depth`` ahead; errors surface here."""
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((True, _DONE))
        except BaseException as exc:
            slots.put((False, exc))

    worker = threading.Thread(target=work, name="ingest-validate", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = slots.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=5)


def _quarantine(conn: sa.Connection, bad: pl.DataFrame, *, spec: KindSpec, report: IngestReport) -> None:
    if bad.is_empty():
        return
    report.quarantined += bad.height
    for reasons in bad["_reasons"].to_list():
        for reason in reasons:
            report.reasons[_reason_category(reason)] += 1
    bad = bad.with_columns(raw_text(bad))
    # A row already waiting in quarantine is not stored twice. It is known by its content and
    # line, not by the file's name: the same file loaded once by a relative and once by an
    # absolute path, or renamed, doubled the quarantine.
    q = table_of(QuarantinedRow)
    first, last = bad.select(pl.col("_line").min().alias("first"), pl.col("_line").max().alias("last")).row(0)
    waiting = conn.execute(
        sa.select(q.c.line_number, q.c.raw).where(
            q.c.kind == spec.kind, q.c.reprocessed_at.is_(None), q.c.line_number.between(int(first), int(last))
        )
    ).all()
    if waiting:
        known = pl.DataFrame([tuple(w) for w in waiting], schema={"_line": pl.Int64, "_raw": pl.String}, orient="row")
        bad = bad.join(known, on=["_line", "_raw"], how="anti")
    rows = bad.select(
        pl.lit(report.batch_id, pl.Int64).alias("batch_id"),
        pl.lit(spec.kind).alias("kind"),
        pl.lit(report.file).alias("file_name"),
        pl.col("_line").cast(pl.Int64).alias("line_number"),
        pl.col("_raw").alias("raw"),
        pl.col("_reasons").list.join("; ").alias("reasons"),
    )
    write_frame(conn, table_of(QuarantinedRow), rows)
    if rows.height:
        # The quarantine counts are cached per data version: a file of only refused rows must
        # move it too.
        reserve_change_seq(conn, 1)


def _reason_category(reason: str) -> str:
    """'channel: unknown value 'faksi'' -> 'channel: unknown value' (for counting)."""
    return reason.split(" '", 1)[0]


def _keys(spec: KindSpec) -> list[str]:
    return ["source_system", spec.key]


@dataclass
class NewSources:
    """Source systems that had no stored rows of this kind when the file began, and (hashed)
    the keys the file has stored for them since. A row of such a source with a key the file
    has not stored is new without asking the database: a first load of a large export skips
    its key lookups (all misses; on PostgreSQL 0.5 s per 100 000 rows). Two keys with the
    same hash only cost a lookup that was not needed."""

    spec: KindSpec
    empty: dict[str, bool] = field(default_factory=dict)
    stored: pl.Series = field(default_factory=lambda: pl.Series("hash", [], pl.UInt64))

    def to_ask(self, conn: sa.Connection, keys: pl.DataFrame) -> pl.DataFrame:
        """The keys whose stored rows must be read from the database."""
        table, (source, _) = self.spec.table, _keys(self.spec)
        for name in keys[source].unique().to_list():
            if name not in self.empty:
                self.empty[name] = conn.execute(sa.select(table.c.id).where(table.c[source] == name).limit(1)).first() is None
        fresh = self._fresh()
        if not fresh:
            return keys
        return keys.filter(~pl.col(source).is_in(fresh) | self._hash().is_in(self.stored.implode()))

    def remember(self, keys: pl.DataFrame) -> None:
        fresh = self._fresh()
        if fresh:
            added = keys.filter(pl.col(_keys(self.spec)[0]).is_in(fresh)).select(self._hash()).to_series()
            self.stored = pl.concat([self.stored, added.alias("hash")])

    def _fresh(self) -> list[str]:
        return [name for name, empty in self.empty.items() if empty]

    def _hash(self) -> pl.Expr:
        return pl.concat_str(_keys(self.spec), separator="\x1f").hash()


def _upsert(
    conn: sa.Connection, spec: KindSpec, valid: pl.DataFrame, *, report: IngestReport, new_sources: NewSources | None = None,
) -> None:
    if valid.is_empty():
        return
    keys = _keys(spec)
    stored = [c for c in spec.stored if c in valid.columns]
    # A key repeated inside the batch is stored once: the newest version, else the last line.
    # (Sorting copies the batch, so only a batch with a repeated key is sorted.)
    latest = valid
    if valid.select(pl.struct(keys).is_duplicated().any()).item():
        ordered = valid.sort(pl.col("updated_at").fill_null(dt.datetime.min.replace(tzinfo=dt.UTC)), "_line")
        latest = ordered.unique(subset=keys, keep="last", maintain_order=True)
        report.conflicts += _conflicts(valid, keys, [c for c in stored if c not in keys])
    report.repeated += valid.height - latest.height
    asked = latest.select(keys) if new_sources is None else new_sources.to_ask(conn, latest.select(keys))
    existing = _existing(conn, spec, asked) if not asked.is_empty() else None
    if existing is None or existing.is_empty():  # nothing stored under these keys: all new
        _write(conn, spec, latest.select(stored), latest.head(0).select(stored), report=report, new_sources=new_sources)
        return
    timestamps = [c for c in stored if isinstance(spec.table.c[c].type, UTCDateTime)]
    incoming = latest.with_columns(*(pl.col(c).dt.epoch("s").alias(f"_cmp_{c}") for c in timestamps))
    joined = incoming.join(existing, on=keys, how="left", suffix="_old")
    is_new = pl.col("_id_old").is_null()
    older = pl.col("_cmp_updated_at").is_not_null() & pl.col("updated_at_old").is_not_null() & (
        pl.col("_cmp_updated_at") < pl.col("updated_at_old")
    )
    same = pl.lit(True)
    for column in stored:
        if column in keys:
            continue
        mine = pl.col(f"_cmp_{column}") if column in timestamps else pl.col(column)
        same = same & mine.eq_missing(pl.col(f"{column}_old"))
    classified = joined.with_columns(
        pl.when(is_new).then(pl.lit("insert")).when(older | same).then(pl.lit(UNCHANGED)).otherwise(pl.lit("update")).alias("_action")
    )
    inserts = classified.filter(pl.col("_action") == "insert").select(stored)
    updates = classified.filter(pl.col("_action") == "update").select(stored)
    report.unchanged += classified.filter(pl.col("_action") == UNCHANGED).height
    _write(conn, spec, inserts, updates, report=report, new_sources=new_sources)


def _write(
    conn: sa.Connection, spec: KindSpec, inserts: pl.DataFrame, updates: pl.DataFrame, *, report: IngestReport,
    new_sources: NewSources | None,
) -> None:
    """Store new and changed rows, each with the next change sequence number and this batch."""
    if inserts.is_empty() and updates.is_empty():
        return
    first = reserve_change_seq(conn, inserts.height + updates.height)
    stamp = [pl.lit(report.batch_id, pl.Int64).alias("batch_id")]
    if not inserts.is_empty():
        write_frame(
            conn, spec.table,
            inserts.with_columns(pl.int_range(first, first + pl.len(), dtype=pl.Int64).alias("change_seq"), *stamp),
        )
        report.inserted += inserts.height
        if new_sources is not None:
            new_sources.remember(inserts.select(_keys(spec)))
    if not updates.is_empty():
        start = first + inserts.height
        _apply_updates(conn, spec, updates.with_columns(pl.int_range(start, start + pl.len(), dtype=pl.Int64).alias("change_seq"), *stamp))
        report.updated += updates.height


def _temp_table(conn: sa.Connection, name: str, spec: KindSpec, columns: list[str]) -> sa.Table:
    metadata = sa.MetaData()
    table = sa.Table(
        name, metadata,
        *(sa.Column(c, spec.table.c[c].type) for c in columns),
        prefixes=["TEMPORARY"],
    )
    conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    table.create(conn)
    return table


def _existing(conn: sa.Connection, spec: KindSpec, keys: pl.DataFrame) -> pl.DataFrame:
    """Stored rows for these natural keys, timestamps as epoch seconds, columns suffixed _old.

    The keys travel as one JSON array of [source, key] pairs that the database unpacks and
    probes the natural-key index with: no temporary table to fill, no per-value adaptation."""
    key_columns = _keys(spec)
    table = spec.table
    pairs = sa.bindparam("pairs", type_=sa.String)
    if conn.dialect.name == "postgresql":
        wanted = sa.func.json_array_elements(sa.cast(pairs, postgresql.JSON)).table_valued("value").render_derived(name="wanted")
        item: Callable[[int], Any] = wanted.c.value.op("->>")
    else:
        wanted = sa.func.json_each(pairs).table_valued("value").alias("wanted")
        def item(i: int) -> Any:
            return sa.func.json_extract(wanted.c.value, f"$[{i}]")
    on = sa.and_(*(table.c[name] == item(i) for i, name in enumerate(key_columns)))
    parameters = {"pairs": json.dumps(keys.select(key_columns).rows())}
    select, schema = select_columns(table, [c for c in spec.stored if c not in key_columns] + key_columns)
    select = select.add_columns(table.c.id.label("_id")).select_from(wanted.join(table, on))
    existing = fetch_frame(conn, select, {**schema, "_id": pl.Int64()}, parameters).with_columns(pl.col(pl.Int8).cast(pl.Boolean))
    return existing.rename({c: f"{c}_old" for c in existing.columns if c not in key_columns})


def _apply_updates(conn: sa.Connection, spec: KindSpec, updates: pl.DataFrame) -> None:
    table = spec.table
    temp = _temp_table(conn, "_ingest_updates", spec, updates.columns)
    write_frame(conn, temp, updates)
    keys = _keys(spec)
    conn.execute(
        sa.update(table)
        .values({table.c[c]: temp.c[c] for c in updates.columns if c not in keys})
        .where(*(table.c[k] == temp.c[k] for k in keys))
    )
    conn.execute(sa.text('DROP TABLE "_ingest_updates"'))


def _pending_referrals(conn: sa.Connection) -> int:
    r, c = table_of(Referral), table_of(Contact)
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(
                r.outerjoin(c, sa.and_(c.c.source_system == r.c.source_system, c.c.contact_id == r.c.contact_id))
            ).where(c.c.id.is_(None))
        ).scalar() or 0
    )


def start_batch(conn: sa.Connection, *, kind: str, file_name: str, source_system: str | None) -> int:
    table = table_of(IngestBatch)
    batch_id: int = conn.execute(
        sa.insert(table).values(
            kind=kind, file_name=file_name, source_system=source_system, started_at=dt.datetime.now(dt.UTC), status="running"
        ).returning(table.c.id)
    ).scalar_one()
    return batch_id


def finish_batch(conn: sa.Connection, report: IngestReport) -> None:
    table = table_of(IngestBatch)
    conn.execute(
        sa.update(table).where(table.c.id == report.batch_id).values(
            finished_at=dt.datetime.now(dt.UTC), status="done", rows_read=report.read, rows_inserted=report.inserted,
            # The batch table has no column of its own for lines a later line repeats: they count
            # as unchanged there (the report says them apart).
            rows_updated=report.updated, rows_unchanged=report.unchanged + report.repeated, rows_quarantined=report.quarantined,
        )
    )


def mark_interrupted(conn: sa.Connection, *, kind: str, own_batch: int | None) -> None:
    """Batches of this kind still "running" belong to loads that no longer run (this one holds
    the kind's lock on PostgreSQL; SQLite has one writer): they were killed."""
    table = table_of(IngestBatch)
    conn.execute(
        sa.update(table).where(table.c.kind == kind, table.c.status == "running", table.c.id != own_batch).values(
            status="interrupted", message="the load stopped before it finished (nothing of it was stored)"
        )
    )


def _record_failure(engine: Engine, *, kind: str, file_name: str, message: str, batch_id: int | None = None) -> None:
    """A file that could not be processed leaves a trace, in its own transaction: its batch
    marked failed, or a failed batch when it failed before one was started."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        if batch_id is not None:
            table = table_of(IngestBatch)
            conn.execute(sa.update(table).where(table.c.id == batch_id).values(finished_at=now, status="failed", message=message))
            return
        conn.execute(
            sa.insert(table_of(IngestBatch)).values(
                kind=kind, file_name=file_name, started_at=now, finished_at=now, status="failed", message=message
            )
        )
