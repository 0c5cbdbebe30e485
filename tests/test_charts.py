"""Every chart builder renders to a Vega-Lite spec with the Finnish locale and target line."""

import datetime as dt
import json

import polars as pl
import pytest

from dashboard import charts

DAYS = pl.DataFrame(
    {
        "Päivä": [dt.date(2025, 3, d) for d in range(1, 6)],
        "Osuus": [0.41, 0.45, 0.52, 0.48, 0.5],
        "ci_low": [0.35, 0.4, 0.47, 0.43, 0.45],
        "ci_high": [0.47, 0.5, 0.57, 0.53, 0.55],
        "Kanava": ["puhelin", "chat", "puhelin", "chat", "puhelin"],
    }
)


def _spec(chart) -> dict:
    spec = chart.to_dict()
    json.dumps(spec)  # serialisable as the browser gets it
    return spec


def test_line_chart_has_band_target_and_finnish_locale():
    spec = _spec(
        charts.line_chart(DAYS, x="Päivä", y="Osuus", unit="share", language="fi", band=("ci_low", "ci_high"),
                          target=0.5, target_label="tavoite 50,0 %")
    )
    assert spec["config"]["locale"]["number"]["decimal"] == ","
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"][:2]]
    assert marks == ["area", "line"]
    assert "tavoite 50,0 %" in json.dumps(spec, ensure_ascii=False)  # the target label travels in the data
    assert spec["layer"][1]["encoding"]["x"]["axis"]["format"] == "%-d.%-m.%Y"


def test_swedish_and_english_locales():
    sv = _spec(charts.line_chart(DAYS, x="Päivä", y="Osuus", unit="share", language="sv"))
    en = _spec(charts.line_chart(DAYS, x="Päivä", y="Osuus", unit="share", language="en"))
    assert sv["config"]["locale"]["time"]["shortMonths"][4] == "maj"
    assert en["config"]["locale"]["number"]["decimal"] == "."


def test_bar_stacked_heatmap_and_funnel_render():
    bar = _spec(charts.bar_chart(DAYS, category="Kanava", value="Osuus", unit="share", language="fi", target=0.45, target_label="t"))
    assert bar["layer"][0]["encoding"]["y"]["field"] == "Kanava"
    stacked = _spec(charts.stacked_share_chart(DAYS, x="Päivä", y="Osuus", colour="Kanava", language="fi", colour_order=["chat", "puhelin"], target=0.45, target_label="t"))
    assert stacked["layer"][0]["encoding"]["y"]["stack"] == "zero"
    heat = pl.DataFrame({"Tunti": [8, 9], "Viikonpäivä": ["ma", "ti"], "Yhteydenotot": [10, 12]})
    assert _spec(charts.heatmap(heat, x="Tunti", y="Viikonpäivä", value="Yhteydenotot", language="fi", y_order=["ma", "ti"]))["mark"]["type"] == "rect"
    points = pl.DataFrame({"n": [100, 1000], "Osuus": [0.4, 0.5], "Kunta": ["A", "B"]})
    limits = pl.DataFrame({"n": [100, 1000, 100, 1000], "limit": [0.3, 0.45, 0.7, 0.55], "band": ["95", "95", "95u", "95u"]})
    funnel = _spec(charts.funnel_plot(points, x="n", y="Osuus", label="Kunta", limits=limits, language="fi", unit="share", centre=0.5, centre_label="alue"))
    assert funnel["layer"][1]["encoding"]["x"]["scale"]["type"] == "log"


def test_field_names_with_dots_are_escaped():
    frame = pl.DataFrame({"Kanava": ["puhelin"], "Jonotusaika, 90. persentiili": [300.0]})
    spec = _spec(charts.bar_chart(frame, category="Kanava", value="Jonotusaika, 90. persentiili", unit="seconds", language="fi"))
    x = spec["layer"][0]["encoding"]["x"]
    assert x["field"] == "Jonotusaika, 90\\. persentiili"
    assert x["title"] == "Jonotusaika, 90. persentiili (s)"  # the axis names its unit


