"""Keeping every session of a server current without each session doing the work.

``Results``: the answers of the one exit (data_access/metrics/exit.py) per data version, shared by every session of the process and
computed once per (version, request), however many sessions ask at the same moment. Each
caller gets its own ``clone()`` of the stored frame (the columns are shared, not copied), so
a hit costs microseconds instead of unpickling a copy. Not the stored frame itself: polars
2.1 can deadlock the whole process when threads call ``to_pandas`` on one DataFrame at once
(pola-rs/polars#27396; 1 of 3 runs of its reproduction hung here), and st.dataframe did
(pages now hand it Arrow: dashboard/elements.py).

``Keeper``: one thread per server that brings the fact store up to date and, for each new
data version, computes the results that sessions asked for recently before it hands the
sessions a view of that version (``published_view``). Sessions then neither read the
database nor move the store themselves: when twenty managers have the overview open, a new
contact costs one computation of the overview, not twenty competing ones. It also deletes
the audit trail's rows older than the configured time, at start and once a day.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections import OrderedDict
from pathlib import Path

import polars as pl

from dashboard.timing import append_timing, tally
from data_access.access import prune_audit
from data_access.engine import DatabaseUnavailable
from data_access.metrics.exit import answer
from data_access.metrics.requests import MetricsRequest, Request
from data_access.periods import local_now, so_far_minute
from data_access.snapshot import FactSource, FactStore, StoreView

log = logging.getLogger(__name__)


class Results:
    """Registry results of one store, per data version."""

    def __init__(self, *, max_entries: int = 2000) -> None:
        self.max_entries = max_entries
        self.computed = 0  # how many results were computed (not found): for tests and logs
        self._lock = threading.Lock()
        self._done: OrderedDict[tuple[tuple[int, int], Request], pl.DataFrame] = OrderedDict()
        self._running: dict[tuple[tuple[int, int], Request], threading.Event] = {}
        self._asked: dict[Request, float] = {}

    def get(self, view: FactSource, request: Request, *, asked: bool = True) -> pl.DataFrame:
        """The result of ``request`` at the view's version: found, waited for while another
        thread computes it, or computed here."""
        key = (view.key, request)
        if asked:
            self._asked[request] = time.monotonic()
        # A hit takes no lock: a page run that waits for a lock another thread holds gives up
        # the interpreter lock, which with 20 sessions rendering costs milliseconds to get back.
        if (found := self._found(key)) is not None:
            return found
        while True:
            with self._lock:
                if (found := self._found(key)) is not None:
                    return found
                running = self._running.get(key)
                if running is None:
                    running = self._running[key] = threading.Event()
                    break
            waiting_since = time.perf_counter()
            running.wait()  # then look again: the other thread may have failed
            tally.waited += time.perf_counter() - waiting_since
        try:
            tally.computed += 1
            value = answer(view, request)
            with self._lock:
                self.computed += 1
                self._done[key] = value
                while len(self._done) > self.max_entries:
                    self._done.popitem(last=False)
            return value.clone()
        finally:
            with self._lock:
                self._running.pop(key, None)
            running.set()

    def _found(self, key: tuple[tuple[int, int], Request]) -> pl.DataFrame | None:
        """A clone of the stored result, or None. Single dict operations are atomic in CPython."""
        found = self._done.get(key)
        if found is None:
            return None
        try:
            self._done.move_to_end(key)
        except KeyError:  # evicted just now by another thread
            pass
        return found.clone()

    def recent(self, within_seconds: float) -> list[Request]:
        """Requests asked within the last ``within_seconds``, newest first; older ones forgotten."""
        cutoff = time.monotonic() - within_seconds
        with self._lock:
            asked = list(self._asked.items())  # one atomic copy: sessions add to it without the lock
            for request, at in asked:
                if at < cutoff and self._asked.get(request) == at:  # not if asked again meanwhile
                    self._asked.pop(request, None)
            return [request for request, at in sorted(asked, key=lambda item: item[1], reverse=True) if at >= cutoff]

    def warm(self, view: FactSource, *, within_seconds: float, budget_seconds: float = 5.0) -> int:
        """Compute at the view's version what the next reruns will ask: the recently asked
        requests, "today so far" ones for the minute it is now (and the next, in a minute's
        last seconds); stops after
        ``budget_seconds``. Returns how many were computed or found."""
        started = time.monotonic()
        recent = self.recent(within_seconds)
        wanted = list(dict.fromkeys(_for_minute(request, minute) for minute in _minutes_to_prepare() for request in recent))
        done = 0
        for request in wanted:
            if time.monotonic() - started > budget_seconds:
                break
            self.get(view, request, asked=False)
            done += 1
        return done


# In the last seconds of a minute the keeper prepares "today so far" for the next minute as
# well: a rerun that starts just after the minute turns asks up to the new minute, and before
# this 2 of 18 single-session runs computed it themselves (40 ms instead of 0.5).
NEXT_MINUTE_WITHIN_SECONDS = 10


def _minutes_to_prepare() -> list[int]:
    """"Today so far" as a rerun asks it now, and as it will ask in the next minute when this
    one is in its last seconds (not past midnight: the day changes too)."""
    now = local_now()
    minute = so_far_minute(now)
    if now.second >= 60 - NEXT_MINUTE_WITHIN_SECONDS and minute < 24 * 60:
        return [minute, minute + 1]
    return [minute]


def _for_minute(request: Request, minute: int) -> Request:
    """A "today so far" request as the next rerun asks it: up to this minute."""
    if not isinstance(request, MetricsRequest):
        return request
    moved = tuple(f if f.until_minute is None else dataclasses.replace(f, until_minute=minute) for f in request.periods)
    return request if moved == request.periods else dataclasses.replace(request, periods=moved)


_results: weakref.WeakKeyDictionary[FactStore, Results] = weakref.WeakKeyDictionary()
_keepers: weakref.WeakKeyDictionary[FactStore, Keeper] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def results_for(store: FactSource) -> Results:
    """The shared results of a store (of the store a view was taken from). Found without
    the lock, which is taken only to create them: page runs call this for every figure."""
    results = _results.get(store.origin)
    if results is not None:
        return results
    with _registry_lock:
        if store.origin not in _results:
            _results[store.origin] = Results()
        return _results[store.origin]


class Keeper(threading.Thread):
    """Polls the database every ``interval`` seconds; on a new data version brings the store
    up to date, computes the recently asked results and then publishes a view of it."""

    def __init__(
        self, store: FactStore, *, interval: float, remember_seconds: float, budget_seconds: float = 2.0,
        timing_log: Path | None = None, audit_keep_days: int | None = None,
    ) -> None:
        super().__init__(name="store-keeper", daemon=True)
        self.store = store
        self.audit_keep_days = audit_keep_days
        self._pruned_at: float | None = None
        self.timing_log = timing_log
        self.interval = interval
        self.remember_seconds = remember_seconds
        self.budget_seconds = budget_seconds
        self.published = store.view()
        self._stop_event = threading.Event()

    def run(self) -> None:
        failing = False
        while not self._stop_event.wait(self.interval):
            try:
                self.prune_audit_daily()
                self.step()
                failing = False
            except DatabaseUnavailable:
                pass  # the store logged it once and says so in its health; pages show it
            except Exception:
                if not failing:
                    log.exception("keeping the fact store up to date failed; retrying")
                failing = True

    def step(self) -> None:
        started = time.perf_counter()
        self.store.refresh()
        view = self.store.view()
        if view.key != self.published.key:
            refreshed = time.perf_counter()
            prepared = results_for(self.store).warm(view, within_seconds=self.remember_seconds, budget_seconds=self.budget_seconds)
            self.published = view
            if self.timing_log is not None:
                line = {
                    "keeper": view.version, "prepared": prepared, "store_ms": round((refreshed - started) * 1000, 2),
                    "prepare_ms": round((time.perf_counter() - refreshed) * 1000, 2), "at": time.time(),
                }
                append_timing(self.timing_log, line)

    def prune_audit_daily(self) -> int:
        """Delete the audit rows older than the kept time, at the first turn and then once a
        day (the trail holds no client data, but it says who looked at what and when)."""
        if self.audit_keep_days is None:
            return 0
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < AUDIT_PRUNE_SECONDS:
            return 0
        try:
            deleted = prune_audit(self.store.engine, keep_days=self.audit_keep_days)
        except Exception:  # the figures matter more: try again in an hour
            log.exception("deleting old audit rows failed")
            self._pruned_at = time.monotonic() - AUDIT_PRUNE_SECONDS + 3600
            return 0
        self._pruned_at = time.monotonic()
        if deleted:
            log.info("deleted %d audit rows older than %d days", deleted, self.audit_keep_days)
        return deleted

    def stop(self) -> None:
        self._stop_event.set()


AUDIT_PRUNE_SECONDS = 24 * 3600


def start_keeper(
    store: FactStore, *, refresh_seconds: float, timing_log: Path | None = None, audit_keep_days: int | None = None
) -> Keeper:
    """One keeper per store; polls every half second, sooner for short refresh intervals
    (a new contact is visible within the refresh interval plus polling and preparing)."""
    with _registry_lock:
        keeper = _keepers.get(store)
        if keeper is None:
            # Sessions ask again at every refresh: what was asked in the last interval (and a
            # little) is what the next reruns will ask. Computing more kept polars' two worker
            # threads busy for whole intervals at 5 M contacts, and the sessions' own small
            # operations waited behind it until page runs stopped completing.
            keeper = Keeper(
                store, interval=min(0.5, refresh_seconds / 4), remember_seconds=refresh_seconds + 5, timing_log=timing_log,
                audit_keep_days=audit_keep_days,
            )
            _keepers[store] = keeper
            keeper.start()
        return keeper


def published_view(store: FactSource) -> StoreView | None:
    """The newest view whose recent results are ready, when a keeper runs for the store."""
    keeper = _keepers.get(store.origin)
    return keeper.published if keeper is not None and keeper.is_alive() else None
