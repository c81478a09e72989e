"""Models and migrations agree on PostgreSQL (the unit suite checks
SQLite): a fresh database per class, migrated with
servicevm.db.migration.upgrade."""

from oslo_db.sqlalchemy import test_migrations
import sqlalchemy as sa

from servicevm.db import migration
from servicevm.db.sqlalchemy import models
from servicevm.tests.functional import base
from servicevm.tests.unit.db import test_migrations as unit_migrations


class TestModelsMigrationsSyncPostgreSQL(
        test_migrations.ModelsMigrationsSync, base.PostgresTestCase):

    def setUp(self):
        super().setUp()
        self.engine = sa.create_engine(self.database.url,
                                       poolclass=sa.pool.NullPool)
        self.addCleanup(self.engine.dispose)

    def get_engine(self):
        return self.engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.upgrade('head', engine=engine)

    def test_upgrade_is_idempotent(self):
        migration.upgrade('head', engine=self.engine)
        migration.upgrade('head', engine=self.engine)
        self.assertEqual(unit_migrations.head_revision(),
                         migration.version(self.engine))
        self.assertEqual([], unit_migrations.schema_diff(self.engine))
