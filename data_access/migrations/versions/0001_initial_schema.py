"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Types are spelled out here rather than imported from models, so that later model
changes cannot rewrite history.
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('data_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.execute("INSERT INTO data_version (id, seq) VALUES (1, 0)")
    op.create_table('ingest_batch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('file_name', sa.String(), nullable=False),
    sa.Column('source_system', sa.String(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rows_read', sa.Integer(), nullable=False),
    sa.Column('rows_inserted', sa.Integer(), nullable=False),
    sa.Column('rows_updated', sa.Integer(), nullable=False),
    sa.Column('rows_unchanged', sa.Integer(), nullable=False),
    sa.Column('rows_quarantined', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('message', sa.String(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('region',
    sa.Column('code', sa.String(length=2), nullable=False),
    sa.Column('name_fi', sa.String(), nullable=False),
    sa.Column('name_sv', sa.String(), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('contact',
    sa.Column('id', BIGINT_PK, nullable=False),
    sa.Column('source_system', sa.String(length=100), nullable=False),
    sa.Column('contact_id', sa.String(length=100), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('municipality_code', sa.String(length=3), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('resolved_first_contact', sa.Boolean(), nullable=True),
    sa.Column('client_id', sa.String(length=100), nullable=True),
    sa.Column('unit_code', sa.String(length=100), nullable=True),
    sa.Column('contact_type', sa.String(length=3), nullable=True),
    sa.Column('initiator', sa.String(length=30), nullable=True),
    sa.Column('service_line', sa.String(length=30), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=True),
    sa.Column('professional_group', sa.String(length=30), nullable=True),
    sa.Column('age_band', sa.String(length=5), nullable=True),
    sa.Column('outcome', sa.String(length=30), nullable=True),
    sa.Column('queue_seconds', sa.Integer(), nullable=True),
    sa.Column('callback_requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('callback_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('case_id', sa.String(length=100), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['ingest_batch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_system', 'contact_id', name='uq_contact_natural_key')
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_change_seq'), ['change_seq'], unique=False)
        batch_op.create_index('ix_contact_client_occurred', ['client_id', 'occurred_at'], unique=False)
        batch_op.create_index('ix_contact_municipality_occurred', ['municipality_code', 'occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_occurred_at'), ['occurred_at'], unique=False)

    op.create_table('feedback',
    sa.Column('id', BIGINT_PK, nullable=False),
    sa.Column('source_system', sa.String(length=100), nullable=False),
    sa.Column('feedback_id', sa.String(length=100), nullable=False),
    sa.Column('contact_id', sa.String(length=100), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=True),
    sa.Column('municipality_code', sa.String(length=3), nullable=False),
    sa.Column('recommend_score', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['ingest_batch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_system', 'feedback_id', name='uq_feedback_natural_key')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_answered_at'), ['answered_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_change_seq'), ['change_seq'], unique=False)

    op.create_table('guidance_case',
    sa.Column('id', BIGINT_PK, nullable=False),
    sa.Column('source_system', sa.String(length=100), nullable=False),
    sa.Column('case_id', sa.String(length=100), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('municipality_code', sa.String(length=3), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('process', sa.String(length=30), nullable=True),
    sa.Column('identified_by', sa.String(length=30), nullable=True),
    sa.Column('reasons', sa.String(), nullable=True),
    sa.Column('consent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('plan_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('follow_up_due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('follow_up_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('close_reason', sa.String(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['ingest_batch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_system', 'case_id', name='uq_case_natural_key')
    )
    with op.batch_alter_table('guidance_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_guidance_case_change_seq'), ['change_seq'], unique=False)
        batch_op.create_index(batch_op.f('ix_guidance_case_opened_at'), ['opened_at'], unique=False)

    op.create_table('measurement',
    sa.Column('id', BIGINT_PK, nullable=False),
    sa.Column('source_system', sa.String(length=100), nullable=False),
    sa.Column('measurement_id', sa.String(length=100), nullable=False),
    sa.Column('case_id', sa.String(length=100), nullable=False),
    sa.Column('measured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('instrument', sa.String(length=20), nullable=False),
    sa.Column('phase', sa.String(length=10), nullable=False),
    sa.Column('domain', sa.String(length=20), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['ingest_batch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_system', 'measurement_id', name='uq_measurement_natural_key')
    )
    with op.batch_alter_table('measurement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_measurement_change_seq'), ['change_seq'], unique=False)

    op.create_table('municipality',
    sa.Column('code', sa.String(length=3), nullable=False),
    sa.Column('name_fi', sa.String(), nullable=False),
    sa.Column('name_sv', sa.String(), nullable=False),
    sa.Column('region_code', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['region_code'], ['region.code'], ),
    sa.PrimaryKeyConstraint('code')
    )
    with op.batch_alter_table('municipality', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_municipality_region_code'), ['region_code'], unique=False)

    op.create_table('quarantined_row',
    sa.Column('id', BIGINT_PK, nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('file_name', sa.String(), nullable=False),
    sa.Column('line_number', sa.Integer(), nullable=False),
    sa.Column('raw', sa.String(), nullable=False),
    sa.Column('reasons', sa.String(), nullable=False),
    sa.Column('reprocessed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['ingest_batch.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quarantined_row', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantined_row_batch_id'), ['batch_id'], unique=False)

    op.create_table('referral',
    sa.Column('id', BIGINT_PK, nullable=False),
    sa.Column('source_system', sa.String(length=100), nullable=False),
    sa.Column('referral_id', sa.String(length=100), nullable=False),
    sa.Column('contact_id', sa.String(length=100), nullable=False),
    sa.Column('referred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('destination', sa.String(length=40), nullable=False),
    sa.Column('service_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('change_seq', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['batch_id'], ['ingest_batch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source_system', 'referral_id', name='uq_referral_natural_key')
    )
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_referral_change_seq'), ['change_seq'], unique=False)
        batch_op.create_index('ix_referral_contact', ['source_system', 'contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referral_referred_at'), ['referred_at'], unique=False)

    op.create_table('population',
    sa.Column('municipality_code', sa.String(length=3), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('population', sa.Integer(), nullable=False),
    sa.Column('source', sa.String(), nullable=False),
    sa.ForeignKeyConstraint(['municipality_code'], ['municipality.code'], ),
    sa.PrimaryKeyConstraint('municipality_code', 'year')
    )
    op.create_table('unit',
    sa.Column('code', sa.String(), nullable=False),
    sa.Column('name', sa.String(), nullable=False),
    sa.Column('municipality_code', sa.String(), nullable=True),
    sa.ForeignKeyConstraint(['municipality_code'], ['municipality.code'], ),
    sa.PrimaryKeyConstraint('code')
    )


def downgrade() -> None:
    op.drop_table('unit')
    op.drop_table('population')
    with op.batch_alter_table('referral', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referral_referred_at'))
        batch_op.drop_index('ix_referral_contact')
        batch_op.drop_index(batch_op.f('ix_referral_change_seq'))

    op.drop_table('referral')
    with op.batch_alter_table('quarantined_row', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantined_row_batch_id'))

    op.drop_table('quarantined_row')
    with op.batch_alter_table('municipality', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_municipality_region_code'))

    op.drop_table('municipality')
    with op.batch_alter_table('measurement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_measurement_change_seq'))

    op.drop_table('measurement')
    with op.batch_alter_table('guidance_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_guidance_case_opened_at'))
        batch_op.drop_index(batch_op.f('ix_guidance_case_change_seq'))

    op.drop_table('guidance_case')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_change_seq'))
        batch_op.drop_index(batch_op.f('ix_feedback_answered_at'))

    op.drop_table('feedback')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contact_occurred_at'))
        batch_op.drop_index('ix_contact_municipality_occurred')
        batch_op.drop_index('ix_contact_client_occurred')
        batch_op.drop_index(batch_op.f('ix_contact_change_seq'))

    op.drop_table('contact')
    op.drop_table('region')
    op.drop_table('ingest_batch')
    op.drop_table('data_version')
