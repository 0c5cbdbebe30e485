"""Seeded, deterministic sample data that a guidance manager would recognise.

Everything is drawn in vectors (numpy) and shaped in polars; no per-row Python. The
same seed, size, period end and regions give the same rows, to the byte.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import holidays
import numpy as np
import polars as pl

from data_access import codes

HELSINKI = "Europe/Helsinki"

# Source systems by county; Omaolo forms come through their own integration.
SOURCE_SYSTEMS = {
    "01": "lifecare-itauusimaa", "05": "pegasos-varha", "08": "lifecare-pirha",
    "11": "effica-eksote", "18": "lifecare-soite",
}
# Volume weights only, for municipalities whose population the reference file lacks.
# These never reach the population table: per-capita figures stay "—" for them.
FALLBACK_VOLUME_WEIGHT = 5_000

WEEKDAY_FACTOR = np.array([1.35, 1.15, 1.1, 1.05, 0.9, 0.22, 0.18])
MONTH_FACTOR = np.array([1.1, 1.05, 1.05, 1.0, 0.95, 0.8, 0.65, 0.85, 1.1, 1.1, 1.05, 0.9])
# Local hour-of-day profile; 03:00 is left empty so daylight-saving changes never produce
# nonexistent or ambiguous times in sample data.
HOUR_PROFILE = np.array(
    [0.3, 0.2, 0.15, 0, 0.15, 0.3, 0.8, 3.5, 9, 10, 9, 7.5, 7, 7.5, 7, 5.5, 3.5, 2.5, 2, 1.8, 1.5, 1.2, 0.8, 0.5]
)
ELECTRONIC_MIX = {"chat": 0.32, "chatbot": 0.18, "e_message": 0.25, "digital_form": 0.17, "video": 0.08}
OTHER_MIX = {"phone": 0.58, "callback": 0.24, "walk_in": 0.12, "home_visit": 0.03, "mobile": 0.03}
CHANNEL_FCR_LOGIT = {
    "phone": 0.05, "callback": -0.1, "chat": 0.25, "chatbot": -0.6, "e_message": -0.15,
    "digital_form": -0.35, "video": 0.1, "walk_in": 0.3, "home_visit": -0.5, "mobile": -0.3,
}
SERVICE_LINE_MIX = {
    "health": 0.46, "social": 0.12, "mental_health_substance": 0.1, "elderly": 0.1, "family": 0.06,
    "disability": 0.03, "employment": 0.03, "oral_health": 0.05, "rehabilitation": 0.03, "other": 0.02,
}
SERVICE_LINE_FCR_LOGIT = {
    "health": 0.15, "social": -0.2, "mental_health_substance": -0.45, "elderly": -0.25, "family": -0.1,
    "disability": -0.4, "employment": -0.3, "oral_health": 0.4, "rehabilitation": -0.1, "other": 0.0,
}
# Seed 003 first-visit sample: 70 % primary care, 12 % client or relative,
# 13 % social and employment services, 5 % other.
INITIATOR_MIX = {
    "primary_care": 0.70, "self": 0.08, "relative": 0.04, "social_services": 0.09,
    "employment_services": 0.04, "specialist_care": 0.02, "other": 0.03,
}
PROFESSIONAL_MIX = {
    "nurse": 0.55, "social_counsellor": 0.13, "social_worker": 0.08, "doctor": 0.06,
    "physiotherapist": 0.05, "psychologist": 0.03, "team": 0.08, "other": 0.02,
}
AGE_MIX = {"0-17": 0.16, "18-64": 0.52, "65-79": 0.2, "80+": 0.12}
DESTINATION_MIX = {
    "tk_doctor": 0.22, "tk_nurse": 0.17, "mental_health_substance": 0.1, "physio_rehab": 0.07,
    "tk_social_counsellor": 0.07, "other_primary_care": 0.06, "specialist_care": 0.04,
    "adult_social_services": 0.06, "disability_services": 0.02, "elderly_social_services": 0.05,
    "third_sector": 0.04, "kela": 0.03, "employment_services": 0.03, "sports_services": 0.015,
    "culture_services": 0.005, "other": 0.02,
}
SCORE_MIX = np.array([0.004, 0.002, 0.003, 0.004, 0.005, 0.01, 0.012, 0.03, 0.09, 0.2, 0.64])


# Seed 003's pathway: who identified the client (70 % primary care, 12 % the client or a
# relative, 13 % social and employment services, 5 % other), why, and the visits (1-5).
CASE_IDENTIFIED_MIX = {
    "primary_care": 0.70, "self": 0.08, "relative": 0.04, "social_services": 0.09,
    "employment_services": 0.04, "specialist_care": 0.02, "other": 0.03,
}
CASE_REASON_WEIGHTS = {
    "many_visits": 3.0, "many_services": 2.5, "multimorbidity": 2.0, "single_health_issue": 0.5,
    "mental_health_substance": 1.5, "suspected_risk": 0.6, "unclear_employment": 0.8, "cannot_use_services": 1.2,
    "loneliness_moving": 1.3, "family_problems": 0.6, "financial_problems": 1.0, "difficult_life_situation": 1.4,
}
# One case for about this many contacts (300 000 sample contacts: some 2 000 cases in two years).
CONTACTS_PER_CASE = 150
# The pilot's WHOQOL-BREF changes (N = 35): physical +6.2, psychological +8.6, social +6.7,
# environment +9.6 on the 0-100 scale.
WHOQOL_CHANGE = {"physical": 6.2, "psychological": 8.6, "social": 6.7, "environment": 9.6}


@dataclass(frozen=True)
class SampleData:
    contacts: pl.DataFrame
    referrals: pl.DataFrame
    feedback: pl.DataFrame
    units: pl.DataFrame
    cases: pl.DataFrame
    measurements: pl.DataFrame


def generate(
    municipalities: pl.DataFrame,
    *,
    contacts: int,
    days: int,
    seed: int = 2025,
    end: dt.datetime | None = None,
    regions: tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
) -> SampleData:
    """Generate sample facts for ``municipalities`` (columns municipality_code, region_code,
    population). ``end`` is the moment of the newest contact (default: now)."""
    rng = np.random.default_rng(seed)
    say = progress or (lambda _msg: None)
    end = (end or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    if regions:
        municipalities = municipalities.filter(pl.col("region_code").is_in(list(regions)))
    if municipalities.is_empty():
        raise ValueError("no municipalities for the requested regions")
    municipalities = municipalities.sort("municipality_code")
    say(f"drawing {contacts:,} contacts over {days} days")
    base = _draw_times_and_places(rng, municipalities, contacts=contacts, days=days, end=end)
    frame = _draw_attributes(rng, base, municipalities)
    say("drawing referrals, feedback and guidance cases")
    contacts_frame = frame.drop("t", "muni_effect")
    cases, visits = _draw_cases(rng, contacts_frame, end=end)
    contacts_frame = contacts_frame.join(visits, on=["source_system", "contact_id"], how="left")
    return SampleData(
        contacts=contacts_frame,
        referrals=_draw_referrals(rng, contacts_frame),
        feedback=_draw_feedback(rng, contacts_frame),
        units=_units(municipalities),
        cases=cases,
        measurements=_draw_measurements(rng, cases, end=end),
    )


def _choice(rng: np.random.Generator, mix: dict[str, float], size: int) -> np.ndarray:
    keys = np.array(list(mix))
    weights = np.array(list(mix.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=weights / weights.sum())]


def _draw_times_and_places(
    rng: np.random.Generator, municipalities: pl.DataFrame, *, contacts: int, days: int, end: dt.datetime
) -> pl.DataFrame:
    end_local = end.astimezone(dt.timezone(dt.timedelta(hours=2)))  # day grid only
    last_day = end_local.date()
    day_list = [last_day - dt.timedelta(days=days - 1 - i) for i in range(days)]
    fi_holidays = holidays.Finland(years=sorted({d.year for d in day_list}))
    day_weight = np.array(
        [
            WEEKDAY_FACTOR[d.weekday()] * MONTH_FACTOR[d.month - 1] * (0.25 if d in fi_holidays else 1.0)
            * (1 + 0.08 * i / max(days - 1, 1))
            for i, d in enumerate(day_list)
        ]
    )
    # Draw more than asked: the part of the last day after ``end`` is cut off (early in the
    # morning nearly all of it, a twentieth of 20 days), and the requested number is then
    # sampled from what remains. 2 % more gave too few before noon.
    last_share = min(float(day_weight[-1] / day_weight.sum()), 0.9)
    drawn = int(contacts / (1 - last_share) * 1.03) + 10
    day_idx = rng.choice(days, size=drawn, p=day_weight / day_weight.sum())
    hour = rng.choice(24, size=drawn, p=HOUR_PROFILE / HOUR_PROFILE.sum())
    second = rng.integers(0, 3600, size=drawn)
    volume = municipalities["population"].fill_null(FALLBACK_VOLUME_WEIGHT).to_numpy().astype(float)
    muni_idx = rng.choice(municipalities.height, size=drawn, p=volume / volume.sum())
    muni_effect = rng.normal(0, 0.3, size=municipalities.height)
    frame = pl.DataFrame(
        {
            "day": pl.Series(np.array(day_list, dtype="datetime64[D]")[day_idx]),
            "hour": hour.astype(np.int32),
            "second": second.astype(np.int32),
            "muni": muni_idx.astype(np.int32),
            "t": (day_idx / max(days - 1, 1)).astype(np.float64),
            "muni_effect": muni_effect[muni_idx],
        }
    ).with_columns(
        occurred_at=(
            pl.col("day").cast(pl.Datetime("us"))
            + pl.duration(hours=pl.col("hour"), seconds=pl.col("second"))
        ).dt.replace_time_zone(HELSINKI, ambiguous="earliest").dt.convert_time_zone("UTC"),
    )
    # The last day is generated only up to ``end``: "today so far".
    frame = frame.filter(pl.col("occurred_at") <= end)
    keep = np.sort(rng.choice(frame.height, size=min(contacts, frame.height), replace=False))
    frame = frame[keep].sort("occurred_at")
    codes_ = municipalities["municipality_code"].to_numpy()
    regions = municipalities["region_code"].to_numpy()
    return frame.with_columns(
        municipality_code=pl.Series(codes_[frame["muni"].to_numpy()]),
        region_code=pl.Series(regions[frame["muni"].to_numpy()]),
    )


def _draw_attributes(rng: np.random.Generator, frame: pl.DataFrame, municipalities: pl.DataFrame) -> pl.DataFrame:
    n = frame.height
    t = frame["t"].to_numpy()
    # The channel mix moves toward electronic channels: ~28 % to ~43 % over the period.
    p_electronic = np.clip(0.28 + 0.15 * t + 0.3 * frame["muni_effect"].to_numpy() * 0.2, 0.05, 0.9)
    electronic = rng.random(n) < p_electronic
    channel = np.where(electronic, _choice(rng, ELECTRONIC_MIX, n), _choice(rng, OTHER_MIX, n))
    service_line = _choice(rng, SERVICE_LINE_MIX, n)
    professional = _choice(rng, PROFESSIONAL_MIX, n)
    logit = (
        -0.35 + 0.45 * t + frame["muni_effect"].to_numpy()
        + np.vectorize(CHANNEL_FCR_LOGIT.get, otypes=[float])(channel)
        + np.vectorize(SERVICE_LINE_FCR_LOGIT.get, otypes=[float])(service_line)
    )
    resolved = rng.random(n) < 1 / (1 + np.exp(-logit))
    resolved_known = rng.random(n) > 0.05

    # Clients: a skewed draw from each municipality's pool, so a few clients recur often.
    volume = municipalities["population"].fill_null(FALLBACK_VOLUME_WEIGHT).to_numpy()
    pool = np.maximum((volume[frame["muni"].to_numpy()] * 0.12).astype(np.int64), 20)
    client_no = np.floor(pool * rng.random(n) ** 2.2).astype(np.int64)
    has_client = rng.random(n) > 0.07
    ages = np.array(list(AGE_MIX))
    age_cdf = np.cumsum(list(AGE_MIX.values()))
    client_age = ages[np.searchsorted(age_cdf, ((client_no * 2654435761) % 1000) / 1000, side="right").clip(0, 3)]
    age = np.where(has_client, client_age, _choice(rng, AGE_MIX, n))

    failure = rng.random(n) < np.clip(0.11 - 0.05 * t, 0.02, 0.2)
    unresolved_outcome = _choice(rng, {"referred": 0.62, "appointment_booked": 0.25, "callback_scheduled": 0.08, "other": 0.05}, n)
    resolved_outcome = _choice(rng, {"resolved": 0.8, "no_action_needed": 0.2}, n)
    outcome = np.where(failure, "failure_demand", np.where(resolved, resolved_outcome, unresolved_outcome))

    queue_median = np.select([channel == "phone", channel == "callback", channel == "chat"], [240.0, 30.0, 75.0], 0.0)
    queue = np.where(queue_median > 0, np.round(queue_median * (1.15 - 0.3 * t) * rng.lognormal(0, 0.8, n)), np.nan)

    is_callback = channel == "callback"
    same_day_p = 0.78 + 0.2 * t
    delay_minutes = np.where(rng.random(n) < same_day_p, rng.exponential(90, n), 60 * (24 + rng.exponential(20, n)))
    region = frame["region_code"].to_numpy()
    source = np.where(channel == "digital_form", "omaolo", np.vectorize(SOURCE_SYSTEMS.get)(region))

    frame = frame.with_columns(
        source_system=pl.Series(source),
        contact_id=pl.format("S{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(8)),
        channel=pl.Series(channel),
        resolved_first_contact=pl.when(pl.Series(resolved_known)).then(pl.Series(resolved)),
        client_id=pl.when(pl.Series(has_client)).then(
            pl.format("{}-{}", pl.col("municipality_code"), pl.Series(client_no).cast(pl.String).str.zfill(6))
        ),
        unit_code=pl.format("{}-{}", pl.col("municipality_code"), (pl.col("second") % _unit_count_expr(municipalities) + 1)),
        initiator=pl.Series(_choice(rng, INITIATOR_MIX, n)),
        service_line=pl.Series(service_line),
        reason=pl.Series(_choice(rng, {r: 1.0 for r in codes.REASONS} | {"single_health_issue": 4.0}, n)),
        professional_group=pl.Series(professional),
        age_band=pl.Series(age),
        outcome=pl.Series(outcome),
        queue_seconds=pl.Series(queue).cast(pl.Int32, strict=False),
        callback_requested_at=pl.when(pl.Series(is_callback)).then(pl.col("occurred_at")),
        callback_done_at=pl.when(pl.Series(is_callback)).then(
            pl.col("occurred_at") + pl.duration(minutes=pl.Series(delay_minutes).cast(pl.Int64))  # type: ignore[arg-type]  # a Series works; the stubs say Expr
        ),
    ).with_columns(
        contact_type=pl.col("channel").replace_strict(codes.CONTACT_TYPE_BY_CHANNEL),
    )
    # A callback done in the future has not happened yet.
    now = frame["occurred_at"].max()
    frame = frame.with_columns(
        callback_done_at=pl.when(pl.col("callback_done_at") <= now).then(pl.col("callback_done_at"))
    )
    return frame.select(
        "source_system", "contact_id", "occurred_at", "municipality_code", "channel",
        "resolved_first_contact", "client_id", "unit_code", "contact_type", "initiator",
        "service_line", "reason", "professional_group", "age_band", "outcome", "queue_seconds",
        "callback_requested_at", "callback_done_at", "t", "muni_effect",
    )


def _unit_count_expr(municipalities: pl.DataFrame) -> pl.Expr:
    counts = {
        code: _unit_count(pop)
        for code, pop in municipalities.select("municipality_code", "population").iter_rows()
    }
    return pl.col("municipality_code").replace_strict(counts, return_dtype=pl.Int32)


def _unit_count(population: int | None) -> int:
    return max(1, min(4, math.ceil((population or FALLBACK_VOLUME_WEIGHT) / 40_000)))


def _units(municipalities: pl.DataFrame) -> pl.DataFrame:
    rows = [
        (f"{code}-{i}", f"{name} {i}", code)
        for code, name, pop in municipalities.select("municipality_code", "name_fi", "population").iter_rows()
        for i in range(1, _unit_count(pop) + 1)
    ]
    return pl.DataFrame(rows, schema=["code", "name", "municipality_code"], orient="row")


def _draw_referrals(rng: np.random.Generator, contacts: pl.DataFrame) -> pl.DataFrame:
    outcome = contacts["outcome"].to_numpy()
    p = np.select([outcome == "referred", outcome == "appointment_booked", outcome == "resolved"], [1.0, 0.35, 0.25], 0.0)
    picked = contacts.filter(pl.Series(rng.random(contacts.height) < p))
    n = picked.height
    referred = picked["outcome"].to_numpy() != "resolved"
    destination = np.where(referred, _choice(rng, DESTINATION_MIX, n), codes.NO_REFERRAL_NEEDED)
    status_draw = rng.random(n)
    status = np.where(status_draw < 0.8, "started", np.where(status_draw < 0.92, "planned", "cancelled"))
    start_days = np.round(rng.lognormal(1.9, 0.9, n), 1)
    frame = picked.select("source_system", "contact_id", "occurred_at").with_columns(
        referral_id=pl.format("R{}", pl.col("contact_id")),
        referred_at=pl.col("occurred_at") + pl.duration(minutes=pl.Series(rng.integers(2, 40, n))),  # type: ignore[arg-type]
        destination=pl.Series(destination),
        status=pl.when(pl.Series(referred)).then(pl.Series(status)),
        start_days=pl.Series(start_days),
    )
    latest = contacts["occurred_at"].max()
    frame = frame.with_columns(
        service_started_at=pl.when(pl.col("status") == "started").then(
            pl.col("referred_at") + pl.duration(minutes=(pl.col("start_days") * 1440).cast(pl.Int64))
        )
    ).with_columns(
        # A start in the future has not happened yet: the referral is still planned.
        status=pl.when(pl.col("service_started_at") > latest).then(pl.lit("planned")).otherwise(pl.col("status")),
        service_started_at=pl.when(pl.col("service_started_at") <= latest).then(pl.col("service_started_at")),
    )
    return frame.select("source_system", "referral_id", "contact_id", "referred_at", "destination", "service_started_at", "status")


def _draw_feedback(rng: np.random.Generator, contacts: pl.DataFrame) -> pl.DataFrame:
    picked = contacts.filter(pl.Series(rng.random(contacts.height) < 0.05))
    n = picked.height
    return picked.select(
        "source_system", "contact_id", "channel", "municipality_code",
        feedback_id=pl.format("F{}", pl.col("contact_id")),
        answered_at=pl.col("occurred_at") + pl.duration(minutes=pl.Series(rng.integers(5, 600, n))),  # type: ignore[arg-type]
        recommend_score=pl.Series(rng.choice(11, size=n, p=SCORE_MIX / SCORE_MIX.sum()), dtype=pl.Int32),
    ).filter(pl.col("answered_at") <= contacts["occurred_at"].max())


def _draw_cases(rng: np.random.Generator, contacts: pl.DataFrame, *, end: dt.datetime) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Guidance cases opened at a client's contact, and the contacts that are their visits
    (``source_system``, ``contact_id``, ``case_id``). Some stall: no consent (15 %), no plan
    (a further 15 %), a follow-up missed or late; times that lie after ``end`` have not
    happened (a follow-up may still be due)."""
    empty_visits = pl.DataFrame(schema={"source_system": pl.String, "contact_id": pl.String, "case_id": pl.String})
    known = contacts.filter(pl.col("client_id").is_not_null() & (pl.col("source_system") != "omaolo"))
    # Clients who use several service lines are likelier to be taken into guidance.
    clients = known.group_by("client_id").agg(
        pl.col("service_line").n_unique().alias("lines"), pl.len().alias("contacts"),
    ).sort("client_id")
    n = min(max(contacts.height // CONTACTS_PER_CASE, 0), clients.height)
    if n == 0:
        return pl.DataFrame(schema=CASE_SCHEMA), empty_visits
    weight = (clients["lines"].to_numpy() ** 2).astype(float)
    chosen = clients[np.sort(rng.choice(clients.height, size=n, replace=False, p=weight / weight.sum()))]
    # Opened at one of the client's contacts (the one that identified the need).
    candidates = known.join(chosen.select("client_id", "lines"), on="client_id", maintain_order="left")
    candidates = candidates.with_columns(pl.Series("draw", rng.random(candidates.height)))
    opening = candidates.sort("draw").group_by("client_id", maintain_order=True).first().sort("client_id")
    m = opening.height
    multi = (opening["lines"].to_numpy() >= 3) & (rng.random(m) < 0.5)
    process = np.where(multi, "multi_service", np.where(rng.random(m) < 0.96, "personal_guidance", "other"))
    reasons = [
        "|".join(sorted(set(_choice(rng, CASE_REASON_WEIGHTS, int(k)).tolist())))
        for k in rng.integers(1, 4, size=m)
    ]
    consent = rng.random(m) < 0.85
    plan = consent & (rng.random(m) < 0.85)
    days_to_plan = rng.lognormal(2.1, 0.6, m)
    follow_due_days = days_to_plan + rng.uniform(60, 90, m)
    follow = rng.random(m)
    follow_done_days = np.where(follow < 0.75, follow_due_days - rng.uniform(0, 14, m), np.where(follow < 0.87, follow_due_days + rng.uniform(1, 25, m), np.nan))
    closed_days = np.where(
        ~consent & (rng.random(m) < 0.6), rng.uniform(1, 20, m),  # declined: handed back early
        np.where(np.isfinite(follow_done_days) & (rng.random(m) < 0.85), follow_done_days + rng.uniform(0, 30, m), np.nan),
    )

    def after(days: np.ndarray, keep: np.ndarray) -> pl.Expr:
        minutes = np.where(keep & np.isfinite(days), np.round(days * 1440), np.nan)
        return pl.col("occurred_at") + pl.duration(minutes=pl.Series(minutes, nan_to_null=True).cast(pl.Int64))  # type: ignore[arg-type]  # a Series works

    cases = opening.select(
        "source_system", "client_id", "municipality_code", "occurred_at", "contact_id",
        case_id=pl.format("G{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(6)),
        process=pl.Series(process),
        identified_by=pl.Series(_choice(rng, CASE_IDENTIFIED_MIX, m)),
        reasons=pl.Series(reasons),
        consent_at=after(rng.uniform(0, 3, m), consent),
        plan_at=after(days_to_plan, plan),
        follow_up_due=after(follow_due_days, plan),
        follow_up_at=after(follow_done_days, plan),
        closed_at=after(closed_days, np.ones(m, dtype=bool)),
        close_reason=pl.when(pl.Series(np.isfinite(closed_days))).then(pl.lit("coordination handed back")),
    ).rename({"occurred_at": "opened_at"})
    # What lies after the newest contact has not happened yet (a follow-up may still be due).
    cases = cases.with_columns(
        *(pl.when(pl.col(c) <= end).then(pl.col(c)).alias(c) for c in ("consent_at", "plan_at", "follow_up_at", "closed_at")),
        pl.when(pl.col("follow_up_due") <= end + dt.timedelta(days=2 * 365)).then(pl.col("follow_up_due")).alias("follow_up_due"),
    ).with_columns(
        # A step that did not happen leaves the later ones undone too.
        pl.when(pl.col("plan_at").is_not_null()).then(pl.col("follow_up_due")).alias("follow_up_due"),
        pl.when(pl.col("plan_at").is_not_null()).then(pl.col("follow_up_at")).alias("follow_up_at"),
        pl.when(pl.col("closed_at").is_null()).then(None).otherwise(pl.col("close_reason")).alias("close_reason"),
    )
    # Visits: the client's contacts of the case's source from its opening, 1-5 mostly (a few more).
    wanted = pl.Series(np.clip(rng.poisson(2.6, m) + 1, 1, 9))
    visits = (
        known.select("source_system", "contact_id", "client_id", "occurred_at")
        .join(
            cases.select("source_system", "client_id", "case_id", "opened_at", "closed_at", wanted.alias("wanted")),
            on=["source_system", "client_id"], maintain_order="left",
        )
        .filter((pl.col("occurred_at") >= pl.col("opened_at")) & (pl.col("closed_at").is_null() | (pl.col("occurred_at") <= pl.col("closed_at"))))
        .sort("occurred_at", "contact_id")
        .with_columns(pl.int_range(pl.len()).over("case_id").alias("nth"))
        .filter(pl.col("nth") < pl.col("wanted"))
        .select("source_system", "contact_id", "case_id")
        .unique(subset=["source_system", "contact_id"], keep="first", maintain_order=True)
    )
    return cases.select(list(CASE_SCHEMA)), visits


CASE_SCHEMA: dict[str, Any] = {
    "source_system": pl.String(), "case_id": pl.String(), "client_id": pl.String(), "municipality_code": pl.String(),
    "opened_at": pl.Datetime("us", "UTC"), "process": pl.String, "identified_by": pl.String, "reasons": pl.String,
    "consent_at": pl.Datetime("us", "UTC"), "plan_at": pl.Datetime("us", "UTC"), "follow_up_due": pl.Datetime("us", "UTC"),
    "follow_up_at": pl.Datetime("us", "UTC"), "closed_at": pl.Datetime("us", "UTC"), "close_reason": pl.String,
}


def _draw_measurements(rng: np.random.Generator, cases: pl.DataFrame, *, end: dt.datetime) -> pl.DataFrame:
    """WHOQOL-BREF (personal guidance) or Kykyviisari (multi-service) at the plan and, for most
    closed cases, at the close; a client measured only once has no change to show."""
    measured = cases.filter(pl.col("plan_at").is_not_null() & (pl.col("process") != "other"))
    if measured.is_empty():
        return pl.DataFrame(schema=MEASUREMENT_SCHEMA)
    m = measured.height
    measured = measured.with_columns(
        pl.Series("has_start", rng.random(m) < 0.7),
        pl.Series("has_end", rng.random(m) < 0.75),
    )
    rows = []
    for instrument, process, domains, low, high, spread in (
        ("whoqol_bref", "personal_guidance", codes.DOMAINS_BY_INSTRUMENT["whoqol_bref"], 0.0, 100.0, 16.0),
        ("kykyviisari", "multi_service", codes.DOMAINS_BY_INSTRUMENT["kykyviisari"], 0.0, 10.0, 1.8),
    ):
        part = measured.filter((pl.col("process") == process) & pl.col("has_start"))
        k = part.height
        if not k:
            continue
        for domain in domains:
            start = np.clip(rng.normal(0.55 * high, spread, k), low, high)
            mean_change = WHOQOL_CHANGE[domain] if instrument == "whoqol_bref" else 0.8
            change = rng.normal(mean_change, spread * 0.75, k)
            scale = 1 if instrument == "whoqol_bref" else 10
            rows.append(part.select(
                "source_system", "case_id", pl.lit(instrument).alias("instrument"), pl.lit(domain).alias("domain"),
                pl.col("plan_at").alias("start_at"), pl.col("closed_at").alias("end_at"), "has_end",
                pl.Series("start", np.round(start * scale) / scale),
                pl.Series("end", np.round(np.clip(start + change, low, high) * scale) / scale),
            ))
    if not rows:
        return pl.DataFrame(schema=MEASUREMENT_SCHEMA)
    wide = pl.concat(rows)
    starts = wide.select("source_system", "case_id", "instrument", "domain", measured_at="start_at", phase=pl.lit("start"), score="start")
    ends = wide.filter(pl.col("has_end") & pl.col("end_at").is_not_null() & (pl.col("end_at") <= end)).select(
        "source_system", "case_id", "instrument", "domain", measured_at="end_at", phase=pl.lit("end"), score="end",
    )
    both = pl.concat([starts, ends]).sort("measured_at", "case_id", "instrument", "domain")
    return both.with_columns(
        measurement_id=pl.format("M{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(7)),
    ).select(list(MEASUREMENT_SCHEMA))


MEASUREMENT_SCHEMA: dict[str, Any] = {
    "source_system": pl.String, "measurement_id": pl.String, "case_id": pl.String, "measured_at": pl.Datetime("us", "UTC"),
    "instrument": pl.String, "phase": pl.String, "domain": pl.String, "score": pl.Float64,
}
