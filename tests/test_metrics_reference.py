"""The registry's fast path against a straightforward reference: rows read back from the
database with plain SQL, grouped and counted in Python, suppressed by DOMAIN.md's rules as
written in docs/privacy.md. Random contacts with small cells, so suppression (primary and secondary) is in play."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import defaultdict
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from data_access import codes
from data_access.metrics import REGISTRY, Filters, compute
from data_access.metrics.cells import GroupKeys
from data_access.metrics.disclosure import _county_shown
from data_access.metrics.linked import protect_boxes
from data_access.models import Contact
from tests.factories import add_contacts, make_store

HELSINKI = ZoneInfo("Europe/Helsinki")
START, END = dt.date(2025, 3, 3), dt.date(2025, 3, 9)
METRICS = ["contacts", "contact_share", "first_contact_resolution", "electronic_share", "contacts_per_1000", "queue_median_seconds"]
CASES = [
    ([], {}),
    (["municipality"], {}),
    (["region"], {}),
    (["channel"], {}),
    (["day", "channel"], {}),
    (["region", "channel"], {"channels": ("phone", "chat", "walk_in")}),
    (["service_line", "age_band"], {}),
    (["hour"], {"service_lines": ("health", "social")}),
    (["municipality", "channel"], {"age_bands": ("18-64", "65-79")}),
    (["weekday", "source_system"], {}),
]


@pytest.fixture
def places(engine) -> list[tuple[str, str]]:
    """Three municipalities in each of two counties (one with Turku, whose population is known)
    and one in a third, with few contacts."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select code, region_code from municipality order by region_code, code")).all()
    turku_region = next(region for code, region in rows if code == "853")
    other_region = next(region for code, region in rows if region != turku_region)
    third = next((c, r) for c, r in rows if r not in (turku_region, other_region))
    return [("853", turku_region), *[(c, r) for c, r in rows if r == turku_region and c != "853"][:2],
            *[(c, r) for c, r in rows if r == other_region][:3], third]


def _random_contacts(places: list[tuple[str, str]]) -> list[dict]:
    rng = random.Random(20250303)
    rows = []
    for _ in range(300):
        moment = dt.datetime.combine(START - dt.timedelta(days=1), dt.time(), tzinfo=HELSINKI) + dt.timedelta(
            minutes=rng.randrange(9 * 24 * 60)
        )
        channel = rng.choices(codes.CHANNELS, weights=[20, 8, 10, 3, 8, 2, 2, 6, 1, 1])[0]
        rows.append({
            "occurred_at": moment.astimezone(dt.UTC),
            "municipality_code": rng.choices([code for code, _ in places], weights=[40, 10, 1, 25, 5, 1, 1])[0],
            "channel": channel,
            "resolved_first_contact": rng.choice([True, True, False, None]),
            "service_line": rng.choice([*codes.SERVICE_LINES[:4], None]),
            "age_band": rng.choice([*codes.AGE_BANDS, None]),
            "source_system": rng.choice(["a", "a", "b"]),
            "queue_seconds": rng.randrange(600) if channel in codes.QUEUED_CHANNELS and rng.random() < 0.9 else None,
        })
    return rows


