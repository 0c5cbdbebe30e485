"""row-level security on PostgreSQL: a reporting role sees only the granted municipalities

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A second line behind the scope applied at the registry's one exit. A role that is not the
tables' owner (a reporting or BI role with SELECT) sees only the rows of the municipalities
granted to the person named in the session setting ``ohjaustaulu.user``: without it, none.
The owner (the role the dashboard and ingest run as) is not restricted: the dashboard keeps
one store for all its users and scopes every figure as it leaves. Grants are read through a
SECURITY DEFINER function, so the reporting role needs no right on the user tables.
SQLite has no row-level security: nothing is done there.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# (table, the condition a row must meet)
POLICIES = {
    "contact": "municipality_code IN (SELECT ohjaustaulu_visible_municipalities())",
    "feedback": "municipality_code IN (SELECT ohjaustaulu_visible_municipalities())",
    "guidance_case": "municipality_code IN (SELECT ohjaustaulu_visible_municipalities())",
    # A referral or measurement is seen with its contact or case (whose own policy applies).
    "referral": "EXISTS (SELECT 1 FROM contact c WHERE c.source_system = referral.source_system AND c.contact_id = referral.contact_id)",
    "measurement": "EXISTS (SELECT 1 FROM guidance_case g WHERE g.source_system = measurement.source_system AND g.case_id = measurement.case_id)",
}


VISIBLE_MUNICIPALITIES = """
    CREATE FUNCTION ohjaustaulu_visible_municipalities() RETURNS SETOF varchar
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = <schema>, pg_temp AS $$
        SELECT g.municipality_code FROM user_grant g JOIN app_user u ON u.id = g.user_id
         WHERE u.active AND u.email = lower(current_setting('ohjaustaulu.user', true))
           AND g.municipality_code IS NOT NULL
        UNION
        SELECT m.code FROM user_grant g JOIN app_user u ON u.id = g.user_id
          JOIN municipality m ON m.region_code = g.region_code
         WHERE u.active AND u.email = lower(current_setting('ohjaustaulu.user', true))
    $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    schema = bind.dialect.identifier_preparer.quote(bind.execute(sa.text("select current_schema()")).scalar())
    # A SECURITY DEFINER function runs with its own search path: this schema, nothing the caller sets.
    op.execute(VISIBLE_MUNICIPALITIES.replace("<schema>", schema))
    for table, condition in POLICIES.items():
        op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY granted_places ON "{table}" FOR SELECT USING ({condition})')


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in POLICIES:
        op.execute(f'DROP POLICY IF EXISTS granted_places ON "{table}"')
        op.execute(f'ALTER TABLE "{table}" DISABLE ROW LEVEL SECURITY')
    op.execute("DROP FUNCTION IF EXISTS ohjaustaulu_visible_municipalities()")
