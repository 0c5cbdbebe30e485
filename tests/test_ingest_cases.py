"""Guidance cases and outcome measurements through the same ingestion, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from data_access.ingest import ingest_file
from data_access.models import GuidanceCase, Measurement, QuarantinedRow, table_of
from tests.test_ingest import counts_add_up, write

CASES = "source_system;case_id;client_id;municipality_code;opened_at;process;identified_by;reasons;consent_at;plan_at;follow_up_due;follow_up_at;closed_at;close_reason"
MEASUREMENTS = "source_system,measurement_id,case_id,measured_at,instrument,phase,domain,score"


def stored(engine: sa.Engine, table: sa.Table, *columns: str, key: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in columns)).order_by(table.c[key]))]


def test_cases_are_typed_checked_and_quarantined_with_every_reason(engine, tmp_path: Path):
    path = write(tmp_path / "cases.csv", [
        CASES,
        "pirha;C1;K1;837;2026-09-01T09:00:00+03:00;personal_guidance;primary_care;many_visits|multimorbidity;"
        "2026-09-01T09:30:00+03:00;2026-09-10T10:00:00+03:00;2026-12-10T10:00:00+02:00;;;",
        # Finnish-export spellings: local time, codes in another case, spaces around the codes.
        "pirha;C2;K2;837;2026-09-02 09:00;Multi_Service;SELF; Loneliness_moving | many_services ;;;;;;",
        # An unknown reason and a case closed before it was opened: both reasons, row kept.
        "pirha;C3;K3;837;2026-09-03T09:00:00+03:00;personal_guidance;self;many_visits|kissa;;;;;2026-08-01T09:00:00+03:00;",
        "pirha;C4;K4;837;2026-09-03T09:00:00+03:00;;;;;;;;;",
        # The client is required.
        "pirha;C5;;837;2026-09-03T09:00:00+03:00;;;;;;;;;",
    ])
    report = ingest_file(engine, path)
    assert (report.kind, report.read, report.inserted, report.quarantined) == ("cases", 5, 3, 2)
    assert counts_add_up(report)
    assert report.reasons == {
        "reasons: unknown value": 1, "closed_at: before opened_at": 1, "client_id: missing required value": 1,
    }
    table = table_of(GuidanceCase)
    rows = stored(engine, table, "case_id", "process", "identified_by", "reasons", "plan_at", key="case_id")
    assert rows == [
        ("C1", "personal_guidance", "primary_care", "many_visits|multimorbidity", dt.datetime(2026, 9, 10, 7, tzinfo=dt.UTC)),
        ("C2", "multi_service", "self", "loneliness_moving|many_services", None),
        ("C4", None, None, None, None),
    ]
    with engine.connect() as conn:
        raw = conn.execute(sa.select(table_of(QuarantinedRow).c.raw, table_of(QuarantinedRow).c.reasons)).all()
    assert any("kissa" in r.raw and "closed_at: before opened_at" in r.reasons and "reasons: unknown value 'kissa'" in r.reasons for r in raw)


def test_measurements_check_the_domain_of_the_instrument_and_load_once(engine, tmp_path: Path):
    lines = [
        MEASUREMENTS,
        "pirha,M1,C1,2026-09-02T10:00:00+03:00,whoqol_bref,start,physical,50",
        'pirha,M2,C1,2026-11-02T10:00:00+02:00,WHOQOL_BREF,end,physical,"62,5"',
        "pirha,M3,C1,2026-11-02T10:00:00+02:00,whoqol_bref,end,skills,60",  # not a WHOQOL-BREF domain
        "pirha,M4,C1,2026-11-02T10:00:00+02:00,kykyviisari,end,skills,7",
        "pirha,M5,C1,2026-11-02T10:00:00+02:00,kykyviisari,end,overall,170",  # out of range
    ]
    path = write(tmp_path / "m.csv", lines)
    first = ingest_file(engine, path)
    assert (first.kind, first.inserted, first.quarantined) == ("measurements", 3, 2)
    assert first.reasons == {"domain: not a domain of the instrument": 1, "score: not a number from 0 to 100": 1}
    table = table_of(Measurement)
    assert stored(engine, table, "measurement_id", "instrument", "domain", "score", key="measurement_id") == [
        ("M1", "whoqol_bref", "physical", 50.0), ("M2", "whoqol_bref", "physical", 62.5), ("M4", "kykyviisari", "skills", 7.0),
    ]
    again = ingest_file(engine, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    # A corrected score replaces the stored one.
    lines[2] = 'pirha,M2,C1,2026-11-02T10:00:00+02:00,whoqol_bref,end,physical,"64"'
    corrected = ingest_file(engine, write(tmp_path / "m2.csv", lines))
    assert (corrected.inserted, corrected.updated, corrected.unchanged) == (0, 1, 2)
    assert stored(engine, table, "measurement_id", "score", key="measurement_id")[1] == ("M2", 64.0)


def test_contacts_carry_their_case(engine, tmp_path: Path):
    path = write(tmp_path / "c.csv", [
        "source_system,contact_id,occurred_at,municipality_code,channel,case_id",
        "pirha,V1,2026-09-05T10:00:00+03:00,837,walk_in,C1",
        "pirha,V2,2026-09-06T10:00:00+03:00,837,phone,",
    ])
    report = ingest_file(engine, path)
    assert report.inserted == 2
    from data_access.models import Contact

    assert stored(engine, table_of(Contact), "contact_id", "case_id", key="contact_id") == [("V1", "C1"), ("V2", None)]
