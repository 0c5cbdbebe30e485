"""A page's sections, declared before any is drawn, so that sections grouping the same rows
the same way are answered by one registry request.

A page says what it shows::

    plan = Plan(ctx)
    volume = plan.section(trend, "contacts", grain=grain, colour="channel", key="channels_volume")
    mix = plan.section(channel_mix, grain=grain, key="channels_mix")
    ...
    volume.show()

Each section function says what it will ask (``asks``, a function of the same arguments);
when a section is drawn, ``Plan.fetch`` asks the registry for the union of the metrics that
every declared section asks with the same filters and grouping (and the page's scope), and
gives the section its own metrics' rows. A request aggregates its rows once for all its
metrics and is keyed by its sorted metrics, so two sections that share rows cost one
aggregation, and no page lists what other sections ask for (each request costs about 2-4 ms
of fixed cost at 5 million contacts: docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

from dashboard.state import Context, query
from data_access.metrics import Filters


@dataclass(frozen=True)
class Ask:
    """Metrics a section will ask for, by some groupings, over some filters."""

    metrics: tuple[str, ...]
    by: tuple[str, ...] = ()
    filters: Filters | tuple[Filters, ...] | None = None  # None: the page's filters


class Fetch(Protocol):
    def __call__(
        self, metrics: Sequence[str], *, by: Sequence[str] = (), filters: Filters | tuple[Filters, ...] | None = None
    ) -> pl.DataFrame: ...


def direct(ctx: Context) -> Fetch:
    """Asking for exactly these metrics (a section drawn on its own)."""

    def fetch(metrics: Sequence[str], *, by: Sequence[str] = (), filters: Filters | tuple[Filters, ...] | None = None) -> pl.DataFrame:
        return query(ctx, list(metrics), by=list(by), filters=filters)

    return fetch


class Plan:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._asks: list[Ask] = []

    def section(self, draw: Callable[..., None], *args: Any, **kwargs: Any) -> Section:
        """Declare ``draw(ctx, *args, **kwargs)``; its asks join the page's requests."""
        asks: Callable[..., list[Ask]] = draw.asks  # type: ignore[attr-defined]
        self._asks += asks(self.ctx, *args, **kwargs)
        return Section(self, draw, args, kwargs)

    def fetch(self, metrics: Sequence[str], *, by: Sequence[str] = (), filters: Filters | tuple[Filters, ...] | None = None) -> pl.DataFrame:
        """The rows of ``metrics``, from the one request that serves every declared section
        with the same filters and grouping."""
        wanted = filters or self.ctx.filters
        together = set(metrics)
        for ask in self._asks:
            if ask.by == tuple(by) and (ask.filters or self.ctx.filters) == wanted:
                together.update(ask.metrics)
        result = query(self.ctx, sorted(together), by=list(by), filters=wanted)
        return result if together == set(metrics) else result.filter(pl.col("metric").is_in(list(metrics)))


@dataclass
class Section:
    plan: Plan
    draw: Callable[..., None]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def show(self) -> None:
        self.draw(self.plan.ctx, *self.args, fetch=self.plan.fetch, **self.kwargs)


def asks(function: Callable[..., list[Ask]]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a section function with what it will ask for (the same arguments)."""

    def mark(draw: Callable[..., None]) -> Callable[..., None]:
        draw.asks = function  # type: ignore[attr-defined]
        return draw

    return mark
