"""drop the contact (client_id, occurred_at) index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Re-contacts within the verification window are found in the fact store (snapshot.py), not
by a query, so no statement reads this index. Keeping it up to date was the largest single
cost of loading contacts: client keys arrive in random order, so each insert touches a
random page. A million-row COPY into PostgreSQL took 23.5 s with it and 14.8 s without.
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_contact_client_occurred', table_name='contact')


def downgrade() -> None:
    op.create_index('ix_contact_client_occurred', 'contact', ['client_id', 'occurred_at'], unique=False)
