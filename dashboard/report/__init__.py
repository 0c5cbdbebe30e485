"""The board report: a PDF for a period, made with Typst (``board.typ``).

Board papers are public, so every figure is asked with ``publication`` (the cell-key method,
docs/privacy.md) and the report says so. The texts and figures go to the template as one JSON
value (``report_data``), never as markup, so no place name or label can change the layout.
Charts are the dashboard's own Vega-Lite specs, drawn to SVG on the server by vl-convert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from dashboard import drawing
from dashboard.export import picture_spec
from dashboard.formatting import format_moment, format_range, format_value
from dashboard.i18n import t
from dashboard.presenters import change_text, dimension_title, display_table, label_for, plot_frame, target_line
from data_access.config import Settings
from data_access.metrics import REGISTRY, Filters, Scope
from data_access.metrics.exit import answer
from data_access.metrics.requests import MetricsRequest
from data_access.periods import comparison_range
from data_access.snapshot import FactSource

TEMPLATE = Path(__file__).with_name("board.typ")
SUMMARY_METRICS = ["contacts", "first_contact_resolution", "electronic_share", "same_day_callback_share", "referrals", "queue_median_seconds"]
CHART_METRICS = ["first_contact_resolution", "electronic_share", "contacts"]
TABLE_METRICS = ["contacts", "contacts_per_1000", "first_contact_resolution", "electronic_share"]
# The pathway and its outcomes (seeds 002 and 003), shown when the period has guidance cases.
IMPACT_METRICS = [
    "cases_opened", "cases_closed", "case_plan_share", "visits_within_guideline_share", "follow_up_on_time_share",
    "whoqol_bref_change_mean", "kykyviisari_change_mean", "multi_service_per_1000", "multi_service_contact_share",
]


@dataclasses.dataclass(frozen=True)
class ReportRequest:
    start: dt.date
    end: dt.date
    compare_start: dt.date | None = None
    compare_end: dt.date | None = None
    region: str | None = None
    language: str = "fi"
    scope: Scope = dataclasses.field(default_factory=Scope.everything)

    @property
    def filters(self) -> Filters:
        return Filters(start=self.start, end=self.end, regions=(self.region,) if self.region else ())

    @property
    def comparison(self) -> Filters | None:
        """The comparison period: the one given, else the one just before (periods.comparison_range)."""
        if self.compare_start and self.compare_end:
            return Filters(start=self.compare_start, end=self.compare_end, regions=self.filters.regions)
        previous = comparison_range(self.start, self.end, "previous_period")
        return None if previous is None else Filters(start=previous[0], end=previous[1], regions=self.filters.regions)


def _ask(store: FactSource, request: ReportRequest, metrics: list[str], filters: Filters, by: tuple[str, ...] | list[str] = ()) -> pl.DataFrame:
    return answer(store, MetricsRequest.of(metrics, filters, by=by, scope=request.scope, publication=True))


def _values(result: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["metric"]: row for row in result.iter_rows(named=True)}


def key_figures(
    ask: Callable[[list[str], Filters], pl.DataFrame], filters: Filters, comparison: Filters | None, *, settings: Settings, language: str,
    metrics: list[str] = SUMMARY_METRICS,
) -> list[dict[str, Any]]:
    """Each key figure in words: its value, against its target and the comparison period.
    ``ask`` answers metrics for a filter set (the report's published figures, or the page's)."""
    now = _values(ask(metrics, filters))
    before = _values(ask(metrics, comparison)) if comparison else {}
    threshold = settings.small_cell_threshold
    lines = []
    for key in metrics:
        metric = REGISTRY[key]
        record = now.get(key)
        value = None if record is None or record["suppressed"] else record["value"]
        shown = format_value(value, metric.unit, language=language) if record is None or not record["suppressed"] else f"<{threshold}"
        target = metric.target(settings)
        target_text = None
        if target is not None and value is not None:
            met = value >= target if metric.higher_is_better is not False else value <= target
            target_text = t("report.target_met" if met else "report.target_missed", language, target=format_value(target, metric.unit, language=language))
        earlier = before.get(key)
        change = change_text(value, None if earlier is None or earlier["suppressed"] else earlier["value"], unit=metric.unit, language=language)
        parts = [*([target_text] if target_text else []), *([t("report.change", language, change=change)] if change else [])]
        lines.append({
            "key": key, "label": metric.label(language), "value": shown, "target": target_text, "change": change,
            "text": "; ".join(parts) or t("report.nothing_to_compare", language),
        })
    return lines


def summary_lines(store: FactSource, request: ReportRequest) -> list[dict[str, str]]:
    """The report's page one: the key figures, published (cell-key method)."""
    lines = key_figures(
        lambda metrics, filters: _ask(store, request, metrics, filters), request.filters, request.comparison,
        settings=store.settings, language=request.language,
    )
    return [{name: line[name] for name in ("label", "value", "text")} for line in lines]


