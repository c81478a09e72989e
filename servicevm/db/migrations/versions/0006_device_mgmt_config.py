"""Devices keep the configuration their management driver last read back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 11:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('mgmt_config', sa.Text(), nullable=True))
