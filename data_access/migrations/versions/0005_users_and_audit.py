"""users, the places granted to them, and the audit trail

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Authorisation lives in the product's own tables, not in the sign-in provider: the provider
says who someone is (an e-mail address), these tables say what they may see. Deny by
default: a person with no row, or no grant, sees nothing.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(length=254), nullable=False, unique=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role in ('viewer', 'analyst', 'admin')", name="ck_app_user_role"),
    )
    op.create_table(
        "user_grant",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("app_user.id"), nullable=False, index=True),
        sa.Column("municipality_code", sa.String(length=3), nullable=True),
        sa.Column("region_code", sa.String(length=2), nullable=True),
        sa.CheckConstraint("(municipality_code is null) <> (region_code is null)", name="ck_user_grant_one_place"),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("page", sa.String(length=60), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("user_grant")
    op.drop_table("app_user")
