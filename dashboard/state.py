"""Per-process resources and per-session context.

The fact store is one per database per server process (``_store``), shared by
every session. Registry results are kept per data version and shared by every session
(dashboard/live.py): when the version has not moved, a rerun recomputes nothing. In the
server (dashboard/serve.py) a keeper thread brings the store up to date and computes the
recently asked results of each new version before the sessions' live refresh reruns them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from typing import ParamSpec, TypeVar

import polars as pl
import streamlit as st
from sqlalchemy.engine import Engine

from dashboard.live import published_view, results_for, start_keeper
from dashboard.timing import append_timing, data_time
from data_access.access import User, audit_rows
from data_access.bootstrap import prepare_database
from data_access.config import Settings, get_settings
from data_access.engine import DatabaseUnavailable
from data_access.metrics import Filters, Scope
from data_access.metrics.requests import (
    FreshnessRequest,
    MetricsRequest,
    PendingRequest,
    QuarantineRequest,
)
from data_access.quality import Freshness, freshness_rows
from data_access.snapshot import FactStore, StoreView, UnknownCode

# Who a context is for when no one signed in: the demo mode's user (dashboard/signin.py).
DEMO = User(email="demo", name=None, role="analyst", scope=Scope.everything())
P = ParamSpec("P")
R = TypeVar("R")

@dataclasses.dataclass(frozen=True)
class Context:
    """What a page needs: settings, the store, the language, the filters and the user's scope."""

    settings: Settings
    store: StoreView  # the data this run shows (get_store)
    language: str
    filters: Filters
    comparison: Filters | None
    preset: str
    user: User = DEMO
    # Published figures (cell-key method) on the screen, in downloads and in presentation
    # mode: what is chosen for showing outside the county (docs/privacy.md).
    publication: bool = False

    @property
    def scope(self) -> Scope:
        """What the user may see: every figure of the page is asked with it."""
        return self.user.scope


_turns: dict[int, threading.BoundedSemaphore] = {}
# A page run that has waited this long runs anyway: the turns order the work, they must
# never stop a page because another one hangs (on a database that does not answer, say).
TURN_WAIT_SECONDS = 30.0


@contextlib.contextmanager
def page_run_turn(settings: Settings) -> Iterator[float]:
    """Let at most ``settings.page_runs_at_once`` page runs of this process run at once;
    yields the seconds this one waited for its turn.

    When 20 sessions rerun together, their scripts share one interpreter lock: interleaved,
    every figure's data time waited behind 19 other scripts (docs/performance.md).
    """
    size = settings.page_runs_at_once
    turns = _turns.get(size) or _turns.setdefault(size, threading.BoundedSemaphore(size))  # setdefault is atomic
    started = time.perf_counter()
    got = turns.acquire(timeout=TURN_WAIT_SECONDS)
    try:
        yield time.perf_counter() - started
    finally:
        if got:
            turns.release()


_preloads: dict[str, tuple[threading.Thread, list[FactStore]]] = {}


def _new_store(settings: Settings, engine: Engine | None = None) -> FactStore:
    return FactStore(engine or prepare_database(settings), settings)


def start_preload(engine: Engine | None = None) -> None:
    """Start loading the configured database's store in the background (dashboard/serve.py),
    on ``engine`` when the database has been prepared already. A failure is left for the
    first page to meet and report."""
    settings = get_settings()
    loaded: list[FactStore] = []

    def load() -> None:
        started = time.time()
        try:
            store = _new_store(settings, engine)
            store.refresh()
            loaded.append(store)
        except Exception:
            logging.getLogger(__name__).exception("preloading the fact store failed")
            # the first page that reads the store starts its keeper (get_store)
            _keep_when_read[settings.resolved_database_url] = settings
            return
        if settings.timing_log is not None:  # read by benchmarks/start_timeline.py
            append_timing(settings.timing_log, {"preload_started_at": started, "at": time.time()})
        _keep(store, settings)

    thread = threading.Thread(target=load, name="store-preload", daemon=True)
    _preloads[settings.resolved_database_url] = (thread, loaded)
    thread.start()


def _keep(store: FactStore, settings: Settings) -> None:
    """The server's keeper for ``store`` (dashboard/live.py), as the settings say."""
    start_keeper(store, refresh_seconds=settings.refresh_seconds, timing_log=settings.timing_log, audit_keep_days=settings.audit_keep_days)


_stores: dict[str, FactStore] = {}
_stores_lock = threading.Lock()
# A server whose first read failed: the keeper starts when a page has read the store.
_keep_when_read: dict[str, Settings] = {}
# A read that met a stored value outside its code list (UnknownCode) is not tried again by
# every page run for this long: each try reads every row (a minute at 15 M contacts), and
# the value stays wrong until someone corrects it in the database.
BAD_DATA_RETRY_SECONDS = 60.0
_bad_data: dict[str, tuple[float, UnknownCode]] = {}


