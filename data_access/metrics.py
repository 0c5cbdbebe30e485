"""The metric registry and its one exit.

Every figure the product shows is defined once here: name, labels, unit, plain-language
definition and computation. ``compute`` is the only way out: it applies the caller's
access scope before anything is computed and small-cell suppression before anything
is returned, so no page, export or CLI output can forget either.

A result is a long frame: the grouping columns, then ``metric``, ``value``,
``numerator``, ``denominator``, ``ci_low``, ``ci_high``, ``suppressed`` and ``note``; asked
for several filter sets at once, a ``period`` column (the filter set's index) comes first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from data_access import codes
from data_access.config import Settings
from data_access.snapshot import FactStore

Unit = Literal["count", "share", "per_1000", "seconds", "score", "nps"]
Source = Literal["contacts", "referrals", "feedback"]
Z95 = 1.959963984540054

RESULT_SCHEMA = {
    "metric": pl.String,
    "value": pl.Float64,
    "numerator": pl.Float64,
    "denominator": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "suppressed": pl.Boolean,
    "note": pl.String,
}

# Grouping dimensions and the frames that carry them.
TIME_DIMENSIONS = ("day", "week", "month", "hour", "weekday")
DIMENSIONS: dict[str, tuple[Source, ...]] = {
    "municipality": ("contacts", "referrals", "feedback"),
    "region": ("contacts", "referrals", "feedback"),
    "channel": ("contacts", "referrals", "feedback"),
    "service_line": ("contacts", "referrals"),
    "age_band": ("contacts", "referrals"),
    "professional_group": ("contacts", "referrals"),
    "unit": ("contacts", "referrals"),
    "initiator": ("contacts", "referrals"),
    "reason": ("contacts",),
    "outcome": ("contacts",),
    "source_system": ("contacts", "referrals", "feedback"),
    "destination": ("referrals",),
    **{name: ("contacts", "referrals", "feedback") for name in TIME_DIMENSIONS},
}
# Dimension name -> column in the fact frames.
COLUMN_OF = {"municipality": "municipality_code", "region": "region_code", "unit": "unit_code"}


class MetricError(ValueError):
    """A request the registry cannot answer (unknown metric or grouping)."""


@dataclass(frozen=True)
class Scope:
    """What a user may see: None means every municipality."""

    municipalities: frozenset[str] | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    municipalities: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    service_lines: tuple[str, ...] = ()
    age_bands: tuple[str, ...] = ()
    # Only records before this local minute of each day (for "today so far" comparisons).
    until_minute: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise MetricError(f"period ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class Metric:
    key: str
    unit: Unit
    source: Source
    labels: dict[str, str]
    definitions: dict[str, str]
    aggregate: Callable[[Settings], list[pl.Expr]]
    target_setting: str | None = None
    # None: a change is neither good nor bad (volumes); shown without a colour.
    higher_is_better: bool | None = True
    # A share of the whole: the denominator is the total over every grouping but the last.
    share_of_total: bool = False
    extra_filter: Callable[[], pl.Expr] | None = None
    suppress_on: tuple[str, ...] = field(default=("numerator", "denominator"))

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels["fi"]

    def definition(self, language: str) -> str:
        return self.definitions.get(language) or self.definitions["fi"]

    def target(self, settings: Settings) -> float | None:
        return getattr(settings, self.target_setting) if self.target_setting else None


def _count() -> list[pl.Expr]:
    return [pl.len().cast(pl.Float64).alias("numerator"), pl.lit(None, pl.Float64).alias("denominator")]


def _share(flag: pl.Expr) -> list[pl.Expr]:
    """Share of rows where ``flag`` is true among rows where it is known."""
    return [
        flag.cast(pl.Float64).sum().alias("numerator"),
        flag.is_not_null().sum().cast(pl.Float64).alias("denominator"),
    ]


def _quantile(q: float) -> Callable[[Settings], list[pl.Expr]]:
    def aggregate(_settings: Settings) -> list[pl.Expr]:
        seconds = pl.col("queue_seconds").filter(pl.col("channel").is_in(list(codes.QUEUED_CHANNELS)))
        return [
            seconds.quantile(q, interpolation="linear").alias("value"),
            pl.lit(None, pl.Float64).alias("numerator"),
            seconds.count().cast(pl.Float64).alias("denominator"),
        ]

    return aggregate


def _nps(_settings: Settings) -> list[pl.Expr]:
    score = pl.col("recommend_score")
    n = score.count().cast(pl.Float64)
    return [
        (((score >= 9).sum() - (score <= 6).sum()) / n * 100).alias("value"),
        pl.lit(None, pl.Float64).alias("numerator"),
        n.alias("denominator"),
    ]


def _within_guarantee(_settings: Settings) -> list[pl.Expr]:
    known = pl.col("days_to_start").is_not_null()
    return _share(pl.when(known).then(pl.col("days_to_start") <= pl.col("guarantee_days")))


def _recorded(key: str, column: str, labels: dict[str, str]) -> Metric:
    """Completeness of an optional field: contacts where it is filled in / all contacts."""
    return Metric(
        key=key, unit="share", source="contacts",
        labels=labels,
        definitions={
            "fi": f"Yhteydenotot, joilla kenttä {column} on täytetty / kaikki yhteydenotot.",
            "sv": f"Kontakter där fältet {column} är ifyllt / alla kontakter.",
            "en": f"Contacts with the field {column} filled in / all contacts.",
        },
        aggregate=lambda s: _share(pl.col(column).is_not_null()),
    )


def _onward() -> pl.Expr:
    return pl.col("destination") != codes.NO_REFERRAL_NEEDED


REGISTRY: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric(
            key="contacts", unit="count", source="contacts",
            labels={"fi": "Yhteydenotot", "sv": "Kontakter", "en": "Contacts"},
            definitions={
                "fi": "Asiakasohjauksen yhteydenottojen määrä kaikissa kanavissa.",
                "sv": "Antal kontakter till klientstyrningen i alla kanaler.",
                "en": "Number of guidance contacts in all channels.",
            },
            aggregate=lambda s: _count(),
            higher_is_better=None,
        ),
        Metric(
            key="contacts_per_1000", unit="per_1000", source="contacts",
            labels={"fi": "Yhteydenotot / 1 000 asukasta", "sv": "Kontakter / 1 000 invånare", "en": "Contacts per 1,000 residents"},
            definitions={
                "fi": "Yhteydenotot jaksolla tuhatta asukasta kohden. Väkiluku on jakson päättymisvuoden "
                "(tai viimeisimmän sitä edeltävän vuoden) luku; ilman väkilukua arvo näytetään viivana.",
                "sv": "Kontakter under perioden per tusen invånare. Invånarantalet gäller periodens slutår "
                "(eller senaste tidigare år); utan invånarantal visas ett streck.",
                "en": "Contacts in the period per thousand residents, using the population of the period's "
                "last year (or the latest earlier year); shown as a dash when no population is known.",
            },
            aggregate=lambda s: _count(),
            higher_is_better=None,
        ),
        Metric(
            key="first_contact_resolution", unit="share", source="contacts",
            labels={"fi": "Ratkaistu ensikontaktissa", "sv": "Löst vid första kontakten", "en": "First-contact resolution"},
            definitions={
                "fi": "Yhteydenotot, joissa asia ratkesi ensimmäisellä yhteydenotolla / yhteydenotot, joissa tieto on "
                "kirjattu. 95 %:n Wilsonin luottamusväli.",
                "sv": "Kontakter där ärendet löstes vid första kontakten / kontakter där uppgiften är registrerad. "
                "95 % Wilson-konfidensintervall.",
                "en": "Contacts resolved at the first contact / contacts where this is recorded. 95 % Wilson interval.",
            },
            aggregate=lambda s: _share(pl.col("resolved_first_contact")),
            target_setting="target_first_contact_resolution",
        ),
        Metric(
            key="verified_resolution", unit="share", source="contacts",
            labels={"fi": "Varmistettu ensikontaktiratkaisu", "sv": "Verifierad lösning vid första kontakten", "en": "Verified first-contact resolution"},
            definitions={
                "fi": "Kuten ensikontaktin ratkaisu, mutta lisäksi sama asiakas ei ole ottanut uudelleen yhteyttä "
                "7 vuorokauden kuluessa. Mukana vain yhteydenotot, joilla on asiakastunniste ja joista 7 vrk on kulunut.",
                "sv": "Som lösning vid första kontakten, men samma klient har inte heller tagit ny kontakt inom 7 dygn. "
                "Endast kontakter med klientnyckel och där 7 dygn har gått.",
                "en": "As first-contact resolution, and the same client made no new contact within 7 days. Only "
                "contacts with a client key that are at least 7 days old.",
            },
            aggregate=lambda s: _share(pl.col("verified_resolved")),
            target_setting="target_first_contact_resolution",
        ),
        Metric(
            key="electronic_share", unit="share", source="contacts",
            labels={"fi": "Sähköisten kanavien osuus", "sv": "Andel elektroniska kanaler", "en": "Electronic-channel share"},
            definitions={
                "fi": "Yhteydenotot sähköisissä kanavissa (chat, chatbot, sähköinen viesti, sähköinen lomake, "
                "videovastaanotto; ryhmittely on asetus) / kaikki yhteydenotot.",
                "sv": "Kontakter i elektroniska kanaler (chatt, chattbot, e-meddelande, e-blankett, video; "
                "grupperingen är en inställning) / alla kontakter.",
                "en": "Contacts through electronic channels (chat, chatbot, e-message, digital form, video; the "
                "grouping is a setting) / all contacts.",
            },
            aggregate=lambda s: _share(pl.col("electronic")),
            target_setting="target_electronic_share",
        ),
        Metric(
            key="failure_demand_share", unit="share", source="contacts",
            labels={"fi": "Häiriökysynnän osuus", "sv": "Andel felefterfrågan", "en": "Failure demand share"},
            definitions={
                "fi": "Yhteydenotot, joiden lopputulos on häiriökysyntä / kaikki yhteydenotot.",
                "sv": "Kontakter med utfallet felefterfrågan / alla kontakter.",
                "en": "Contacts with outcome failure demand / all contacts.",
            },
            aggregate=lambda s: _share((pl.col("outcome") == "failure_demand").fill_null(False)),
            higher_is_better=False,
        ),
        Metric(
            key="same_day_callback_share", unit="share", source="contacts",
            labels={"fi": "Takaisinsoitto samana päivänä", "sv": "Återuppringning samma dag", "en": "Same-day callback share"},
            definitions={
                "fi": "Samana päivänä tehdyt takaisinsoitot / takaisinsoittopyynnöt.",
                "sv": "Återuppringningar gjorda samma dag / begäranden om återuppringning.",
                "en": "Callbacks completed the same day / callback requests.",
            },
            aggregate=lambda s: _share(pl.col("callback_same_day")),
            target_setting="target_same_day_callback",
        ),
        Metric(
            key="queue_median_seconds", unit="seconds", source="contacts",
            labels={"fi": "Jonotusaika, mediaani", "sv": "Kötid, median", "en": "Queue time, median"},
            definitions={
                "fi": "Jonotusajan mediaani sekunteina puhelimessa, takaisinsoitossa ja chatissa.",
                "sv": "Median av kötiden i sekunder för telefon, återuppringning och chatt.",
                "en": "Median waiting time in seconds for phone, callback and chat.",
            },
            aggregate=_quantile(0.5), higher_is_better=False, suppress_on=("denominator",),
        ),
        Metric(
            key="queue_p90_seconds", unit="seconds", source="contacts",
            labels={"fi": "Jonotusaika, 90. persentiili", "sv": "Kötid, 90:e percentilen", "en": "Queue time, 90th percentile"},
            definitions={
                "fi": "Jonotusajan 90. persentiili sekunteina puhelimessa, takaisinsoitossa ja chatissa.",
                "sv": "90:e percentilen av kötiden i sekunder för telefon, återuppringning och chatt.",
                "en": "90th percentile of waiting time in seconds for phone, callback and chat.",
            },
            aggregate=_quantile(0.9), higher_is_better=False, suppress_on=("denominator",),
        ),
        Metric(
            key="referrals", unit="count", source="referrals",
            labels={"fi": "Ohjaukset", "sv": "Hänvisningar", "en": "Referrals"},
            definitions={
                "fi": "Ohjaukset eteenpäin palveluihin (ei sisällä kirjauksia 'ei jatko-ohjauksen tarvetta').",
                "sv": "Hänvisningar vidare till tjänster (utan registreringar 'inget behov av vidare hänvisning').",
                "en": "Onward referrals to services (not counting 'no onward referral needed').",
            },
            aggregate=lambda s: _count(), extra_filter=_onward,
            higher_is_better=None,
        ),
        Metric(
            key="referral_share", unit="share", source="referrals",
            labels={"fi": "Osuus ohjauksista", "sv": "Andel av hänvisningarna", "en": "Share of referrals"},
            definitions={
                "fi": "Ryhmän ohjaukset / kaikki ohjaukset eteenpäin samalla rajauksella.",
                "sv": "Gruppens hänvisningar / alla hänvisningar vidare med samma avgränsning.",
                "en": "Referrals in the group / all onward referrals under the same filters.",
            },
            aggregate=lambda s: _count(), extra_filter=_onward, share_of_total=True,
            higher_is_better=None,
        ),
        Metric(
            key="contact_share", unit="share", source="contacts",
            labels={"fi": "Osuus yhteydenotoista", "sv": "Andel av kontakterna", "en": "Share of contacts"},
            definitions={
                "fi": "Ryhmän yhteydenotot / kaikki yhteydenotot samalla rajauksella.",
                "sv": "Gruppens kontakter / alla kontakter med samma avgränsning.",
                "en": "Contacts in the group / all contacts under the same filters.",
            },
            aggregate=lambda s: _count(), share_of_total=True,
            higher_is_better=None,
        ),
        Metric(
            key="no_referral_needed", unit="count", source="referrals",
            labels={"fi": "Ei jatko-ohjauksen tarvetta", "sv": "Inget behov av vidare hänvisning", "en": "No onward referral needed"},
            definitions={
                "fi": "Kirjaukset, joissa todettiin, ettei asiakas tarvitse ohjausta eteenpäin.",
                "sv": "Registreringar där klienten inte behövde hänvisas vidare.",
                "en": "Records stating that the client needed no onward referral.",
            },
            aggregate=lambda s: _count(),
            extra_filter=lambda: pl.col("destination") == codes.NO_REFERRAL_NEEDED,
            higher_is_better=None,
        ),
        Metric(
            key="service_start_within_guarantee", unit="share", source="referrals",
            labels={"fi": "Palvelu alkoi hoitotakuun ajassa", "sv": "Tjänsten började inom vårdgarantin", "en": "Service started within the care guarantee"},
            definitions={
                "fi": "Ohjaukset, joissa palvelu alkoi hoitotakuun enimmäisajassa (päivämäärän ja ikäryhmän mukaan, "
                "asetus) / ohjaukset, joiden alkamisaika tiedetään.",
                "sv": "Hänvisningar där tjänsten började inom vårdgarantins tid (enligt datum och åldersgrupp, "
                "inställning) / hänvisningar med känd start.",
                "en": "Referrals whose service started within the care-guarantee limit (by date and age band, a "
                "setting) / referrals with a known start.",
            },
            aggregate=_within_guarantee, extra_filter=_onward,
        ),
        *(
            _recorded(key, column, labels)
            for key, column, labels in (
                ("complete_client_id", "client_id", {"fi": "Asiakastunniste kirjattu", "sv": "Klientnyckel registrerad", "en": "Client key recorded"}),
                ("complete_resolution", "resolved_first_contact", {"fi": "Ratkaisutieto kirjattu", "sv": "Lösningsuppgift registrerad", "en": "Resolution recorded"}),
                ("complete_service_line", "service_line", {"fi": "Palvelulinja kirjattu", "sv": "Tjänstelinje registrerad", "en": "Service line recorded"}),
                ("complete_initiator", "initiator", {"fi": "Ohjaaja kirjattu", "sv": "Hänvisare registrerad", "en": "Initiator recorded"}),
            )
        ),
        Metric(
            key="recommend_mean", unit="score", source="feedback",
            labels={"fi": "Suositteluhalukkuus (0–10)", "sv": "Rekommendation (0–10)", "en": "Recommendation score (0–10)"},
            definitions={
                "fi": "Asiakaspalautteen suositteluhalukkuuden keskiarvo asteikolla 0–10.",
                "sv": "Medelvärde av rekommendationsviljan i kundrespons på skalan 0–10.",
                "en": "Mean of the client feedback recommendation score on a 0–10 scale.",
            },
            aggregate=lambda s: [
                pl.col("recommend_score").mean().alias("value"),
                pl.lit(None, pl.Float64).alias("numerator"),
                pl.col("recommend_score").count().cast(pl.Float64).alias("denominator"),
            ],
            suppress_on=("denominator",),
        ),
        Metric(
            key="nps", unit="nps", source="feedback",
            labels={"fi": "NPS", "sv": "NPS", "en": "NPS"},
            definitions={
                "fi": "Suosittelijoiden (9–10) osuus miinus arvostelijoiden (0–6) osuus prosenttiyksikköinä.",
                "sv": "Andelen promotorer (9–10) minus andelen kritiker (0–6) i procentenheter.",
                "en": "Share of promoters (9–10) minus share of detractors (0–6), in percentage points.",
            },
            aggregate=_nps, suppress_on=("denominator",),
        ),
    ]
}


def get_metric(key: str) -> Metric:
    try:
        return REGISTRY[key]
    except KeyError:
        raise MetricError(f"unknown metric {key!r}; known: {', '.join(REGISTRY)}") from None


def compute(
    store: FactStore,
    *,
    metrics: list[str] | tuple[str, ...],
    filters: Filters | tuple[Filters, ...],
    by: list[str] | tuple[str, ...] = (),
    scope: Scope = Scope(),
) -> pl.DataFrame:
    """The one exit: scoped, computed, suppressed.

    ``filters`` may be several filter sets (the overview's cards: today so far, yesterday, the
    last 7 days and the week before each). The result then starts with a ``period`` column,
    the index of each row's filter set, and each period's rows are exactly what a call with
    that filter set alone gives: cells, suppression and populations are each period's own.
    One pass over the rows serves them all (a call has 2-4 ms of fixed cost however few rows
    it reads)."""
    by = list(by)
    for dimension in by:
        if dimension not in DIMENSIONS:
            raise MetricError(f"unknown grouping {dimension!r}; known: {', '.join(DIMENSIONS)}")
    periods = list(filters) if isinstance(filters, tuple) else [filters]
    if not periods:
        raise MetricError("no filters given")
    # Plain lists, read once per call: a polars filter on this 300-row frame costs more than
    # the lookup.
    places = list(zip(*(store.municipalities[c].to_list() for c in PLACE_COLUMNS), strict=True))
    allowed = [_allowed_places(places, f, scope) for f in periods]
    chosen = [get_metric(key) for key in metrics]
    cells: dict[str, _Cells] = {}
    for members, together in _aggregate_together(store, chosen, periods, by, allowed):
        if together is None:
            continue
        if by and set(by) <= {"municipality", "region"}:
            together = _with_empty_places(together, by, allowed)
        period = together[PERIOD].to_numpy().astype(np.int64) if PERIOD in together.columns else np.zeros(together.height, dtype=np.int64)
        keys = _GroupKeys(pl.DataFrame([together[d] for d in by]), by, period=period)
        for metric in members:
            finished = _finish(store, metric, together, keys, periods, allowed)
            suppress(finished, metric, keys, threshold=store.settings.small_cell_threshold)
            cells[metric.key] = finished
    return _long([cells[m.key] for m in chosen if m.key in cells], by, periods=isinstance(filters, tuple))


PLACE_COLUMNS = ("municipality_code", "region_code")  # a place: (municipality, county)


def _allowed_places(places: list[tuple[str, str]], filters: Filters, scope: Scope) -> list[tuple[str, str]]:
    """The places (municipality and county codes) that the filters and scope allow, by code."""
    return sorted(
        (code, region) for code, region in places
        if (not filters.regions or region in filters.regions)
        and (not filters.municipalities or code in filters.municipalities)
        and (scope.municipalities is None or code in scope.municipalities)
    )


def _filtered(store: FactStore, metric: Metric, filters: Filters, allowed: list[tuple[str, str]]) -> pl.LazyFrame:
    frame = period_slice({"contacts": store.contacts, "referrals": store.referrals, "feedback": store.feedback}[metric.source], filters)
    conditions = [pl.col("municipality_code").is_in([code for code, _ in allowed])]
    for values, column in (
        (filters.channels, "channel"),
        (filters.service_lines, "service_line"),
        (filters.age_bands, "age_band"),
    ):
        if values and column in frame.columns:
            conditions.append(pl.col(column).is_in(list(values)))
    if filters.until_minute is not None:
        conditions.append(pl.col("minute_of_day") < filters.until_minute)
    if metric.extra_filter is not None:
        conditions.append(metric.extra_filter())
    return frame.lazy().filter(*conditions)


def period_slice(frame: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """The rows of the period: the store keeps frames in time order, so the local day is
    sorted and the period is found by binary search instead of a scan of every row."""
    if frame.is_empty():
        return frame
    low, high = frame["day"].search_sorted(pl.Series([filters.start, filters.end + dt.timedelta(days=1)]), side="left")
    return frame.slice(low, high - low)


PERIOD = "__period"  # the filter set's index while several are aggregated together


def _aggregate_together(
    store: FactStore, chosen: list[Metric], periods: list[Filters], by: list[str], allowed: list[list[tuple[str, str]]]
) -> list[tuple[list[Metric], pl.DataFrame | None]]:
    """Raw aggregates, one wide frame per set of metrics over the same rows (same source and
    row filter): with several periods the period's index (``PERIOD``) first, then the
    grouping columns under their dimension names, then each metric's aggregates as
    ``<metric>__<name>``. A page asks for several metrics at once; one pass over the rows
    serves them all, and with several periods one query serves every period. None where the
    source holds no rows at all."""
    for metric in chosen:
        for dimension in by:
            if metric.source not in DIMENSIONS[dimension]:
                raise MetricError(f"metric {metric.key!r} cannot be grouped by {dimension!r}")
    columns = [COLUMN_OF.get(d, d) for d in by]
    sets: dict[tuple, list[Metric]] = {}
    for metric in chosen:
        sets.setdefault((metric.source, metric.extra_filter), []).append(metric)
    out = []
    for (source_name, _), members in sets.items():
        source = {"contacts": store.contacts, "referrals": store.referrals, "feedback": store.feedback}[source_name]
        if source.is_empty():
            out.append((members, None))
            continue
        expressions = [
            aggregate.alias(f"{metric.key}__{aggregate.meta.output_name()}")
            for metric in members
            for aggregate in metric.aggregate(store.settings)
        ]

        def grouped(lazy: pl.LazyFrame, extra: list[str]) -> pl.LazyFrame:
            # Weeks and months are cut from the local day of the rows in the period only.
            if truncated := [c for c in columns if c in ("week", "month")]:
                lazy = lazy.with_columns(pl.col("day").dt.truncate({"week": "1w", "month": "1mo"}[c]).alias(c) for c in truncated)
            keys = [*extra, *columns]
            lazy = lazy.group_by(keys).agg(expressions) if keys else lazy.select(expressions)
            # Code columns are categorical in the store; results carry plain text.
            return lazy.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String)).rename(dict(zip(columns, by, strict=True)))

        if len(periods) == 1:
            out.append((members, grouped(_filtered(store, members[0], periods[0], allowed[0]), []).collect()))
            continue
        together = grouped(
            pl.concat([
                _filtered(store, members[0], filters, allowed[index]).with_columns(pl.lit(index, dtype=pl.Int32).alias(PERIOD))
                for index, filters in enumerate(periods)
            ]),
            [PERIOD],
        ).collect()
        present = set(together[PERIOD].to_list())
        if not by and len(present) < len(periods):
            # A period without rows: what one call gives over no rows (a count of zero).
            empty = grouped(source.clear().lazy(), []).collect()
            together = pl.concat(
                [together, *(empty.select(pl.lit(i, dtype=pl.Int32).alias(PERIOD), pl.all()) for i in range(len(periods)) if i not in present)],
                how="diagonal_relaxed",
            )
        out.append((members, together))
    return out


def _with_empty_places(together: pl.DataFrame, by: list[str], allowed: list[list[tuple[str, str]]]) -> pl.DataFrame:
    """Every allowed municipality (or county) appears, in every period, with no aggregates
    where nothing happened (``_finish`` makes counts and shares of those a true zero)."""
    several = PERIOD in together.columns
    have = set(zip(*(together[c].to_list() for c in ([PERIOD] if several else []) + by), strict=True))
    missing = sorted({
        (index, *place) if several else place
        for index, places in enumerate(allowed)
        for place in _places(places, [COLUMN_OF[d] for d in by])
    } - have)
    if not missing:
        return together
    return pl.concat([together, pl.DataFrame(missing, schema=([PERIOD] if several else []) + by, orient="row")], how="diagonal_relaxed")


def _places(allowed: list[tuple[str, str]], columns: list[str]) -> list[tuple]:
    """``columns`` (of ``PLACE_COLUMNS``) of each allowed place."""
    at = [PLACE_COLUMNS.index(column) for column in columns]
    return [tuple(place[i] for i in at) for place in allowed]


class _GroupKeys:
    """The result's groups, and what suppression needs of them: which breakdown each row
    belongs to (every grouping but the last) and the rows' order within it."""

    def __init__(self, groups: pl.DataFrame, by: list[str], *, period: np.ndarray) -> None:
        # A frame of no columns has no height: the period index (0 with one period) has one.
        self.frame, self.by, self.period, self.height = groups, by, period, len(period)
        self._breakdown: np.ndarray | None = None
        self._order: np.ndarray | None = None

    @property
    def breakdown(self) -> np.ndarray:
        """0, 1, ... for each row's breakdown (rows of one period that share every grouping
        but the last)."""
        if self._breakdown is None:
            if len(self.by) < 2:
                within = np.zeros(self.height, dtype=np.int64)
            else:
                within = self.frame.select(pl.struct(self.by[:-1]).rank("dense")).to_series().to_numpy().astype(np.int64) - 1
            self._breakdown = np.unique(self.period * (within.max(initial=0) + 1) + within, return_inverse=True)[1].astype(np.int64)
        return self._breakdown

    @property
    def order(self) -> np.ndarray:
        """Each row's place in the sort order of the last grouping (nulls first)."""
        if self._order is None:
            if not self.by:
                self._order = np.zeros(self.height, dtype=np.int64)
            else:
                self._order = self.frame.select(pl.struct(self.by[-1]).rank("ordinal")).to_series().to_numpy().astype(np.int64)
        return self._order


