import datetime as dt

import pytest
import sqlalchemy as sa

from data_access.engine import (
    DatabaseNeedsUpgrade,
    check_schema,
    create_db_engine,
    current_revision,
    data_version,
    head_revision,
    upgrade_database,
)
from data_access.models import Contact
from tests.factories import add_contacts


def test_migrations_build_the_schema_from_empty(database_url):
    engine = create_db_engine(database_url)
    with pytest.raises(DatabaseNeedsUpgrade, match="ohjaustaulu db upgrade"):
        check_schema(engine)
    upgrade_database(engine)
    assert current_revision(engine) == head_revision()
    check_schema(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"contact", "referral", "feedback", "municipality", "population", "region", "unit",
            "ingest_batch", "quarantined_row", "data_version", "guidance_case", "measurement"} <= tables
    indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("contact")}
    assert {"ix_contact_occurred_at", "ix_contact_municipality_occurred", "ix_contact_change_seq"} <= indexes
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'wal.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2025, 3, 30, 0, 59, tzinfo=dt.UTC),  # just before the spring change (03.00 -> 04.00 local)
        dt.datetime(2025, 3, 30, 1, 0, tzinfo=dt.UTC),
        dt.datetime(2025, 10, 26, 0, 30, tzinfo=dt.UTC),  # 03.30 local, first of the two
        dt.datetime(2025, 10, 26, 1, 30, tzinfo=dt.UTC),  # 03.30 local, second
        dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=3))),
    ],
)
def test_timestamps_round_trip_as_utc(engine, moment):
    add_contacts(engine, [{"occurred_at": moment, "contact_id": "x"}])
    with engine.connect() as conn:
        stored = conn.execute(sa.select(Contact.occurred_at)).scalar_one()
    assert stored.utcoffset() == dt.timedelta(0)
    assert stored == moment


def test_naive_timestamps_are_refused(engine):
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(
            sa.insert(Contact.__table__).values(
                source_system="s", contact_id="1", occurred_at=dt.datetime(2025, 1, 1), municipality_code="853", channel="phone"
            )
        )


def test_natural_key_is_unique(engine):
    add_contacts(engine, [{"occurred_at": "2025-01-01T10:00:00", "contact_id": "same"}])
    # The bulk path talks to the driver directly, so the driver's own error arrives.
    with pytest.raises(engine.dialect.loaded_dbapi.IntegrityError):
        add_contacts(engine, [{"occurred_at": "2025-01-02T10:00:00", "contact_id": "same"}])


def test_data_version_moves_with_every_write(engine):
    before = data_version(engine)
    add_contacts(engine, [{"occurred_at": "2025-01-01T10:00:00"} for _ in range(3)])
    assert data_version(engine) == before + 3


def test_migrated_schema_is_what_the_models_declare(database_url):
    """Migrations and models tell the same story (indexes, constraints, foreign keys, types).
    SQLite's one difference is the BIGINT spelling of a 64-bit key column, which it stores alike."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    engine = create_db_engine(database_url)
    upgrade_database(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    if engine.dialect.name == "sqlite":
        # column changes come as lists of ("modify_...", ...) tuples
        differences = [d for d in differences if not (isinstance(d, list) and all(op[0] == "modify_type" for op in d))]
    engine.dispose()
    assert differences == []
