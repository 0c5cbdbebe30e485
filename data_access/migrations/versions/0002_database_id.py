"""database identity for snapshot files

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

A saved snapshot of the fact frames belongs to one database. The data version alone
cannot tell two databases apart (a re-created database counts from zero again), so the
data_version row carries a random identity, made once.
"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('data_version') as batch:
        batch.add_column(sa.Column('database_id', sa.String(length=32), nullable=True))
    data_version = sa.table('data_version', sa.column('database_id', sa.String))
    op.execute(data_version.update().values(database_id=uuid.uuid4().hex))


def downgrade() -> None:
    with op.batch_alter_table('data_version') as batch:
        batch.drop_column('database_id')
