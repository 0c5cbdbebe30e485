"""Ingestion against the data contract, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from dashboard.export import safe_cell
from data_access.engine import data_version
from data_access.ingest import FileError, ingest_file, load_profile
from data_access.ingest.quarantine import quarantine_frame
from data_access.models import Contact, IngestBatch, QuarantinedRow
from tests.factories import make_store

ROOT = Path(__file__).resolve().parent.parent
HEADER = "source_system,contact_id,occurred_at,municipality_code,channel,resolved_first_contact,updated_at,unit_code"


def write(path: Path, lines: list[str], *, encoding: str = "utf-8", bom: bool = False) -> Path:
    text = "\n".join(lines) + "\n"
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def rows(engine: sa.Engine, *columns: str) -> list[tuple]:
    table = Contact.__table__
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*(table.c[c] for c in columns)).order_by(table.c.contact_id))]


def counts_add_up(report) -> bool:
    return report.read == report.inserted + report.updated + report.unchanged + report.quarantined + report.repeated


def test_same_file_twice_changes_nothing(engine, tmp_path):
    path = write(tmp_path / "c.csv", [HEADER, "s,1,2025-03-03T10:00:00+02:00,853,phone,true,,", "s,2,2025-03-03T11:00:00+02:00,853,chat,,,"])
    first = ingest_file(engine, path)
    assert (first.read, first.inserted, first.quarantined) == (2, 2, 0)
    version = data_version(engine)
    second = ingest_file(engine, path)
    assert (second.read, second.inserted, second.updated, second.unchanged) == (2, 0, 0, 2)
    assert data_version(engine) == version
    assert counts_add_up(first) and counts_add_up(second)


def test_line_numbers_count_quoted_newlines_and_blank_lines(engine, tmp_path):
    path = tmp_path / "q.csv"
    path.write_text(HEADER + '\ns,1,2025-03-03T10:00:00,853,phone,,,"two\nlines"\n\ns,2,nope,853,phone,,,\n', encoding="utf-8")
    report = ingest_file(engine, path)
    assert (report.inserted, report.quarantined) == (1, 1)
    assert quarantine_frame(engine)["line_number"].to_list() == [5]
    assert rows(engine, "unit_code") == [("two\nlines",)]


def test_row_repeated_in_a_file_is_stored_once(engine, tmp_path):
    line = "s,1,2025-03-03T10:00:00+02:00,853,phone,true,,"
    report = ingest_file(engine, write(tmp_path / "c.csv", [HEADER, line, line, line]))
    assert (report.inserted, report.unchanged, report.repeated) == (1, 0, 2)
    assert report.conflicts == []  # the same values: repeated, not in conflict
    assert len(rows(engine, "contact_id")) == 1


def test_a_key_with_different_values_on_two_lines_is_reported_with_the_lines(engine, tmp_path):
    """The last line wins, as before; the report no longer calls the other one unchanged."""
    report = ingest_file(engine, write(tmp_path / "c.csv", [
        HEADER,
        "s,1,2025-03-03T10:00:00+02:00,853,phone,true,,",
        "s,2,2025-03-03T10:00:00+02:00,853,phone,true,,",
        "s,1,2025-03-03T10:00:00+02:00,853,chat,true,,",
    ]))
    assert (report.inserted, report.unchanged, report.repeated) == (2, 0, 1) and counts_add_up(report)
    assert report.conflicts == ["source_system=s, contact_id=1: lines 2, 4"]
    assert "lines 2, 4" in report.text()
    assert rows(engine, "contact_id", "channel") == [("1", "chat"), ("2", "phone")]


def test_newer_correction_replaces_and_older_is_ignored(engine, tmp_path):
    ingest_file(engine, write(tmp_path / "a.csv", [HEADER, "s,1,2025-03-03T10:00:00+02:00,853,phone,false,2025-03-03T12:00:00+02:00,"]))
    newer = ingest_file(engine, write(tmp_path / "b.csv", [HEADER, "s,1,2025-03-03T10:00:00+02:00,853,phone,true,2025-03-04T12:00:00+02:00,"]))
    assert newer.updated == 1
    older = ingest_file(engine, write(tmp_path / "c.csv", [HEADER, "s,1,2025-03-03T10:00:00+02:00,853,chat,false,2025-03-01T12:00:00+02:00,"]))
    assert (older.updated, older.unchanged) == (0, 1)
    assert rows(engine, "channel", "resolved_first_contact") == [("phone", True)]


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("2025-03-30T02:59:00", dt.datetime(2025, 3, 30, 0, 59, tzinfo=dt.UTC)),  # before the spring change
        ("2025-03-30T04:00:00", dt.datetime(2025, 3, 30, 1, 0, tzinfo=dt.UTC)),  # after it (EEST)
        ("2025-10-26T02:59:00", dt.datetime(2025, 10, 25, 23, 59, tzinfo=dt.UTC)),  # before the autumn change
        ("2025-10-26T04:00:00", dt.datetime(2025, 10, 26, 2, 0, tzinfo=dt.UTC)),  # after it (EET)
        ("2025-10-26T03:30:00+03:00", dt.datetime(2025, 10, 26, 0, 30, tzinfo=dt.UTC)),  # an offset removes the doubt
        ("2025-10-26T03:30:00Z", dt.datetime(2025, 10, 26, 3, 30, tzinfo=dt.UTC)),
    ],
)
def test_local_times_are_helsinki_and_stored_as_utc(engine, tmp_path, text, stored):
    report = ingest_file(engine, write(tmp_path / "t.csv", [HEADER, f"s,1,{text},853,phone,,,"]))
    assert report.inserted == 1
    assert rows(engine, "occurred_at") == [(stored,)]


@pytest.mark.parametrize("text", ["2025-03-30T03:30:00", "2025-10-26T03:30:00"])
def test_nonexistent_and_ambiguous_local_times_go_to_quarantine(engine, tmp_path, text):
    report = ingest_file(engine, write(tmp_path / "t.csv", [HEADER, f"s,1,{text},853,phone,,,"]))
    assert report.quarantined == 1
    (reason,) = quarantine_frame(engine)["reasons"].to_list()
    assert "daylight-saving" in reason and text in reason


@pytest.mark.parametrize(("encoding", "bom"), [("cp1252", False), ("utf-8", True)])
def test_windows_1252_and_bom_files(engine, tmp_path, encoding, bom):
    lines = [HEADER, "s,1,2025-03-03T10:00:00,853,puhelin,kyllä,,Hämeenkyrön sote-asema"]
    report = ingest_file(engine, write(tmp_path / "e.csv", lines, encoding=encoding, bom=bom))
    assert report.inserted == 1, report.text()
    assert rows(engine, "channel", "resolved_first_contact", "unit_code") == [("phone", True, "Hämeenkyrön sote-asema")]


def test_semicolons_decimal_commas_and_codes_without_leading_zeros(engine, tmp_path):
    lines = [
        "source_system;contact_id;occurred_at;municipality_code;channel;queue_seconds;age",
        "s;1;2025-03-03T10:00:00;74;phone;185,0;67",
        "s;2;2025-03-03T10:05:00;74.0;callback;12;15",
        "s;3;2025-03-03T10:06:00;1234;phone;-3;200",
    ]
    report = ingest_file(engine, write(tmp_path / "s.csv", lines))
    assert (report.inserted, report.quarantined) == (2, 1)
    assert rows(engine, "municipality_code", "queue_seconds", "age_band") == [("074", 185, "65-79"), ("074", 12, "0-17")]
    (reasons,) = quarantine_frame(engine)["reasons"].to_list()
    assert "municipality_code: not a municipality code '1234'" in reasons
    assert "queue_seconds: not a whole number" in reasons and "age: not a whole number" in reasons


def test_referral_before_its_contact_is_kept_and_linked(engine, settings, tmp_path):
    referrals = write(tmp_path / "r.csv", [
        "source_system,referral_id,contact_id,referred_at,destination",
        "s,r1,c1,2025-03-03T10:30:00,tk_doctor",
    ])
    early = ingest_file(engine, referrals)
    assert (early.inserted, early.pending_referrals) == (1, 1)
    contact = ingest_file(engine, write(tmp_path / "c.csv", [HEADER, "s,c1,2025-03-03T10:00:00,272,phone,,,"]))
    assert contact.pending_referrals == 0
    store = make_store(engine, settings)
    assert store.whole("referrals").select("destination", "municipality_code").rows() == [("tk_doctor", "272")]


def test_markup_and_formulas_are_stored_verbatim_and_exported_safely(engine, tmp_path):
    formula = '=HYPERLINK("http://example.invalid","x")'
    markup = "<script>alert(1)</script>"
    path = tmp_path / "x.csv"
    pl.DataFrame(
        {"source_system": ["s", "s"], "contact_id": ["1", "2"], "occurred_at": ["2025-03-03T10:00:00"] * 2,
         "municipality_code": ["853", "853"], "channel": ["phone", "fax"], "unit_code": [formula, markup]}
    ).write_csv(path)
    ingest_file(engine, path)
    assert rows(engine, "unit_code") == [(formula,)]
    assert safe_cell(formula) == "'" + formula
    (raw,) = quarantine_frame(engine)["raw"].to_list()
    assert json.loads(raw)["unit_code"] == markup


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_json_lines_json_and_parquet(engine, tmp_path, fmt):
    frame = pl.DataFrame(
        {"source_system": ["s", "s"], "contact_id": ["1", "2"], "occurred_at": ["2025-03-03T10:00:00+02:00", "nope"],
         "municipality_code": ["853", "853"], "channel": ["phone", "chat"], "queue_seconds": [12, 30]}
    )
    path = tmp_path / f"c.{fmt}"
    {"jsonl": frame.write_ndjson, "json": frame.write_json, "parquet": frame.write_parquet}[fmt](path)
    report = ingest_file(engine, path)
    assert (report.inserted, report.quarantined) == (1, 1)
    assert quarantine_frame(engine)["line_number"].to_list() == [2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("source_system,contact_id,occurred_at\ns,1,2025-01-01T10:00\n", "missing required column(s) municipality_code, channel"),
        ("", "the file is empty"),
        ("source_system,contact_id,occurred_at,municipality_code,channel,CONTACT_ID\ns,1,2025-01-01T10:00,853,phone,2\n",
         "the header names a column twice ('contact_id' and 'CONTACT_ID')"),
    ],
)
def test_a_file_that_cannot_be_processed_stores_nothing(engine, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FileError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        ingest_file(engine, path)
    assert "bad.csv" in str(error.value) and "\n" not in str(error.value)
    assert rows(engine, "contact_id") == []
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(QuarantinedRow)).scalar() == 0
        statuses = conn.execute(sa.select(IngestBatch.status, IngestBatch.message)).all()
    assert [s for s, _ in statuses] == ["failed"] and message in statuses[0][1]


def test_shipped_legacy_export_with_its_profile(engine):
    profile = load_profile(ROOT / "sample_data" / "profiles" / "legacy_fi.toml")
    report = ingest_file(engine, ROOT / "sample_data" / "legacy_export_fi.csv", profile=profile)
    assert (report.read, report.inserted, report.quarantined) == (6, 4, 2)
    assert set(report.reasons) == {
        "channel: unknown value", "occurred_at: local time does not exist or is ambiguous at the daylight-saving change"
    }
    stored = rows(engine, "contact_id", "source_system", "municipality_code", "channel", "contact_type", "initiator")
    assert stored[0] == ("L-1001", "effica-legacy", "074", "phone", "R52", "primary_care")


VALID = st.fixed_dictionaries(
    {
        "occurred_at": st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2025, 12, 31)).map(
            lambda d: d.replace(microsecond=0).isoformat() + "+02:00"
        ),
        "municipality_code": st.sampled_from(["853", "74", "272", "018"]),
        "channel": st.sampled_from(["phone", "chat", "Puhelin", "video"]),
        "resolved_first_contact": st.sampled_from(["true", "false", "", "kyllä"]),
    }
)
INVALID = st.fixed_dictionaries(
    {
        "occurred_at": st.sampled_from(["", "yesterday", "2025-13-01T10:00:00", "2025-03-30T03:15:00"]),
        "municipality_code": st.sampled_from(["", "9999", "abc", "853"]),
        "channel": st.sampled_from(["fax", "", "phone"]),
        "resolved_first_contact": st.sampled_from(["maybe", "", "true"]),
    }
)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(st.booleans(), VALID, INVALID, st.integers(0, 6)), min_size=1, max_size=40))
def test_counts_always_add_up(engine, tmp_path, records):
    prefix = uuid.uuid4().hex[:8]
    lines = ["source_system,contact_id,occurred_at,municipality_code,channel,resolved_first_contact"]
    for valid, good, bad, key in records:
        row = good if valid else bad
        lines.append(f"s,{prefix}-{key},{row['occurred_at']},{row['municipality_code']},{row['channel']},{row['resolved_first_contact']}")
    path = write(tmp_path / f"{prefix}.csv", lines)
    before = len(rows(engine, "contact_id"))
    report = ingest_file(engine, path)
    assert report.read == len(records)
    assert counts_add_up(report)
    assert len(rows(engine, "contact_id")) == before + report.inserted
    again = ingest_file(engine, path)
    assert (again.inserted, again.updated) == (0, 0) and counts_add_up(again)


def test_reprocess_after_the_profile_is_fixed(engine, tmp_path):
    from data_access.ingest.profiles import Profile
    from data_access.ingest.quarantine import reprocess

    path = write(tmp_path / "c.csv", ["source_system,contact_id,occurred_at,municipality_code,channel",
                                      "s,1,2025-03-03T10:00:00,853,faksi", "s,2,2025-03-03T10:00:00,853,kirjekyyhky"])
    first = ingest_file(engine, path)
    assert first.quarantined == 2
    base = load_profile()
    fixed = Profile(values={**base.values, "channel": {**base.values["channel"], "faksi": "e_message"}})
    (report,) = reprocess(engine, profile=fixed)
    assert (report.inserted, report.quarantined) == (1, 1)
    waiting = quarantine_frame(engine)
    assert waiting["reasons"].to_list() == ["channel: unknown value 'kirjekyyhky'"]
    assert quarantine_frame(engine, include_reprocessed=True).height == 3
    assert rows(engine, "contact_id", "channel") == [("1", "e_message")]


def test_referrals_and_feedback_are_validated_too(engine, tmp_path):
    referrals = ingest_file(engine, write(tmp_path / "r.csv", [
        "source_system,referral_id,contact_id,referred_at,destination,status,service_started_at",
        "s,r1,c1,2025-03-03T10:30:00,tk_doctor,alkanut,2025-03-10T08:00:00",
        "s,r2,c1,2025-03-03T10:30:00,astrologer,planned,",
    ]))
    assert (referrals.inserted, referrals.quarantined) == (1, 1)
    assert dict(referrals.reasons) == {"destination: unknown value": 1}
    feedback = ingest_file(engine, write(tmp_path / "f.csv", [
        "source_system,feedback_id,answered_at,municipality_code,recommend_score",
        "s,f1,2025-03-03T12:00:00,853,10", "s,f2,2025-03-03T12:00:00,853,11", "s,f3,2025-03-03T12:00:00,853,9,5",
    ]))
    assert (feedback.inserted, feedback.quarantined) == (1, 2)
    # "9,5" unquoted in a comma file is two fields: the row is kept with that reason, not cut.
    assert dict(feedback.reasons) == {"recommend_score: not a whole number from 0 to 10": 1, "row: expected 5 fields, found 6": 1}
    ragged = quarantine_frame(engine).filter(pl.col("reasons").str.starts_with("row:"))
    assert ragged["line_number"].to_list() == [4]
    assert json.loads(ragged["raw"][0]) == {"fields": ["s", "f3", "2025-03-03T12:00:00", "853", "9", "5"]}


def test_cli_json_report_and_exit_codes(database_url, monkeypatch, capsys, tmp_path):
    from dashboard.cli import main

    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    good = write(tmp_path / "c.csv", [HEADER, "s,1,2025-03-03T10:00:00,853,phone,,,", "s,2,2025-03-03T10:00:00,853,fax,,,"])
    capsys.readouterr()
    assert main(["ingest", str(good), "--json"]) == 0  # processed, even with a row in quarantine
    report = json.loads(capsys.readouterr().out)
    assert {k: report[k] for k in ("read", "inserted", "updated", "unchanged", "quarantined")} == {
        "read": 2, "inserted": 1, "updated": 0, "unchanged": 0, "quarantined": 1}
    assert report["reasons"] == {"channel: unknown value": 1}
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert main(["ingest", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"ohjaustaulu: {empty}: the file is empty"
    assert main(["quarantine", "export", "--output", str(tmp_path / "q.csv")]) == 0
    exported = pl.read_csv(tmp_path / "q.csv")
    assert exported["reasons"].to_list() == ["channel: unknown value 'fax'"]


def test_each_row_names_the_batch_that_last_wrote_it(engine, tmp_path):
    """batch_id is provenance the pipeline keeps without a foreign-key check (migration 0004):
    an inserted row names its file's batch, a corrected row the correcting file's batch, and an
    unchanged row keeps the batch it came with."""
    first = ingest_file(engine, write(tmp_path / "a.csv", [
        HEADER, "s,1,2025-03-03T10:00:00+02:00,853,phone,true,,", "s,2,2025-03-03T11:00:00+02:00,853,chat,,,",
    ]))
    second = ingest_file(engine, write(tmp_path / "b.csv", [
        HEADER, "s,1,2025-03-03T10:00:00+02:00,853,phone,true,,", "s,2,2025-03-03T11:00:00+02:00,853,video,,,",
        "s,3,2025-03-03T12:00:00+02:00,853,chat,,,",
    ]))
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (2, 1, 1, 1)
    c, b = Contact.__table__, IngestBatch.__table__
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(c.c.contact_id, c.c.batch_id)).all())
        files = dict(conn.execute(sa.select(b.c.id, b.c.file_name)).all())
    assert {key: Path(files[batch]).name for key, batch in rows.items()} == {"1": "a.csv", "2": "b.csv", "3": "b.csv"}


@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_a_key_repeated_across_batches_of_a_new_source_is_updated_not_inserted_twice(engine, tmp_path, monkeypatch, chunk):
    from data_access.ingest import reading

    monkeypatch.setattr(reading, "BATCH_BYTES", chunk)  # 64 bytes: about one row per batch
    header = "source_system,contact_id,occurred_at,municipality_code,channel,updated_at"
    path = write(tmp_path / "c.csv", [
        header,
        "uusi,1,2025-03-03T10:00:00+02:00,853,phone,2025-03-03T10:05:00+02:00",
        "vanha,9,2025-03-03T10:00:00+02:00,853,phone,",
        "uusi,2,2025-03-03T11:00:00+02:00,853,chat,",
        "uusi,1,2025-03-03T10:00:00+02:00,853,video,2025-03-04T09:00:00+02:00",
        "uusi,1,2025-03-03T10:00:00+02:00,853,chat,2025-03-03T12:00:00+02:00",
    ])
    ingest_file(engine, write(tmp_path / "old.csv", [header, "vanha,9,2025-03-03T10:00:00+02:00,853,chat,"]))
    report = ingest_file(engine, path)
    assert report.read == 5 and counts_add_up(report)
    assert report.inserted == 2  # uusi 1 and uusi 2
    assert report.updated + report.unchanged + report.repeated == 3  # vanha 9 changed, uusi 1 twice more
    assert rows(engine, "source_system", "contact_id", "channel") == [
        ("uusi", "1", "video"), ("uusi", "2", "chat"), ("vanha", "9", "phone"),
    ]


def test_implausible_times_go_to_quarantine_and_break_nothing(engine, tmp_path):
    """Year 0001 and 1900 (an export's defaults), 2099 (would mark the source up to date for
    ever) and 9999-12-31 (broke the overview and data-quality pages) are refused with the
    reason; a correction dated 2199 cannot block later ones; the good row is stored."""
    import datetime as dt

    from data_access.ingest import ingest_file, load_profile
    from data_access.models import QuarantinedRow, table_of

    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    lines = [
        "contact_id,occurred_at,municipality_code,channel,updated_at",
        "ok1,2025-11-12T10:00:00+02:00,853,phone,",
        f"soon,{soon},853,phone,",  # within the tolerance for clocks that run a little ahead
        "y1,0001-01-01T00:00:00+00:00,853,phone,",
        "y1900,1900-01-01T00:00:00+00:00,853,phone,",
        "y2099,2099-06-01T10:00:00+03:00,853,phone,",
        "y9999,9999-12-31T23:59:59+00:00,853,phone,",
        "late,2025-11-12T10:00:00+02:00,853,phone,2199-01-01T00:00:00+00:00",
        "local,9999-12-31 12:00,853,phone,",  # the long road (no offset) checks it too
    ]
    path = tmp_path / "times.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest_file(engine, path, profile=load_profile(), kind="contacts", source_system="test")
    assert (report.read, report.inserted, report.quarantined) == (8, 2, 6)
    with engine.connect() as conn:
        q = table_of(QuarantinedRow)
        reasons = [r for (r,) in conn.execute(sa.select(q.c.reasons))]
        stored = conn.execute(sa.text("select max(occurred_at) from contact")).scalar()
    assert len(reasons) == 6 and all("outside the plausible time window" in r for r in reasons), reasons
    assert str(stored)[:4] in ("2025", "2026"), stored


def test_a_header_without_rows_is_a_valid_batch_of_none(engine, tmp_path):
    """A quiet source's nightly export: read 0, stored 0, the batch done, no error."""
    path = tmp_path / "quiet.csv"
    path.write_text(HEADER + "\n", encoding="utf-8")
    report = ingest_file(engine, path)
    assert (report.read, report.inserted, report.quarantined) == (0, 0, 0)
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(IngestBatch.status)).scalars().all()
    assert statuses == ["done"]


