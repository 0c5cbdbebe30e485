"""The metric registry and its one exit.

Every figure the product shows is defined once here: name, labels, unit, plain-language
definition and computation. ``compute`` is the only way out: it applies the caller's
access scope before anything is computed and small-cell suppression before anything
is returned, so no page, export or CLI output can forget either.

A result is a long frame: the grouping columns, then ``metric``, ``value``,
``numerator``, ``denominator``, ``ci_low``, ``ci_high``, ``suppressed`` and ``note``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

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


def wilson_interval(successes: pl.Expr, trials: pl.Expr, z: float = Z95) -> tuple[pl.Expr, pl.Expr]:
    """95 % Wilson score interval for a proportion, as (low, high) expressions."""
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * ((p * (1 - p) / trials + z2 / (4 * trials * trials)).sqrt()) / (1 + z2 / trials)
    return (centre - half).alias("ci_low"), (centre + half).alias("ci_high")


def compute(
    store: FactStore,
    *,
    metrics: list[str] | tuple[str, ...],
    filters: Filters,
    by: list[str] | tuple[str, ...] = (),
    scope: Scope = Scope(),
) -> pl.DataFrame:
    """The one exit: scoped, computed, suppressed."""
    for dimension in by:
        if dimension not in DIMENSIONS:
            raise MetricError(f"unknown grouping {dimension!r}; known: {', '.join(DIMENSIONS)}")
    allowed = _allowed_municipalities(store, filters, scope)
    chosen = [get_metric(key) for key in metrics]
    aggregated = _aggregate_together(store, chosen, filters, list(by), allowed)
    frames = [_compute_one(store, metric, filters, list(by), allowed, aggregated[metric.key]) for metric in chosen]
    result = pl.concat(frames, how="vertical_relaxed") if frames else _empty(by)
    return suppress(result, by=list(by), threshold=store.settings.small_cell_threshold)


def _allowed_municipalities(store: FactStore, filters: Filters, scope: Scope) -> list[str]:
    municipalities = store.municipalities
    allowed = set(municipalities["municipality_code"].to_list())
    if filters.regions:
        allowed &= set(municipalities.filter(pl.col("region_code").is_in(list(filters.regions)))["municipality_code"])
    if filters.municipalities:
        allowed &= set(filters.municipalities)
    if scope.municipalities is not None:
        allowed &= scope.municipalities
    return sorted(allowed)


def _empty(by: list[str]) -> pl.DataFrame:
    return pl.DataFrame(schema={**{d: pl.String for d in by}, **RESULT_SCHEMA})


def _filtered(store: FactStore, metric: Metric, filters: Filters, allowed: list[str]) -> pl.LazyFrame:
    frame = period_slice({"contacts": store.contacts, "referrals": store.referrals, "feedback": store.feedback}[metric.source], filters)
    conditions = [pl.col("municipality_code").is_in(allowed)]
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
    days = frame["day"]
    low = days.search_sorted(filters.start, side="left")
    high = days.search_sorted(filters.end, side="right")
    return frame.slice(low, high - low)


def _aggregate_together(
    store: FactStore, chosen: list[Metric], filters: Filters, by: list[str], allowed: list[str]
) -> dict[str, pl.DataFrame | None]:
    """Raw aggregates per metric. Metrics over the same rows (same source and row filter) are
    aggregated in one pass, each under its own prefixed columns; a page asks for several at once."""
    for metric in chosen:
        for dimension in by:
            if metric.source not in DIMENSIONS[dimension]:
                raise MetricError(f"metric {metric.key!r} cannot be grouped by {dimension!r}")
    columns = [COLUMN_OF.get(d, d) for d in by]
    groups: dict[tuple, list[Metric]] = {}
    for metric in chosen:
        groups.setdefault((metric.source, metric.extra_filter), []).append(metric)
    out: dict[str, pl.DataFrame | None] = {}
    for (source_name, _), members in groups.items():
        source = {"contacts": store.contacts, "referrals": store.referrals, "feedback": store.feedback}[source_name]
        if source.is_empty():
            out.update({m.key: None for m in members})
            continue
        names: dict[str, list[str]] = {}
        expressions = []
        for metric in members:
            aggregates = metric.aggregate(store.settings)
            names[metric.key] = [a.meta.output_name() for a in aggregates]
            expressions += [a.alias(f"{metric.key}__{a.meta.output_name()}") for a in aggregates]
        lazy = _filtered(store, members[0], filters, allowed)
        # Weeks and months are cut from the local day of the rows in the period only.
        lazy = lazy.with_columns(
            *(pl.col("day").dt.truncate({"week": "1w", "month": "1mo"}[c]).alias(c) for c in columns if c in ("week", "month"))
        )
        together = (lazy.group_by(columns).agg(expressions) if columns else lazy.select(expressions)).collect()
        # Code columns are categorical in the store; results carry plain text.
        together = together.with_columns(pl.col(pl.Categorical, pl.Enum).cast(pl.String))
        for metric in members:
            out[metric.key] = together.select(
                *columns, *(pl.col(f"{metric.key}__{name}").alias(name) for name in names[metric.key])
            )
    return out


def _compute_one(
    store: FactStore, metric: Metric, filters: Filters, by: list[str], allowed: list[str], frame: pl.DataFrame | None
) -> pl.DataFrame:
    columns = [COLUMN_OF.get(d, d) for d in by]
    if frame is None:
        return _empty(by)
    if columns and set(by) <= {"municipality", "region"}:
        frame = _with_empty_places(store, frame, columns, allowed, metric)
    if not columns and frame.height == 1 and metric.unit in ("count", "per_1000") and frame["numerator"][0] is None:
        frame = frame.with_columns(pl.lit(0.0).alias("numerator"))
    frame = frame.rename({c: d for c, d in zip(columns, by, strict=True)})
    frame = _finish(store, metric, frame, filters, by, allowed)
    return frame.select(
        *(pl.col(d).cast(pl.String) if d not in TIME_DIMENSIONS else pl.col(d) for d in by),
        pl.lit(metric.key).alias("metric"),
        *(pl.col(name).cast(dtype) for name, dtype in RESULT_SCHEMA.items() if name not in ("metric", "suppressed")),
        pl.lit(False).alias("suppressed"),
    ).select(*by, *RESULT_SCHEMA)


def _with_empty_places(
    store: FactStore, frame: pl.DataFrame, columns: list[str], allowed: list[str], metric: Metric
) -> pl.DataFrame:
    """Every allowed municipality (or county) appears, with a true zero where nothing happened."""
    places = store.municipalities.filter(pl.col("municipality_code").is_in(allowed)).select(columns).unique()
    full = places.join(frame, on=columns, how="left")
    if metric.unit in ("count", "per_1000"):
        full = full.with_columns(pl.col("numerator").fill_null(0.0))
    elif "denominator" in full.columns and metric.unit == "share":
        full = full.with_columns(pl.col("numerator").fill_null(0.0), pl.col("denominator").fill_null(0.0))
    return full


def _finish(
    store: FactStore, metric: Metric, frame: pl.DataFrame, filters: Filters, by: list[str], allowed: list[str]
) -> pl.DataFrame:
    none = pl.lit(None, pl.Float64)
    if metric.unit == "count":
        return frame.with_columns(
            pl.col("numerator").alias("value"), ci_low=none, ci_high=none, note=pl.lit(None, pl.String)
        )
    if metric.share_of_total:
        over = by[:-1]
        total = pl.col("numerator").sum().over(over) if over else pl.col("numerator").sum()
        frame = frame.with_columns(total.alias("denominator"))
    if metric.unit == "share":
        low, high = wilson_interval(pl.col("numerator"), pl.col("denominator"))
        return frame.with_columns(
            pl.when(pl.col("denominator") > 0).then(pl.col("numerator") / pl.col("denominator")).alias("value"),
            pl.when(pl.col("denominator") > 0).then(low).alias("ci_low"),
            pl.when(pl.col("denominator") > 0).then(high).alias("ci_high"),
            note=pl.lit(None, pl.String),
        )
    if metric.unit == "per_1000":
        return _per_1000(store, frame, filters, by, allowed)
    return frame.with_columns(ci_low=none, ci_high=none, note=pl.lit(None, pl.String))


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


def population_for(store: FactStore, year: int) -> pl.DataFrame:
    """Population per municipality for ``year``: that year's, else the latest earlier one."""
    return (
        store.populations.filter(pl.col("year") <= year)
        .sort("year")
        .group_by("municipality_code")
        .last()
        .select("municipality_code", "population")
    )


