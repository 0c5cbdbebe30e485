"""Hostile export files against the loader: each must be loaded with every record accounted
for (read = records in the file, read = stored + quarantined + repeated) or refused with one
sentence, and nothing may crash. Prints one line per file and the tally.

    python benchmarks/hostile_files.py [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data_access.engine import create_db_engine, upgrade_database
from data_access.ingest import FileError, ingest_file
from data_access.reference import load_shipped_reference

HEADER = "source_system,contact_id,occurred_at,municipality_code,channel,resolved_first_contact,updated_at,unit_code"


def row(n: int, unit: str = "", *, when: str = "2026-11-03T10:00:00+02:00", place: str = "853") -> str:
    return f"h,{n},{when},{place},phone,true,,{unit}"


def cases() -> list[tuple[str, bytes, int | None]]:
    """(name, file bytes, records in the file; None when the file must be refused)."""
    plain = [HEADER, row(1), row(2), row(3)]
    text = "\n".join(plain) + "\n"
    return [
        ("plain", text.encode(), 3),
        ("stray quote, then a normal row", "\n".join([HEADER, row(1), row(2, '"oops'), row(3)]).encode() + b"\n", None),
        ("two stray quotes", "\n".join([HEADER, row(1, '"a'), row(2), row(3, 'b"c'), row(4)]).encode() + b"\n", None),
        ("quoted newline in free text", "\n".join([HEADER, row(1, '"two\nlines"'), row(2)]).encode() + b"\n", 2),
        ("CRLF", text.replace("\n", "\r\n").encode(), 3),
        ("CR only", text.replace("\n", "\r").encode(), 3),
        ("no final newline", text.rstrip("\n").encode(), 3),
        ("UTF-8 BOM", b"\xef\xbb\xbf" + text.encode(), 3),
        ("UTF-16 BOM", text.encode("utf-16"), 3),
        ("Windows-1252, first ä late", ("\n".join([HEADER, *[row(i) for i in range(1, 3000)], row(3000, "Mäntsälä")]) + "\n").encode("cp1252"), 3000),
        ("semicolons in free text", "\n".join([HEADER, row(1, '";;;"'), row(2, '"a;b;c"')]).encode() + b"\n", 2),
        ("semicolon separated", text.replace(",", ";").encode(), 3),
        ("header only", (HEADER + "\n").encode(), 0),
        ("zero bytes", b"", None),
        ("NUL byte in a field", "\n".join([HEADER, row(1, "a\x00b"), row(2)]).encode() + b"\n", 2),
        ("year 9999", "\n".join([HEADER, row(1, when="9999-12-31T10:00:00+02:00"), row(2)]).encode() + b"\n", 2),
        ("year 0001", "\n".join([HEADER, row(1, when="0001-01-01T10:00:00+02:00"), row(2)]).encode() + b"\n", 2),
        ("same key twice, different values", "\n".join([HEADER, row(1, "a"), row(1, "b")]).encode() + b"\n", 2),
        ("duplicate column, other case", (HEADER + ",CONTACT_ID\n" + row(1) + ",x\n").encode(), None),
        ("ragged rows", "\n".join([HEADER, row(1), "h,2,2026-11-03T10:00:00+02:00", row(3) + ",extra"]).encode() + b"\n", 3),
        ("bidi override in free text", "\n".join([HEADER, row(1, "txt\u202eexe.txt"), row(2)]).encode() + b"\n", 2),
        ("formula in free text", "\n".join([HEADER, row(1, "=HYPERLINK(\"x\")".replace('"', '""').join('""')), row(2)]).encode() + b"\n", 2),
        ("markup in free text", "\n".join([HEADER, row(1, "<script>alert(1)</script>"), row(2)]).encode() + b"\n", 2),
        ("field of 2 MB", "\n".join([HEADER, row(1, "z" * 2_000_000), row(2)]).encode() + b"\n", 2),
        ("stray quote on line 3 of 200 000", ("\n".join([HEADER, row(1), row(2, '"x'), *[row(i) for i in range(3, 200_000)]]) + "\n").encode(), None),
        ("unknown municipality", "\n".join([HEADER, row(1, place="999"), row(2)]).encode() + b"\n", 2),
        ("blank lines between rows", "\n".join([HEADER, row(1), "", "", row(2)]).encode() + b"\n", 2),
        ("JSON nested 100 000 deep", b"[" * 100_000 + b"]" * 100_000, None),
        ("JSON object value", json.dumps([{"source_system": "h", "contact_id": "1", "occurred_at": "2026-11-03T10:00:00+02:00",
                                           "municipality_code": "853", "channel": "phone", "unit_code": {"a": 1}}]).encode(), 1),
        ("binary garbage", bytes(range(256)) * 100, None),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="also on this PostgreSQL database (it must be empty)")
    args = parser.parse_args()
    urls = {"sqlite": None, **({"postgresql": args.postgres} if args.postgres else {})}
    tally: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for backend, url in urls.items():
            url = url or f"sqlite:///{folder}/hostile.sqlite3"
            engine = create_db_engine(url)
            upgrade_database(engine)
            load_shipped_reference(engine)
            for number, (name, data, records) in enumerate(cases()):
                suffix = ".json" if name.startswith("JSON") else ".csv"
                path = Path(folder) / f"{backend}-{number}{suffix}"
                path.write_bytes(data)
                try:
                    report = ingest_file(engine, path, kind="contacts")
                except FileError as exc:
                    sentence = str(exc)
                    outcome = "refused as it should" if records is None else "REFUSED A GOOD FILE"
                    detail = sentence if len(sentence) < 160 else sentence[:157] + "..."
                except Exception:
                    outcome, detail = "CRASHED", traceback.format_exc().splitlines()[-1]
                else:
                    accounted = report.read == report.inserted + report.updated + report.unchanged + report.quarantined + report.repeated
                    if records is None:
                        outcome = "LOADED A FILE THAT MUST BE REFUSED"
                    elif report.read == records and accounted:
                        outcome = "every record accounted for"
                    else:
                        outcome = "RECORDS LOST"
                    detail = f"read {report.read}, stored {report.inserted + report.updated}, quarantined {report.quarantined}, repeated {report.repeated}"
                tally[outcome] = tally.get(outcome, 0) + 1
                print(f"{backend:10} {name:36} {outcome:28} {detail}")
            engine.dispose()
    print(json.dumps(tally, ensure_ascii=False))
    return 0 if set(tally) <= {"every record accounted for", "refused as it should"} else 1


if __name__ == "__main__":
    raise SystemExit(main())
