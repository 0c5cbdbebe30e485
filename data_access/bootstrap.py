"""Getting a database ready: the embedded one is created and filled, a configured one is checked."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from data_access.config import Settings
from data_access.engine import check_schema, engine_from_settings, upgrade_database
from data_access.models import Contact, Municipality
from data_access.reference import load_shipped_reference


def prepare_database(
    settings: Settings, *, seed: bool = True, progress: Callable[[str], None] | None = None
) -> Engine:
    """Return an engine on a database that is ready to use.

    The embedded SQLite database is migrated and, when it holds no contacts and ``seed``,
    filled with sample data. A configured database is only checked: schema changes to a
    production database are an explicit step (``ohjaustaulu db upgrade``).
    """
    say = progress or (lambda _msg: None)
    engine = engine_from_settings(settings)
    if not settings.is_embedded:
        check_schema(engine)
        return engine
    upgrade_database(engine)
    with engine.connect() as conn:
        has_reference = conn.execute(sa.select(sa.func.count()).select_from(Municipality)).scalar()
        has_contacts = conn.execute(sa.select(Contact.id).limit(1)).first() is not None
    if not has_reference:
        load_shipped_reference(engine)
    if seed and not has_contacts and settings.seed_contacts:
        from sample_data.seed import seed_database

        say(f"Creating sample data: {settings.seed_contacts:,} contacts over {settings.seed_days} days…")
        report = seed_database(engine, contacts=settings.seed_contacts, days=settings.seed_days, progress=say)
        say(f"Sample data ready in {report.generate_seconds + report.write_seconds:.1f} s.")
    return engine
