"""The models and the alembic migrations describe the same schema.

Run on a fresh SQLite file; the functional suite runs the same check on
PostgreSQL (servicevm/tests/functional/test_migrations.py).
"""

import os
import subprocess
import sys

from alembic import autogenerate
from alembic import migration as alembic_migration
from alembic import script as alembic_script
import fixtures
from oslo_db.sqlalchemy import test_migrations
from oslotest import base
import sqlalchemy as sa

from servicevm.db import migration
from servicevm.db.sqlalchemy import models


def head_revision():
    return alembic_script.ScriptDirectory(
        migration.MIGRATIONS_DIR).get_current_head()


def schema_diff(engine):
    """What alembic would have to change to turn the database into the
    models' schema (empty when they agree)."""
    with engine.connect() as connection:
        context = alembic_migration.MigrationContext.configure(
            connection, opts={'compare_type': True})
        return autogenerate.compare_metadata(context, models.Base.metadata)


class SQLiteFileMixin:

    def setUp(self):
        super().setUp()
        self.directory = self.useFixture(fixtures.TempDir()).path
        self.db_path = os.path.join(self.directory, 'servicevm.sqlite')
        self.db_url = 'sqlite:///%s' % self.db_path
        self.engine = sa.create_engine(self.db_url)
        self.addCleanup(self.engine.dispose)


class TestModelsMigrationsSyncSQLite(SQLiteFileMixin,
                                     test_migrations.ModelsMigrationsSync,
                                     base.BaseTestCase):

    def get_engine(self):
        return self.engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.upgrade('head', engine=engine)


class TestMigrationCommands(SQLiteFileMixin, base.BaseTestCase):

    def test_head_is_single(self):
        heads = alembic_script.ScriptDirectory(
            migration.MIGRATIONS_DIR).get_heads()
        self.assertEqual(1, len(heads), 'several alembic heads: %s' % heads)

    def test_upgrade_is_idempotent(self):
        migration.upgrade('head', engine=self.engine)
        self.assertEqual(head_revision(), migration.version(self.engine))
        tables = set(sa.inspect(self.engine).get_table_names())
        migration.upgrade('head', engine=self.engine)
        self.assertEqual(head_revision(), migration.version(self.engine))
        self.engine.dispose()
        self.assertEqual(tables,
                         set(sa.inspect(self.engine).get_table_names()))
        self.assertEqual([], schema_diff(self.engine))

    def test_comparison_sees_a_difference(self):
        # Guard against a check that always passes: a schema that differs
        # from the models must show up in the diff.
        migration.upgrade('head', engine=self.engine)
        with self.engine.begin() as connection:
            connection.execute(sa.text('CREATE TABLE stray (id INTEGER)'))
            connection.execute(sa.text('DROP INDEX ix_events_resource'))
        diff = schema_diff(self.engine)
        kinds = sorted(d[0] for d in diff if isinstance(d, tuple))
        self.assertEqual(['add_index', 'remove_table'], kinds, diff)

    def test_fresh_database_has_no_version(self):
        self.assertIsNone(migration.version(self.engine))

    def _db_manage(self, config_file, *args):
        command = os.path.join(os.path.dirname(sys.executable),
                               'servicevm-db-manage')
        if not os.path.exists(command):
            self.skipTest('%s is not installed' % command)
        result = subprocess.run(
            [command, '--config-file', config_file] + list(args),
            capture_output=True, text=True, timeout=120,
            cwd=self.directory)
        self.assertEqual(
            0, result.returncode,
            'servicevm-db-manage %s failed (%d):\nstdout:\n%s\nstderr:\n%s'
            % (' '.join(args), result.returncode, result.stdout,
               result.stderr))
        return result.stdout

    def test_db_manage_upgrade_then_version(self):
        config_file = os.path.join(self.directory, 'servicevm.conf')
        with open(config_file, 'w') as f:
            f.write('[DEFAULT]\n'
                    'log_file = %s\n'
                    '[database]\n'
                    'connection = %s\n'
                    % (os.path.join(self.directory, 'db-manage.log'),
                       self.db_url))
        head = head_revision()
        self.assertIn(head, self._db_manage(config_file, 'upgrade'))
        # A second upgrade is a no-op.
        self.assertIn(head, self._db_manage(config_file, 'upgrade'))
        self.assertEqual(head,
                         self._db_manage(config_file, 'version').strip())
        self.assertEqual(head, migration.version(self.engine))
        self.assertEqual([], schema_diff(self.engine))
