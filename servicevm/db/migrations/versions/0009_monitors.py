"""Liveness monitors and VIM call counts: each device's last monitor
result, and each conductor's count of the VIM calls it made.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 14:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('devices') as batch:
        batch.add_column(sa.Column('monitor', sa.Text(), nullable=True))
    with op.batch_alter_table('conductors') as batch:
        batch.add_column(sa.Column('vim_calls', sa.Text(), nullable=True))
