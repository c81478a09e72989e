"""Lifecycle events of device templates: the scripts each event runs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 08:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('device_templates') as batch:
        batch.add_column(sa.Column('lifecycle_events', sa.Text(),
                                   nullable=True))
