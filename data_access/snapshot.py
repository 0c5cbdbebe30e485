"""The columnar snapshot of the facts: polars frames refreshed incrementally.

One store per database per server process. ``refresh`` reads only rows whose
``change_seq`` is above the last one seen, so an unchanged database costs one
single-row query. Derived columns (local day, week, hour, electronic, same-day
callback, verified resolution, care-guarantee days) are computed once per row, not
per query.

Every frame is kept in time order (a period is a binary-search slice, metrics.py). A
refresh re-derives only the recent end of each frame: from the earliest time a changed
row touches (less the re-contact window for contacts) to the end. The rows before it
are kept as they are, without a copy, so a live update at 5 million contacts costs
milliseconds and no second copy of the frames. Code columns are categorical: four
bytes a row instead of sixteen.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access import codes, history, pathway, snapshot_file
from data_access.columnar import BulkReader, Query, read_frames
from data_access.config import Settings
from data_access.engine import DatabaseUnavailable, database_identity, epoch_seconds, sqlite_file, unavailable
from data_access.history import History
from data_access.models import Contact, Feedback, GuidanceCase, Measurement, Referral, UTCDateTime, table_of
from data_access.reference import reference_frames

HELSINKI = "Europe/Helsinki"
log = logging.getLogger(__name__)
# Above this many chunks the recent end is rebuilt as one chunk (queries slow down on many).
MAX_CHUNKS = 8
# More changed rows than this are read through Arrow (a child process on SQLite).
BULK_ROWS = 50_000

CONTACT_ATTRIBUTES = (
    "municipality_code", "channel", "service_line", "age_band", "initiator", "unit_code",
    "professional_group", "source_system",
)
# The columns the store reads: what metrics, breakdowns and joins use.
STORED = {
    "contact": (
        "id", "source_system", "contact_id", "occurred_at", "municipality_code", "channel",
        "resolved_first_contact", "client_id", "unit_code", "contact_type", "initiator", "service_line",
        "reason", "professional_group", "age_band", "outcome", "queue_seconds", "callback_requested_at",
        "callback_done_at", "case_id",
    ),
    "referral": (
        "id", "source_system", "contact_id", "referred_at", "destination", "service_started_at", "status",
    ),
    "feedback": ("id", "source_system", "contact_id", "answered_at", "channel", "municipality_code", "recommend_score"),
    "guidance_case": (
        "id", "source_system", "case_id", "client_id", "municipality_code", "opened_at", "process", "identified_by",
        "reasons", "consent_at", "plan_at", "follow_up_due", "follow_up_at", "closed_at",
    ),
    "measurement": ("id", "source_system", "case_id", "measured_at", "instrument", "phase", "domain", "score"),
}
# A contact that is a visit of a guidance case is also kept, narrowly, among the visits
# (pathway.py); the contacts frame itself does not keep the case.
VISIT_COLUMNS = ("id", "source_system", "contact_id", "case_id", "occurred_at", "unit_code")
# Columns of a code list are Enums: one byte a row instead of four (at 5 million contacts
# and 2.2 million referrals, 165 MB less). Ingestion accepts only these codes.
CODE_LISTS = {
    **codes.BY_COLUMN,
    **{column: codes.BY_COLUMN[shared] for column, shared in codes.LIST_OF.items() if column != "reasons"},
}
# Open sets (and municipalities, from the reference data) are categorical.
CATEGORICAL = {
    "source_system", "municipality_code", "unit_code", "region_code",
    "client_id",  # sorted by its integer code to find re-contacts, and half the memory of text
}
TABLES = {
    "contact": table_of(Contact), "referral": table_of(Referral), "feedback": table_of(Feedback),
    "guidance_case": table_of(GuidanceCase), "measurement": table_of(Measurement),
}
TIME_OF = {
    "contact": "occurred_at", "referral": "referred_at", "feedback": "answered_at", "guidance_case": "opened_at",
    "measurement": "measured_at",
}


def select_columns(table: sa.Table, names: list[str] | tuple[str, ...] | None = None) -> tuple[sa.Select[Any], dict[str, pl.DataType]]:
    """Select columns of ``table`` (default: all but batch_id and updated_at) with their
    polars types; timestamps as epoch seconds, which are cheap to read on both databases."""
    columns: list[sa.ColumnElement[Any]] = []
    schema: dict[str, pl.DataType] = {}
    wanted = names or [c.name for c in table.columns if c.name not in {"batch_id", "updated_at"}]
    for column in (table.c[name] for name in wanted):
        if isinstance(column.type, UTCDateTime):
            columns.append(epoch_seconds(column).label(column.name))
            schema[column.name] = pl.Int64()
        elif isinstance(column.type, sa.Boolean):
            columns.append(column)
            schema[column.name] = pl.Int8()
        elif isinstance(column.type, (sa.Integer, sa.BigInteger)):
            columns.append(column)
            schema[column.name] = pl.Int64()
        elif isinstance(column.type, sa.Float):
            columns.append(column)
            schema[column.name] = pl.Float64()
        else:
            columns.append(column)
            schema[column.name] = pl.String()
    return sa.select(*columns), schema


def read_changes(
    engine: Engine, *, after_seq: int, upto_seq: int,
    between: tuple[dt.datetime | None, dt.datetime | None] | None = None, cases: bool = True,
) -> dict[str, pl.DataFrame]:
    """The stored columns of rows changed in (after_seq, upto_seq], typed for the store;
    ``between``: only the contacts, referrals and feedback of that time span (either end
    open), and the cases and measurements only with ``cases``. Large reads (a first load, a
    big ingest) go through Arrow (columnar.py)."""
    return read_frames(
        engine, change_queries(after_seq=after_seq, upto_seq=upto_seq, between=between, cases=cases),
        bulk=upto_seq - after_seq > BULK_ROWS, finish=_finish,
    )


def change_queries(
    *, after_seq: int, upto_seq: int, between: tuple[dt.datetime | None, dt.datetime | None] | None = None, cases: bool = True,
) -> dict[str, Query]:
    """The queries of read_changes, for a run of reads through one BulkReader."""
    queries = {}
    for name, table in TABLES.items():
        select, schema = select_columns(table, STORED[name])
        if after_seq > 0:
            select = select.where(table.c.change_seq > after_seq)
        if between is not None and name in ("contact", "referral", "feedback"):
            low, high = between
            time = table.c[TIME_OF[name]]
            select = select.where(*([time >= low] if low is not None else []), *([time < high] if high is not None else []))
        elif not cases and name in ("guidance_case", "measurement"):
            select = select.where(sa.false())
        queries[name] = (select.where(table.c.change_seq <= upto_seq), schema)
    return queries


def _finish(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    return _typed(TABLES[name], frame)


def _typed(table: sa.Table, frame: pl.DataFrame) -> pl.DataFrame:
    """Store types, plus what each row gives by itself (same-day callback, days to start);
    the timestamps those come from are not kept."""
    try:
        frame = frame.with_columns(
            *(
                pl.from_epoch(pl.col(column), time_unit="s").dt.replace_time_zone("UTC")
                for column in frame.columns
                if isinstance(table.c[column].type, UTCDateTime)
            ),
            *(pl.col(column).cast(pl.Boolean) for column, dtype in frame.schema.items() if dtype == pl.Int8),
            *(pl.col(column).cast(pl.Categorical) for column in frame.columns if column in CATEGORICAL),
            *(pl.col(column).cast(pl.Enum(CODE_LISTS[column])) for column in frame.columns if column in CODE_LISTS),
            *(pl.col(column).cast(pl.Int32) for column in ("queue_seconds", "recommend_score") if column in frame.columns),
        )
    except pl.exceptions.InvalidOperationError:  # a value outside its code list: say which
        _check_codes(table, frame)
        raise
    if "callback_requested_at" in frame.columns:
        requested, done = pl.col("callback_requested_at"), pl.col("callback_done_at")
        same_day = done.dt.convert_time_zone(HELSINKI).dt.date() == requested.dt.convert_time_zone(HELSINKI).dt.date()
        frame = frame.with_columns(
            pl.when(requested.is_not_null()).then(done.is_not_null() & same_day).alias("callback_same_day"),
            # Not done yet: missed once its day is over, still due on the day itself.
            (requested.is_not_null() & done.is_null()).alias("callback_open"),
        ).drop("callback_requested_at", "callback_done_at")
    if "service_started_at" in frame.columns:
        frame = frame.with_columns(
            ((pl.col("service_started_at") - pl.col("referred_at")).dt.total_seconds() / 86400).alias("days_to_start")
        ).drop("service_started_at")
    return frame


class UnknownCode(ValueError):
    """A stored value outside its code list (written around ingestion): not counted silently.
    ``column`` (table.column) and ``values`` (up to five, as stored) say which, for a page to
    say in its own language."""

    def __init__(self, message: str, *, column: str = "", values: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.column, self.values = column, values


def _check_codes(table: sa.Table, frame: pl.DataFrame) -> None:
    for column in (c for c in frame.columns if c in CODE_LISTS):
        unknown = frame.select(pl.col(column).filter(~pl.col(column).is_in(CODE_LISTS[column]) & pl.col(column).is_not_null()).unique())
        if unknown.height:
            found = tuple(str(v) for v in unknown.to_series().head(5).to_list())
            raise UnknownCode(
                f"{table.name}.{column} holds {', '.join(repr(v) for v in found)}, not in the code list; correct the rows "
                "(ohjaustaulu ingest validates every code) and reload",
                column=f"{table.name}.{column}", values=found,
            )


def _local_calendar(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Local day, hour, minute of the day and weekday (weeks and months are cut from the
    day when a query groups by them, metrics.py)."""
    local = pl.col("_local")
    return (
        frame.lazy()
        # The local wall clock as a naive time: each field below is then read off it, where
        # on a zoned time each looked the zone up again (2 M rows: 0.20 -> 0.13 s).
        .with_columns(pl.col(column).dt.convert_time_zone(HELSINKI).dt.replace_time_zone(None).alias("_local"))
        .with_columns(
            local.dt.date().alias("day"),
            local.dt.hour().cast(pl.Int8).alias("hour"),
            (local.dt.hour().cast(pl.Int16) * 60 + local.dt.minute().cast(pl.Int16)).alias("minute_of_day"),
            local.dt.weekday().cast(pl.Int8).alias("weekday"),
        )
        .drop("_local")
        .collect()
    )


