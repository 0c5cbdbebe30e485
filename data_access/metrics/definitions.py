"""Every metric the product shows, defined once: labels and plain-language definitions in
three languages, unit, target setting and the aggregation that computes it."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import numpy as np
import polars as pl

from data_access import codes
from data_access.config import Settings
from data_access.metrics.publication import RECORD_KEY
from data_access.metrics.types import Z95, Metric, MetricError
from data_access.periods import local_now


def _count() -> list[pl.Expr]:
    """Rows; with the sum of their record keys (publication.py), which the computation keeps
    only when it publishes."""
    return [
        pl.len().cast(pl.Float64).alias("numerator"), pl.lit(None, pl.Float64).alias("denominator"),
        pl.col(RECORD_KEY).sum().alias("numerator_key"),
    ]


def _share(flag: pl.Expr) -> list[pl.Expr]:
    """Share of rows where ``flag`` is true among rows where it is known; with the sums of the
    record keys of both sets of rows (kept only when publishing)."""
    return [
        flag.cast(pl.Float64).sum().alias("numerator"),
        flag.is_not_null().sum().cast(pl.Float64).alias("denominator"),
        pl.col(RECORD_KEY).filter(flag.fill_null(False)).sum().alias("numerator_key"),
        pl.col(RECORD_KEY).filter(flag.is_not_null()).sum().alias("denominator_key"),
    ]


def _answers_key(values: pl.Expr) -> pl.Expr:
    """The sum of the record keys of the rows a figure's number of answers counts (kept only
    when publishing: that n is then perturbed like any count, publication.py)."""
    return pl.col(RECORD_KEY).filter(values.is_not_null()).sum().alias("denominator_key")


def _quantile(q: float) -> Callable[[Settings], list[pl.Expr]]:
    def aggregate(_settings: Settings) -> list[pl.Expr]:
        seconds = pl.col("queue_seconds").filter(pl.col("channel").is_in(list(codes.QUEUED_CHANNELS)))
        return [
            seconds.quantile(q, interpolation="linear").alias("value"),
            pl.lit(None, pl.Float64).alias("numerator"),
            seconds.count().cast(pl.Float64).alias("denominator"),
            pl.col(RECORD_KEY).filter(pl.col("channel").is_in(list(codes.QUEUED_CHANNELS)) & pl.col("queue_seconds").is_not_null())
            .sum().alias("denominator_key"),
        ]

    return aggregate


NPS_PARTS = ("promoters", "passives", "detractors")


def _nps(_settings: Settings) -> list[pl.Expr]:
    """Promoters (9-10), passives (7-8) and detractors (0-6) as counts of their own
    (``part_*``): the value, its interval and n give all three back, so disclosure control
    protects each like any count, and publication perturbs each. The value and its 95 %
    half-width are made from the three (``nps_figures``)."""
    score = pl.col("recommend_score")
    groups = {"promoters": score >= 9, "passives": (score >= 7) & (score <= 8), "detractors": score <= 6}
    return [
        pl.lit(None, pl.Float64).alias("value"),
        pl.lit(None, pl.Float64).alias("numerator"),
        score.count().cast(pl.Float64).alias("denominator"),
        *(flag.sum().cast(pl.Float64).alias(f"part_{name}") for name, flag in groups.items()),
        *(pl.col(RECORD_KEY).filter(flag.fill_null(False)).sum().alias(f"part_{name}_key") for name, flag in groups.items()),
    ]


def nps_figures(promoters: np.ndarray, passives: np.ndarray, detractors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NPS (promoters less detractors, in points) and its 95 % interval from the three counts:
    the variance of each answer scored +1, 0 or -1 is (p+ + p-) - (p+ - p-)^2 (normal
    approximation)."""
    n = promoters + passives + detractors
    with np.errstate(divide="ignore", invalid="ignore"):
        high_share, low_share = promoters / n, detractors / n
        value = (high_share - low_share) * 100
        half = Z95 * np.sqrt(np.maximum(high_share + low_share - (high_share - low_share) ** 2, 0.0) / n) * 100
    known = n > 0
    return np.where(known, value, np.nan), np.where(known, value - half, np.nan), np.where(known, value + half, np.nan)


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


