"""The ``ohjaustaulu`` command (also ``python -m dashboard``)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from dashboard.export import metrics_csv, metrics_json, safe_cell, safe_frame
from dashboard.runner import add_run_arguments, say
from dashboard.runner import run as launch_run
from data_access.access import (
    ROLES,
    AccessError,
    add_user,
    audit_rows,
    find_user,
    grant,
    list_users,
    normalise_email,
    prune_audit,
    remove_user,
    revoke,
)
from data_access.bootstrap import prepare_database
from data_access.config import Settings
from data_access.engine import (
    DatabaseNeedsUpgrade,
    DatabaseUnavailable,
    check_schema,
    current_revision,
    engine_from_settings,
    head_revision,
    unavailable,
    upgrade_database,
)
from data_access.ingest import FileError, ProfileError, ingest_file, load_profile
from data_access.ingest.quarantine import quarantine_frame, reprocess
from data_access.ingest.validate import SPECS
from data_access.ingest.watch import Watcher, watch
from data_access.metrics import REGISTRY, Filters, MetricError, Scope, get_metric
from data_access.metrics.exit import answer
from data_access.metrics.requests import MetricsRequest
from data_access.reference import (
    ReferenceFileError,
    load_population_file,
    load_shipped_reference,
    normalise_municipality_code,
)
from data_access.snapshot import FactStore

DEFAULT_METRICS = ("contacts", "contacts_per_1000", "first_contact_resolution", "verified_resolution", "electronic_share")


def cmd_seed(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    if settings.is_embedded:
        upgrade_database(engine)
    else:
        check_schema(engine)
    from sample_data.seed import seed_database

    regions = tuple(code.strip().zfill(2) for code in args.regions.split(",")) if args.regions else None
    report = seed_database(engine, contacts=args.contacts, days=args.days, seed=args.seed, regions=regions, progress=say)
    print(
        f"seeded {report.contacts} contacts, {report.referrals} referrals, {report.feedback} feedback "
        f"(generate {report.generate_seconds:.1f} s, write {report.write_seconds:.1f} s)"
    )
    return 0


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    check_schema(engine)
    command = args.users_command
    if command == "add":
        add_user(engine, args.email, role=args.role, name=args.name)
        print(f"{normalise_email(args.email)}: {args.role}")
    elif command == "list":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["email", "name", "role", "active", "places"])
        for row in list_users(engine):
            writer.writerow([safe_cell(row[k] if row[k] is not None else "") for k in ("email", "name", "role", "active", "places")])
    elif command in ("grant", "revoke"):
        # One municipality or one county, as codes are written in the reference data.
        municipality = normalise_municipality_code(args.municipality) if args.municipality else None
        region = args.county.zfill(2) if args.county else None
        if command == "grant":
            grant(engine, args.email, municipality=municipality, region=region)
            print(f"{normalise_email(args.email)}: may see {'municipality ' + municipality if municipality else 'county ' + str(region)}")
        else:
            removed = revoke(engine, args.email, municipality=municipality, region=region)
            print(f"{normalise_email(args.email)}: {removed} grant(s) removed")
    else:
        remove_user(engine, args.email)
        print(f"{normalise_email(args.email)}: deactivated, no grants")
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    check_schema(engine)
    if args.action == "prune":
        print(f"deleted {prune_audit(engine, keep_days=settings.audit_keep_days)} audit rows older than {settings.audit_keep_days} days")
        return 0
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at", "email", "action", "page", "detail"])
    for row in audit_rows(engine, limit=10_000_000):
        writer.writerow([row["at"].isoformat(), *(safe_cell(row[k] or "") for k in ("email", "action", "page", "detail"))])
    if args.output:
        Path(args.output).write_text(out.getvalue(), encoding="utf-8")
    else:
        sys.stdout.write(out.getvalue())
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    check_schema(engine)
    store = FactStore(engine, settings)
    store.refresh()
    metrics = list(REGISTRY) if args.metric == ["all"] else (args.metric or list(DEFAULT_METRICS))
    filters = Filters(
        start=args.date_from,
        end=args.date_to,
        municipalities=tuple(normalise_municipality_code(code) for code in args.municipality or ()),
    )
    by = [args.by] if args.by else []
    scope = Scope.everything()
    if args.as_user:  # the figures that person sees on the pages: their scope, at the same exit
        user = find_user(engine, args.as_user)
        if user is None:
            raise AccessError(f"no active user {args.as_user!r} (ohjaustaulu users list)")
        scope = user.scope
    result = answer(store, MetricsRequest.of(metrics, filters, by=by, scope=scope, publication=args.publication))
    if args.publication:  # said where a person reads it, not inside the data
        print("ohjaustaulu: counts perturbed for publication (cell-key method, docs/privacy.md)", file=sys.stderr)
    if args.format == "json":
        print(metrics_json(result, by=by, store=store, perturbed=args.publication))
    else:
        sys.stdout.write(metrics_csv(result, by=by, store=store, language=args.language, metrics=[get_metric(m).key for m in metrics]))
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """The board report as a PDF (figures perturbed for publication, as a public paper needs)."""
    import time

    from dashboard.report import ReportRequest, build_report

    if (args.compare_from is None) != (args.compare_to is None):
        raise ValueError("give both --compare-from and --compare-to, or neither")
    if not Path(args.out).resolve().parent.is_dir():  # before seconds of work, not after
        raise ValueError(f"no folder for {args.out!r}")
    engine = engine_from_settings(settings)
    check_schema(engine)
    store = FactStore(engine, settings)
    store.refresh()
    region = args.region
    if region is not None and region not in store.municipalities["region_code"].unique().to_list():
        raise ValueError(f"unknown wellbeing services county {region!r}")
    started = time.perf_counter()
    pdf = build_report(store, ReportRequest(
        start=args.date_from, end=args.date_to, compare_start=args.compare_from, compare_end=args.compare_to,
        region=region, language=args.language,
    ))
    Path(args.out).write_bytes(pdf)
    print(f"{args.out}: {len(pdf):,} bytes in {time.perf_counter() - started:.1f} s".replace(",", " "))
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Daily publication-safe aggregates as Parquet: the feed a national roll-up reads."""
    from data_access.metrics.feed import write_aggregates

    out = Path(args.out)
    if out.exists() and not out.is_dir():  # before the store is read, not after
        raise ValueError(f"{out} is a file, not a folder")
    if args.date_to < args.date_from:
        raise ValueError(f"the period ends ({args.date_to}) before it starts ({args.date_from})")
    if not settings.publication_ready:
        raise ValueError("set OHJAUSTAULU_PUBLICATION_KEY to the county's own secret before exporting: the demo key is public")
    engine = engine_from_settings(settings)
    check_schema(engine)
    store = FactStore(engine, settings)
    store.refresh()
    rows = write_aggregates(store, start=args.date_from, end=args.date_to, folder=out)
    print("ohjaustaulu: counts perturbed for publication (cell-key method, docs/privacy.md)", file=sys.stderr)
    for name, count in rows.items():
        print(f"{out / name}.parquet: {count} rows")
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    engine = prepare_database(settings)
    profile = load_profile(Path(args.profile) if args.profile else None)
    reports, failures = [], []
    for name in args.files:
        try:
            reports.append(ingest_file(engine, Path(name), kind=args.kind, source_system=args.source_system, profile=profile))
        except FileError as exc:
            failures.append(str(exc))
            print(f"ohjaustaulu: {exc}", file=sys.stderr)
    if args.json:
        payload = [r.as_dict() for r in reports]
        print(json.dumps(payload[0] if len(payload) == 1 and not failures else {"files": payload, "failed": failures}, ensure_ascii=False))
    else:
        for report in reports:
            print(report.text())
    return 2 if failures else 0