@dataclass
class _Cells:
    """One metric's figures over the result's groups, as float arrays with NaN for none."""

    metric: Metric
    keys: _GroupKeys
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    note: list[str | None]
    suppressed: np.ndarray | None = None


def _column(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)


def _finish(
    store: FactStore, metric: Metric, together: pl.DataFrame, keys: _GroupKeys, periods: list[Filters],
    allowed: list[list[tuple[str, str]]],
) -> _Cells:
    """Values, intervals and notes from one metric's raw aggregates.

    The aggregates are small (one row per group), so this is plain array arithmetic: a polars
    operation on a small frame costs 0.1-0.3 ms of fixed overhead, and a page asks for around
    30 of them per registry call."""
    numerator = _column(together, f"{metric.key}__numerator")
    denominator = _column(together, f"{metric.key}__denominator")
    nothing = np.full(keys.height, np.nan)
    note: list[str | None] = [None] * keys.height
    if metric.unit in ("count", "per_1000"):
        numerator = np.nan_to_num(numerator, nan=0.0)  # a place or period with no rows: a true zero
    if metric.share_of_total:
        totals = np.bincount(keys.breakdown, weights=np.nan_to_num(numerator, nan=0.0))
        denominator = totals[keys.breakdown]
    if metric.unit == "count":
        return _Cells(metric, keys, numerator, denominator, numerator.copy(), nothing, nothing.copy(), note)
    if metric.unit == "share":
        numerator, denominator = np.nan_to_num(numerator, nan=0.0), np.nan_to_num(denominator, nan=0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            known = denominator > 0
            low, high = wilson_interval(numerator, denominator)
            value = np.where(known, numerator / denominator, np.nan)
        return _Cells(metric, keys, numerator, denominator, value, np.where(known, low, np.nan), np.where(known, high, np.nan), note)
    if metric.unit == "per_1000":
        population, missing = _populations(store, keys, periods, allowed)
        known = (missing == 0) & (population > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.where(known, numerator / population * 1000, np.nan)
        note = [None if k else "population_missing" for k in known.tolist()]
        return _Cells(metric, keys, numerator, np.where(known, population, np.nan), value, nothing, nothing.copy(), note)
    return _Cells(metric, keys, numerator, denominator, _column(together, f"{metric.key}__value"), nothing, nothing.copy(), note)


def wilson_interval(successes: np.ndarray, trials: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval for a proportion, as (low, high)."""
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return centre - half, centre + half


def funnel_limits(centre: float, *, n_min: float, n_max: float, points: int = 60) -> pl.DataFrame:
    """Control limits of a funnel plot around ``centre`` for denominators n_min..n_max:
    95 % (z 1.96) and 99.8 % (z 3.09), normal approximation, clipped to 0..1."""
    n_min = max(n_min, 1.0)
    n_max = max(n_max, n_min * 1.01)
    ns = [n_min * (n_max / n_min) ** (i / (points - 1)) for i in range(points)]
    rows = []
    for band, z in (("95", 1.959964), ("99.8", 3.090232)):
        for sign, suffix in ((-1, "low"), (1, "high")):
            for n in ns:
                limit = centre + sign * z * (centre * (1 - centre) / n) ** 0.5
                rows.append((f"{band}_{suffix}", band, n, min(max(limit, 0.0), 1.0)))
    return pl.DataFrame(rows, schema=["band", "level", "n", "limit"], orient="row")


def population_for(store: FactStore, year: int) -> dict[str, int | None]:
    """Population per municipality for ``year``: that year's, else the latest earlier one
    (None where no year up to ``year`` is known)."""
    latest: dict[str, tuple[int, int | None]] = {}
    columns = (store.populations[c].to_list() for c in ("municipality_code", "year", "population"))
    for code, row_year, population in zip(*columns, strict=True):
        if row_year <= year and (code not in latest or row_year > latest[code][0]):
            latest[code] = (row_year, population)
    return {code: population for code, (_, population) in latest.items()}


def _populations(
    store: FactStore, keys: _GroupKeys, periods: list[Filters], allowed: list[list[tuple[str, str]]]
) -> tuple[np.ndarray, np.ndarray]:
    """Each group's population in its period's last year (the sum over its allowed
    municipalities) and how many of those municipalities have none known."""
    geography = [d for d in keys.by if d in ("municipality", "region")]
    places = list(zip(*(keys.frame[d].to_list() for d in geography), strict=True)) if geography else [()] * keys.height
    population, missing = np.zeros(keys.height, dtype=np.float64), np.zeros(keys.height, dtype=np.int64)
    for index, filters in enumerate(periods):
        rows = np.flatnonzero(keys.period == index)
        if not len(rows):
            continue
        known = population_for(store, filters.end.year)
        sums: dict[tuple, list[int]] = {}
        for code, *place in _places(allowed[index], ["municipality_code", *(COLUMN_OF[d] for d in geography)]):
            total = sums.setdefault(tuple(place), [0, 0])
            if known.get(code) is None:
                total[1] += 1
            else:
                total[0] += known[code]
        for row in rows.tolist():
            population[row], missing[row] = sums.get(places[row], (0, 0))
    return population, missing


def suppress(cells: _Cells, metric: Metric, keys: _GroupKeys, *, threshold: int) -> None:
    """Small-cell suppression as DOMAIN.md states it, primary and secondary."""
    suppressed = np.zeros(keys.height, dtype=bool)
    for column in metric.suppress_on:
        values = getattr(cells, column)
        suppressed |= (values >= 1) & (values <= threshold - 1)
    # A rate per 1,000 residents reveals its count (rate x population): it is a count here.
    if keys.by and metric.unit in ("count", "per_1000"):
        suppressed |= _secondary(cells.numerator, suppressed, keys)
    cells.suppressed = suppressed
    for column in ("value", "numerator", "ci_low", "ci_high"):
        getattr(cells, column)[suppressed] = np.nan
    if metric.unit != "per_1000":  # the population stays: it reveals nothing
        cells.denominator = np.where(suppressed, np.nan, cells.denominator)


def _secondary(numerator: np.ndarray, suppressed: np.ndarray, keys: _GroupKeys) -> np.ndarray:
    """Where a breakdown of counts has exactly one suppressed cell, hide the next smallest too,
    so the cell cannot be recovered by subtracting the others from a shown total. The next
    smallest is the smallest shown count above zero; of equal ones, the first in the order of
    the last grouping."""
    if not suppressed.any():
        return suppressed
    breakdown = keys.breakdown
    lone = (np.bincount(breakdown, weights=suppressed, minlength=breakdown.max(initial=0) + 1) == 1)[breakdown]
    candidate = ~suppressed & (np.nan_to_num(numerator, nan=0.0) > 0)
    ranked = np.lexsort((keys.order, np.where(candidate, numerator, np.inf), breakdown))
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = breakdown[ranked][1:] != breakdown[ranked][:-1]
    pick = np.zeros(len(ranked), dtype=bool)
    pick[ranked[first]] = True
    return pick & candidate & lone


def _long(cells: list[_Cells], by: list[str], *, periods: bool = False) -> pl.DataFrame:
    """The result frame: the grouping columns, then one row per metric and group; with
    ``periods``, the period's index first."""
    if not cells:
        schema = {**{d: pl.String for d in by}, **RESULT_SCHEMA}
        return pl.DataFrame(schema={"period": pl.Int32, **schema} if periods else schema)

    def floats(name: str) -> pl.Series:
        return pl.Series(name, np.concatenate([getattr(c, name) for c in cells]), dtype=pl.Float64, nan_to_null=True)

    figures = pl.DataFrame(
        [
            *([pl.Series("period", np.concatenate([c.keys.period for c in cells]), dtype=pl.Int32)] if periods else []),
            pl.Series("metric", [c.metric.key for c in cells for _ in range(c.keys.height)], dtype=pl.String),
            *(floats(name) for name in ("value", "numerator", "denominator", "ci_low", "ci_high")),
            pl.Series("suppressed", np.concatenate([c.suppressed for c in cells]), dtype=pl.Boolean),
            pl.Series("note", [n for c in cells for n in c.note], dtype=pl.String),
        ]
    )
    if not by:
        return figures
    keys = pl.concat([c.keys.frame for c in cells], how="vertical_relaxed")
    if not periods:
        return keys.hstack(figures)
    return figures.select("period").hstack(keys).hstack(figures.drop("period"))