def _per_1000(store: FactStore, frame: pl.DataFrame, filters: Filters, by: list[str], allowed: list[str]) -> pl.DataFrame:
    population = population_for(store, filters.end.year)
    base = store.municipalities.filter(pl.col("municipality_code").is_in(allowed)).join(
        population, on="municipality_code", how="left"
    )
    geography = [d for d in by if d in ("municipality", "region")]
    if geography:
        keys = [COLUMN_OF[d] for d in geography]
        base = base.group_by(keys).agg(
            pl.col("population").sum().alias("population"), pl.col("population").null_count().alias("missing")
        ).rename({COLUMN_OF[d]: d for d in geography})
        frame = frame.join(base, on=geography, how="left")
    else:
        frame = frame.with_columns(
            pl.lit(base["population"].sum()).alias("population"),
            pl.lit(base["population"].null_count()).alias("missing"),
        )
    known = (pl.col("missing") == 0) & (pl.col("population") > 0)
    return frame.with_columns(
        pl.when(known).then(pl.col("population")).cast(pl.Float64).alias("denominator"),
        pl.when(known).then(pl.col("numerator") / pl.col("population") * 1000).alias("value"),
        pl.lit(None, pl.Float64).alias("ci_low"),
        pl.lit(None, pl.Float64).alias("ci_high"),
        pl.when(known).then(pl.lit(None, pl.String)).otherwise(pl.lit("population_missing")).alias("note"),
    ).drop("population", "missing")


