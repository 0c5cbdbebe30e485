"""Per-process resources and per-session context.

The fact store is one per database per server process (``cache_resource``), shared by
every session. Registry results are cached per data version (``cache_data``): when the
version has not moved, a rerun recomputes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import streamlit as st

from data_access.bootstrap import prepare_database
from data_access.config import Settings, get_settings
from data_access.metrics import Filters, Scope, compute
from data_access.snapshot import FactStore


@dataclasses.dataclass(frozen=True)
class Context:
    """What a page needs: settings, the store, the language, the filters and the user's scope."""

    settings: Settings
    store: FactStore
    language: str
    filters: Filters
    comparison: Filters | None
    scope: Scope
    preset: str


@st.cache_resource(show_spinner=False)
def _store(database_url: str) -> FactStore:
    settings = get_settings()
    engine = prepare_database(settings)
    return FactStore(engine, settings)


def get_store() -> FactStore:
    settings = get_settings()
    store = _store(settings.resolved_database_url)
    store.refresh()
    return store


@st.cache_data(show_spinner=False, max_entries=2000)
def _cached_compute(
    database_url: str, version: int, metrics: tuple[str, ...], filters: tuple, by: tuple[str, ...], scope: tuple | None
) -> pl.DataFrame:
    store = _store(database_url)
    return compute(
        store,
        metrics=list(metrics),
        filters=Filters(*filters),
        by=list(by),
        scope=Scope(frozenset(scope) if scope is not None else None),
    )


@st.cache_data(show_spinner=False, max_entries=200)
def _cached_quality(database_url: str, version: int, what: str, by: str, scope: tuple | None) -> pl.DataFrame:
    from data_access.quality import pending_referrals, source_freshness

    store = _store(database_url)
    if what == "pending":
        return pending_referrals(store)
    return source_freshness(store, scope=Scope(frozenset(scope) if scope is not None else None), by=by)


def freshness(ctx: Context, *, by: str) -> pl.DataFrame:
    """Newest record per source or municipality: the newest times are cached on the data
    version; how long ago and whether quiet are recomputed on every render, because a
    source going quiet is exactly when the version stops moving."""
    from data_access.quality import mark_quiet

    newest = _cached_quality(ctx.settings.resolved_database_url, ctx.store.version, "freshness", by, _scope_key(ctx))
    return mark_quiet(
        newest.select(by, "newest"), now=dt.datetime.now(dt.UTC), quiet_after_minutes=ctx.settings.quiet_source_minutes
    )


def pending(ctx: Context) -> pl.DataFrame:
    return _cached_quality(ctx.settings.resolved_database_url, ctx.store.version, "pending", "", _scope_key(ctx))


def _scope_key(ctx: Context) -> tuple | None:
    return tuple(sorted(ctx.scope.municipalities)) if ctx.scope.municipalities is not None else None


def query(
    ctx: Context, metrics: list[str], *, by: list[str] | tuple[str, ...] = (), filters: Filters | None = None
) -> pl.DataFrame:
    """Registry results for the context's (or the given) filters, cached on the data version."""
    chosen = filters or ctx.filters
    return _cached_compute(
        ctx.settings.resolved_database_url, ctx.store.version, tuple(metrics),
        dataclasses.astuple(chosen), tuple(by), _scope_key(ctx),
    )


def set_context(ctx: Context) -> None:
    st.session_state["_context"] = ctx


def get_context() -> Context:
    return st.session_state["_context"]


def with_period(filters: Filters, start: dt.date, end: dt.date, *, until_minute: int | None = None) -> Filters:
    return dataclasses.replace(filters, start=start, end=end, until_minute=until_minute)