def _store(database_url: str) -> FactStore:
    """The process's store of a database: taken from the preload, or loaded by the first page
    that asks. Found with one dict read, not through st.cache_resource, whose bookkeeping
    (hashing the argument, its locks, hit counters) ran inside every page run's data time."""
    store = _stores.get(database_url)
    if store is not None:
        return store
    with _stores_lock:
        if database_url not in _stores:
            preload = _preloads.pop(database_url, None)
            if preload is not None:
                thread, loaded = preload
                thread.join()
            _stores[database_url] = loaded[0] if preload is not None and loaded else _new_store(get_settings())
        return _stores[database_url]


def forget_stores() -> None:
    """Drop the loaded stores and what was remembered of their reads (tests)."""
    with _stores_lock:
        _stores.clear()
        _bad_data.clear()
        _keep_when_read.clear()


@data_time(slot="_store_seconds")
def get_store() -> StoreView:
    """The data this run shows: in the server, the keeper's newest prepared view (no database
    round trip); without a keeper (tests, AppTest), the store brought up to date here."""
    database_url = get_settings().resolved_database_url
    store = _store(database_url)
    view = published_view(store)
    if view is None:
        failed = _bad_data.get(database_url)
        if failed is not None and time.monotonic() - failed[0] < BAD_DATA_RETRY_SECONDS:
            raise failed[1]
        try:
            store.refresh()
        except DatabaseUnavailable:
            if not store.version and not store.health.answered_at:
                raise  # nothing was ever read: there is nothing to show
            # The figures read before stay on the page, under the frame's notice that the
            # database cannot be reached (store.health).
        except UnknownCode as problem:
            _bad_data[database_url] = (time.monotonic(), problem)
            raise
        _bad_data.pop(database_url, None)
        keep = _keep_when_read.pop(database_url, None)
        if keep is not None:
            _keep(store, keep)
        view = store.view()
    return view


@data_time()
def freshness(ctx: Context, *, by: str) -> list[Freshness]:
    """Newest record per source or municipality: the newest times are cached on the data
    version; how long ago and whether quiet are recomputed on every render, because a
    source going quiet is exactly when the version stops moving."""
    newest = results_for(ctx.store).get(ctx.store, FreshnessRequest(by=by, scope=ctx.scope))
    return freshness_rows(newest.rows(), now=dt.datetime.now(dt.UTC), quiet_after_minutes=ctx.settings.quiet_source_minutes)


@data_time()
def pending(ctx: Context) -> pl.DataFrame:
    """Referrals waiting for their contact, per source system (scoped, protected)."""
    return results_for(ctx.store).get(ctx.store, PendingRequest(scope=ctx.scope))


@data_time()
def quarantined(ctx: Context) -> pl.DataFrame:
    """Rows waiting in quarantine by kind and reason (scoped, protected; read once per data
    version, not on every rerun)."""
    return results_for(ctx.store).get(ctx.store, QuarantineRequest(scope=ctx.scope))


def audit_trail(ctx: Context) -> list[dict[str, object]]:
    """The newest rows of the audit trail, for an administrator only (read from the database
    on every run: it is not data the store keeps)."""
    if not ctx.user.is_admin:
        return []
    return audit_rows(ctx.store.engine)


def ask(ctx: Context, request: MetricsRequest) -> pl.DataFrame:
    """The answer to a request at the data version this run shows, shared with every
    session that asks the same."""
    return results_for(ctx.store).get(ctx.store, request)


@data_time()
def query(
    ctx: Context, metrics: list[str], *, by: list[str] | tuple[str, ...] = (), filters: Filters | tuple[Filters, ...] | None = None
) -> pl.DataFrame:
    """Registry results for the context's (or the given) filters at the data version this
    run shows, shared with every session that asks the same. Several filter sets: one
    request, the result with a ``period`` column first (``metrics.compute``). In the
    context's publication mode the counts are perturbed for publishing (docs/privacy.md)."""
    return ask(ctx, MetricsRequest.of(metrics, filters or ctx.filters, by=by, scope=ctx.scope, publication=ctx.publication))


def period_records(ctx: Context, metrics: list[str], periods: list[Filters]) -> list[dict[str, dict]]:
    """Each filter set's figures, by metric, asked in one request (one pass over the rows):
    for each filter set what ``query`` would give for it alone. Split in plain Python: a
    polars operation per period would cost a turn for the interpreter lock on every rerun."""
    records: list[dict[str, dict]] = [{} for _ in periods]
    for row in query(ctx, metrics, filters=tuple(periods)).iter_rows(named=True):
        records[row.pop("period")][row["metric"]] = row
    return records


def set_context(ctx: Context) -> None:
    st.session_state["_context"] = ctx


def get_context() -> Context:
    return st.session_state["_context"]


def with_period(filters: Filters, start: dt.date, end: dt.date, *, until_minute: int | None = None) -> Filters:
    return dataclasses.replace(filters, start=start, end=end, until_minute=until_minute)
