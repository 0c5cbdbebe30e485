"""Validation of input rows against the data contract, in vectors.

Each field gives a typed value and, where the text is not acceptable, a reason
("channel: unknown value 'faksi'"). A row with any reason goes to quarantine with all
of them; the others continue typed. Nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import polars as pl
import sqlalchemy as sa

from data_access import codes
from data_access.ingest.profiles import Profile
from data_access.models import Contact, Feedback, GuidanceCase, Measurement, Referral, table_of

HELSINKI = "Europe/Helsinki"
Parse = Literal[
    "text", "code", "upper_code", "code_set", "municipality", "bool", "int", "score", "timestamp", "age", "number",
]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    parse: Parse = "text"
    required: bool = False
    max_length: int = 100

    @property
    def allowed(self) -> tuple[str, ...]:
        """The code list of a coded field (codes.BY_COLUMN, or the list it shares, codes.LIST_OF)."""
        return codes.BY_COLUMN.get(codes.LIST_OF.get(self.name, self.name), ())


@dataclass(frozen=True)
class KindSpec:
    kind: str
    table: sa.Table
    key: str
    fields: tuple[FieldSpec, ...]
    # Rules across fields, over the typed values (a case closed before it opened).
    checks: tuple[Callable[[dict[str, pl.Expr]], Reason], ...] = ()

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def stored(self) -> list[str]:
        """Columns written to the table (age is banded, never stored)."""
        return [f.name for f in self.fields if f.name != "age"]


# Bidirectional overrides and isolates make "txt.exe" read as "exe.txt" on screen: removed.
BIDI_CONTROLS = "[\u202a-\u202e\u2066-\u2069]"


def _text(name: str) -> pl.Expr:
    raw = pl.col(name).str.replace_all(BIDI_CONTROLS, "").str.strip_chars()
    return pl.when(raw == "").then(None).otherwise(raw)


def _mapped(name: str, profile: Profile) -> pl.Expr:
    raw = _text(name)
    mapping = profile.values.get(name)
    if not mapping:
        return raw
    low = raw.str.to_lowercase()
    return pl.when(low.is_in(list(mapping))).then(low.replace_strict(mapping, default=None)).otherwise(raw)


@dataclass(frozen=True)
class Reason:
    """Why a value is refused: a condition, and the text (formatted only for refused rows)."""

    condition: pl.Expr
    text: pl.Expr


def _reason(condition: pl.Expr, name: str, message: str, *, show: pl.Expr | None = None) -> Reason:
    # A NUL in a shown value is written visibly: PostgreSQL stores no NUL in text.
    if show is not None:
        show = show.str.replace_all("\x00", "\\0", literal=True).str.replace_all(BIDI_CONTROLS, "")
    text = pl.lit(f"{name}: {message}") if show is None else pl.format(f"{name}: {message} '{{}}'", show)
    return Reason(condition.fill_null(False), text)


def _not_before(values: dict[str, pl.Expr], name: str, start: str) -> Reason:
    """A case's later times do not come before it was opened."""
    return _reason(values[name] < values[start], name, f"before {start}")


def _domain_of_instrument(values: dict[str, pl.Expr]) -> Reason:
    """A WHOQOL-BREF score is for one of its four domains, a Kykyviisari score for one of its
    six; an 'other' instrument may name any domain."""
    instrument, domain = values["instrument"], values["domain"]
    wrong = pl.lit(False)
    for name, domains in codes.DOMAINS_BY_INSTRUMENT.items():
        wrong = wrong | ((instrument == name) & ~domain.is_in(list(domains)))
    return _reason(wrong, "domain", "not a domain of the instrument", show=pl.format("{} / {}", instrument, domain))


