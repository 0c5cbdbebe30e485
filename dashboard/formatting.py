"""Numbers and dates as people in Finland read them: decimal comma, no-break space
between thousands, d.m.yyyy. Swedish follows the Finland-Swedish convention."""

from __future__ import annotations

import datetime as dt
import math
import re

from babel.numbers import format_decimal

from data_access.periods import HELSINKI

LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}
NBSP = "\u00a0"


def _locale(language: str) -> str:
    return LOCALES.get(language, "fi_FI")


def format_number(value: float | None, *, decimals: int = 0, language: str = "fi") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    # babel uses U+202F for fi/sv grouping in recent CLDR; the brief asks for no-break space.
    return format_decimal(value, format=pattern, locale=_locale(language)).replace("\u202f", NBSP)


def format_value(value: float | None, unit: str, *, language: str = "fi") -> str:
    """A metric value in its unit: share 52,4 %, count 12 345, per 1,000 123,4, seconds 125 s."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if unit == "share":
        return f"{format_number(value * 100, decimals=1, language=language)}{NBSP}%"
    if unit == "count":
        return format_number(value, language=language)
    if unit in ("per_1000", "score", "mean"):
        return format_number(value, decimals=1, language=language)
    if unit == "days":
        return f"{format_number(value, decimals=1, language=language)}{NBSP}{DAYS[language] if language in DAYS else DAYS['fi']}"
    if unit == "nps":
        return format_number(value, decimals=0, language=language)
    if unit == "seconds":
        return format_seconds(value, language=language)
    return format_number(value, decimals=2, language=language)


DAYS = {"fi": "vrk", "sv": "dygn", "en": "days"}


def format_seconds(seconds: float, *, language: str = "fi") -> str:
    """Whole seconds, as the charts' axes count them: "109 s". "1 min 49 s" was cut on a
    card at 1024 px."""
    return f"{format_number(round(seconds), language=language)}{NBSP}s"


def format_date(value: dt.date | None, language: str = "fi") -> str:
    if value is None:
        return "—"
    if language == "en":
        return f"{value.day} {value.strftime('%b')} {value.year}"
    return f"{value.day}.{value.month}.{value.year}"


def format_range(start: dt.date, end: dt.date, language: str = "fi") -> str:
    """A period for people: "1.11.2026–30.11.2026"."""
    return f"{format_date(start, language)}–{format_date(end, language)}"


SHORT_MONTHS = {
    "fi": ["tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys", "loka", "marras", "joulu"],
    "sv": ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
}


def format_month(value: dt.date, language: str = "fi") -> str:
    """"marras 2026", "nov 2026", "Nov 2026": as the charts' month axes read."""
    return f"{SHORT_MONTHS.get(language, SHORT_MONTHS['fi'])[value.month - 1]} {value.year}"


def format_period(value: object, grain: str, language: str = "fi") -> object:
    """A time grouping's value for people: a month by name, a day or week by its date."""
    if isinstance(value, dt.date):
        if grain == "quarter":
            return f"Q{(value.month - 1) // 3 + 1} {value.year}"
        return format_month(value, language) if grain == "month" else format_date(value, language)
    return value


def format_time(value: dt.datetime, language: str = "fi") -> str:
    return value.strftime("%H:%M") if language == "en" else value.strftime("%H.%M")


def format_moment(value: dt.datetime, language: str = "fi", *, today: dt.date | None = None) -> str:
    """A moment in Helsinki time: the time alone when it is today, else the date and time."""
    local = value.astimezone(HELSINKI)
    today = today or dt.datetime.now(HELSINKI).date()
    clock = f"{CLOCK[language]} {format_time(local, language)}".strip()
    if local.date() == today:
        return clock
    return f"{format_date(local.date(), language)} {clock}"


CLOCK = {"fi": "klo", "sv": "kl.", "en": ""}  # "as they stood at 15:09"


SECONDARY_MARK = ".."


def suppressed_text(threshold: int, unit: str = "count", *, secondary: bool = False) -> str:
    """A hidden cell: a small count reads "<5"; a share or rate built on one reads "(n<5)", so
    it is not taken for "under 5 %" or "under 5 per 1 000". A cell hidden only so that
    another cannot be worked out reads ".." (Statistics Finland's mark for a confidential
    figure): its true value may be large, and "<5" would say something false."""
    if secondary:
        return SECONDARY_MARK
    return f"<{threshold}" if unit == "count" else f"(n<{threshold})"


def hidden_text(record: dict, threshold: int, unit: str = "count") -> str:
    """``suppressed_text`` for a result row."""
    return suppressed_text(threshold, unit, secondary=bool(record.get("secondary")))


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:@])")
# Where GitHub-flavoured autolinking finds a link in the text that is left once the escapes
# are read (Streamlit's Markdown looks for them there, so an escape alone does not stop it):
# the ":" of "://", an address's "@" (also after "mailto:"), and the "." after "www".
_AUTOLINK_JOINTS = re.compile(r"(?=://|@)|(?i:(?<=www)(?=\.))")
WORD_JOINER = "\u2060"


def plain(text: str) -> str:
    """A value from outside (a name or address from the identity provider, a source system's
    name) for a Markdown text, as written: no emphasis, link, math or address link is made
    of it. An invisible word joiner stands in each "://", before each "@" and in "www.", so
    that no address in it is linked either."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", _AUTOLINK_JOINTS.sub(WORD_JOINER, text))