def _same_day_callback(_settings: Settings) -> list[pl.Expr]:
    """A callback not yet done counts as missed once its day is over; on its own day it is
    still due and not judged (today so far would otherwise read red every morning)."""
    today = local_now().date()
    open_today = pl.col("callback_open") & (pl.col("day") >= today)
    return _share(pl.when(open_today).then(None).otherwise(pl.col("callback_same_day")))


def _median_days(column: str) -> Callable[[Settings], list[pl.Expr]]:
    """The median of a duration in days, with the number of cases it is over."""

    def aggregate(_settings: Settings) -> list[pl.Expr]:
        days = pl.col(column).drop_nulls()
        return [
            days.median().alias("value"), pl.lit(None, pl.Float64).alias("numerator"), days.count().cast(pl.Float64).alias("denominator"),
            _answers_key(pl.col(column)),
        ]

    return aggregate


def _mean_of(column: str, *, per_case: bool = False) -> Callable[[Settings], list[pl.Expr]]:
    """A mean with its 95 % half-width (normal approximation, the values' own spread). With
    ``per_case`` the values are a case's several domains: the cases ride along as people, so
    one client's four domain changes are not shown as four answers."""

    def aggregate(_settings: Settings) -> list[pl.Expr]:
        values = pl.col(column).drop_nulls()
        n = values.count().cast(pl.Float64)
        return [
            values.mean().alias("value"), pl.lit(None, pl.Float64).alias("numerator"), n.alias("denominator"),
            (Z95 * values.std() / n.sqrt()).alias("half"), *([_cases_of(column)] if per_case else []), _answers_key(pl.col(column)),
        ]

    return aggregate


# A mean of a 0-10 scale is shown to one decimal and only over at least this many answers.
# Then no answer value's count of 1..threshold-1 follows from the figures shown, the NPS
# counts of the same answers included: tests/test_disclosure.py enumerates every set of
# answers (the NPS counts beside it: 20 answers all 7 or 8 with a mean of 7,1 are two 8s).
SCALE_MIN_ANSWERS = 21


def _scale_mean(column: str, *, top: int = 10) -> Callable[[Settings], list[pl.Expr]]:
    """The mean of answers on a 0..``top`` scale, to one decimal, and its 95 % interval from
    that mean and n alone (Wilson's interval of mean/top: the widest spread a bounded scale can
    have at that mean). An interval from the answers' own spread gives their sum of squares
    back, and with the mean and n a unique set of answers (3, 9, 10, 10, 10, 10, 10)."""

    def aggregate(_settings: Settings) -> list[pl.Expr]:
        values = pl.col(column).drop_nulls()
        n = values.count().cast(pl.Float64)
        mean = (values.mean() * 10).round(0) / 10
        p = mean / top
        z2 = Z95 * Z95
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / (1 + z2 / n)
        return [
            mean.alias("value"), pl.lit(None, pl.Float64).alias("numerator"), n.alias("denominator"),
            ((centre - half) * top).alias("ci_low"), ((centre + half) * top).alias("ci_high"), _answers_key(pl.col(column)),
        ]

    return aggregate


def _cases_of(column: str) -> pl.Expr:
    """How many cases the rows with a ``column`` value belong to (``people``)."""
    return pl.struct("source_system", "case_id").filter(pl.col(column).is_not_null()).n_unique().cast(pl.Float64).alias("people")


def _median_with_interval(column: str, *, per_case: bool = False) -> Callable[[Settings], list[pl.Expr]]:
    """A median with its distribution-free 95 % interval: the order statistics at ranks
    n/2 -/+ 1.96 * sqrt(n)/2 (rounded outwards, clipped to the sample), which needs no
    assumption about the shape of the changes."""

    def aggregate(_settings: Settings) -> list[pl.Expr]:
        values = pl.col(column).drop_nulls().sort()
        n = values.count()
        half = (Z95 * n.cast(pl.Float64).sqrt() / 2)
        low = ((n.cast(pl.Float64) / 2 - half).floor().cast(pl.Int64) - 1).clip(0, None)
        high = ((n.cast(pl.Float64) / 2 + half).ceil().cast(pl.Int64)).clip(None, n.cast(pl.Int64) - 1)
        return [
            values.median().alias("value"), pl.lit(None, pl.Float64).alias("numerator"), n.cast(pl.Float64).alias("denominator"),
            # None over no rows (a period without measurements asked as a whole).
            values.get(low, null_on_oob=True).alias("ci_low"), values.get(high, null_on_oob=True).alias("ci_high"), *([_cases_of(column)] if per_case else []),
            _answers_key(pl.col(column)),
        ]

    return aggregate


