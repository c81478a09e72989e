"""Schema migrations (alembic) run by servicevm-db-manage."""

import os

from alembic import command as alembic_command
from alembic import config as alembic_config
from alembic import migration as alembic_migration

from servicevm.db.sqlalchemy import enginefacade

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), 'migrations')


def _config(engine=None):
    config = alembic_config.Config()
    config.set_main_option('script_location', MIGRATIONS_DIR)
    config.attributes['engine'] = engine or enginefacade.get_engine()
    return config


def upgrade(revision='head', engine=None):
    alembic_command.upgrade(_config(engine), revision)


def downgrade(revision, engine=None):
    alembic_command.downgrade(_config(engine), revision)


def stamp(revision='head', engine=None):
    alembic_command.stamp(_config(engine), revision)


def revision(message, autogenerate=True, engine=None):
    alembic_command.revision(_config(engine), message=message,
                             autogenerate=autogenerate)


def version(engine=None):
    engine = engine or enginefacade.get_engine()
    with engine.connect() as connection:
        return alembic_migration.MigrationContext.configure(
            connection).get_current_revision()