SPECS = {
    "contacts": KindSpec(
        "contacts", table_of(Contact), "contact_id",
        (
            FieldSpec("source_system", required=True),
            FieldSpec("contact_id", required=True),
            FieldSpec("occurred_at", "timestamp", required=True),
            FieldSpec("municipality_code", "municipality", required=True),
            FieldSpec("channel", "code", required=True),
            FieldSpec("resolved_first_contact", "bool"),
            FieldSpec("client_id"),
            FieldSpec("unit_code"),
            FieldSpec("contact_type", "upper_code"),
            FieldSpec("initiator", "code"),
            FieldSpec("service_line", "code"),
            FieldSpec("reason", "code"),
            FieldSpec("professional_group", "code"),
            FieldSpec("age_band", "code"),
            FieldSpec("age", "age"),
            FieldSpec("outcome", "code"),
            FieldSpec("queue_seconds", "int"),
            FieldSpec("callback_requested_at", "timestamp"),
            FieldSpec("callback_done_at", "timestamp"),
            FieldSpec("case_id"),
            FieldSpec("updated_at", "timestamp"),
        ),
    ),
    "referrals": KindSpec(
        "referrals", table_of(Referral), "referral_id",
        (
            FieldSpec("source_system", required=True),
            FieldSpec("referral_id", required=True),
            FieldSpec("contact_id", required=True),
            FieldSpec("referred_at", "timestamp", required=True),
            FieldSpec("destination", "code", required=True),
            FieldSpec("service_started_at", "timestamp"),
            FieldSpec("status", "code"),
            FieldSpec("updated_at", "timestamp"),
        ),
    ),
    "feedback": KindSpec(
        "feedback", table_of(Feedback), "feedback_id",
        (
            FieldSpec("source_system", required=True),
            FieldSpec("feedback_id", required=True),
            FieldSpec("contact_id"),
            FieldSpec("answered_at", "timestamp", required=True),
            FieldSpec("channel", "code"),
            FieldSpec("municipality_code", "municipality", required=True),
            FieldSpec("recommend_score", "score", required=True),
            FieldSpec("updated_at", "timestamp"),
        ),
    ),
    "cases": KindSpec(
        "cases", table_of(GuidanceCase), "case_id",
        (
            FieldSpec("source_system", required=True),
            FieldSpec("case_id", required=True),
            FieldSpec("client_id", required=True),
            FieldSpec("municipality_code", "municipality", required=True),
            FieldSpec("opened_at", "timestamp", required=True),
            FieldSpec("process", "code"),
            FieldSpec("identified_by", "code"),
            FieldSpec("reasons", "code_set", max_length=1000),
            FieldSpec("consent_at", "timestamp"),
            FieldSpec("plan_at", "timestamp"),
            FieldSpec("follow_up_due", "timestamp"),
            FieldSpec("follow_up_at", "timestamp"),
            FieldSpec("closed_at", "timestamp"),
            FieldSpec("close_reason", max_length=200),
            FieldSpec("updated_at", "timestamp"),
        ),
        checks=tuple(
            partial(_not_before, name=name, start="opened_at")
            for name in ("consent_at", "plan_at", "follow_up_due", "follow_up_at", "closed_at")
        ),
    ),
    "measurements": KindSpec(
        "measurements", table_of(Measurement), "measurement_id",
        (
            FieldSpec("source_system", required=True),
            FieldSpec("measurement_id", required=True),
            FieldSpec("case_id", required=True),
            FieldSpec("measured_at", "timestamp", required=True),
            FieldSpec("instrument", "code", required=True),
            FieldSpec("phase", "code", required=True),
            FieldSpec("domain", "code", required=True),
            FieldSpec("score", "number", required=True),
            FieldSpec("updated_at", "timestamp"),
        ),
        checks=(_domain_of_instrument,),
    ),
}


def guess_kind(columns: list[str]) -> str | None:
    names = set(columns)
    if "referral_id" in names:
        return "referrals"
    if "feedback_id" in names or "recommend_score" in names:
        return "feedback"
    if "measurement_id" in names or "instrument" in names:
        return "measurements"
    if "opened_at" in names and "case_id" in names:
        return "cases"
    if "contact_id" in names and ("channel" in names or "occurred_at" in names):
        return "contacts"
    return None