def _cases_measured(_settings: Settings) -> list[pl.Expr]:
    """Clients (their cases) with a first and a last measurement: once each, however many
    domains were measured."""
    case = pl.struct("source_system", "case_id")
    return [
        case.n_unique().cast(pl.Float64).alias("numerator"), pl.lit(None, pl.Float64).alias("denominator"),
        pl.col(RECORD_KEY).filter(case.is_first_distinct()).sum().alias("numerator_key"),
    ]


def _follow_up_on_time(_settings: Settings) -> list[pl.Expr]:
    """Done by the day it was due / due and either done or past its day (one due today and
    not done yet is not late yet, and not judged)."""
    today = local_now().date()
    done, due = pl.col("done_day"), pl.col("day")
    return _share(pl.when(done.is_not_null()).then(done <= due).when(due < today).then(False))


def _overdue() -> pl.Expr:
    return pl.col("done_day").is_null() & (pl.col("day") < local_now().date())


def _multi_service_contacts(_settings: Settings) -> list[pl.Expr]:
    """Contacts of multi-service clients / contacts of all clients in the window; the number
    of multi-service clients rides along so that a handful of people is never shown."""
    multi = pl.col("multi_service")
    return [
        pl.col("contacts").filter(multi).sum().cast(pl.Float64).alias("numerator"),
        pl.col("contacts").sum().cast(pl.Float64).alias("denominator"),
        multi.sum().cast(pl.Float64).alias("people"),
        pl.col(RECORD_KEY).filter(multi).sum().alias("numerator_key"),
        pl.col(RECORD_KEY).sum().alias("denominator_key"),
    ]


INSTRUMENT_NAMES = {"whoqol_bref": "WHOQOL-BREF", "kykyviisari": "Kykyviisari"}