@pytest.mark.parametrize(("value", "high", "domain"), [(0.95, 0.99, [0, 1]), (0.35, 0.4, None)])
def test_share_axes_near_one_hundred_percent_end_there(value, high, domain):
    frame = pl.DataFrame({"Ikäryhmä": ["18-64", "80+"], "Osuus": [value, 0.3], "ci_low": [0.2, 0.2], "ci_high": [high, 0.4]})
    spec = _spec(charts.bar_chart(frame, category="Ikäryhmä", value="Osuus", unit="share", language="fi", interval=("ci_low", "ci_high")))
    assert spec["layer"][0]["encoding"]["x"].get("scale", {}).get("domain") == domain


def test_cached_spec_builds_once_per_distinct_input_and_hands_out_copies():
    from dashboard import charts

    calls = []

    def counting(frame, **options):
        calls.append(options)
        return charts.line_chart(frame, **options)

    frame = pl.DataFrame({"päivä": [dt.date(2025, 3, 3), dt.date(2025, 3, 4)], "Yhteydenotot": [5.0, 7.0]})
    options = {"x": "päivä", "y": "Yhteydenotot", "unit": "count", "language": "fi"}
    first = charts.cached_spec(counting, frame, **options)
    first["mutated"] = True
    second = charts.cached_spec(counting, frame, **options)
    assert len(calls) == 1 and "mutated" not in second
    assert second == counting(frame, **options).to_dict()
    changed = charts.cached_spec(counting, frame.with_columns(pl.lit(8.0).alias("Yhteydenotot")), **options)
    assert changed != second and len(calls) == 3
    charts.cached_spec(counting, frame, **{**options, "language": "sv"})
    assert len(calls) == 4


def test_legends_wrap_instead_of_running_past_the_chart():
    """Eleven channels in one legend row ran past the right edge (seen in Chromium)."""
    import altair as alt

    from dashboard import charts

    assert alt.theme.get()()["config"]["legend"]["columns"] == 4
    frame = pl.DataFrame({"day": ["2026-11-01", "2026-11-01"], "Osuus": [0.4, 0.6], "Kanava": ["chat", "puhelin"]})
    spec = charts.stacked_share_chart(
        frame, x="day", y="Osuus", colour="Kanava", language="fi", colour_order=["chat", "puhelin"],
    ).to_dict()
    colour = next(layer["encoding"]["color"] for layer in spec.get("layer", [spec]) if "color" in layer.get("encoding", {}))
    assert colour["legend"]["columns"] == 1  # drawn at half width: two to a row were cut at 1024 px


def _unescape_field(field: str) -> list[str]:
    """A Vega-Lite field as Vega reads it: a backslash escapes the next character; an
    unescaped dot or bracket starts a nested path (which a column name must never do)."""
    parts, current, escaped = [], "", False
    for char in field:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char in ".[]":
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def _fields(node) -> list[str]:
    if isinstance(node, dict):
        return [*([node["field"]] if isinstance(node.get("field"), str) else []), *(f for v in node.values() for f in _fields(v))]
    if isinstance(node, list):
        return [f for v in node for f in _fields(v)]
    return []


def _labels_used_as_fields() -> set[str]:
    """Every text a chart may carry as a column name: metric labels, dimension titles and the
    common value and metric headings, in every language."""
    from dashboard.i18n import LANGUAGES, catalogue
    from data_access.metrics import REGISTRY

    texts = {m.label(language) for m in REGISTRY.values() for language in LANGUAGES}
    for key, entry in catalogue().items():
        if key.startswith(("dimension.", "common.value", "common.metric", "comparison.denominator")):
            texts |= set(entry.values())
    return texts


@pytest.mark.parametrize("label", sorted(_labels_used_as_fields()))
def test_every_catalogue_label_is_a_safe_chart_field(label):
    """A label with a colon, dot or bracket (Swedish "Kötid, 90:e percentilen") must reach
    Vega-Lite as one plain field, in every builder that takes it."""
    frame = pl.DataFrame({label: [0.4, 0.5], "x_": [dt.date(2025, 3, 1), dt.date(2025, 3, 2)], "c_": ["a", "b"],
                          "ci_low": [0.3, 0.4], "ci_high": [0.5, 0.6]})
    specs = [
        _spec(charts.line_chart(frame, x="x_", y=label, unit="share", language="sv", band=("ci_low", "ci_high"))),
        _spec(charts.line_chart(frame.rename({label: "v_"}).with_columns(pl.col("c_").alias(label)), x="x_", y="v_",
                                unit="count", language="sv", colour=label)),
        _spec(charts.bar_chart(frame, category="c_", value=label, unit="seconds", language="sv", interval=("ci_low", "ci_high"))),
        _spec(charts.heatmap(frame, x="x_", y="c_", value=label, language="sv", y_order=["a", "b"])),
    ]
    for spec in specs:
        for field in _fields(spec):
            assert len(_unescape_field(field)) == 1, field
    assert any(_unescape_field(f) == [label] for spec in specs for f in _fields(spec))


