"""Getting a database ready: the embedded one is created and filled, a configured one is checked."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col

from data_access.config import Settings
from data_access.engine import check_schema, create_db_engine, engine_from_settings, unavailable, upgrade_database
from data_access.models import Contact, Municipality
from data_access.reference import load_shipped_reference


def prepare_database(settings: Settings) -> Engine:
    """Return an engine on a database that is ready to use.

    The embedded SQLite database is migrated and given the shipped reference data. A
    configured database is only checked: schema changes to a production database are an
    explicit step (``ohjaustaulu db upgrade``). Sample data on a first run is the ``run``
    command's business (dashboard/serve.py), not the data layer's.
    """
    engine = engine_from_settings(settings)
    try:
        if not settings.is_embedded:
            check_schema(engine)
            return engine
        upgrade_database(engine)
        with engine.connect() as conn:
            has_reference = conn.execute(sa.select(sa.func.count()).select_from(Municipality)).scalar()
        if not has_reference:
            load_shipped_reference(engine)
    except sa.exc.DBAPIError as exc:  # a corrupt or unreadable file, a server that refuses
        engine.dispose()
        raise unavailable(exc, engine) from exc
    engine.dispose()
    # From here on the file must exist: deleted under a running server, it is missing, not
    # silently recreated empty.
    return create_db_engine(settings.resolved_database_url, create_missing=False)


def holds_contacts(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(col(Contact.id)).limit(1)).first() is not None
