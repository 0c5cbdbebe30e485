"""Timing instrumentation, apart from the data path: how long each page run spent getting
data (one JSON line per run in OHJAUSTAULU_TIMING_LOG, read by the benchmarks), results
computed and waited for, and the keeper's and the preload's lines.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import streamlit as st

from data_access.config import Settings

P = ParamSpec("P")
R = TypeVar("R")


def append_timing(path: Path, line: dict) -> None:
    """One JSON line in the timing log (OHJAUSTAULU_TIMING_LOG, read by the concurrency benchmark)."""
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(line) + "\n")


class _ThreadTally(threading.local):
    """What this thread's calls cost: results computed here, seconds waited for another's."""

    computed = 0
    waited = 0.0


tally = _ThreadTally()


def data_time(slot: str | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Adds the time spent getting data to this run's total (see log_data_time), and
    to ``slot`` as well when given."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                for name in ("_data_seconds", slot) if slot else ("_data_seconds",):
                    st.session_state[name] = st.session_state.get(name, 0.0) + elapsed
                calls = st.session_state.setdefault("_data_calls", {})
                calls[function.__name__] = calls.get(function.__name__, 0.0) + elapsed

        return timed

    return decorate


def start_data_time() -> None:
    st.session_state["_data_seconds"] = 0.0
    st.session_state["_store_seconds"] = 0.0
    st.session_state["_data_calls"] = {}
    st.session_state["_run_started"] = time.perf_counter()
    tally.computed, tally.waited = 0, 0.0


def log_data_time(settings: Settings, page: str, *, queued_seconds: float = 0.0) -> None:
    """One JSON line per page run with its data time, when OHJAUSTAULU_TIMING_LOG is set."""
    if settings.timing_log is None:
        return
    line = {
        "page": page, "data_ms": round(st.session_state.get("_data_seconds", 0.0) * 1000, 2),
        # of which getting the store: the keeper's prepared view, or without a keeper
        # bringing the store up to date (reading and splicing new rows)
        "store_ms": round(st.session_state.get("_store_seconds", 0.0) * 1000, 2), "at": time.time(),
        # results this run computed itself, and time it waited for another thread computing one
        "computed": tally.computed, "waited_ms": round(tally.waited * 1000, 2),
        # where the data time went, by function (get_store, query, freshness, pending)
        "calls": {name: round(seconds * 1000, 2) for name, seconds in st.session_state.get("_data_calls", {}).items()},
        # the whole page run, data and drawing, from the top of the script to here
        "run_ms": round((time.perf_counter() - st.session_state.get("_run_started", time.perf_counter())) * 1000, 2),
        # waiting for its turn before that (page_run_turn)
        "queued_ms": round(queued_seconds * 1000, 2),
    }
    append_timing(settings.timing_log, line)