def _chart_spec(store: FactSource, request: ReportRequest, metric: str, grain: str) -> dict[str, Any] | None:
    """The metric's trend as the dashboard draws it, as SVG (None when there is nothing)."""
    from dashboard.charts import line_chart

    result = _ask(store, request, [metric], request.filters, [grain])
    if result.is_empty() or result["value"].is_null().all():
        return None
    definition = REGISTRY[metric]
    target, target_label = target_line(metric, store.settings, request.language)
    chart = line_chart(
        plot_frame(result, metric=metric, by=[grain], store=store, language=request.language),
        x=dimension_title(grain, request.language), y=definition.label(request.language), unit=definition.unit,
        language=request.language, band=("ci_low", "ci_high") if definition.unit == "share" else None, target=target,
        target_label=target_label, grain=grain, height=300,
    )
    return picture_spec(chart, width=620)


def impact_lines(store: FactSource, request: ReportRequest) -> list[dict[str, str]]:
    """The pathway and outcome figures, published; none when the period has no guidance case."""
    if store.pathway["cases"].is_empty():
        return []
    lines = key_figures(
        lambda metrics, filters: _ask(store, request, metrics, filters), request.filters, request.comparison,
        settings=store.settings, language=request.language, metrics=IMPACT_METRICS,
    )
    return lines if any(line["value"] not in ("—", "0") for line in lines) else []


def report_data(store: FactSource, request: ReportRequest, pictures: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Everything the template shows, as plain values; the charts' specs put in ``pictures``
    by the file name the template reads them from (drawn where the report is compiled)."""
    language = request.language
    comparison = request.comparison
    place = label_for(store, "region", request.region, language) if request.region else t("report.all_places", language)
    period = format_range(request.start, request.end, language)
    compared = t("report.compared", language, period=format_range(comparison.start, comparison.end, language)) if comparison else ""
    grain = "week" if (request.end - request.start).days > 120 else "day"
    charts = []
    for metric in CHART_METRICS:
        spec = _chart_spec(store, request, metric, grain)
        if spec is None:
            continue
        pictures[f"{metric}.svg"] = spec
        caption = "report.chart_caption" if REGISTRY[metric].unit == "share" else "report.chart_caption_plain"
        charts.append({"title": REGISTRY[metric].label(language), "file": f"{metric}.svg", "caption": t(caption, language, period=period)})
    table = display_table(_ask(store, request, TABLE_METRICS, request.filters, ["municipality"]), by=["municipality"], store=store, language=language, metrics=TABLE_METRICS)
    impact = impact_lines(store, request)
    used = list(dict.fromkeys(SUMMARY_METRICS + TABLE_METRICS + (IMPACT_METRICS if impact else [])))
    return {
        "lang": language,
        "title": t("report.title", language),
        "subtitle": f"{place} · {period}{' · ' + compared if compared else ''}",
        "perturbed": t("report.perturbed", language, largest=store.settings.small_cell_threshold - 1),
        "summary_heading": t("report.summary_heading", language),
        "summary": summary_lines(store, request),
        "impact_heading": t("report.impact_heading", language),
        "impact": impact,
        "charts": charts,
        "table_heading": t("report.table_heading", language),
        "table_note": t("common.suppressed_note", language, threshold=store.settings.small_cell_threshold),
        "table": {"header": table.columns, "rows": [list(row) for row in table.rows()]},
        "definitions_heading": t("report.definitions_heading", language),
        "definitions": [{"label": REGISTRY[m].label(language), "text": REGISTRY[m].definition(language)} for m in used],
        # Always with the date: a paper is read on other days.
        "footer": t("report.footer", language, made=format_moment(dt.datetime.now(dt.UTC), language, today=dt.date.min)),
    }


def build_report(store: FactSource, request: ReportRequest) -> bytes:
    """The board report as PDF bytes."""
    with tempfile.TemporaryDirectory(prefix="ohjaustaulu-report-") as name:
        folder = Path(name)
        pictures: dict[str, dict[str, Any]] = {}
        data = report_data(store, request, pictures)
        source = folder / "board.typ"
        source.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
        return drawing.typst_pdf(str(source), root=str(folder), inputs={"data": json.dumps(data, ensure_ascii=False)}, pictures=pictures)