def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    engine = prepare_database(settings)
    folder = Path(args.folder)
    if not folder.is_dir():
        raise FileError(f"{folder}: not a folder")
    watcher = Watcher(
        engine, folder, load_profile(Path(args.profile) if args.profile else None), kind=args.kind,
        source_system=args.source_system, settle_seconds=args.settle, done_after_seconds=args.done_after,
    )

    def show(path: Path, result) -> None:
        print(result.text() if hasattr(result, "text") else result, flush=True)

    say(f"watching {folder} (Ctrl+C to stop); loaded files move to done/, refused ones to failed/ with the reason")
    deadline = None if args.max_seconds is None else time.monotonic() + args.max_seconds
    with contextlib.suppress(KeyboardInterrupt):
        watch(watcher, interval=args.interval, report=show, until=lambda: deadline is not None and time.monotonic() > deadline)
    return 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    engine = prepare_database(settings)
    from sample_data.simulate import simulate

    written = simulate(engine, rate=args.rate, duration=args.duration, seed=args.seed, say=say)
    print(f"simulated {written} contacts")
    return 0


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    engine = prepare_database(settings)
    if args.action == "reprocess":
        profile = load_profile(Path(args.profile) if args.profile else None)
        for report in reprocess(engine, profile=profile, source_system=args.source_system):
            print(report.text())
        return 0
    frame = quarantine_frame(engine)
    if args.action == "export":
        target = Path(args.output or "quarantine.csv")
        safe_frame(frame).write_csv(target)
        print(f"wrote {frame.height} quarantined rows to {target}")
        return 0
    for row in frame.iter_rows(named=True):
        print(f"#{row['id']} {row['file_name']}:{row['line_number']} [{row['kind']}] {row['reasons']}")
    print(f"{frame.height} rows waiting in quarantine")
    return 0