def _outcome_metrics(instrument: str) -> list[Metric]:
    name = INSTRUMENT_NAMES[instrument]
    changed = lambda: (pl.col("instrument") == instrument) & pl.col("change").is_not_null()  # noqa: E731
    scale = {
        "whoqol_bref": {"fi": "asteikolla 0–100", "sv": "på skalan 0–100", "en": "on a 0–100 scale"},
        "kykyviisari": {"fi": "asteikolla 0–10", "sv": "på skalan 0–10", "en": "on a 0–10 scale"},
    }[instrument]
    return [
        Metric(
            key=f"{instrument}_change_mean", unit="mean", source="outcomes",
            labels={"fi": f"{name}: muutos, keskiarvo", "sv": f"{name}: förändring, medelvärde", "en": f"{name}: change, mean"},
            definitions={
                "fi": f"{name}-pisteiden muutos ({scale['fi']}) ensimmäisestä viimeiseen mittaukseen, keskiarvo asiakkaista, "
                "joilla on molemmat; osa-alueittain. 95 %:n väli normaalijakauman mukaan. Jaksoon kuuluu muutos, jonka "
                "viimeinen mittaus on jaksolla.",
                "sv": f"Förändringen i {name}-poäng ({scale['sv']}) från första till sista mätningen, medelvärde för klienter "
                "med båda; per område. 95 % intervall enligt normalfördelningen. En förändring hör till perioden där dess "
                "sista mätning ligger.",
                "en": f"Change in {name} scores ({scale['en']}) from the first to the last measurement, mean over clients "
                "with both; by domain. 95 % interval by the normal approximation. A change belongs to the period of its "
                "last measurement.",
            },
            aggregate=_mean_of("change", per_case=True), extra_filter=changed,
        ),
        Metric(
            key=f"{instrument}_change_median", unit="mean", source="outcomes",
            labels={"fi": f"{name}: muutos, mediaani", "sv": f"{name}: förändring, median", "en": f"{name}: change, median"},
            definitions={
                "fi": f"{name}-pisteiden muutos ensimmäisestä viimeiseen mittaukseen, mediaani; 95 %:n väli "
                "järjestystunnusluvuista (ei oletusta jakauman muodosta).",
                "sv": f"Förändringen i {name}-poäng från första till sista mätningen, median; 95 % intervall av "
                "ordningsstatistikan (inget antagande om fördelningens form).",
                "en": f"Change in {name} scores from the first to the last measurement, median; 95 % interval from order "
                "statistics (no assumption about the distribution's shape).",
            },
            aggregate=_median_with_interval("change", per_case=True), extra_filter=changed,
        ),
        Metric(
            key=f"{instrument}_clients", unit="count", source="outcomes",
            labels={
                "fi": f"{name}: asiakkaita, joilla alku- ja loppumittaus", "sv": f"{name}: klienter med första och sista mätning",
                "en": f"{name}: clients with a first and last measurement",
            },
            definitions={
                "fi": f"Asiakkaat (ohjauspolut), joilla on vähintään kaksi {name}-mittausta; muutoksen laskennan pohja.",
                "sv": f"Klienter (handledningsärenden) med minst två {name}-mätningar; underlaget för förändringen.",
                "en": f"Clients (guidance cases) with at least two {name} measurements; what the change is computed over.",
            },
            aggregate=_cases_measured, extra_filter=changed, higher_is_better=None,
        ),
    ]


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
                "fi": "Samana päivänä tehdyt takaisinsoitot / takaisinsoittopyynnöt. Tämän päivän vielä tekemättömät "
                "pyynnöt eivät ole vielä myöhässä, joten niitä ei lasketa.",
                "sv": "Återuppringningar gjorda samma dag / begäranden om återuppringning. Dagens ännu ogjorda "
                "begäranden är inte försenade än och räknas inte.",
                "en": "Callbacks completed the same day / callback requests. Today's requests not yet done are not "
                "late yet and are not counted.",
            },
            aggregate=_same_day_callback,
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
            aggregate=_quantile(0.5), higher_is_better=False,
        ),
        Metric(
            key="queue_p90_seconds", unit="seconds", source="contacts",
            labels={"fi": "Jonotusaika, 90. persentiili", "sv": "Kötid, 90:e percentilen", "en": "Queue time, 90th percentile"},
            definitions={
                "fi": "Jonotusajan 90. persentiili sekunteina puhelimessa, takaisinsoitossa ja chatissa.",
                "sv": "90:e percentilen av kötiden i sekunder för telefon, återuppringning och chatt.",
                "en": "90th percentile of waiting time in seconds for phone, callback and chat.",
            },
            aggregate=_quantile(0.9), higher_is_better=False,
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
                "fi": "Asiakaspalautteen suositteluhalukkuuden keskiarvo asteikolla 0–10, yhden desimaalin tarkkuudella; "
                "näytetään vähintään 21 vastauksesta. 95 %:n väli keskiarvosta ja vastausten määrästä (Wilson, asteikon suurin hajonta).",
                "sv": "Medelvärde av rekommendationsviljan i kundrespons på skalan 0–10, med en decimal; visas för minst 21 svar. "
                "95 % intervall från medelvärdet och antalet svar (Wilson, skalans största spridning).",
                "en": "Mean of the client feedback recommendation score on a 0–10 scale, to one decimal; shown over at least 21 "
                "answers. 95 % interval from the mean and the number of answers (Wilson, the widest spread the scale allows).",
            },
            aggregate=_scale_mean("recommend_score"),
        ),
        Metric(
            key="feedback_answers", unit="count", source="feedback",
            labels={"fi": "Palautevastaukset", "sv": "Svar på kundenkäten", "en": "Feedback answers"},
            definitions={
                "fi": "Asiakaspalautteeseen vastanneiden määrä (suositteluhalukkuuden ja NPS:n pohja).",
                "sv": "Antal svar på kundenkäten (underlaget för rekommendationen och NPS).",
                "en": "Number of client feedback answers (what the recommendation score and NPS are based on).",
            },
            aggregate=lambda s: _count(),
            higher_is_better=None,
        ),
        Metric(
            key="nps", unit="nps", source="feedback",
            labels={"fi": "NPS", "sv": "NPS", "en": "NPS"},
            definitions={
                "fi": "Suosittelijoiden (9–10) osuus miinus arvostelijoiden (0–6) osuus prosenttiyksikköinä.",
                "sv": "Andelen promotorer (9–10) minus andelen kritiker (0–6) i procentenheter.",
                "en": "Share of promoters (9–10) minus share of detractors (0–6), in percentage points.",
            },
            aggregate=_nps,
        ),
        Metric(
            key="cases_opened", unit="count", source="cases",
            labels={"fi": "Avatut ohjauspolut", "sv": "Inledda handledningsärenden", "en": "Guidance cases opened"},
            definitions={
                "fi": "Asiakkaat, jotka otettiin henkilökohtaiseen ohjaukseen tai monipalveluprosessiin jaksolla (ohjauspolun "
                "avauspäivän mukaan).",
                "sv": "Klienter som togs in i personlig handledning eller flerserviceprocessen under perioden (enligt dagen "
                "ärendet inleddes).",
                "en": "Clients taken into personal guidance or the multi-service process in the period (by the day the case opened).",
            },
            aggregate=lambda s: _count(), higher_is_better=None,
        ),
        Metric(
            key="case_consent_share", unit="share", source="cases",
            labels={"fi": "Suostumus kirjattu", "sv": "Samtycke registrerat", "en": "Consent recorded"},
            definitions={
                "fi": "Ohjauspolut, joissa asiakkaan kirjallinen suostumus tietojen jakamiseen on kirjattu / jaksolla avatut "
                "ohjauspolut.",
                "sv": "Handledningsärenden med klientens skriftliga samtycke till informationsutbyte / ärenden inledda under perioden.",
                "en": "Guidance cases with the client's written consent to share information / cases opened in the period.",
            },
            aggregate=lambda s: _share(pl.col("has_consent")),
        ),
        Metric(
            key="case_plan_share", unit="share", source="cases",
            labels={"fi": "Suunnitelma tehty", "sv": "Plan upprättad", "en": "Plan made"},
            definitions={
                "fi": "Ohjauspolut, joille on tehty asiakas- tai hoitosuunnitelma / jaksolla avatut ohjauspolut.",
                "sv": "Handledningsärenden med en klient- eller vårdplan / ärenden inledda under perioden.",
                "en": "Guidance cases with a client or care plan / cases opened in the period.",
            },
            aggregate=lambda s: _share(pl.col("has_plan")),
        ),
        Metric(
            key="days_to_plan_median", unit="days", source="cases",
            labels={"fi": "Aika suunnitelmaan, mediaani", "sv": "Tid till plan, median", "en": "Time to plan, median"},
            definitions={
                "fi": "Vuorokaudet ohjauspolun avaamisesta suunnitelmaan, mediaani niistä jaksolla avatuista, joille "
                "suunnitelma on tehty.",
                "sv": "Dygn från att ärendet inleddes till planen, median för ärenden inledda under perioden som har en plan.",
                "en": "Days from opening a case to its plan, median over the cases opened in the period that have a plan.",
            },
            aggregate=_median_days("days_to_plan"), higher_is_better=False,
        ),
        Metric(
            key="case_reasons", unit="count", source="case_reasons",
            labels={"fi": "Ohjauspolun syyt", "sv": "Orsaker till handledning", "en": "Reasons for guidance"},
            definitions={
                "fi": "Jaksolla avattujen ohjauspolkujen syyt; polulla voi olla useita syitä, joten syitä on enemmän kuin polkuja.",
                "sv": "Orsakerna till ärenden inledda under perioden; ett ärende kan ha flera orsaker, så orsakerna är fler än ärendena.",
                "en": "The reasons of the cases opened in the period; a case may have several, so reasons outnumber cases.",
            },
            aggregate=lambda s: _count(), higher_is_better=None,
        ),
        Metric(
            key="cases_closed", unit="count", source="case_closures",
            labels={"fi": "Päättyneet ohjauspolut", "sv": "Avslutade handledningsärenden", "en": "Guidance cases closed"},
            definitions={
                "fi": "Ohjauspolut, joissa koordinaatio siirtyi takaisin asiakkaalle tai toiselle ammattilaiselle jaksolla.",
                "sv": "Ärenden där koordineringen återgick till klienten eller en annan yrkesperson under perioden.",
                "en": "Cases whose coordination was handed back to the client or another professional in the period.",
            },
            aggregate=lambda s: _count(), higher_is_better=None,
        ),
        Metric(
            key="pathway_days_median", unit="days", source="case_closures",
            labels={"fi": "Aika ohjauspolulla, mediaani", "sv": "Tid i handledning, median", "en": "Time in the pathway, median"},
            definitions={
                "fi": "Vuorokaudet avaamisesta päättymiseen, mediaani jaksolla päättyneistä ohjauspoluista.",
                "sv": "Dygn från att ärendet inleddes till att det avslutades, median för ärenden avslutade under perioden.",
                "en": "Days from opening to closing, median over the cases closed in the period.",
            },
            aggregate=_median_days("pathway_days"), higher_is_better=None,
        ),
        Metric(
            key="visits_per_case_mean", unit="mean", source="case_closures",
            labels={"fi": "Ohjauskäynnit / polku", "sv": "Handledningsbesök / ärende", "en": "Guidance visits per case"},
            definitions={
                "fi": "Jaksolla päättyneiden ohjauspolkujen ohjauskäynnit (yhteydenotot, joiden case_id nimeää polun), "
                "keskiarvo 95 %:n välillä. Ohje: 1–5 käyntiä.",
                "sv": "Handledningsbesök (kontakter vars case_id anger ärendet) per ärende avslutat under perioden, medelvärde "
                "med 95 % intervall. Riktlinje: 1–5 besök.",
                "en": "Guidance visits (contacts whose case_id names the case) per case closed in the period, mean with a "
                "95 % interval. Guideline: 1–5 visits.",
            },
            aggregate=_mean_of("visits"), higher_is_better=None,
        ),
        Metric(
            key="visits_within_guideline_share", unit="share", source="case_closures",
            labels={"fi": "Käyntejä ohjeen mukaan (1–5)", "sv": "Besök enligt riktlinjen (1–5)", "en": "Visits within the guideline (1–5)"},
            definitions={
                "fi": "Jaksolla päättyneet ohjauspolut, joissa oli 1–5 ohjauskäyntiä / jaksolla päättyneet ohjauspolut.",
                "sv": "Ärenden avslutade under perioden med 1–5 handledningsbesök / ärenden avslutade under perioden.",
                "en": "Cases closed in the period with 1–5 guidance visits / cases closed in the period.",
            },
            aggregate=lambda s: _share(pl.col("within_guideline")),
        ),
        Metric(
            key="follow_ups_due", unit="count", source="follow_ups",
            labels={"fi": "Seurantakäynnit erääntyneet", "sv": "Uppföljningsbesök som förföll", "en": "Follow-ups due"},
            definitions={
                "fi": "Suunnitellut seurantakäynnit (yleensä 2–3 kk suunnitelmasta), joiden määräpäivä on jaksolla.",
                "sv": "Planerade uppföljningsbesök (oftast 2–3 mån efter planen) med förfallodag under perioden.",
                "en": "Planned follow-up visits (normally 2–3 months after the plan) due in the period.",
            },
            aggregate=lambda s: _count(), higher_is_better=None,
        ),
        Metric(
            key="follow_up_on_time_share", unit="share", source="follow_ups",
            labels={"fi": "Seuranta ajallaan", "sv": "Uppföljning i tid", "en": "Follow-up on time"},
            definitions={
                "fi": "Määräpäivään mennessä tehdyt seurantakäynnit / jaksolla erääntyneet, jotka on tehty tai joiden päivä on "
                "ohi. Tänään erääntyvää tekemätöntä ei vielä lasketa myöhästyneeksi.",
                "sv": "Uppföljningsbesök gjorda senast på förfallodagen / besök som förföll under perioden och är gjorda eller "
                "vars dag har passerat. Ett ogjort besök som förfaller i dag är inte försenat än.",
                "en": "Follow-ups done by their due day / follow-ups due in the period that are done or past their day. One "
                "due today and not done yet is not late yet.",
            },
            aggregate=_follow_up_on_time,
        ),
        Metric(
            key="follow_ups_overdue", unit="count", source="follow_ups",
            labels={"fi": "Seurannat myöhässä", "sv": "Försenade uppföljningar", "en": "Follow-ups overdue"},
            definitions={
                "fi": "Seurantakäynnit, joiden määräpäivä on ohi eikä käyntiä ole kirjattu (tilanne nyt).",
                "sv": "Uppföljningsbesök vars förfallodag har passerat utan registrerat besök (läget nu).",
                "en": "Follow-ups past their due day with no visit recorded (as things stand now).",
            },
            aggregate=lambda s: _count(), extra_filter=_overdue, higher_is_better=False,
        ),
        Metric(
            key="case_services_started", unit="count", source="referrals",
            labels={"fi": "Palvelut alkaneet ohjauspolulta", "sv": "Tjänster som började från handledningen", "en": "Services started from a case"},
            definitions={
                "fi": "Ohjauspolun käynnillä tehdyt ohjaukset eteenpäin, joissa palvelun alkaminen on kirjattu (ohjauspäivän mukaan).",
                "sv": "Hänvisningar vidare från ett handledningsbesök där tjänstens start är registrerad (enligt hänvisningsdagen).",
                "en": "Onward referrals made at a guidance visit whose service start is recorded (by the referral's day).",
            },
            aggregate=lambda s: _count(),
            extra_filter=lambda: _onward() & pl.col("from_case") & pl.col("days_to_start").is_not_null(),
            higher_is_better=None,
        ),
        *_outcome_metrics("whoqol_bref"),
        *_outcome_metrics("kykyviisari"),
        Metric(
            key="multi_service_clients", unit="count", source="clients",
            labels={"fi": "Monipalveluasiakkaat", "sv": "Flerserviceklienter", "en": "Multi-service clients"},
            definitions={
                "fi": "Asiakkaat, joilla on yhteydenottoja vähintään kolmella palvelulinjalla 12 kuukauden aikana jakson "
                "päättymiseen asti (raja ja ikkuna ovat asetuksia). Kunta ja ikäryhmä viimeisimmästä yhteydenotosta.",
                "sv": "Klienter med kontakter inom minst tre tjänstelinjer under de 12 månader som slutar med periodens sista "
                "dag (gränsen och fönstret är inställningar). Kommun och åldersgrupp enligt den senaste kontakten.",
                "en": "Clients with contacts in at least three service lines over the 12 months ending on the period's last "
                "day (the threshold and window are settings). Municipality and age band from the latest contact.",
            },
            aggregate=lambda s: _count(), extra_filter=lambda: pl.col("multi_service"), higher_is_better=None,
        ),
        Metric(
            key="multi_service_per_1000", unit="per_1000", source="clients",
            labels={"fi": "Monipalveluasiakkaat / 1 000 asukasta", "sv": "Flerserviceklienter / 1 000 invånare", "en": "Multi-service clients per 1,000 residents"},
            definitions={
                "fi": "Monipalveluasiakkaat tuhatta asukasta kohden (väkiluku kuten yhteydenotoissa / 1 000 asukasta).",
                "sv": "Flerserviceklienter per tusen invånare (invånarantal som för kontakter / 1 000 invånare).",
                "en": "Multi-service clients per thousand residents (population as for contacts per 1,000 residents).",
            },
            aggregate=lambda s: _count(), extra_filter=lambda: pl.col("multi_service"), higher_is_better=None,
        ),
        Metric(
            key="multi_service_contact_share", unit="share", source="clients",
            labels={"fi": "Monipalveluasiakkaiden osuus yhteydenotoista", "sv": "Flerserviceklienternas andel av kontakterna", "en": "Multi-service clients' share of contacts"},
            definitions={
                "fi": "Monipalveluasiakkaiden yhteydenotot / kaikkien asiakkaiden (asiakastunniste kirjattu) yhteydenotot "
                "samassa 12 kuukauden ikkunassa.",
                "sv": "Flerserviceklienternas kontakter / alla klienters kontakter (med klientnyckel) i samma 12-månadersfönster.",
                "en": "Contacts of multi-service clients / contacts of all clients (with a client key) in the same 12-month window.",
            },
            aggregate=_multi_service_contacts, higher_is_better=None,
        ),
        Metric(
            key="multi_service_in_process_share", unit="share", source="clients",
            labels={"fi": "Ohjattu monipalveluprosessiin", "sv": "Hänvisade till flerserviceprocessen", "en": "Directed to the multi-service process"},
            definitions={
                "fi": "Monipalveluasiakkaat, joille on avattu monipalveluprosessin ohjauspolku jakson loppuun mennessä / "
                "monipalveluasiakkaat.",
                "sv": "Flerserviceklienter med ett ärende i flerserviceprocessen inlett senast periodens sista dag / flerserviceklienter.",
                "en": "Multi-service clients with a multi-service process case opened by the period's end / multi-service clients.",
            },
            aggregate=lambda s: _share(pl.col("in_process")), extra_filter=lambda: pl.col("multi_service"),
        ),
    ]
}


