"""Counties, municipalities and populations."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from data_access.models import Municipality, Population, Region, table_of

# Package data of the data layer: production reads it too (the sample-data generator as well).
SHIPPED_MUNICIPALITIES = Path(__file__).resolve().parent / "reference_data" / "municipalities.csv"


class ReferenceFileError(ValueError):
    """A reference file that cannot be used; the message names the file and the problem."""


def normalise_municipality_code(value: object) -> str:
    """Statistics Finland codes are three digits; spreadsheets drop the zeros ("74" is 074)."""
    text = str(value).strip()
    text = text.removesuffix(".0")
    if not text.isdigit() or len(text) > 3:
        raise ValueError(f"not a municipality code: {value!r}")
    return text.zfill(3)


def load_shipped_reference(engine: Engine, path: Path = SHIPPED_MUNICIPALITIES) -> int:
    """Load counties, municipalities and the populations that could be verified. Idempotent."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    regions = {r["region_code"]: (r["region_name_fi"], r["region_name_sv"]) for r in rows}
    with engine.begin() as conn:
        for code, (name_fi, name_sv) in regions.items():
            _upsert(conn, table_of(Region), {"code": code, "name_fi": name_fi, "name_sv": name_sv}, ["code"])
        for r in rows:
            code = normalise_municipality_code(r["municipality_code"])
            _upsert(
                conn,
                table_of(Municipality),
                {"code": code, "name_fi": r["name_fi"], "name_sv": r["name_sv"], "region_code": r["region_code"]},
                ["code"],
            )
            if r["population"]:
                _upsert(
                    conn,
                    table_of(Population),
                    {
                        "municipality_code": code,
                        "year": int(r["population_year"]),
                        "population": int(r["population"]),
                        "source": r["population_source"],
                    },
                    ["municipality_code", "year"],
                )
    return len(rows)


def load_population_file(engine: Engine, path: Path, *, source: str | None = None) -> int:
    """Load an official population table with columns code, year, population."""
    try:
        frame = pl.read_csv(path, infer_schema=False, separator=_sniff_separator(path))
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ReferenceFileError(f"{path}: cannot be read as CSV ({exc})") from exc
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if "municipality_code" in frame.columns:
        frame = frame.rename({"municipality_code": "code"})
    missing = {"code", "year", "population"} - set(frame.columns)
    if missing:
        raise ReferenceFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    if frame.is_empty():
        raise ReferenceFileError(f"{path}: the file has no rows")
    with engine.connect() as conn:
        known = set(conn.execute(sa.select(col(Municipality.code))).scalars())
    records = []
    for line, row in enumerate(frame.iter_rows(named=True), start=2):
        try:
            code = normalise_municipality_code(row["code"])
            year, population = int(row["year"]), int(str(row["population"]).replace(" ", "").replace("\u00a0", ""))
        except (TypeError, ValueError) as exc:
            raise ReferenceFileError(f"{path}, line {line}: {exc}") from exc
        if code not in known:
            raise ReferenceFileError(f"{path}, line {line}: unknown municipality code {code}")
        records.append({"municipality_code": code, "year": year, "population": population, "source": source or path.name})
    with engine.begin() as conn:
        for record in records:
            _upsert(conn, table_of(Population), record, ["municipality_code", "year"])
    return len(records)


def _sniff_separator(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    return ";" if header.count(";") > header.count(",") else ","


def _upsert(conn: sa.Connection, table: sa.Table, values: dict[str, object], keys: list[str]) -> None:
    where = sa.and_(*(table.c[k] == values[k] for k in keys))
    if conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar():
        conn.execute(sa.update(table).where(where).values(**values))
    else:
        conn.execute(sa.insert(table).values(**values))


def reference_frames(engine: Engine) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(municipalities with county names, populations) as polars frames."""
    m, r, p = table_of(Municipality), table_of(Region), table_of(Population)
    with engine.connect() as conn:
        municipalities = conn.execute(
            sa.select(
                m.c.code.label("municipality_code"), m.c.name_fi, m.c.name_sv, m.c.region_code,
                r.c.name_fi.label("region_name_fi"), r.c.name_sv.label("region_name_sv"),
            ).join(r, r.c.code == m.c.region_code).order_by(m.c.code)
        ).all()
        populations = conn.execute(sa.select(p.c.municipality_code, p.c.year, p.c.population)).all()
    return (
        pl.DataFrame(
            [tuple(row) for row in municipalities],
            schema=["municipality_code", "name_fi", "name_sv", "region_code", "region_name_fi", "region_name_sv"],
            orient="row",
        ),
        pl.DataFrame(
            [tuple(row) for row in populations],
            schema={"municipality_code": pl.String, "year": pl.Int32, "population": pl.Int64},
            orient="row",
        ),
    )
