"""The Keystone trust through which the conductor acts in a device's
project.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:30:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('trust_id', sa.String(length=64),
                                   nullable=True))
