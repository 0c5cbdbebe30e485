"""Every metric the product shows, defined once: labels and plain-language definitions in
three languages, unit, target setting and the aggregation that computes it."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

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
    """Promoters less detractors, in points; its 95 % half-width from the variance of each
    answer scored +1, 0 or -1: (p+ + p-) - (p+ - p-)^2 (normal approximation)."""
    score = pl.col("recommend_score")
    n = score.count().cast(pl.Float64)
    promoters, detractors = (score >= 9).sum() / n, (score <= 6).sum() / n
    variance = promoters + detractors - (promoters - detractors) ** 2
    return [
        ((promoters - detractors) * 100).alias("value"),
        pl.lit(None, pl.Float64).alias("numerator"),
        n.alias("denominator"),
        (Z95 * (variance / n).sqrt() * 100).alias("half"),
    ]


def _mean_score(_settings: Settings) -> list[pl.Expr]:
    """The mean score with its 95 % half-width (normal approximation, the answers' own spread)."""
    score = pl.col("recommend_score")
    n = score.count().cast(pl.Float64)
    return [
        score.mean().alias("value"),
        pl.lit(None, pl.Float64).alias("numerator"),
        n.alias("denominator"),
        (Z95 * score.std() / n.sqrt()).alias("half"),
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


def _same_day_callback(_settings: Settings) -> list[pl.Expr]:
    """A callback not yet done counts as missed once its day is over; on its own day it is
    still due and not judged (today so far would otherwise read red every morning)."""
    today = local_now().date()
    open_today = pl.col("callback_open") & (pl.col("day") >= today)
    return _share(pl.when(open_today).then(None).otherwise(pl.col("callback_same_day")))


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
                "fi": "Asiakaspalautteen suositteluhalukkuuden keskiarvo asteikolla 0–10.",
                "sv": "Medelvärde av rekommendationsviljan i kundrespons på skalan 0–10.",
                "en": "Mean of the client feedback recommendation score on a 0–10 scale.",
            },
            aggregate=_mean_score,
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