def test_a_nul_character_goes_to_quarantine_and_a_reload_changes_nothing(engine, tmp_path):
    """PostgreSQL refused the row with a traceback; SQLite stored it and the reload crashed."""
    path = tmp_path / "nul.csv"
    path.write_text(HEADER + "\ns,ok1,2025-03-03T10:00:00+02:00,853,phone,true,,U1\ns,nul1,2025-03-03T10:00:00+02:00,853,phone,true,,U\x002\n", encoding="utf-8")
    for _ in range(2):
        report = ingest_file(engine, path)
        assert report.quarantined == 1
    assert [r for (r,) in rows(engine, "contact_id")] == ["ok1"]
    waiting = quarantine_frame(engine)
    assert waiting.height == 1 and "contains a NUL character" in waiting["reasons"][0]


def test_one_poison_file_does_not_stop_the_watcher(engine, tmp_path):
    """A 100 000-deep JSON array (RecursionError) moves to failed/ with its reason; the good file
    behind it is loaded."""
    from data_access.ingest.watch import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a_poison.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    (inbox / "b_good.csv").write_text(HEADER + "\ns,g1,2025-03-03T10:00:00+02:00,853,phone,true,,U1\n", encoding="utf-8")
    watcher = Watcher(engine, inbox, load_profile(), settle_seconds=0)
    watcher.poll(now=0.0)
    results = dict(watcher.poll(now=1.0))
    assert isinstance(results[inbox / "a_poison.json"], str)
    assert (inbox / "failed" / "a_poison.json").exists() and (inbox / "failed" / "a_poison.json.error.txt").exists()
    assert "nested too deep" in (inbox / "failed" / "a_poison.json.error.txt").read_text(encoding="utf-8")
    assert (inbox / "done" / "b_good.csv").exists()
    assert [r for (r,) in rows(engine, "contact_id")] == ["g1"]