def suppress(frame: pl.DataFrame, *, by: list[str], threshold: int) -> pl.DataFrame:
    """Small-cell suppression as DOMAIN.md states it, primary and secondary."""
    if frame.is_empty():
        return frame
    small = lambda col: pl.col(col).is_between(1, threshold - 1)
    units = {key: REGISTRY[key] for key in frame["metric"].unique()}
    primary = pl.lit(False)
    for key, metric in units.items():
        rule = pl.lit(False)
        for column in metric.suppress_on:
            rule = rule | small(column).fill_null(False)
        primary = pl.when(pl.col("metric") == key).then(rule).otherwise(primary)
    frame = frame.with_columns(primary.alias("suppressed"))
    # A rate per 1,000 residents reveals its count (rate x population): it is a count here.
    frame = _secondary(frame, by=by, counts=[k for k, m in units.items() if m.unit in ("count", "per_1000")])
    hidden = pl.col("suppressed")
    return frame.with_columns(
        *(pl.when(hidden).then(None).otherwise(pl.col(c)).alias(c) for c in ("value", "numerator", "ci_low", "ci_high")),
        pl.when(hidden & pl.col("metric").is_in([k for k, m in units.items() if m.unit == "per_1000"]).not_())
        .then(None).otherwise(pl.col("denominator")).alias("denominator"),
    )


def _secondary(frame: pl.DataFrame, *, by: list[str], counts: list[str]) -> pl.DataFrame:
    """Where a breakdown of counts has exactly one suppressed cell, hide the next smallest too,
    so the cell cannot be recovered by subtracting the others from a shown total."""
    if not by or not counts:
        return frame
    groups = ["metric", *by[:-1]]
    is_count = pl.col("metric").is_in(counts)
    lone = pl.col("suppressed").sum().over(groups) == 1
    candidate = ~pl.col("suppressed") & (pl.col("numerator") > 0)
    smallest = pl.when(candidate).then(pl.col("numerator")).rank("ordinal").over(groups) == 1
    return frame.with_columns((pl.col("suppressed") | (is_count & lone & smallest)).alias("suppressed"))


def wide(frame: pl.DataFrame, *, by: list[str]) -> pl.DataFrame:
    """One row per group, one column per metric value (for tables and CSV)."""
    if frame.is_empty():
        return frame
    index = by or None
    if not by:
        frame = frame.with_columns(pl.lit("all").alias("_all"))
        index = ["_all"]
    values = frame.pivot(on="metric", index=index, values="value")
    flags = frame.pivot(on="metric", index=index, values="suppressed")
    flags = flags.rename({c: f"{c}__suppressed" for c in flags.columns if c not in index})
    result = values.join(flags, on=index, how="left", nulls_equal=True)
    return result.drop("_all") if not by else result
