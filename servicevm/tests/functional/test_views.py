"""The API's device views (views.py) on PostgreSQL: the UNION ALL of a
device's collections, its casts and its ordering as on SQLite."""

import sqlalchemy as sa

from servicevm.db import migration
from servicevm.db.sqlalchemy import enginefacade
from servicevm.tests import base as test_base
from servicevm.tests.functional import base
from servicevm.tests.unit.db import test_views


class TestViewsPostgreSQL(test_views.ViewsChecks, base.PostgresTestCase,
                          test_base.TestCase):

    @classmethod
    def setUpResources(cls):
        engine = sa.create_engine(cls.database.url,
                                  poolclass=sa.pool.NullPool)
        try:
            migration.upgrade('head', engine=engine)
        finally:
            engine.dispose()

    def setUp(self):
        super().setUp()
        self.config(connection=self.database.url_string, group='database')
        engine = sa.create_engine(self.database.url,
                                  poolclass=sa.pool.NullPool)
        self.addCleanup(engine.dispose)
        self.addCleanup(
            enginefacade.main_context_manager.patch_engine(engine))