def test_a_json_object_value_goes_to_quarantine_and_bidi_controls_are_removed(engine, tmp_path):
    path = tmp_path / "objects.json"
    records = [
        {"source_system": "s", "contact_id": "o1", "occurred_at": "2025-03-03T10:00:00+02:00", "municipality_code": "853",
         "channel": "phone", "unit_code": {"nested": "value"}},
        {"source_system": "s", "contact_id": "o2", "occurred_at": "2025-03-03T10:00:00+02:00", "municipality_code": "853",
         "channel": "phone", "unit_code": "txt\u202e.exe"},
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    report = ingest_file(engine, path)
    assert (report.inserted, report.quarantined) == (1, 1)
    (reasons,) = quarantine_frame(engine)["reasons"].to_list()
    assert "unit_code: a JSON object or list, not a single value" in reasons
    assert rows(engine, "contact_id", "unit_code") == [("o2", "txt.exe")]


def test_the_same_file_by_another_path_does_not_double_the_quarantine(engine, tmp_path, monkeypatch):
    path = tmp_path / "twice.csv"
    path.write_text(HEADER + "\ns,t1,2025-03-03T10:00:00+02:00,853,faksi,true,,U1\n", encoding="utf-8")
    ingest_file(engine, path)
    monkeypatch.chdir(tmp_path)
    ingest_file(engine, Path("twice.csv"))  # relative this time
    renamed = tmp_path / "renamed.csv"
    path.rename(renamed)
    ingest_file(engine, renamed)
    assert quarantine_frame(engine).height == 1


@pytest.mark.parametrize("case", ["late_umlaut_cp1252", "one_row_cp1252_crlf", "utf16_bom", "cr_only"])
def test_valid_files_in_other_encodings_and_line_endings_load(engine, tmp_path, case):
    """Windows-1252 whose first "ä" comes after 256 KB, a one-row Windows-1252 file ending
    "kyllä\\r\\n", UTF-16 with a byte-order mark and old Mac line endings: all valid exports."""
    header = "source_system,contact_id,occurred_at,municipality_code,channel,unit_code"
    filler = [f"s,f{i},2025-03-03T10:00:00+02:00,853,phone,U{i:06d}" for i in range(6000)] if case == "late_umlaut_cp1252" else []
    last = "s,x1,2025-03-03T10:00:00+02:00,853,phone,kyllä"
    text = {
        "late_umlaut_cp1252": ("\r\n".join([header, *filler, last]) + "\r\n", "cp1252"),
        "one_row_cp1252_crlf": (f"{header}\r\n{last}\r\n", "cp1252"),
        "utf16_bom": (f"{header}\n{last}\n", "utf-16"),
        "cr_only": ("\r".join([header, last, last.replace("x1", "x2"), last.replace("x1", "x3")]) + "\r", "utf-8"),
    }[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(text[0].encode(text[1]))
    report = ingest_file(engine, path)
    expected = {"late_umlaut_cp1252": 6001, "cr_only": 3}.get(case, 1)
    assert (report.read, report.inserted, report.quarantined) == (expected, expected, 0)
    assert ("x1", "kyllä") in rows(engine, "contact_id", "unit_code")


def test_an_error_about_a_file_with_a_bom_names_the_users_file(engine, tmp_path):
    path = tmp_path / "with_bom.csv"
    path.write_bytes("\ufeffcontact_id,CONTACT_ID\n1,2\n".encode())
    with pytest.raises(FileError) as error:
        ingest_file(engine, path)
    assert str(error.value).startswith(str(path)), error.value


@pytest.mark.parametrize("case", ["one_stray_quote", "two_stray_quotes"])
def test_a_stray_quote_never_swallows_the_records_after_it(engine, tmp_path, case):
    """A row ending ',"oops' followed by normal rows: read 2 of 3 before, the third contact
    stored inside the second's unit_code. Now the file is refused with one sentence naming the
    line, and nothing is stored."""
    header = "source_system,contact_id,occurred_at,municipality_code,channel,unit_code"
    rows_ = [f"s,c{i},2025-03-03T10:00:00+02:00,853,phone,U{i}" for i in range(1, 7)]
    rows_[1] = rows_[1] + ',"oops' if case == "one_stray_quote" else rows_[1].replace(",U2", ',"U2')
    if case == "two_stray_quotes":
        rows_[3] = rows_[3].replace(",U4", ',U4"')
    path = tmp_path / f"{case}.csv"
    path.write_text("\n".join([header, *rows_]) + "\n", encoding="utf-8")
    with pytest.raises(FileError, match="line 3: a quote") as error:
        ingest_file(engine, path)
    assert str(error.value).startswith(str(path))
    assert rows(engine, "contact_id") == []


def test_free_text_over_lines_in_quotes_still_loads(engine, tmp_path):
    path = tmp_path / "text.csv"
    path.write_text(HEADER + '\ns,m1,2025-03-03T10:00:00+02:00,853,phone,true,,"U1\nsecond line, with a comma"\n', encoding="utf-8")
    report = ingest_file(engine, path)
    assert (report.read, report.inserted) == (1, 1)


def test_two_overlapping_loads_at_once_both_succeed(engine, tmp_path):
    """Two exports with the same new keys loaded at the same moment: on PostgreSQL the second
    died with a unique violation during COPY and loaded nothing."""
    import threading

    def export(name: str, numbers: range) -> Path:
        return write(tmp_path / name, [HEADER, *(f"s,k{i},2025-03-03T10:00:00+02:00,853,phone,true,,U{i}" for i in numbers)])

    files = [export("a.csv", range(0, 4000)), export("b.csv", range(2000, 6000))]
    start = threading.Barrier(2)
    reports, errors = [], []

    def load(path: Path) -> None:
        start.wait()
        try:
            reports.append(ingest_file(engine, path))
        except Exception as exc:  # the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(path,)) for path in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sum(r.inserted for r in reports) == 6000 and all(counts_add_up(r) for r in reports)
    assert len(rows(engine, "contact_id")) == 6000


def test_a_killed_load_leaves_its_batch_interrupted(engine, tmp_path):
    """A load killed half-way (its batch committed as running, its rows rolled back) reads as
    interrupted once the next load of the kind runs, not as nothing."""
    from data_access.ingest.pipeline import start_batch

    with engine.begin() as conn:
        killed = start_batch(conn, kind="contacts", file_name="killed.csv", source_system="s")
    report = ingest_file(engine, write(tmp_path / "next.csv", [HEADER, "s,n1,2025-03-03T10:00:00+02:00,853,phone,true,,"]))
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(IngestBatch.id, IngestBatch.status)).all())
    assert statuses == {killed: "interrupted", report.batch_id: "done"}


