"""Service bindings say whether the device is configured for the service,
and whether the service owns the device.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:00:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('service_device_bindings') as batch:
        batch.add_column(sa.Column('status', sa.String(32), nullable=False,
                                   server_default='ACTIVE'))
        batch.add_column(sa.Column('owner', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