def test_a_month_grain_reads_month_names():
    months = pl.DataFrame({"Kuukausi": [dt.date(2026, 10, 1), dt.date(2026, 11, 1)], "Yhteydenotot": [10.0, 12.0]})
    spec = _spec(charts.line_chart(months, x="Kuukausi", y="Yhteydenotot", unit="count", language="fi", grain="month"))
    x = spec["layer"][0]["encoding"]["x"]
    assert (x["timeUnit"], x["axis"]["format"]) == ("yearmonth", "%b %Y")
    assert spec["config"]["locale"]["time"]["shortMonths"][10] == "marras"  # so the axis reads "marras 2026"

    from dashboard.formatting import format_period

    assert [format_period(dt.date(2026, 11, 1), "month", lang) for lang in ("fi", "sv", "en")] == ["marras 2026", "nov 2026", "Nov 2026"]


def test_a_channel_keeps_its_colour_in_every_language():
    from dashboard.i18n import code_label
    from dashboard.presenters import code_colours

    colour_of = {}
    for language in ("fi", "sv", "en"):
        frame = pl.DataFrame({"d": [dt.date(2026, 11, 1)] * 2, "v": [1.0, 2.0],
                              "k": [code_label("channel", "chat", language), code_label("channel", "walk_in", language)]})
        spec = _spec(charts.line_chart(frame, x="d", y="v", unit="count", language=language, colour="k", colours=code_colours("channel", language)))
        scale = spec["layer"][0]["encoding"]["color"]["scale"]
        palette = dict(zip(scale["domain"], scale["range"], strict=True))
        colour_of[language] = (palette[frame["k"][0]], palette[frame["k"][1]])
    assert colour_of["fi"] == colour_of["sv"] == colour_of["en"]
    assert colour_of["fi"][0] != colour_of["fi"][1]


def test_a_specs_datasets_reach_streamlit_as_arrow_with_the_same_values():
    """The page hands Streamlit a chart's datasets as Arrow (dashboard/elements.py), so that
    Streamlit does not build a pandas frame of them: the same records, nulls and all."""
    import io
    import subprocess  # nosec B404
    import sys

    from dashboard.elements import arrow_datasets

    frame = DAYS.with_columns(pl.when(pl.col("Kanava") == "chat").then(None).otherwise(pl.col("ci_low")).alias("ci_low"))
    spec = charts.cached_spec(charts.line_chart, frame, x="Päivä", y="Osuus", unit="share", language="fi",
                              band=("ci_low", "ci_high"), target=0.5, target_label="tavoite")
    shown = arrow_datasets(spec)
    assert shown["datasets"].keys() == spec["datasets"].keys() and shown["layer"] == spec["layer"]
    for name, records in spec["datasets"].items():
        decoded = pl.read_ipc_stream(io.BytesIO(shown["datasets"][name])).to_dicts()
        assert decoded == [{key: record.get(key) for key in decoded[0]} for record in records]
        assert set(decoded[0]) == {key for record in records for key in record}
    assert any(row["ci_low"] is None for records in spec["datasets"].values() for row in records if "ci_low" in row)
    # a column Arrow cannot hold as one type is left to Streamlit as it was
    mixed = {"datasets": {"d": [{"a": 1}, {"a": "x"}]}}
    assert arrow_datasets(mixed)["datasets"]["d"] == [{"a": 1}, {"a": "x"}]
    # and the conversion itself does not bring pandas in
    probe = ("import sys; from dashboard.elements import arrow_datasets; "
             "arrow_datasets({'datasets': {'d': [{'a': 1.5, 'b': 'x'}, {'a': None, 'b': 'y'}]}}); "
             "print('pandas' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"