def get_metric(key: str) -> Metric:
    try:
        return REGISTRY[key]
    except KeyError:
        raise MetricError(f"unknown metric {key!r}; known: {', '.join(REGISTRY)}") from None


class MetricName(StrEnum):
    """The metrics' names as a type: code names a metric as ``MetricName.CONTACTS`` (a str),
    so a typo fails at import, not as an empty chart. A test keeps it equal to the registry."""

    CONTACTS = "contacts"
    CONTACTS_PER_1000 = "contacts_per_1000"
    FIRST_CONTACT_RESOLUTION = "first_contact_resolution"
    VERIFIED_RESOLUTION = "verified_resolution"
    ELECTRONIC_SHARE = "electronic_share"
    FAILURE_DEMAND_SHARE = "failure_demand_share"
    SAME_DAY_CALLBACK_SHARE = "same_day_callback_share"
    QUEUE_MEDIAN_SECONDS = "queue_median_seconds"
    QUEUE_P90_SECONDS = "queue_p90_seconds"
    REFERRALS = "referrals"
    REFERRAL_SHARE = "referral_share"
    CONTACT_SHARE = "contact_share"
    NO_REFERRAL_NEEDED = "no_referral_needed"
    SERVICE_START_WITHIN_GUARANTEE = "service_start_within_guarantee"
    RECOMMEND_MEAN = "recommend_mean"
    NPS = "nps"
    FEEDBACK_ANSWERS = "feedback_answers"
    COMPLETE_CLIENT_ID = "complete_client_id"
    COMPLETE_RESOLUTION = "complete_resolution"
    COMPLETE_SERVICE_LINE = "complete_service_line"
    COMPLETE_INITIATOR = "complete_initiator"
    CASES_OPENED = "cases_opened"
    CASE_CONSENT_SHARE = "case_consent_share"
    CASE_PLAN_SHARE = "case_plan_share"
    DAYS_TO_PLAN_MEDIAN = "days_to_plan_median"
    CASE_REASONS = "case_reasons"
    CASES_CLOSED = "cases_closed"
    PATHWAY_DAYS_MEDIAN = "pathway_days_median"
    VISITS_PER_CASE_MEAN = "visits_per_case_mean"
    VISITS_WITHIN_GUIDELINE_SHARE = "visits_within_guideline_share"
    FOLLOW_UPS_DUE = "follow_ups_due"
    FOLLOW_UP_ON_TIME_SHARE = "follow_up_on_time_share"
    FOLLOW_UPS_OVERDUE = "follow_ups_overdue"
    CASE_SERVICES_STARTED = "case_services_started"
    WHOQOL_BREF_CHANGE_MEAN = "whoqol_bref_change_mean"
    WHOQOL_BREF_CHANGE_MEDIAN = "whoqol_bref_change_median"
    WHOQOL_BREF_CLIENTS = "whoqol_bref_clients"
    KYKYVIISARI_CHANGE_MEAN = "kykyviisari_change_mean"
    KYKYVIISARI_CHANGE_MEDIAN = "kykyviisari_change_median"
    KYKYVIISARI_CLIENTS = "kykyviisari_clients"
    MULTI_SERVICE_CLIENTS = "multi_service_clients"
    MULTI_SERVICE_PER_1000 = "multi_service_per_1000"
    MULTI_SERVICE_CONTACT_SHARE = "multi_service_contact_share"
    MULTI_SERVICE_IN_PROCESS_SHARE = "multi_service_in_process_share"
