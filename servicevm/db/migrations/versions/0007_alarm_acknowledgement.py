"""Alarms (events with result ``alarm``) can be acknowledged.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 11:30:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('events') as batch:
        batch.add_column(sa.Column('acknowledged_at', sa.DateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('acknowledged_by', sa.String(255),
                                   nullable=True))
        batch.create_index('ix_events_result', ['result', 'id'])