def splice(
    frame: pl.DataFrame,
    changed: pl.DataFrame,
    *,
    time: str,
    derive: Callable[[pl.DataFrame], pl.DataFrame],
    lead: dt.timedelta = dt.timedelta(0),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    extra_ids: pl.Series | None = None,
    group: str | None = None,
) -> pl.DataFrame:
    """``frame`` (sorted by ``time``, derived) with the rows of ``changed`` (raw, stored
    columns) put in, replacing rows with the same id. Every row from ``lead`` before the
    earliest time touched (a changed row, new or old, or ``since`` if earlier) to the end
    is re-derived; the rows before that are kept as they are. ``extra_ids`` names further
    rows to re-derive (referrals whose contact changed).

    With ``group`` (a row's derivation reads only the rows of its own group, the contacts of
    its client) only the touched groups are derived again in that stretch, with the rows
    timed from ``since`` to ``until`` (those the clock has moved past: contacts that became
    verifiable) and their groups; the other rows keep what they were derived as. At 15 M
    contacts a new one re-derived the last week's 96 000 contacts (54 ms) for this."""
    raw = changed.columns
    if frame.is_empty():
        return derive(changed).sort(time)
    touched_ids = changed["id"] if extra_ids is None else pl.concat([changed["id"], extra_ids])
    old_times = frame.filter(pl.col("id").is_in(touched_ids.implode()))[time]
    earliest = [value - lead for value in (changed[time].min(), old_times.min()) if isinstance(value, dt.datetime)]
    if since is not None:
        earliest.append(since)
    if frame.n_chunks() > MAX_CHUNKS:
        earliest.append(frame[time][frame[time].chunk_lengths()[0] - 1])
    start = frame[time].search_sorted(min(earliest), side="left") if earliest else frame.height
    if start == frame.height and changed.is_empty():
        # Nothing to put in, nothing to re-derive: deriving the empty rest still joined the
        # referrals' contacts (about 140 ms at 15 M) for each new contact.
        return frame
    head, tail = frame.slice(0, start), frame.slice(start)
    replaced = pl.col("id").is_in(changed["id"].implode())
    if group is None:
        recent = tail.filter(~replaced).select(raw)
        rebuilt = derive(pl.concat([recent, changed], how="vertical_relaxed")).sort(time)
    else:
        moved = pl.col(time).is_between(since, until) if since is not None and until is not None else pl.lit(False)
        named = pl.col("id").is_in(touched_ids.implode()) | moved
        groups = pl.concat([changed[group].cast(tail[group].dtype), tail.filter(named)[group]]).drop_nulls().unique()
        again = named | pl.col(group).is_in(groups.implode()).fill_null(False)
        kept = tail.filter(~again & ~replaced)
        fresh = derive(pl.concat([tail.filter(again & ~replaced).select(raw), changed], how="vertical_relaxed")).sort(time)
        rebuilt = kept.merge_sorted(fresh.select(kept.columns), key=time)
    return pl.concat([head, rebuilt.select(head.columns)], rechunk=False) if start else rebuilt


