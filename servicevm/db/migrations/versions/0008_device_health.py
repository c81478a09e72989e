"""Device health: the conductors alive (to share the devices they watch),
and each device's last poll (when it was seen, its usage counters).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 11:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'conductors',
        sa.Column('host', sa.String(255), primary_key=True),
        sa.Column('created_at', sa.DateTime(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('last_seen', sa.DateTime(),
                                   nullable=True))
        batch.add_column(sa.Column('usage', sa.Text(), nullable=True))