def _reference(engine, settings, metric_key: str, filters: Filters, by: list[str], allowed: list[str]) -> dict[tuple, dict]:
    with engine.connect() as conn:
        regions = dict(conn.execute(sa.text("select code, region_code from municipality")).all())
        table = Contact.__table__.c  # typed columns: times come back as aware datetimes on both databases
        contacts = conn.execute(sa.select(
            table.occurred_at, table.municipality_code, table.channel, table.resolved_first_contact, table.service_line,
            table.age_band, table.source_system, table.queue_seconds,
        )).mappings().all()
        populations = conn.execute(sa.text("select municipality_code, year, population from population")).all()
    cells: dict[tuple, list[dict]] = defaultdict(list)
    for row in contacts:
        stamp = row["occurred_at"]
        local = stamp.astimezone(HELSINKI)
        values = {**row, "day": local.date(), "hour": local.hour, "weekday": local.isoweekday(),
                  "municipality": row["municipality_code"], "region": regions[row["municipality_code"]]}
        if not filters.start <= values["day"] <= filters.end or row["municipality_code"] not in allowed:
            continue
        if any(wanted and values[column] not in wanted for column, wanted in (
            ("channel", filters.channels), ("service_line", filters.service_lines), ("age_band", filters.age_bands),
        )):
            continue
        cells[tuple(values[d] for d in by)].append(values)
    if set(by) <= {"municipality", "region"} and by:
        for code in allowed:
            cells.setdefault(tuple({"municipality": code, "region": regions[code]}[d] for d in by), [])
    if not by:
        cells.setdefault((), [])

    latest: dict[str, tuple[int, int]] = {}
    for code, year, population in populations:
        if year <= filters.end.year and (code not in latest or year > latest[code][0]):
            latest[code] = (year, population)
    metric = REGISTRY[metric_key]
    result = {}
    for key, rows in cells.items():
        figure = {"numerator": None, "denominator": None, "value": None, "note": None}
        if metric_key in ("contacts", "contact_share", "contacts_per_1000"):
            figure["numerator"] = float(len(rows))
        if metric_key == "contacts":
            figure["value"] = figure["numerator"]
        elif metric_key == "contact_share":
            total = sum(len(r) for k, r in cells.items() if k[:-1] == key[:-1])
            figure["denominator"] = float(total)
            figure["value"] = len(rows) / total if total else None
        elif metric_key in ("first_contact_resolution", "electronic_share"):
            flags = [r["resolved_first_contact"] for r in rows] if metric_key == "first_contact_resolution" else [
                r["channel"] in settings.electronic_channels for r in rows]
            known = [f for f in flags if f is not None]
            figure["numerator"], figure["denominator"] = float(sum(known)), float(len(known))
            figure["value"] = sum(known) / len(known) if known else None
        elif metric_key == "contacts_per_1000":
            inside = [code for code in allowed if all(
                {"municipality": code, "region": regions[code]}[d] == v for d, v in zip(by, key, strict=False) if d in ("municipality", "region"))]
            if all(code in latest for code in inside) and sum(latest[c][1] for c in inside) > 0:
                population = sum(latest[c][1] for c in inside)
                figure["denominator"], figure["value"] = float(population), len(rows) / population * 1000
            else:
                figure["note"] = "population_missing"
        elif metric_key == "queue_median_seconds":
            waits = [r["queue_seconds"] for r in rows if r["channel"] in codes.QUEUED_CHANNELS and r["queue_seconds"] is not None]
            figure["denominator"] = float(len(waits))
            figure["value"] = float(statistics.median(waits)) if waits else None
        result[key] = figure

    threshold = settings.small_cell_threshold
    if metric.unit in ("count", "per_1000") or metric.share_of_total:
        implied = [lambda f: f["numerator"]]
    elif metric.unit == "share":
        implied = [lambda f: f["numerator"], lambda f: f["denominator"], lambda f: f["denominator"] - f["numerator"]]
    else:
        implied = [lambda f: f["denominator"]]
    hidden: set[tuple] = set()
    primary: set[tuple] = set()
    unmarked: set[tuple] = set()
    for count_of in implied:
        counts = {key: count_of(figure) or 0.0 for key, figure in result.items()}
        small = {key for key, count in counts.items() if 1 <= count < threshold}
        hidden_here, unmarked_here = _protected(counts, small, by, threshold, counties=_counties(engine))
        primary |= small
        unmarked |= unmarked_here
        hidden |= hidden_here
    primary -= unmarked
    for key, figure in result.items():
        figure["suppressed"] = key in hidden
        figure["secondary"] = key in hidden and key not in primary
    for figure in result.values():
        if figure["suppressed"]:
            figure["value"] = figure["numerator"] = None
            if metric.unit != "per_1000":
                figure["denominator"] = None
    return result


def _in_order(key: tuple) -> tuple:
    return tuple((value is not None, value if value is not None else 0) for value in key)


def _counties(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text("select code, region_code from municipality")).all())