def _timestamp(name: str, profile: Profile) -> tuple[pl.Expr, list[Reason]]:
    """ISO 8601 text is normalised once (space for T, missing seconds, Z) and parsed once;
    the profile's own formats are tried only where that fails. Each format attempt over a
    million rows costs about a second, so this order matters."""
    raw = _text(name)
    iso = (
        raw.str.replace(" ", "T", literal=True)
        .str.replace(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d)($|[-+Z])", "${1}:00${2}")
        .str.replace(r"Z$", "+00:00")
    )
    offset = iso.str.contains(r"[+-]\d\d:?\d\d$")
    aware = iso.str.to_datetime(_ISO_FORMAT, time_zone="UTC", strict=False, cache=False, time_unit="us")
    local = iso.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, cache=False, time_unit="us")
    if profile.datetime_formats:
        local = pl.coalesce(local, *(raw.str.to_datetime(f, strict=False, cache=False, time_unit="us") for f in profile.datetime_formats))
    # A local time that does not exist (spring forward) or exists twice (fall back) is not guessed.
    placed = local.dt.replace_time_zone(HELSINKI, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")
    value = pl.when(offset).then(aware).otherwise(placed)
    reasons = [
        _reason(raw.is_not_null() & offset & aware.is_null(), name, "not a time", show=raw),
        _reason(raw.is_not_null() & ~offset & local.is_null(), name, "not a time", show=raw),
        _reason(
            ~offset & local.is_not_null() & placed.is_null(), name,
            "local time does not exist or is ambiguous at the daylight-saving change", show=raw,
        ),
    ]
    return value, reasons


@dataclass(frozen=True)
class TimeWindow:
    """The times a record may carry (UTC): outside it a value is an export's default or a
    typo, and stored it would break pages (9999-12-31) or hide a quiet source (2099)."""

    earliest: dt.datetime
    latest: dt.datetime
    # A planned service start may lie ahead; two years is far enough and breaks nothing.
    latest_planned: dt.datetime

    @classmethod
    def around(cls, now: dt.datetime, *, earliest: dt.date, future_minutes: int) -> TimeWindow:
        return cls(
            earliest=dt.datetime.combine(earliest, dt.time(), tzinfo=dt.UTC),
            latest=now + dt.timedelta(minutes=future_minutes),
            latest_planned=now + dt.timedelta(days=2 * 366),
        )

    def allows(self, name: str, value: pl.Expr) -> pl.Expr:
        latest = self.latest_planned if name in PLANNED_TIMES else self.latest
        return value.is_between(pl.lit(self.earliest, pl.Datetime("us", "UTC")), pl.lit(latest, pl.Datetime("us", "UTC")))


PLANNED_TIMES = {"service_started_at", "follow_up_due"}
OUTSIDE_WINDOW = "outside the plausible time window"


# The whole numbers a field may hold, by its parse.
WHOLE_NUMBER_RANGES = {"int": (0, 2**31 - 1), "score": (0, 10), "age": (0, 130)}
# An outcome measurement's score (WHOQOL-BREF domains 0-100 or 4-20, Kykyviisari 0-10).
NUMBER_RANGE = (0.0, 100.0)
# An offset-aware ISO 8601 time with seconds: the form the contract asks for.
_CANONICAL_TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?[+-]\d\d:\d\d$"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%z"


def strict_field(
    spec: FieldSpec, profile: Profile, *, municipalities: list[str], window: TimeWindow | None = None
) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, acceptable) for a value already in the contract's own form: a code as
    it is spelled in the code list, an offset-aware ISO time, a plain whole number. Where
    this accepts a value, ``parse_field`` gives the same typed value and no reason (a
    property test holds it to that); everything else takes ``parse_field``'s longer road."""
    name = spec.name
    # Untrimmed: a value with spaces around it is not in the contract's form and goes the long way.
    raw = _text(name) if spec.parse == "text" else pl.col(name)
    present = raw.is_not_null()
    if spec.parse == "text":
        value, ok = raw, raw.str.len_chars() <= spec.max_length
    elif spec.parse in ("code", "upper_code", "bool"):
        upper = spec.parse == "upper_code"
        allowed = ("true", "false") if spec.parse == "bool" else spec.allowed
        mapping = profile.values.get(name, {})
        same: Callable[[str], str] = str.upper if upper else str.lower
        remapped = {key for key, target in mapping.items() if same(target) != same(key)}
        direct = [code for code in allowed if code.lower() not in remapped]
        if upper:  # spelled exactly as in the code list
            value, ok = raw, raw.is_in(direct)
        else:
            value = raw.str.to_lowercase()
            ok = value.is_in(direct)
        if spec.parse == "bool":
            value = value == "true"
    elif spec.parse == "code_set":
        one = "(" + "|".join(spec.allowed) + ")"
        value, ok = raw, raw.str.contains(rf"^{one}(\|{one})*$") & (raw.str.len_chars() <= spec.max_length)
    elif spec.parse == "number":
        value = raw.cast(pl.Float64, strict=False)
        ok = raw.str.contains(r"^\d+(\.\d+)?$") & value.is_between(*NUMBER_RANGE)
    elif spec.parse == "municipality":
        value, ok = raw, raw.is_in(municipalities)
    elif spec.parse in ("int", "score", "age"):
        low, high = WHOLE_NUMBER_RANGES[spec.parse]
        value = raw.cast(pl.Int64, strict=False)
        ok = value.is_between(low, high)
    elif spec.parse == "timestamp":
        value = raw.str.to_datetime(_ISO_FORMAT, time_zone="UTC", strict=False, cache=False, time_unit="us")
        ok = raw.str.contains(_CANONICAL_TIME) & value.is_not_null()
        if window is not None:
            ok = ok & window.allows(name, value)
    else:  # pragma: no cover - the specs above are the only callers
        raise ValueError(spec.parse)
    # A NUL character: PostgreSQL refuses it in text, and SQLite stored it and then failed
    # the reload. Such a value goes the long way, to quarantine.
    ok = ok & ~pl.col(name).str.contains("\x00", literal=True).fill_null(False)
    acceptable = (present & ok.fill_null(False)) if spec.required else (~present | ok.fill_null(False))
    return value.alias(name), acceptable


