"""Altair chart builders and the one registered theme.

Each builder takes a tidy plot frame whose columns are already labelled for people and
returns a chart; nothing here reads data or translates. Number and date formats are
Finnish inside the spec (config.locale), so tooltips and axes read "52,4 %".
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import altair as alt
import polars as pl

THEME = "ohjaustaulu"
# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
# Okabe–Ito, extended with two of Paul Tol's muted colours so ten channels stay distinct.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#882255", "#44AA99"]
TARGET_COLOUR = "#D55E00"
# The comparison period's line: lighter than the period's own, and dashed (not by colour alone).
COMPARISON_COLOUR = "#8FA8BF"

LOCALES = {
    "fi": {
        "number": {"decimal": ",", "thousands": "\u00a0", "grouping": [3], "currency": ["", "\u00a0€"]},
        "time": {
            "dateTime": "%A, %-d. %Bta %Y klo %X", "date": "%-d.%-m.%Y", "time": "%H:%M:%S",
            "periods": ["a.m.", "p.m."],
            "days": ["sunnuntai", "maanantai", "tiistai", "keskiviikko", "torstai", "perjantai", "lauantai"],
            "shortDays": ["su", "ma", "ti", "ke", "to", "pe", "la"],
            "months": ["tammikuu", "helmikuu", "maaliskuu", "huhtikuu", "toukokuu", "kesäkuu", "heinäkuu",
                       "elokuu", "syyskuu", "lokakuu", "marraskuu", "joulukuu"],
            "shortMonths": ["tammi", "helmi", "maalis", "huhti", "touko", "kesä", "heinä", "elo", "syys",
                            "loka", "marras", "joulu"],
        },
    },
    "sv": {
        "number": {"decimal": ",", "thousands": "\u00a0", "grouping": [3], "currency": ["", "\u00a0€"]},
        "time": {
            "dateTime": "%A %-d %B %Y %X", "date": "%-d.%-m.%Y", "time": "%H:%M:%S", "periods": ["fm", "em"],
            "days": ["söndag", "måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag"],
            "shortDays": ["sön", "mån", "tis", "ons", "tor", "fre", "lör"],
            "months": ["januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
                       "oktober", "november", "december"],
            "shortMonths": ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"],
        },
    },
    "en": {
        "number": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["€", ""]},
        "time": {
            "dateTime": "%a %e %b %Y %X", "date": "%d/%m/%Y", "time": "%H:%M:%S", "periods": ["AM", "PM"],
            "days": ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
            "shortDays": ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
            "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                       "October", "November", "December"],
            "shortMonths": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
        },
    },
}
DATE_FORMAT = {"fi": "%-d.%-m.%Y", "sv": "%-d.%-m.%Y", "en": "%-d %b %Y"}
# A month reads as its name and year ("marras 2026", "nov 2026", "Nov 2026"), not as the date
# of its first day; a week as the date of its Monday.
TIME_AXES: dict[str, Any] = {"day": "yearmonthdate", "week": "yearmonthdate", "month": "yearmonth", "quarter": "yearquarter"}


def _time_format(grain: str, language: str) -> str:
    return "%b %Y" if grain == "month" else "Q%q %Y" if grain == "quarter" else DATE_FORMAT[language]


def _colour(field: str, colours: tuple[list[str], list[str]] | None, **options) -> alt.Color:
    """A colour encoding; with ``colours`` (labels and their colours, in code order) each code
    keeps its colour whatever the language and whichever codes a chart shows."""
    if colours is None:
        return alt.Color(f"{_f(field)}:N", title=None, **options)
    labels, hexes = colours
    return alt.Color(f"{_f(field)}:N", title=None, scale=alt.Scale(domain=labels, range=hexes), **options)
AXIS_FORMAT = {"share": ".0%", "count": ",.0f", "per_1000": ",.1f", "seconds": ",.0f", "score": ",.1f", "nps": ",.0f", "days": ",.0f", "mean": ",.1f"}
TOOLTIP_FORMAT = {"share": ".1%", "count": ",.0f", "per_1000": ",.1f", "seconds": ",.0f", "score": ",.2f", "nps": ",.0f", "days": ",.1f", "mean": ",.2f"}


@alt.theme.register(THEME, enable=True)
def _theme() -> alt.theme.ThemeConfig:
    return {
        "config": {
            "range": {"category": PALETTE},
            "font": "Source Sans Pro, Arial, sans-serif",
            "axis": {"labelFontSize": 12, "titleFontSize": 12, "grid": True, "gridColor": "#e6e6e6"},
            # Legend labels are metric and channel names; the default 160 px cut them mid-word.
            # In rows of four: in one row eleven channels ran past the chart's right edge.
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "orient": "bottom", "labelLimit": 400, "columns": 4},
            "view": {"stroke": None},
            "locale": LOCALES["fi"],  # type: ignore[typeddict-item]  # Vega's locale object, as Vega documents it
        }
    }


def _axis_title(title: str, unit: str) -> str:
    """Queue times are in seconds; the axis says so (the cards show minutes and seconds)."""
    return f"{title} (s)" if unit == "seconds" else title


def _share_scale(frame: pl.DataFrame, columns: list[str], unit: str) -> alt.Scale | alt.UndefinedType:
    """Shares near 100 % end the axis at 100 %: rounding it up to a 'nice' 110 % reads as if
    more than everything were possible."""
    if unit != "share" or frame.is_empty():
        return alt.Undefined
    top = frame.select(pl.max_horizontal(*(pl.col(c).max() for c in columns))).item()
    return alt.Scale(domain=[0, 1]) if top is not None and top > 0.9 else alt.Undefined


def _f(name: str) -> str:
    """A column name as a Vega-Lite field in Altair's shorthand: dots and brackets would mean
    nested access, and a colon a type ("Kötid, 90:e percentilen" broke the Swedish page)."""
    for special in ("\\", ".", "[", "]", ":"):
        name = name.replace(special, "\\" + special)
    return name


def localise(chart: alt.TopLevelMixin, language: str) -> alt.TopLevelMixin:
    return chart.configure(locale=LOCALES.get(language, LOCALES["fi"]))


def _target_rule(target: float, *, horizontal: bool = True, label: str) -> alt.Chart:
    frame = pl.DataFrame({"target": [target], "label": [label]})
    encoding = {"y": "target:Q"} if horizontal else {"x": "target:Q"}
    rule = alt.Chart(frame).mark_rule(color=TARGET_COLOUR, strokeDash=[6, 4], size=2).encode(**encoding)
    text = alt.Chart(frame).mark_text(
        color=TARGET_COLOUR, align="left" if horizontal else "center", dx=4, dy=-8, fontWeight="bold"
    ).encode(**encoding, text="label:N", **({"x": alt.value(4)} if horizontal else {"y": alt.value(-6)}))
    return rule + text


def line_chart(
    frame: pl.DataFrame, *, x: str, y: str, unit: str, language: str, colour: str | None = None,
    band: tuple[str, str] | None = None, target: float | None = None, target_label: str = "",
    grain: str = "day", height: int = 280, colours: tuple[list[str], list[str]] | None = None,
    series: tuple[str, str, str] | None = None,
) -> alt.TopLevelMixin:
    """A trend over time by ``grain``, optional 95 % band and target line. With ``series``
    (the column, the period's label, the comparison period's label) the frame holds both
    periods on the period's own time axis, and the comparison is drawn as a lighter dashed
    line without a band."""
    time_format = _time_format(grain, language)
    base = alt.Chart(frame).encode(
        x=alt.X(f"{_f(x)}:T", title=None, timeUnit=TIME_AXES[grain], axis=alt.Axis(format=time_format, labelOverlap="greedy", labelSeparation=8)),
    )
    colour_enc: dict[str, Any] = {"color": _colour(colour, colours)} if colour else {}
    if series and not colour:
        column, *domain = series
        colour_enc = {
            # One to a row: the period's labels are long and half-width charts cut them in a row.
            "color": alt.Color(
                f"{_f(column)}:N", title=None, scale=alt.Scale(domain=domain, range=[PALETTE[0], COMPARISON_COLOUR]), legend=alt.Legend(columns=1),
            ),
            # one legend for both: the line in its colour and dash
            "strokeDash": alt.StrokeDash(f"{_f(column)}:N", title=None, scale=alt.Scale(domain=domain, range=[[1, 0], [6, 3]])),
        }
        colour = column
    tooltip = [
        alt.Tooltip(f"{_f(x)}:T", title=x, format=time_format, timeUnit=TIME_AXES[grain]),
        alt.Tooltip(f"{_f(y)}:Q", title=y, format=TOOLTIP_FORMAT[unit]),
        *([alt.Tooltip(f"{_f(colour)}:N", title=colour)] if colour else []),
    ]
    layers = []
    if band:
        banded = base.transform_filter(alt.FieldEqualPredicate(field=_f(series[0]), equal=series[1])) if series else base
        band_colour = {} if series else colour_enc
        layers.append(banded.mark_area(opacity=0.2).encode(y=f"{_f(band[0])}:Q", y2=f"{_f(band[1])}:Q", **band_colour))
    layers.append(
        base.mark_line(point=frame.height <= 60).encode(
            y=alt.Y(
                f"{_f(y)}:Q", title=_axis_title(y, unit), axis=alt.Axis(format=AXIS_FORMAT[unit]),
                scale=_share_scale(frame, [y, *(band or ())], unit),
            ),
            tooltip=tooltip, **colour_enc
        )
    )
    if target is not None:
        layers.append(_target_rule(target, label=target_label))
    return localise(alt.layer(*layers).properties(height=height), language)


def bar_chart(
    frame: pl.DataFrame, *, category: str, value: str, unit: str, language: str, colour: str | None = None,
    target: float | None = None, target_label: str = "", sort_by_value: bool = True, interval: tuple[str, str] | None = None,
    height: int | None = None,
) -> alt.TopLevelMixin:
    """Horizontal bars: categories on the y axis so long Finnish labels stay readable."""
    sort = "-x" if sort_by_value else None
    base = alt.Chart(frame).encode(y=alt.Y(f"{_f(category)}:N", title=None, sort=sort))
    tooltip = [alt.Tooltip(f"{_f(category)}:N", title=category), alt.Tooltip(f"{_f(value)}:Q", title=value, format=TOOLTIP_FORMAT[unit])]
    colour_enc = {"color": alt.Color(f"{_f(colour)}:N", title=None)} if colour else {"color": alt.value(PALETTE[0])}
    layers = [
        base.mark_bar().encode(
            x=alt.X(
                f"{_f(value)}:Q", title=_axis_title(value, unit), axis=alt.Axis(format=AXIS_FORMAT[unit]),
                scale=_share_scale(frame, [value, *(interval or ())], unit),
            ),
            tooltip=tooltip, **colour_enc
        )
    ]
    if interval:
        layers.append(base.mark_rule(color="#333333").encode(x=f"{_f(interval[0])}:Q", x2=f"{_f(interval[1])}:Q"))
    if target is not None:
        layers.append(_target_rule(target, horizontal=False, label=target_label))
    rows = max(frame[category].n_unique(), 1)
    return localise(alt.layer(*layers).properties(height=height or max(120, 26 * rows)), language)


def stacked_share_chart(
    frame: pl.DataFrame, *, x: str, y: str, colour: str, language: str, colour_order: list[str],
    target: float | None = None, target_label: str = "", grain: str = "day",
    colours: tuple[list[str], list[str]] | None = None,
) -> alt.TopLevelMixin:
    """Shares that add up to 100 % over time (channel mix), stacked in ``colour_order`` from
    the bottom, so the first group's height can be read against the target line."""
    frame = frame.with_columns(
        pl.col(colour).replace_strict({c: i for i, c in enumerate(colour_order)}, default=len(colour_order)).alias("_order")
    )
    bars = alt.Chart(frame).mark_bar().encode(
        x=alt.X(f"{_f(x)}:O", title=None, timeUnit=TIME_AXES[grain], axis=alt.Axis(format=_time_format(grain, language), labelAngle=-45)),
        # Values are already shares of the whole; a suppressed cell leaves a gap rather
        # than re-scaling the others, as "normalize" would.
        y=alt.Y(f"{_f(y)}:Q", title=y, stack="zero", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
        # one to a row: this chart is drawn at half width beside the electronic share, and at
        # 1024 px two to a row cut "sähköinen lomake (Omaolo)" and "käynti paikan päällä" short
        color=_colour(colour, colours, sort=colour_order, legend=alt.Legend(columns=1)),
        order=alt.Order("_order:Q", sort="ascending"),
        tooltip=[
            alt.Tooltip(f"{_f(x)}:T", title=x, format=_time_format(grain, language), timeUnit=TIME_AXES[grain]),
            alt.Tooltip(f"{_f(colour)}:N", title=colour),
            alt.Tooltip(f"{_f(y)}:Q", title=y, format=".1%"),
        ],
    )
    layers = [bars] + ([_target_rule(target, label=target_label)] if target is not None else [])
    # Streamlit fits the legend inside the height (autosize "fit"): room for its rows, one a group
    legend_rows = frame[colour].n_unique()
    return localise(alt.layer(*layers).properties(height=220 + 20 * legend_rows), language)


def heatmap(
    frame: pl.DataFrame, *, x: str, y: str, value: str, language: str, y_order: list[str], unit: str = "count", mark: str | None = None,
) -> alt.TopLevelMixin:
    """Counts over two categories; rows grow with the number of categories on the y axis.
    ``mark``: a column with the text of each hidden cell ("<5", ".."), drawn on a grey cell so
    that a hidden cell is not read as an empty one."""
    chart = alt.Chart(frame).mark_rect().encode(
        x=alt.X(f"{_f(x)}:O", title=x, axis=alt.Axis(labelAngle=-35, labelLimit=160)),
        y=alt.Y(f"{_f(y)}:N", title=None, sort=y_order),
        color=alt.Color(f"{_f(value)}:Q", title=value, scale=alt.Scale(scheme="blues")),
        tooltip=[
            alt.Tooltip(f"{_f(y)}:N", title=y), alt.Tooltip(f"{_f(x)}:O", title=x),
            alt.Tooltip(f"{_f(value)}:Q", title=value, format=TOOLTIP_FORMAT[unit]),
        ],
    )
    if mark is not None:
        hidden = alt.Chart(frame).transform_filter(alt.datum[mark] != None)  # noqa: E711 (a Vega expression)
        where = {"x": alt.X(f"{_f(x)}:O"), "y": alt.Y(f"{_f(y)}:N", sort=y_order)}
        chart = alt.layer(
            chart,
            hidden.mark_rect(color="#e6e6e6").encode(
                **where, tooltip=[alt.Tooltip(f"{_f(y)}:N", title=y), alt.Tooltip(f"{_f(x)}:O", title=x), alt.Tooltip(f"{_f(mark)}:N", title=value)],
            ),
            hidden.mark_text(color="#444444", fontSize=11).encode(**where, text=alt.Text(f"{_f(mark)}:N")),
        )
    # Streamlit draws charts with autosize "fit" containing the padding: the height holds the
    # slanted column labels and the legend too (about 180 px), not the rows alone; without
    # that room twelve rows were squeezed into 90 px.
    return localise(chart.properties(height=max(200, 24 * len(y_order)) + 180), language)


def funnel_plot(
    frame: pl.DataFrame, *, x: str, y: str, label: str, limits: pl.DataFrame, language: str, unit: str,
    centre: float, centre_label: str,
) -> alt.TopLevelMixin:
    """Value against its denominator with 95 % and 99.8 % control limits around the centre."""
    points = alt.Chart(frame).mark_circle(size=70, color=PALETTE[0]).encode(
        x=alt.X(f"{_f(x)}:Q", title=x, scale=alt.Scale(type="log"), axis=alt.Axis(format=",.0f")),
        y=alt.Y(f"{_f(y)}:Q", title=y, axis=alt.Axis(format=AXIS_FORMAT[unit])),
        tooltip=[
            alt.Tooltip(f"{_f(label)}:N", title=label), alt.Tooltip(f"{_f(y)}:Q", title=y, format=TOOLTIP_FORMAT[unit]),
            alt.Tooltip(f"{_f(x)}:Q", title=x, format=",.0f"),
        ],
    )
    lines = alt.Chart(limits).mark_line(strokeDash=[4, 3], color="#666666").encode(
        x=f"{_f(x)}:Q", y="limit:Q", detail="band:N", strokeWidth=alt.StrokeWidth("band:N", legend=None),
    )
    centre_rule = _target_rule(centre, label=centre_label)
    return localise(alt.layer(lines, points, centre_rule).properties(height=360), language)


def difference_chart(frame: pl.DataFrame, *, category: str, value: str, low: str, high: str, language: str) -> alt.TopLevelMixin:
    """Differences with their 95 % intervals around a zero line: a point and its interval per
    category, so "no change" reads at once (an interval across zero)."""
    base = alt.Chart(frame).encode(y=alt.Y(f"{_f(category)}:N", title=None, sort=None, axis=alt.Axis(labelLimit=320)))
    tooltip = [alt.Tooltip(f"{_f(category)}:N", title=category), *(alt.Tooltip(f"{_f(c)}:Q", title=c, format="+,.1f") for c in (value, low, high))]
    layers = [
        alt.Chart(pl.DataFrame({"zero": [0.0]})).mark_rule(color="#333333").encode(x="zero:Q"),
        base.mark_rule(strokeWidth=3, color=PALETTE[0]).encode(x=alt.X(f"{_f(low)}:Q", title=value), x2=f"{_f(high)}:Q", tooltip=tooltip),
        base.mark_point(filled=True, size=120, color=PALETTE[0]).encode(x=alt.X(f"{_f(value)}:Q", axis=alt.Axis(format="+,.1f")), tooltip=tooltip),
    ]
    return localise(alt.layer(*layers).properties(height=max(120, 40 * frame.height)), language)


PROJECTOR_CONFIG: dict[str, dict[str, Any]] = {
    "axis": {"labelFontSize": 18, "titleFontSize": 18, "labelLimit": 320},
    "legend": {"labelFontSize": 18, "symbolSize": 220, "symbolStrokeWidth": 3},
    "text": {"fontSize": 18},
    "line": {"strokeWidth": 3},
}


def for_projector(spec: dict[str, Any]) -> dict[str, Any]:
    """A chart's spec with type large enough to read from the back of a room."""
    config = dict(spec.get("config", {}))
    for part, values in PROJECTOR_CONFIG.items():
        config[part] = {**config.get(part, {}), **values}
    return {**spec, "config": config}


# Building a chart through Altair (schema validation, deep copies) cost about 0.8 s of the
# server's 1 s for a rerun of the overview with cached data; with every open page rerunning
# on new data, that, not the data, limited concurrent sessions. A spec depends only on its
# inputs, so it is built once per distinct input and shared by every session.
SPEC_CACHE_SIZE = 512
_specs: OrderedDict[str, str] = OrderedDict()
_specs_lock = threading.Lock()


def cached_spec(builder: Callable[..., alt.TopLevelMixin], frame: pl.DataFrame, **options) -> dict:
    """The Vega-Lite spec of ``builder(frame, **options)``, built once per distinct input."""
    digest = hashlib.sha256(builder.__name__.encode())
    for name, value in [("frame", frame), *sorted(options.items())]:
        digest.update(name.encode())
        if isinstance(value, pl.DataFrame):
            buffer = io.BytesIO()
            value.write_ipc(buffer)
            digest.update(buffer.getvalue())
        else:
            digest.update(repr(value).encode())
    key = digest.hexdigest()
    with _specs_lock:
        text = _specs.get(key)
        if text is not None:
            _specs.move_to_end(key)
    if text is None:
        text = json.dumps(builder(frame, **options).to_dict())
        with _specs_lock:
            _specs[key] = text
            while len(_specs) > SPEC_CACHE_SIZE:
                _specs.popitem(last=False)
    return json.loads(text)  # a fresh copy: the caller may not change the shared one
