"""Operation control: the operation holding a device, cancel, the status
to restore on rollback, and irreversible steps.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:10:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('operation_id', sa.String(length=36),
                                   nullable=True))
    with op.batch_alter_table('operations') as batch:
        batch.add_column(sa.Column('cancelled', sa.Boolean(),
                                   nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('previous_status', sa.String(length=32),
                                   nullable=True))
    with op.batch_alter_table('operation_steps') as batch:
        batch.add_column(sa.Column('reversible', sa.Boolean(),
                                   nullable=False,
                                   server_default=sa.true()))
