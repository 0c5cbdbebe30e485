"""The command line, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys

import polars as pl
import pytest

from dashboard.cli import main
from data_access.config import Settings
from data_access.engine import create_db_engine
from data_access.metrics import Filters, compute
from data_access.snapshot import FactStore


@pytest.fixture
def seeded_url(database_url, monkeypatch, capsys):
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", database_url)
    assert main(["db", "upgrade"]) == 0
    assert main(["seed", "--contacts", "6000", "--days", "120", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "seeded 6000 contacts" in out
    return database_url


def _window() -> tuple[str, str]:
    today = dt.date.today()
    return (today - dt.timedelta(days=119)).isoformat(), today.isoformat()


def test_metrics_csv_by_municipality_matches_the_registry(seeded_url, capsys):
    start, end = _window()
    assert main(["metrics", "--from", start, "--to", end, "--by", "municipality", "--format", "csv"]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out), schema_overrides={"municipality": pl.String}, infer_schema=False)
    for column in ("municipality", "municipality_name", "contacts", "contacts_per_1000", "first_contact_resolution", "electronic_share"):
        assert column in table.columns
    assert table.height == 74  # every municipality of the five counties
    assert "Halsua" in table["municipality_name"].to_list()

    store = FactStore(create_db_engine(seeded_url), Settings(database_url=seeded_url))
    store.refresh()
    direct = compute(
        store, metrics=["contacts", "first_contact_resolution"],
        filters=Filters(start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end)), by=["municipality"],
    )
    turku_cli = table.filter(pl.col("municipality") == "853").row(0, named=True)
    turku = direct.filter(pl.col("municipality") == "853")
    assert int(turku_cli["contacts"]) == turku.filter(pl.col("metric") == "contacts")["value"].item()
    assert float(turku_cli["first_contact_resolution"]) == pytest.approx(
        turku.filter(pl.col("metric") == "first_contact_resolution")["value"].item(), abs=1e-6
    )
    # Small municipalities show "<5" for suppressed counts, never 0; a count hidden only to
    # protect one of them reads "..", never "<5".
    hidden = table.filter(pl.col("suppressed").str.contains("contacts "))
    assert hidden.height > 0 and set(hidden["contacts"].to_list()) == {"<5", ".."}
    secondary = direct.filter((pl.col("metric") == "contacts") & pl.col("secondary"))["municipality"].to_list()
    assert set(hidden.filter(pl.col("contacts") == "..")["municipality"].to_list()) == set(secondary)


def test_metrics_json_for_one_municipality_with_leading_zero_dropped(seeded_url, capsys):
    start, end = _window()
    assert main(["metrics", "--from", start, "--to", end, "--municipality", "74", "--format", "json", "--metric", "contacts"]) == 0
    payload = json.loads(capsys.readouterr().out)
    (row,) = payload["rows"]
    assert row["metric"] == "contacts"
    assert row["suppressed"] == (row["value"] is None)


def test_metrics_json_by_unit_keeps_the_unit_code_and_the_metric_unit_apart(seeded_url, capsys):
    """The metric's own "unit" field wrote "count" over every row's unit code."""
    start, end = _window()
    period = ["metrics", "--from", start, "--to", end, "--metric", "contacts"]
    args = [*period, "--by", "unit"]
    assert main([*args, "--format", "csv"]) == 0
    table = pl.read_csv(io.StringIO(capsys.readouterr().out), infer_schema=False)
    assert main([*args, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["unit"] for row in rows} == set(table["unit"].to_list()) and len(rows) > 1
    assert {row["metric_unit"] for row in rows} == {"count"}
    assert main([*period, "--by", "channel", "--format", "json"]) == 0
    other = json.loads(capsys.readouterr().out)["rows"]
    assert {(row["unit"], row["metric_unit"]) for row in other} == {("count", "count")}  # as before, for other groupings


def test_reference_load_updates_population(seeded_url, tmp_path, capsys):
    path = tmp_path / "vaesto.csv"
    path.write_text("code;year;population\n18;2025;4 800\n074;2025;970\n", encoding="utf-8")
    assert main(["reference", "load", str(path), "--source", "Tilastokeskus 31.12.2025"]) == 0
    start, end = "2025-01-01", "2025-12-31"
    capsys.readouterr()
    assert main(["metrics", "--from", start, "--to", end, "--municipality", "018", "--metric", "contacts_per_1000", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["rows"]
    assert row["denominator"] == 4800


def test_bad_population_file_is_one_plain_sentence(seeded_url, tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("kunta,vuosi\n853,2025\n", encoding="utf-8")
    assert main(["reference", "load", str(path)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) code, population" in err and "bad.csv" in err


def test_unmigrated_database_says_what_to_do(database_url, monkeypatch, capsys):
    monkeypatch.setenv("OHJAUSTAULU_DATABASE_URL", database_url)
    assert main(["metrics", "--from", "2025-01-01", "--to", "2025-01-31"]) == 2
    assert "ohjaustaulu db upgrade" in capsys.readouterr().err


def test_period_ending_before_it_starts_is_refused(seeded_url, capsys):
    assert main(["metrics", "--from", "2025-02-01", "--to", "2025-01-01"]) == 2
    assert "before it starts" in capsys.readouterr().err


def _run_server(env_url: str, tmp_path) -> subprocess.CompletedProcess[str]:
    # Signed in: a PostgreSQL database without sign-in is refused before it is looked at.
    env = {**os.environ, "OHJAUSTAULU_DATABASE_URL": env_url, "OHJAUSTAULU_DATA_DIR": str(tmp_path), "OHJAUSTAULU_SIGN_IN": "true"}
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "run", "--port", "0", "--address", "127.0.0.1"],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_run_stops_with_one_sentence_when_the_database_cannot_be_used(postgres_server_url, tmp_path):
    """`ohjaustaulu run` hands over to the server before the data layer is imported; the
    server still refuses an unusable database before it listens."""
    import sqlalchemy as sa

    unreachable = sa.engine.make_url(postgres_server_url).set(port=1).render_as_string(hide_password=False)
    done = _run_server(unreachable, tmp_path)
    assert done.returncode == 2
    said = done.stderr.split("ohjaustaulu: ", 1)
    assert len(said) == 2 and "127.0.0.1" in said[1]
    assert "Traceback" not in done.stderr and "Uvicorn" not in done.stderr  # never listened


def test_run_refuses_a_production_database_without_its_schema(postgres_server_url, tmp_path):
    from tests.conftest import _drop_postgres, _fresh_postgres

    empty = _fresh_postgres(postgres_server_url)  # no tables yet
    try:
        done = _run_server(empty, tmp_path)
    finally:
        _drop_postgres(postgres_server_url, empty)
    assert done.returncode == 2
    assert "ohjaustaulu: " in done.stderr and "db upgrade" in done.stderr
    assert "Traceback" not in done.stderr and "Uvicorn" not in done.stderr


def test_run_listens_on_localhost_unless_told_and_takes_the_secrets_file(tmp_path):
    import argparse

    from dashboard.runner import add_run_arguments, server_command

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    default = server_command(parser.parse_args([]))
    assert default[default.index("--server.address") + 1] == "localhost" and "--secrets.files" not in default
    chosen = server_command(parser.parse_args(["--secrets", str(tmp_path / "s.toml"), "--address", "10.0.0.5"]))
    assert chosen[chosen.index("--secrets.files") + 1] == str((tmp_path / "s.toml").resolve())


def test_export_aggregates_writes_the_published_daily_figures(seeded_url, tmp_path, monkeypatch, capsys):
    from tests.conftest import COUNTY_SECRET

    monkeypatch.setenv("OHJAUSTAULU_PUBLICATION_KEY", COUNTY_SECRET)
    start, end = _window()
    out = tmp_path / "feed"
    assert main(["export", "aggregates", "--from", start, "--to", end, "--out", str(out)]) == 0
    assert "perturbed" in capsys.readouterr().err
    daily = pl.read_parquet(out / "municipality_day.parquet")
    meta = json.loads((out / "meta.json").read_text())
    assert meta["files"]["municipality_day.parquet"]["rows"] == daily.height
    assert set(daily.columns) >= {"day", "county", "municipality", "metric", "value", "suppressed"}
    assert daily["day"].dtype == pl.Date and daily["day"].min() >= dt.date.fromisoformat(start)

    store = FactStore(create_db_engine(seeded_url), Settings(database_url=seeded_url, publication_key=COUNTY_SECRET))
    store.refresh()
    period = Filters(start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end))
    published = compute(store, metrics=["contacts"], filters=period, by=["day", "municipality"], publication=True)
    exact = compute(store, metrics=["contacts"], filters=period, by=["day", "municipality"])
    feed = daily.filter(pl.col("metric") == "contacts").select("day", "municipality", "value", "suppressed")
    key = ["day", "municipality"]
    assert feed.sort(key).equals(published.select(*key, "value", "suppressed").sort(key)), "the registry's published figures"
    shown = feed.filter(~pl.col("suppressed"))["value"]
    assert ((shown == 0) | (shown >= store.settings.small_cell_threshold)).all(), "no small count leaves the county"
    compared = feed.join(exact.select(*key, pl.col("value").alias("exact")), on=key).filter(~pl.col("suppressed"))
    assert (compared["value"] != compared["exact"]).any(), "counts are perturbed, not exact"
    # The same rows give the same noise: a second export writes the same figures.
    assert main(["export", "aggregates", "--from", start, "--to", end, "--out", str(out)]) == 0
    assert pl.read_parquet(out / "municipality_day.parquet").equals(daily)
    assert pl.read_parquet(out / "destination_day.parquet")["metric"].unique().to_list() == ["referrals"]


def test_export_aggregates_refuses_a_file_and_a_reversed_period(seeded_url, tmp_path, monkeypatch, capsys):
    from tests.conftest import COUNTY_SECRET

    monkeypatch.setenv("OHJAUSTAULU_PUBLICATION_KEY", COUNTY_SECRET)
    start, end = _window()
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    assert main(["export", "aggregates", "--from", start, "--to", end, "--out", str(taken)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert taken.read_text() == "keep me"
    assert main(["export", "aggregates", "--from", end, "--to", start, "--out", str(tmp_path / "x")]) == 2
    assert "before it starts" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