def test_a_load_that_fails_half_way_marks_its_own_batch_failed(engine, tmp_path):
    path = write(tmp_path / "open.csv", [HEADER, "s,o1,2025-03-03T10:00:00+02:00,853,phone,true,,", 's,o2,2025-03-03T10:00:00+02:00,853,phone,true,,"U'])
    with pytest.raises(FileError):
        ingest_file(engine, path)
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(IngestBatch.status)).scalars().all()
    assert statuses == ["failed"] and rows(engine, "contact_id") == []


def test_a_field_longer_than_any_export_holds_goes_to_quarantine_cut(engine, tmp_path):
    """A 150 000-character field: the row is quarantined with the reason, and what is kept of it
    is cut to the limit (a 50 MB field peaked at 2 GB before; docs/ingestion.md)."""
    from data_access.ingest.reading import MAX_FIELD_CHARS

    path = write(tmp_path / "long.csv", [HEADER, "s,l1,2025-03-03T10:00:00+02:00,853,phone,true,,U1", "s,l2,2025-03-03T10:00:00+02:00,853,phone,true,," + "x" * 150_000])
    report = ingest_file(engine, path)
    assert (report.inserted, report.quarantined) == (1, 1)
    waiting = quarantine_frame(engine)
    assert "a field longer than" in waiting["reasons"][0]
    assert len(waiting["raw"][0]) < MAX_FIELD_CHARS + 1000