def parse_field(
    spec: FieldSpec, profile: Profile, *, municipalities: list[str], window: TimeWindow | None = None
) -> tuple[pl.Expr, list[Reason]]:
    """(typed value, reason expressions) for one field."""
    name = spec.name
    raw = _text(name)
    reasons: list[Reason] = [_reason(pl.col(name).str.contains("\x00", literal=True), name, "contains a NUL character")]
    if spec.required:
        reasons.append(_reason(raw.is_null(), name, "missing required value"))
    if spec.parse == "text":
        value = raw
        reasons.append(_reason(raw.str.len_chars() > spec.max_length, name, f"longer than {spec.max_length} characters"))
    elif spec.parse in ("code", "upper_code"):
        mapped = _mapped(name, profile)
        value = mapped.str.to_uppercase() if spec.parse == "upper_code" else mapped.str.to_lowercase()
        reasons.append(_reason(value.is_not_null() & ~value.is_in(list(spec.allowed)), name, "unknown value", show=raw))
    elif spec.parse == "code_set":
        # Several codes separated by '|', each as a code (the profile's spellings apply to each).
        mapping = profile.values.get(name) or profile.values.get(codes.LIST_OF.get(name, name), {})
        items = raw.str.split("|").list.eval(pl.element().str.strip_chars().str.to_lowercase()).list.eval(
            pl.element().filter(pl.element() != "")
        )
        if mapping:
            items = items.list.eval(pl.element().replace(mapping))
        unknown = items.list.eval(pl.element().filter(~pl.element().is_in(list(spec.allowed)))).list.join(", ")
        value = pl.when(items.list.len() > 0).then(items.list.join("|"))
        reasons.append(_reason(unknown.is_not_null() & (unknown != ""), name, "unknown value", show=unknown))
        reasons.append(_reason(raw.str.len_chars() > spec.max_length, name, f"longer than {spec.max_length} characters"))
    elif spec.parse == "number":
        number = raw.str.replace(",", ".", literal=True).str.replace_all("[\u00a0 ]", "").cast(pl.Float64, strict=False)
        ok = number.is_not_null() & number.is_between(*NUMBER_RANGE)
        value = pl.when(ok).then(number)
        low, high = NUMBER_RANGE
        reasons.append(_reason(raw.is_not_null() & ~ok, name, f"not a number from {low:g} to {high:g}", show=raw))
    elif spec.parse == "municipality":
        digits = raw.str.replace(r"\.0$", "")
        value = digits.str.zfill(3)
        well_formed = digits.str.contains(r"^\d{1,3}$")
        reasons.append(_reason(raw.is_not_null() & ~well_formed, name, "not a municipality code", show=raw))
        reasons.append(
            _reason(raw.is_not_null() & well_formed & ~value.is_in(municipalities), name, "unknown municipality", show=raw)
        )
    elif spec.parse == "bool":
        mapped = _mapped(name, profile).str.to_lowercase()
        value = pl.when(mapped == "true").then(True).when(mapped == "false").then(False)
        reasons.append(_reason(mapped.is_not_null() & value.is_null(), name, "not true or false", show=raw))
    elif spec.parse in ("int", "score", "age"):
        number = raw.str.replace(",", ".", literal=True).str.replace_all("\u00a0", "").cast(pl.Float64, strict=False)
        whole = number.is_not_null() & (number == number.floor())
        low, high = WHOLE_NUMBER_RANGES[spec.parse]
        ok = whole & number.is_between(low, high)
        value = pl.when(ok).then(number.cast(pl.Int64))
        reasons.append(_reason(raw.is_not_null() & ~ok, name, f"not a whole number from {low} to {high}", show=raw))
    elif spec.parse == "timestamp":
        value, more = _timestamp(name, profile)
        reasons.extend(more)
        if window is not None:
            reasons.append(_reason(value.is_not_null() & ~window.allows(name, value), name, OUTSIDE_WINDOW, show=raw))
    else:  # pragma: no cover - the specs above are the only callers
        raise ValueError(spec.parse)
    return value.alias(name), reasons