class FactSource(Protocol):
    """What the registry reads: the fact frames and reference data at one data version, the
    settings and the database they came from. The store and each of its views are one."""

    @property
    def settings(self) -> Settings: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def version(self) -> int: ...
    @property
    def key(self) -> tuple[int, int]: ...
    @property
    def as_of(self) -> dt.datetime: ...
    @property
    def contacts(self) -> pl.DataFrame: ...
    @property
    def referrals(self) -> pl.DataFrame: ...
    @property
    def feedback(self) -> pl.DataFrame: ...
    @property
    def pathway(self) -> dict[str, pl.DataFrame]: ...
    @property
    def history(self) -> History: ...
    @property
    def municipalities(self) -> pl.DataFrame: ...
    @property
    def populations(self) -> pl.DataFrame: ...
    @property
    def origin(self) -> FactStore: ...


class StoreView:
    """The store as it stood at one data version: its frames and reference data fixed, its
    settings and engine the store's own. A page run reads one view, so all its figures come
    from the same data while the store moves on underneath."""

    def __init__(self, store: FactStore) -> None:
        self.origin = store
        self.settings = store.settings
        self.engine = store.engine
        self.version = store.version
        # What the figures of this view are a function of: the data version, and which
        # reading of the database it counts in (a replaced database may repeat a version).
        self.key = (store.generation, store.version)
        self.as_of = store.as_of
        self.contacts, self.referrals, self.feedback = store.contacts, store.referrals, store.feedback
        self.pathway = store.pathway
        self.history = store.history
        self.municipalities, self.populations = store.municipalities, store.populations


@dataclass(frozen=True)
class Health:
    """Whether the database answered the store's last look, and when it last did. Replaced
    whole on every look, so a page reads one consistent value without a lock."""

    answered_at: dt.datetime | None = None  # the last time the database answered (UTC)
    problem: str | None = None  # why the last look failed; None when it answered
    failing_since: dt.datetime | None = None

    @property
    def reachable(self) -> bool:
        return self.problem is None