def _protected(
    counts: dict[tuple, float], small: set[tuple], by: list[str], threshold: int, *, counties: dict[str, str]
) -> tuple[set[tuple], set[tuple]]:
    """docs/privacy.md's secondary suppression as written: along every grouping, a line (the
    cells that share every other grouping) that hides a small count but no count of at least
    threshold + 1 hides one more of its shown counts above zero: the smallest of at least
    threshold + 1, else the largest; a line that hides just one count above zero hides its
    smallest shown count above zero. On equal counts the first in the groups' order. Until
    no line is open. A line still open with nothing left to hide leaves its hidden cells
    unmarked (returned second)."""
    hidden = set(small)
    unmarked: set[tuple] = set()
    if not by:
        return hidden, unmarked
    changed = True
    while changed:
        changed = False
        for free in range(len(by)):
            lines: dict[tuple, list[tuple]] = defaultdict(list)
            for key in counts:
                lines[key[:free] + key[free + 1:]].append(key)
            for members in lines.values():
                uncovered = any(k in hidden and 1 <= counts[k] < threshold for k in members) and not any(
                    k in hidden and counts[k] >= threshold + 1 for k in members)
                lone = sum(1 for k in members if k in hidden and counts[k] > 0) == 1
                if not uncovered and not lone:
                    continue
                shown = sorted((k for k in members if k not in hidden and counts[k] > 0), key=_in_order)
                if not shown:
                    if sum(counts[k] for k in members if k in hidden) >= threshold:
                        unmarked |= {k for k in members if k in hidden}
                    continue
                enough = [k for k in shown if counts[k] >= threshold + 1] if uncovered else shown
                pick = min(enough, key=lambda k: counts[k]) if enough else max(shown, key=lambda k: counts[k])
                hidden.add(pick)
                changed = True
    # Then the boxes of the linked tables (docs/privacy.md): the product's own pass
    # (data_access/metrics/linked.py), which tests/test_linked.py checks against an attacker
    # written apart.
    keys = sorted(counts, key=_in_order)
    group_keys = GroupKeys(pl.DataFrame(keys, schema=by, orient="row"), by, period=np.zeros(len(keys), dtype=np.int64), counties=counties)
    if len(by) > 1 or by[0] in ("municipality", "day"):
        values = np.array([counts[k] for k in keys], dtype=float)
        mask = np.array([k in hidden for k in keys])
        left_open = np.array([k in unmarked for k in keys])
        county_shown = _county_shown(values, group_keys, threshold=threshold) if "municipality" in by else None
        protect_boxes(values, mask, group_keys.frame, by, group_keys.period, np.arange(len(keys)), threshold=threshold, counties=counties,
                      county_shown=county_shown, unmarked=left_open)
        hidden = {k for k, h in zip(keys, mask, strict=True) if h}
        unmarked = {k for k, u in zip(keys, left_open, strict=True) if u}
    return hidden, unmarked


@pytest.mark.parametrize(("by", "narrowing"), CASES, ids=["-".join(by) or "total" for by, _ in CASES])
def test_the_registry_equals_the_reference_computation(engine, settings, places, by, narrowing):
    add_contacts(engine, _random_contacts(places))
    store = make_store(engine, settings)
    wide = Filters(start=START, end=END, municipalities=tuple(code for code, _ in places), **narrowing)
    result = compute(store, metrics=METRICS, filters=wide, by=by)
    if by:
        assert result["suppressed"].any(), "the data should put suppression in play"
    allowed = sorted(code for code, _ in places)
    for metric_key in METRICS:
        expected = _reference(engine, settings, metric_key, wide, by, allowed)
        rows = result.filter(result["metric"] == metric_key)
        got = {tuple(row[d] for d in by): row for row in rows.iter_rows(named=True)}
        assert got.keys() == expected.keys(), metric_key
        for key, figure in expected.items():
            row = got[key]
            assert row["suppressed"] == figure["suppressed"], (metric_key, key, row, figure)
            assert row["secondary"] == figure["secondary"], (metric_key, key, row, figure)
            for column in ("value", "numerator", "denominator"):
                assert row[column] == (pytest.approx(figure[column]) if figure[column] is not None else None), (metric_key, key, column, row, figure)
            assert row["note"] == figure["note"], (metric_key, key)
            if row["value"] is not None and REGISTRY[metric_key].unit == "share" and not REGISTRY[metric_key].share_of_total:
                assert row["ci_low"] - 1e-12 <= row["value"] <= row["ci_high"] + 1e-12


@pytest.mark.parametrize(("by", "narrowing"), CASES, ids=["-".join(by) or "total" for by, _ in CASES])
def test_several_periods_at_once_equal_each_period_alone(engine, settings, places, by, narrowing):
    """The overview asks for its six card periods in one call: each period's rows must be what
    a call for that period alone gives, suppression included, and a period without rows too."""
    from polars.testing import assert_frame_equal

    add_contacts(engine, _random_contacts(places))
    store = make_store(engine, settings)
    wide = Filters(start=START, end=END, municipalities=tuple(code for code, _ in places), **narrowing)
    periods = (
        wide,
        Filters(start=START, end=START, municipalities=wide.municipalities, **narrowing),
        Filters(start=END, end=END, municipalities=wide.municipalities, until_minute=13 * 60, **narrowing),
        Filters(start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 7), **narrowing),  # no rows at all
        Filters(start=START, end=END, municipalities=wide.municipalities[:2], channels=("phone", "chat")),
    )
    metrics = [*METRICS, "referrals"]
    together = compute(store, metrics=metrics, filters=periods, by=by)
    order = [*by, "metric"]
    for index, filters in enumerate(periods):
        alone = compute(store, metrics=metrics, filters=filters, by=by)
        assert_frame_equal(
            together.filter(together["period"] == index).drop("period").sort(order, nulls_last=False),
            alone.sort(order, nulls_last=False),
        )
    if by:
        assert together["suppressed"].any(), "the data should put suppression in play"