def validate(
    frame: pl.DataFrame, spec: KindSpec, profile: Profile, *, municipalities: list[str], strict_first: bool = True,
    window: TimeWindow | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a text frame (canonical column names, ``_line``, ``_raw``) into
    (valid typed rows with ``_line``, quarantined rows with ``_raw`` and ``_reasons``).

    Rows whose every value is in the contract's own form are typed by ``strict_field``
    (about five times faster); the rest by ``parse_field``, which also says what is wrong."""
    present = set(frame.columns)
    missing = [f.name for f in spec.fields if f.name not in present]
    frame = frame.with_columns(*(pl.lit(None, pl.String).alias(name) for name in missing))
    fast = None
    if strict_first:
        checked = [strict_field(field, profile, municipalities=municipalities, window=window) for field in spec.fields]
        typed_values = {field.name: value for field, (value, _) in zip(spec.fields, checked, strict=True)}
        ok = pl.all_horizontal(
            *(acceptable for _, acceptable in checked), *(~check(typed_values).condition for check in spec.checks)
        )
        if "_error" in frame.columns:
            ok = ok & pl.col("_error").is_null()
        fast = frame.lazy().select("_line", *(value for value, _ in checked), ok.alias("_ok")).collect()
        passed = fast["_ok"]
        fast = fast.filter(passed).drop("_ok")
        frame = frame.filter(~passed)
        if frame.is_empty():
            return _finish(spec, fast), frame.select("_line", "_raw", pl.lit([], pl.List(pl.String)).alias("_reasons"))
    values, reasons = [], []
    for field in spec.fields:
        value, field_reasons = parse_field(field, profile, municipalities=municipalities, window=window)
        values.append(value)
        reasons.extend(field_reasons)
    parsed = {field.name: value for field, value in zip(spec.fields, values, strict=True)}
    reasons.extend(check(parsed) for check in spec.checks)
    # Lazy, so that the common subexpressions (each field's parsed value appears in its value
    # and in its conditions) are computed once. The reason texts are formatted only for the
    # refused rows, in a second pass over them.
    refused = pl.any_horizontal(*(r.condition for r in reasons))
    if "_error" in frame.columns:
        refused = refused | pl.col("_error").is_not_null()
    typed = frame.lazy().select("_line", *values, refused.alias("_refused")).collect()
    bad = typed["_refused"]
    typed = typed.filter(~bad).drop("_refused")
    if fast is not None:
        typed = pl.concat([fast, typed]).sort("_line")
    texts = pl.concat_list([pl.when(r.condition).then(r.text) for r in reasons]).list.drop_nulls()
    if "_error" in frame.columns:
        # A row that could not be split into fields has that one reason, not one per empty field.
        texts = pl.when(pl.col("_error").is_not_null()).then(pl.concat_list(pl.col("_error"))).otherwise(texts)
    refused_rows = frame.filter(bad).select("_line", "_raw", texts.alias("_reasons"))
    return _finish(spec, typed), refused_rows


def _finish(spec: KindSpec, typed: pl.DataFrame) -> pl.DataFrame:
    """Values that follow from others: a contact's age band from its age, its Avohilmo contact
    type from its channel (the age itself is not kept)."""
    if spec.kind != "contacts":
        return typed
    age = pl.col("age")
    banded = pl.when(age <= 17).then(pl.lit("0-17")).when(age <= 64).then(pl.lit("18-64")).when(age <= 79).then(
        pl.lit("65-79")
    ).when(age.is_not_null()).then(pl.lit("80+"))
    return typed.with_columns(
        pl.coalesce("age_band", banded).alias("age_band"),
        pl.coalesce("contact_type", pl.col("channel").replace_strict(codes.CONTACT_TYPE_BY_CHANNEL, default=None)).alias("contact_type"),
    ).drop("age")