class FactStore:
    """Contacts, referrals and feedback as polars frames, plus reference data."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.version = 0
        self.as_of = dt.datetime.now(dt.UTC)
        self._lock = threading.Lock()
        self.contacts = pl.DataFrame()
        self.referrals = pl.DataFrame()
        self.feedback = pl.DataFrame()
        # Guidance cases: the stored rows, the visits, and what pathway.py derives from them.
        self.cases, self.measurements, self.visits = pl.DataFrame(), pl.DataFrame(), pl.DataFrame()
        self.pathway: dict[str, pl.DataFrame] = pathway.empty_case_frames()
        self._pathway_due = False
        # Rows before the recent window (settings.memory_days), on disk (history.py); the
        # three fact frames above hold the rest.
        folder = history.Folder(settings.resolved_snapshot_dir)
        self._folder: history.Folder | None = folder
        self.history = History(folder.path)
        self.thawed = 0  # how many times months were brought back (a first read brings none)
        self.municipalities = pl.DataFrame()
        self.populations = pl.DataFrame()
        self._loaded = False
        self._database_id: str | None = None
        self._saved_version = 0
        self._saving: threading.Thread | None = None
        # The data version of the saved snapshot this store started from, if any.
        self.restored_version: int | None = None
        self.health = Health()
        self.generation = 0  # how many times the database was read again from the start
        self._file = sqlite_file(engine.url.render_as_string(hide_password=True))
        self._file_identity: tuple[int, int] | None = None

    @property
    def key(self) -> tuple[int, int]:
        """(generation, version): see StoreView.key."""
        return (self.generation, self.version)

    @property
    def origin(self) -> FactStore:
        """The store itself (a StoreView's ``origin`` is the store it was taken from)."""
        return self

    def whole(self, name: str) -> pl.DataFrame:
        """Every row of a fact frame, the history's included (for checks and tests: a page
        reads only its period, ``metrics.computation.period_rows``)."""
        frame: pl.DataFrame = getattr(self, name)
        older = self.history.scan(name)
        return frame if older is None else pl.concat([older.collect(), frame], how="vertical_relaxed")

    def view(self) -> StoreView:
        """The frames as they are now, fixed (see StoreView)."""
        with self._lock:
            return StoreView(self)

    def refresh(self) -> bool:
        """Bring the frames up to the database's data version. True when anything changed.

        A database that cannot be reached raises DatabaseUnavailable and leaves the frames as
        they were, with ``health`` saying since when; the next refresh tries again with fresh
        connections. A database that was replaced (another file at the same path, a restored
        one with another identity or an older version) is read again from the start."""
        try:
            changed = self._refresh()
        except DatabaseUnavailable as exc:
            self._failed(str(exc))
            raise
        except sa.exc.DBAPIError as exc:
            problem = unavailable(exc, self.engine)
            self._failed(str(problem))
            raise problem from exc
        self.health = Health(answered_at=dt.datetime.now(dt.UTC))
        return changed

    def _failed(self, problem: str) -> None:
        if self.health.reachable:
            log.warning("the database cannot be reached: %s", problem)
        since = self.health.failing_since or dt.datetime.now(dt.UTC)
        self.health = Health(answered_at=self.health.answered_at, problem=problem, failing_since=since)
        # Pooled connections to a server that went away (or to a deleted file) are not reused.
        self.engine.dispose()

    def _check_file(self) -> bool:
        """For an SQLite file: raise when it is missing; True when it is another file than
        the one read before (replaced under the running server)."""
        if self._file is None:
            return False
        try:
            found = self._file.stat()
        except FileNotFoundError:
            raise DatabaseUnavailable(f"the database file {self._file} is missing") from None
        identity = (found.st_dev, found.st_ino)
        replaced = self._file_identity is not None and identity != self._file_identity
        self._file_identity = identity
        if replaced:
            self.engine.dispose()  # connections still open the old (deleted) file
        return replaced

    def _refresh(self) -> bool:
        replaced = self._check_file()
        database_id, current = database_identity(self.engine)
        lost = self._loaded and not self.history.intact()
        if lost:
            log.warning("files of the history are missing from %s; reading every row again", self.history.folder)
        if self._loaded and (lost or replaced or database_id != self._database_id or current < self.version):
            if not lost:
                log.warning("the database was replaced; reading it again from the start")
            with self._lock:
                self._loaded = False
                self.generation += 1
                self._clear()
                self.restored_version = None
                self._saved_version = 0
        if self._loaded and current == self.version:
            return False
        with self._lock:
            if self._loaded and current == self.version:
                return False
            self.municipalities, self.populations = reference_frames(self.engine)
            if not self._loaded:
                if self._folder is not None:  # history folders of servers that have ended
                    self._folder.sweep()
                self._database_id = database_id
                # The row counts that guard a saved snapshot are read while it loads.
                counting = _start_counting(self.engine) if snapshot_file.any_saved(self.settings.resolved_snapshot_dir) else None
                restored = counting is not None and self._restore(current)
                self._apply(current)
                if restored and counting is not None and not self._counts_match(counting.result()):
                    log.warning("saved snapshot does not match the database's row counts; reading every row")
                    self._clear()
                    self.restored_version = None
                    self._apply(current)
            else:
                self._apply(current)
            self._loaded = True
            self._save_if_due()
        return True

    def _apply(self, current: int) -> None:
        previous_as_of = self.as_of if self.version else None
        self.as_of = dt.datetime.now(dt.UTC)
        if self.version == 0 and self.settings.memory_days and self._folder is not None:
            self._apply_in_parts(current)
        else:
            self._apply_changes(read_changes(self.engine, after_seq=self.version, upto_seq=current), current, previous_as_of)

    def _apply_in_parts(self, current: int) -> None:
        """A first read of every row, a quarter (local time) at a time in time order, each
        quarter's rows moved to the history once the next one is in: peak memory is a few
        quarters' rows, not every row wide as read (5 M contacts: 2.69 GB)."""
        with self.engine.connect() as conn:
            firsts = [conn.execute(sa.select(sa.func.min(table.c[TIME_OF[name]]))).scalar() for name, table in TABLES.items() if name in ("contact", "referral", "feedback")]
        known = [value for value in firsts if isinstance(value, dt.datetime)]
        if not known:
            self._apply_changes(read_changes(self.engine, after_seq=0, upto_seq=current), current, None)
            return
        first = min(known).astimezone(HELSINKI_ZONE).date()
        quarter = dt.date(first.year, 3 * ((first.month - 1) // 3) + 1, 1)
        starts = []
        today = dt.datetime.now(HELSINKI_ZONE).date()
        while quarter <= today:
            starts.append(quarter)
            quarter = history.next_month(history.next_month(history.next_month(quarter)))

        def instant(day: dt.date) -> dt.datetime:
            return dt.datetime.combine(day, dt.time(), HELSINKI_ZONE).astimezone(dt.UTC)

        instants: list[dt.datetime | None] = [None, *(instant(day) for day in starts[1:]), None]
        pieces = list(itertools.pairwise(instants))

        def read(index: int) -> dict[str, pl.DataFrame]:
            """The quarter a month at a time: what a read holds besides its rows (the driver's
            buffers, then the copy into polars) is a month's, not a quarter's."""
            second = history.next_month(starts[index])
            low, high = pieces[index]
            months = itertools.pairwise([low, instant(second), instant(history.next_month(second)), high])
            runs = [change_queries(after_seq=0, upto_seq=current, between=between, cases=index == part == 0) for part, between in enumerate(months)]
            if current > BULK_ROWS:
                parts = reader.read_many(runs, _finish)
            else:
                parts = [read_frames(self.engine, queries, finish=_finish) for queries in runs]
            return {name: pl.concat([frames[name] for frames in parts], rechunk=False) for name in parts[0]}

        # The next quarter is read (on SQLite in a child process, one for every read) while this one is derived.
        with BulkReader(self.engine) as reader, ThreadPoolExecutor(max_workers=1, thread_name_prefix="first-read") as pool:
            ahead = pool.submit(read, 0)
            for index, (_, high) in enumerate(pieces):
                changes = ahead.result()
                if index + 1 < len(pieces):
                    ahead = pool.submit(read, index + 1)
                self._apply_changes(changes, current, None, settle=high is None, first=True)
                if high is not None:  # this quarter stays in memory for the next one's re-contacts and referrals
                    self._settle(upto=starts[index])

    def _apply_changes(
        self, changes: dict[str, pl.DataFrame], current: int, previous_as_of: dt.datetime | None, *,
        settle: bool = True, first: bool = False,
    ) -> None:
        """Put ``changes`` into the frames. ``first``: a first read's part, whose rows are all
        new to the store; ``settle=False``: a part with more to come (the cases' frames are
        derived, and the old rows moved to the history, after the last)."""
        window = dt.timedelta(days=self.settings.verified_resolution_days)
        contact_changes = changes["contact"]
        if (reached := self._history_reached(changes)) is not None:
            self._thaw(reached)
        visits_changed = bool(contact_changes["case_id"].is_not_null().any()) or (
            not self.visits.is_empty() and bool(self.visits["id"].is_in(contact_changes["id"].implode()).any())
        )
        self.visits = splice(
            self.visits, contact_changes.select(VISIT_COLUMNS), time="occurred_at", derive=pathway.visit_rows,
        )
        # A changed contact can make an earlier one of the same client (within the window)
        # a re-contact; contacts that have aged past the window become verifiable.
        self.contacts = splice(
            self.contacts, contact_changes.drop("case_id"), time="occurred_at", derive=self._derive_contacts,
            lead=window, since=previous_as_of - window if previous_as_of else None, until=self.as_of - window,
            group="client_id",
        )
        if not changes["referral"].is_empty() or not changes["contact"].is_empty() or self.referrals.is_empty():
            self.referrals = splice(
                self.referrals, changes["referral"], time="referred_at",
                derive=self._derive_referrals,
                extra_ids=_naming(self.referrals, contact_changes, waiting=PENDING["referrals"] if first else None),
            )
        if not changes["feedback"].is_empty() or not changes["contact"].is_empty() or self.feedback.is_empty():
            self.feedback = splice(
                self.feedback, changes["feedback"], time="answered_at", derive=self._derive_feedback,
                extra_ids=_naming(self.feedback, contact_changes, waiting=PENDING["feedback"] if first else None),
            )
        case_changes, measurement_changes = changes["guidance_case"], changes["measurement"]
        # A live contact that is no case's visit (nearly all) leaves the case frames as they
        # are: deriving them again cost 35 ms at 13 000 cases (benchmarks/pathway_benchmark.py).
        if not (case_changes.is_empty() and measurement_changes.is_empty()) or visits_changed:
            self.cases = _replaced(self.cases, case_changes, time="opened_at")
            self.measurements = _replaced(self.measurements, measurement_changes, time="measured_at")
            self._pathway_due = True
        if self._pathway_due and settle:  # once at the end of a first read: 0.44 s a quarter at 15 M
            self._derive_pathway()
        self.version = current
        if settle:
            self._settle()

    def _history_reached(self, changes: dict[str, pl.DataFrame]) -> dt.date | None:
        """The earliest local day of the history that ``changes`` reach, or None: a changed
        row dated before the window (less the re-contact window for contacts), a changed row
        that is in the history now (a correction), or a referral or feedback answer in the
        history naming a changed contact (one that arrives late, or is corrected)."""
        past = self.history
        if past.empty or past.until is None:
            return None
        window = dt.timedelta(days=self.settings.verified_resolution_days)
        reached: list[Any] = []
        for name, table, lead in (("contacts", "contact", window), ("referrals", "referral", dt.timedelta(0)), ("feedback", "feedback", dt.timedelta(0))):
            changed = changes[table]
            if changed.is_empty() or not past.rows(name):
                continue
            earliest = changed[TIME_OF[table]].min()
            if isinstance(earliest, dt.datetime):
                day = (earliest - lead).astimezone(HELSINKI_ZONE).date()
                if day < past.until:
                    reached.append(day)
            # Ids above every id in the history are new rows: nearly every live change.
            ids = changed["id"].filter(changed["id"] <= past.max_id(name))
            recent: pl.DataFrame = getattr(self, name)
            if ids.len() and not recent.is_empty():
                ids = ids.filter(~ids.is_in(recent["id"].implode()))
            if ids.len() and (rows := past.scan(name)) is not None:
                reached.append(rows.filter(pl.col("id").is_in(ids.implode())).select(pl.col("day").min()).collect().item())
        contacts = changes["contact"]
        if not contacts.is_empty():
            newest_id = self.contacts["id"].max() if not self.contacts.is_empty() else None
            known = max(past.max_id("contacts"), newest_id if isinstance(newest_id, int) else -1)
            corrected = contacts.filter(pl.col("id") <= known).select(KEY)
            for name, missing in PENDING.items():
                if not past.rows(name):
                    continue
                pending = past.pending(name, missing)
                # A first read's quarter at 15 M: the join built on 1.15 M contacts, 0.12 s a call.
                reached.append(pending.join(_among(contacts.select(KEY), pending), on=KEY, how="semi").select(pl.col("day").min()).item())
                if corrected.height and (rows := past.scan(name)) is not None:
                    named = rows.filter(pl.col("contact_id").is_in(corrected["contact_id"].implode()))
                    reached.append(named.join(corrected.lazy(), on=KEY, how="semi").select(pl.col("day").min()).collect().item())
        found = [day for day in reached if isinstance(day, dt.date)]
        return min(found) if found else None

    def _thaw(self, since: dt.date) -> None:
        """Bring the history's months from ``since``'s on back into the frames."""
        month = history.month_of(since)
        self.thawed += 1
        for name in history.FRAMES:
            older = self.history.read(name, month)
            if older:
                setattr(self, name, pl.concat([*older, getattr(self, name)], how="vertical_relaxed", rechunk=False))
        self.history, dropped = self.history.without(month)
        if self._folder is not None:
            self._folder.retire(dropped)
        log.info("brought the history from %s back into memory for a change reaching it", month)

    def _settle(self, upto: dt.date | None = None) -> None:
        """Move the rows before the recent window (whole local months; before ``upto`` too,
        while reading every row) to the history."""
        days = self.settings.memory_days
        if not days or self._folder is None:
            return
        cutoff = history.month_of(dt.datetime.now(HELSINKI_ZONE).date() - dt.timedelta(days=days))
        if upto is not None:
            cutoff = min(cutoff, history.month_of(upto))
        if self.history.until is not None and cutoff <= self.history.until:
            return
        parts = {name: history.split(getattr(self, name), cutoff) for name in history.FRAMES}
        try:
            self._folder.sweep()
            self.history = self.history.with_rows({name: old for name, (old, _) in parts.items()}, cutoff)
        except OSError as error:
            log.warning("cannot write the history to %s (%s); every row stays in memory", self._folder.path, error)
            self._folder = None
            return
        for name, (old, recent) in parts.items():
            if not old.is_empty():  # a copy, so the moved rows' memory is given back
                setattr(self, name, owned(recent))

    def _derive_pathway(self) -> None:
        self._pathway_due = False
        if self.cases.is_empty():
            self.pathway = pathway.empty_case_frames()
            return
        regions = dict(self.municipalities.select("municipality_code", "region_code").iter_rows())
        # Read (or restored) with the cases, the visits and measurements have their columns
        # even when they hold no rows.
        self.pathway = pathway.case_frames(self.cases, self.visits, self.measurements, regions)

    def _clear(self) -> None:
        self.version = 0
        if self._folder is not None:
            self._folder.retire([part.path for parts in self.history.parts.values() for part in parts])
        self.history = History(self.history.folder)
        self.contacts, self.referrals, self.feedback = pl.DataFrame(), pl.DataFrame(), pl.DataFrame()
        self.cases, self.measurements, self.visits = pl.DataFrame(), pl.DataFrame(), pl.DataFrame()
        self.pathway = pathway.empty_case_frames()
        self._pathway_due = False

    def _restore(self, current: int) -> bool:
        """Start from the saved snapshot when there is a usable one (snapshot_file.py)."""
        saved = snapshot_file.load(
            self.settings.resolved_snapshot_dir, database_id=self._database_id,
            print_=snapshot_file.fingerprint(self.settings, self.municipalities), current_version=current,
        )
        if saved is None:
            return False
        if saved.history is not None:
            if self._folder is None:
                return False
            try:
                self.history = History.from_manifest(saved.history, saved.path / "history", self._folder.path)
            except (OSError, KeyError, ValueError) as error:
                log.warning("the saved history could not be used (%s); reading every row", error)
                self.history = History(self._folder.path)
                return False
        self.contacts, self.referrals, self.feedback, self.visits, self.cases, self.measurements = (
            saved.frames[name] for name in snapshot_file.FRAMES
        )
        self._derive_pathway()
        self.version = self._saved_version = self.restored_version = saved.version
        self.as_of = saved.as_of
        return True

    def _counts_match(self, counts: dict[str, int]) -> bool:
        """Rows deleted outside the application leave no change sequence behind: the saved
        snapshot is used only when every fact table holds as many rows as the frames."""
        frames = {
            "contact": self.contacts, "referral": self.referrals, "feedback": self.feedback,
            "guidance_case": self.cases, "measurement": self.measurements,
        }
        moved = {"contact": "contacts", "referral": "referrals", "feedback": "feedback"}
        return all(
            counts[name] == frame.height + (self.history.rows(moved[name]) if name in moved else 0) for name, frame in frames.items()
        )

    def _save_if_due(self) -> None:
        """After a large change, save the frames in the background (they are immutable)."""
        if not self.settings.snapshot_save or self._database_id is None or (self._saving is not None and self._saving.is_alive()):
            return
        if self.version - self._saved_version <= BULK_ROWS:
            return
        frames = {
            "contacts": self.contacts, "referrals": self.referrals, "feedback": self.feedback, "visits": self.visits,
            "cases": self.cases, "measurements": self.measurements,
        }
        database_id, version, as_of, past = self._database_id, self.version, self.as_of, self.history
        print_ = snapshot_file.fingerprint(self.settings, self.municipalities)
        self._saved_version = self.version

        def write() -> None:
            try:
                snapshot_file.save(
                    self.settings.resolved_snapshot_dir, database_id=database_id, version=version, as_of=as_of, frames=frames,
                    print_=print_, history=past,
                )
            except OSError as error:
                log.warning("could not save the snapshot: %s", error)

        self._saving = threading.Thread(target=write, name="snapshot-save", daemon=True)
        self._saving.start()

    def wait_for_save(self) -> None:
        if self._saving is not None:
            self._saving.join()

    def _derive_contacts(self, raw: pl.DataFrame) -> pl.DataFrame:
        electronic = list(self.settings.electronic_channels)
        window = dt.timedelta(days=self.settings.verified_resolution_days)
        contacts = _local_calendar(raw, "occurred_at").with_columns(
            pl.col("channel").is_in(electronic).alias("electronic"),
            self._region_of_municipality(),
            _recontact(raw, window).alias("_recontact"),
        )
        verifiable = (
            pl.col("resolved_first_contact").is_not_null()
            & pl.col("client_id").is_not_null()
            & (pl.col("occurred_at") <= self.as_of - window)
        )
        return contacts.with_columns(
            pl.when(verifiable).then(pl.col("resolved_first_contact") & ~pl.col("_recontact")).alias("verified_resolved")
        ).drop("_recontact")

    def _with_contact(self, raw: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
        """``raw`` (rows naming a contact) with ``columns`` of their contacts; null where the
        contact has not arrived (the rows are derived again when it does: ``_naming``, and
        ``_history_reached`` for those in the history). A contact in the history is looked
        up there."""
        # A first read's quarter at 15 M: the joins below 0.30 -> 0.17 s.
        contacts = _among(self.contacts, raw).select(*CONTACT_KEY, *columns)
        if self.history.rows("contacts"):
            missing = raw.select(CONTACT_KEY).join(contacts.select(CONTACT_KEY), on=CONTACT_KEY, how="anti").unique()
            if missing.height:
                contacts = pl.concat([contacts, self.history.lookup(missing, columns)], how="vertical_relaxed")
        return raw.join(contacts, on=CONTACT_KEY, how="left")

    def _region_of_municipality(self) -> pl.Expr:
        """The county (region_code) of a row's own municipality."""
        regions = dict(self.municipalities.select("municipality_code", "region_code").iter_rows())
        return (
            pl.col("municipality_code").cast(pl.String).replace_strict(regions, default=None, return_dtype=pl.String)
            .cast(pl.Categorical).alias("region_code")
        )

    def _derive_feedback(self, raw: pl.DataFrame) -> pl.DataFrame:
        """An answer's unit is its contact's (feedback records carry none of their own); its
        county is its own municipality's, as a contact's is."""
        return _local_calendar(self._with_contact(raw, ["unit_code"]), "answered_at").with_columns(self._region_of_municipality())

    def _derive_referrals(self, raw: pl.DataFrame) -> pl.DataFrame:
        keys = CONTACT_KEY
        joined = self._with_contact(raw, [*CONTACT_ATTRIBUTES[:-1], "region_code"])
        if self.visits.is_empty():
            joined = joined.with_columns(pl.lit(False).alias("from_case"))
        else:  # made at a visit of a guidance case ("services started after referral from a case")
            visited = self.visits.select(*keys).unique().with_columns(pl.lit(True).alias("from_case"))
            joined = joined.join(visited, on=keys, how="left").with_columns(pl.col("from_case").fill_null(False))
        return _local_calendar(joined, "referred_at").with_columns(guarantee_days_expr(self.settings).alias("guarantee_days"))


CONTACT_KEY = KEY = history.KEY
HELSINKI_ZONE = ZoneInfo(HELSINKI)
# Rows of a frame whose contact was not found when they were derived.
PENDING = {"referrals": pl.col("channel").is_null(), "feedback": pl.col("unit_code").is_null()}


def owned(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in buffers of its own: a slice shares (and keeps alive) the whole frame's."""
    if frame.height < 2:
        return pl.DataFrame(frame.rows(), schema=frame.schema, orient="row")
    return pl.concat([frame.head(1), frame.slice(1)], rechunk=True)


def _naming(frame: pl.DataFrame, contacts: pl.DataFrame, *, waiting: pl.Expr | None = None) -> pl.Series:
    """Ids of the rows of ``frame`` that name one of ``contacts`` (changed): what a contact
    gives them must be derived again. ``waiting``: the rows still waiting for their contact,
    the only ones that can name contacts read for the first time (a first read's quarters;
    looking through every row cost 0.4 s a quarter at 15 M)."""
    if frame.is_empty() or contacts.is_empty():
        return pl.Series("id", [], pl.Int64)
    if waiting is not None:
        frame = frame.filter(waiting)
    # A set of a first read's 1.15 M contacts a quarter, built for a few waiting rows, cost
    # 0.33 s a call at 15 M.
    return frame.filter(pl.col("contact_id").is_in(_among(contacts, frame)["contact_id"].implode()))["id"]


def _among(rows: pl.DataFrame, naming: pl.DataFrame) -> pl.DataFrame:
    """``rows`` narrowed to those whose contact ``naming`` names, when ``naming`` has fewer
    rows: a join or a set looked up then builds on the smaller side, not on every row."""
    if naming.height < rows.height:
        return rows.filter(pl.col("contact_id").is_in(naming["contact_id"].drop_nulls().unique().implode()))
    return rows


def _replaced(frame: pl.DataFrame, changed: pl.DataFrame, *, time: str) -> pl.DataFrame:
    """``frame`` with the rows of ``changed`` put in, replacing those with the same id, in time
    order: for the small frames (cases, measurements) that are derived again whole."""
    if frame.is_empty():
        return changed.sort(time, maintain_order=True)
    if changed.is_empty():
        return frame
    kept = frame.filter(~pl.col("id").is_in(changed["id"].implode()))
    return pl.concat([kept, changed], how="vertical_relaxed").sort(time, maintain_order=True)


def _recontact(raw: pl.DataFrame, window: dt.timedelta) -> pl.Series:
    """For each row: did the same client make another contact within ``window`` after it?
    Sorted on the three columns it needs, not the whole frame; the id breaks ties, so which
    of two same-second contacts counts as the re-contact does not depend on arrival order."""
    ordered = (
        raw.select(pl.col("client_id").to_physical(), "occurred_at", "id")
        .with_row_index("_row")
        .sort("client_id", "occurred_at", "id")
    )
    flag = ordered.select(
        "_row",
        (
            (pl.col("client_id").shift(-1) == pl.col("client_id"))
            & (pl.col("occurred_at").shift(-1) - pl.col("occurred_at") <= window)
        ).fill_null(False).alias("flag"),
    )
    return flag.sort("_row")["flag"]


def guarantee_days_expr(settings: Settings) -> pl.Expr:
    """Care-guarantee days for each referral by its date and the client's age band."""
    expr: Any = None  # a when-then chain (polars' chained-when types are not public)
    for effective_from in sorted({rule.effective_from for rule in settings.care_guarantee}, reverse=True):
        by_band = {
            band: settings.care_guarantee_days(on=effective_from, age=midpoint)
            for band, midpoint in codes.AGE_BAND_MIDPOINTS.items()
        }
        unknown = settings.care_guarantee_days(on=effective_from, age=None)
        days = pl.col("age_band").cast(pl.String).replace_strict(by_band, default=unknown, return_dtype=pl.Int32)
        starts = pl.col("referred_at").dt.convert_time_zone(HELSINKI).dt.date() >= effective_from
        expr = pl.when(starts).then(days) if expr is None else expr.when(starts).then(days)
    earliest = settings.care_guarantee_days(on=dt.date.min, age=None)
    return pl.lit(earliest, dtype=pl.Int32) if expr is None else expr.otherwise(pl.lit(earliest, dtype=pl.Int32))


# SQLite counts a table by walking one of its indexes; with the file cache cold (a restart the
# morning after a night's loads) those are random reads, 5.3 s at 5 M contacts in one walk.
# Counted as ranges of change_seq on several connections at once: 3.1-3.7 s.
COUNT_PARTS = 8


def row_counts(engine: Engine, *, parts: int = COUNT_PARTS) -> dict[str, int]:
    """Rows in each fact table, exactly (on SQLite summed over ranges counted in parallel)."""
    if engine.dialect.name != "sqlite":  # PostgreSQL plans a parallel scan of its own
        with engine.connect() as conn:
            return {name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0) for name, table in TABLES.items()}
    ranges: list[tuple[str, int, int]] = []
    with engine.connect() as conn:
        for name, table in TABLES.items():
            # Apart: SQLite finds a lone min() or max() at the index's end, but scans the
            # whole index for both in one select (15 M contacts: 2.2 s instead of 1 ms).
            low = conn.execute(sa.select(sa.func.min(table.c.change_seq))).scalar()
            high = conn.execute(sa.select(sa.func.max(table.c.change_seq))).scalar()
            if low is not None:
                step = (high - low) // parts + 1
                ranges += [(name, low + i * step, low + (i + 1) * step - 1) for i in range(parts)]

    def count(part: tuple[str, int, int]) -> tuple[str, int]:
        name, first, last = part
        table = TABLES[name]
        with engine.connect() as conn:
            return name, int(conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.change_seq.between(first, last))).scalar() or 0)

    totals = dict.fromkeys(TABLES, 0)
    with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="row-count") as pool:
        for name, rows in pool.map(count, ranges):
            totals[name] += rows
    return totals


def _start_counting(engine: Engine) -> Future[dict[str, int]]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="row-counts")
    future = pool.submit(row_counts, engine)
    pool.shutdown(wait=False)
    return future