def cmd_reference_load(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    check_schema(engine)
    count = load_population_file(engine, Path(args.file), source=args.source)
    print(f"loaded {count} population rows from {args.file}")
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    engine = engine_from_settings(settings)
    if args.action == "upgrade":
        upgrade_database(engine)
        load_shipped_reference(engine)
    print(f"schema revision {current_revision(engine) or 'empty'} (code needs {head_revision()})")
    return 0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ohjaustaulu", description="Client guidance dashboard and tools.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the dashboard")
    add_run_arguments(run)  # `ohjaustaulu run` itself is handled in dashboard/launch.py
    run.set_defaults(handler=lambda args, _settings: launch_run(args))

    seed = commands.add_parser("seed", help="add realistic sample data")
    seed.add_argument("--contacts", type=int, default=300_000)
    seed.add_argument("--days", type=int, default=730)
    seed.add_argument("--seed", type=int, default=2025)
    seed.add_argument("--regions", help="county codes separated by commas, e.g. 01,18")
    seed.set_defaults(handler=cmd_seed)

    metrics = commands.add_parser("metrics", help="print metric values as CSV or JSON")
    metrics.add_argument("--from", dest="date_from", type=_date, required=True)
    metrics.add_argument("--to", dest="date_to", type=_date, required=True)
    metrics.add_argument("--municipality", action="append", help="municipality code (repeatable)")
    metrics.add_argument("--by", help="grouping dimension, e.g. municipality, channel, month")
    metrics.add_argument("--metric", action="append", help=f"metric key (repeatable, or 'all'): {', '.join(REGISTRY)}")
    metrics.add_argument("--format", choices=("csv", "json"), default="csv")
    metrics.add_argument("--language", choices=("fi", "sv", "en"), default="fi", help="language of name columns")
    metrics.add_argument("--as-user", help="only what this user (e-mail) may see")
    metrics.add_argument(
        "--publication", action="store_true",
        help="figures for outside the county (a board paper): every count perturbed by the cell-key method",
    )
    metrics.set_defaults(handler=cmd_metrics)

    report = commands.add_parser("report", help="the board report as PDF (figures perturbed for publication)")
    report.add_argument("--from", dest="date_from", type=_date, required=True)
    report.add_argument("--to", dest="date_to", type=_date, required=True)
    report.add_argument("--compare-from", type=_date, help="comparison period (default: the months or days just before)")
    report.add_argument("--compare-to", type=_date)
    report.add_argument("--region", help="wellbeing services county code (default: every county)")
    report.add_argument("--lang", "--language", dest="language", choices=("fi", "sv", "en"), default="fi")
    report.add_argument("--out", required=True, help="the PDF file to write")
    report.set_defaults(handler=cmd_report)

    export = commands.add_parser("export", help="daily publication-safe aggregates as Parquet (for a national roll-up)")
    export.add_argument("what", choices=("aggregates",))
    export.add_argument("--from", dest="date_from", type=_date, required=True)
    export.add_argument("--to", dest="date_to", type=_date, required=True)
    export.add_argument("--out", required=True, help="folder for the Parquet files and meta.json (made if missing)")
    export.set_defaults(handler=cmd_export)

    users = commands.add_parser("users", help="who may sign in, their role and the places they may see")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    add = users_commands.add_parser("add", help="add a user or change their role")
    add.add_argument("email")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--name")
    users_commands.add_parser("list", help="every user, their role and places")
    for name, text in (("grant", "let a user see a municipality or a county"), ("revoke", "take a grant away")):
        place = users_commands.add_parser(name, help=text)
        place.add_argument("email")
        where = place.add_mutually_exclusive_group(required=True)
        where.add_argument("--municipality", help="municipality code, e.g. 853")
        where.add_argument("--county", help="wellbeing services county code, e.g. 02")
    remove = users_commands.add_parser("remove", help="deactivate a user and take every grant away (the audit trail keeps them)")
    remove.add_argument("email")
    users.set_defaults(handler=cmd_users)

    audit_cmd = commands.add_parser("audit", help="the audit trail")
    audit_cmd.add_argument("action", choices=("export", "prune"))
    audit_cmd.add_argument("--output", help="file for export (CSV; default: standard output)")
    audit_cmd.set_defaults(handler=cmd_audit)

    reference = commands.add_parser("reference", help="reference data")
    reference_commands = reference.add_subparsers(dest="reference_command", required=True)
    load = reference_commands.add_parser("load", help="load an official population table (code, year, population)")
    load.add_argument("file")
    load.add_argument("--source", help="where the figures come from, e.g. 'Statistics Finland 31.12.2025'")
    load.set_defaults(handler=cmd_reference_load)

    ingest = commands.add_parser("ingest", help="load export files (CSV, JSON Lines, JSON, Parquet)")
    ingest.add_argument("files", nargs="+")
    ingest.add_argument("--kind", choices=tuple(SPECS))
    ingest.add_argument("--source-system", help="source system for rows that do not name one")
    ingest.add_argument("--profile", help="mapping profile (TOML), e.g. sample_data/profiles/legacy_fi.toml")
    ingest.add_argument("--json", action="store_true", help="print the batch report as JSON")
    ingest.set_defaults(handler=cmd_ingest)

    watch_cmd = commands.add_parser("watch", help="load files dropped into a folder as they arrive")
    watch_cmd.add_argument("folder")
    watch_cmd.add_argument("--kind", choices=tuple(SPECS))
    watch_cmd.add_argument("--source-system")
    watch_cmd.add_argument("--profile")
    watch_cmd.add_argument("--interval", type=float, default=1.0, help="seconds between looks at the folder")
    watch_cmd.add_argument("--settle", type=float, default=2.0, help="seconds a file must stay unchanged before it is read")
    watch_cmd.add_argument(
        "--done-after", type=float, default=60.0,
        help="seconds a loaded file whose writer cannot be seen (a network share, another user's file) stays unchanged before it moves to done/; it is loaded again if it changes",
    )
    watch_cmd.add_argument("--max-seconds", type=float, help="stop after this long (default: run until stopped)")
    watch_cmd.set_defaults(handler=cmd_watch)

    simulate_cmd = commands.add_parser("simulate", help="stream live synthetic contacts and referrals")
    simulate_cmd.add_argument("--rate", type=float, default=2.0, help="contacts per second on average")
    simulate_cmd.add_argument("--duration", type=float, default=60.0, help="seconds to run")
    simulate_cmd.add_argument("--seed", type=int)
    simulate_cmd.set_defaults(handler=cmd_simulate)

    quarantine = commands.add_parser("quarantine", help="rows refused at ingest")
    quarantine.add_argument("action", choices=("list", "export", "reprocess"))
    quarantine.add_argument("--output", help="file for export (CSV)")
    quarantine.add_argument("--profile", help="mapping profile for reprocess")
    quarantine.add_argument("--source-system")
    quarantine.set_defaults(handler=cmd_quarantine)

    db = commands.add_parser("db", help="database schema")
    db.add_argument("action", choices=("upgrade", "check"))
    db.set_defaults(handler=cmd_db)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
        return args.handler(args, settings)
    except (AccessError, DatabaseNeedsUpgrade, DatabaseUnavailable, MetricError, ReferenceFileError, ProfileError, FileError, ValueError, OSError) as exc:
        print(f"ohjaustaulu: {exc}", file=sys.stderr)
        return 2
    except sa.exc.DBAPIError as exc:  # a database that went away or a file that is not one
        print(f"ohjaustaulu: {unavailable(exc, Settings().resolved_database_url)}", file=sys.stderr)
        return 2