# Free text as exports hold it: separators of either kind, quotes, line breaks, letters
# Windows-1252 can hold. (Leading and trailing spaces are trimmed by validation, by contract.)
FREE_TEXT = st.text(alphabet=["x", "ä", "Ö", "€", ",", ";", '"', "\n", "1", "'"], min_size=0, max_size=12).map(str.strip)
EXPORT_ID = iter(range(10**9))


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(st.tuples(FREE_TEXT, st.booleans()), min_size=1, max_size=12),
    separator=st.sampled_from([",", ";"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    quote_all=st.booleans(),
)
def test_whatever_an_export_looks_like_every_record_is_read_once_and_nothing_is_lost(
    engine, tmp_path, records, separator, encoding, newline, quote_all
):
    """Random quoting, embedded line breaks and separators, encodings and line endings: read
    equals the records in the file, every record is stored or quarantined, and the free text
    is stored as written (line breaks in it as the file's own)."""
    import csv
    import io

    export = next(EXPORT_ID)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator=newline, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(HEADER.split(","))
    written = {}
    for number, (text, valid) in enumerate(records):
        key = f"p{export}-{number}"
        value = text.replace("\n", newline)  # a line break in a field is the file's own kind
        writer.writerow(["s", key, "2025-03-03T10:00:00+02:00", "853" if valid else "9999", "phone", "true", "", value])
        written[key] = (value, valid)
    path = tmp_path / f"export-{export}.csv"
    path.write_bytes(buffer.getvalue().encode(encoding))

    report = ingest_file(engine, path, kind="contacts")
    assert report.read == len(records), (report, buffer.getvalue())
    assert counts_add_up(report)
    assert report.quarantined == sum(not valid for _, valid in written.values())
    table = Contact.__table__
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(table.c.contact_id, table.c.unit_code).where(table.c.contact_id.like(f"p{export}-%"))).all())

    def lines(text: str | None) -> str | None:  # the line-break style is the file's, not the text's
        return None if text in (None, "") else text.replace("\r\n", "\n").replace("\r", "\n")

    assert {key: lines(value) for key, value in stored.items()} == {key: lines(value) for key, (value, valid) in written.items() if valid}
