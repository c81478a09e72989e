"""Test bases: configuration, a fresh migrated database per test, and the
API over WSGI with an in-process conductor."""

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
import time

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslotest import base as oslo_base
import sqlalchemy as sa
import webtest

from servicevm.common import policy
from servicevm.common import rpc
from servicevm.common import service
from servicevm.db import migration
from servicevm.db.sqlalchemy import enginefacade

CONF = cfg.CONF

_TEMPLATE_DB = None
_TEMPLATE_LOCK = threading.Lock()
# Tests get a TMPDIR of their own, removed after them; the template must
# outlive them, so it goes where temporary files went at import.
_PROCESS_TMP = tempfile.gettempdir()


def _template_db():
    """A migrated SQLite file made once per test process; tests copy it."""
    global _TEMPLATE_DB
    with _TEMPLATE_LOCK:
        if _TEMPLATE_DB is None:
            directory = tempfile.mkdtemp(prefix='servicevm-db-',
                                         dir=_PROCESS_TMP)
            atexit.register(shutil.rmtree, directory, True)
            path = os.path.join(directory, 'template.sqlite')
            engine = sa.create_engine('sqlite:///%s' % path)
            migration.upgrade('head', engine=engine)
            engine.dispose()
            _TEMPLATE_DB = path
        return _TEMPLATE_DB


TEST_SECRET_KEY = 'c2VydmljZXZtLXRlc3Qta2V5LTAxMjM0NTY3ODkwMTI='


class TestCase(oslo_base.BaseTestCase):
    """Configuration as the all-in-one has it, reset after each test."""

    def setUp(self):
        super().setUp()
        service.prepare_service([])
        self.config = self.useFixture(config_fixture.Config(CONF)).config
        self.config(auth_strategy='noauth', transport_url='fake://',
                    host='test-conductor')
        # No health watch unless a test asks for one (its polls would
        # take the fault driver's injected poll faults).
        self.config(poll_interval=0.01, sync_interval=0, group='conductor')
        # The key that seals secrets in the tests.
        self.config(fernet_keys=[TEST_SECRET_KEY], group='secrets')
        policy.reset()
        self.addCleanup(policy.reset)


class DBTestCase(TestCase):
    """A test with its own migrated SQLite database."""

    def setUp(self):
        super().setUp()
        directory = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(directory, 'servicevm.sqlite')
        shutil.copyfile(_template_db(), path)
        self.db_url = 'sqlite:///%s' % path
        self.config(connection=self.db_url, group='database')
        self.engine = sa.create_engine(self.db_url)
        reset = enginefacade.main_context_manager.patch_engine(self.engine)
        self.addCleanup(reset)
        self.addCleanup(self.engine.dispose)


# The personas of the RBAC matrix: (user, project, roles).
ADMIN = ('admin-user', 'admin-project', 'admin')
MEMBER = ('member-user', 'project-a', 'member')
READER = ('reader-user', 'project-a', 'reader')
OTHER_MEMBER = ('other-user', 'project-b', 'member')


def headers(persona=MEMBER, **extra):
    user, project, roles = persona
    result = {'X-User-Id': user, 'X-Project-Id': project, 'X-Roles': roles}
    result.update(extra)
    return result


class APITestCase(DBTestCase):
    """The real pecan app over WSGI (webtest) with a conductor running in
    this process on the in-process transport."""

    start_conductor = True

    def setUp(self):
        # An idle worker of the conductor's thread pool looks for work
        # every second, and stopping the conductor waits for it: poll
        # faster so that a test's cleanup takes milliseconds, not a second.
        self.useFixture(fixtures.MonkeyPatch(
            'futurist._thread.ThreadWorker.MAX_IDLE_FOR', 0.01))
        super().setUp()
        from servicevm.api import app
        from servicevm.cmd import conductor as conductor_cmd
        rpc.cleanup()
        self.addCleanup(rpc.cleanup)
        if self.start_conductor:
            server = conductor_cmd.start_conductor(CONF)
            self.addCleanup(conductor_cmd.stop_conductor, server)
        self.app = webtest.TestApp(app.setup_app(CONF))

    # ---- request helpers ----------------------------------------------

    def get(self, url, persona=MEMBER, status=200, **kwargs):
        return self.app.get(url, headers=headers(persona), status=status,
                            **kwargs)

    def post(self, url, body, persona=MEMBER, status='*', **kwargs):
        return self.app.post_json(url, body, headers=headers(persona),
                                  status=status, **kwargs)

    def patch(self, url, body, persona=MEMBER, status='*', **kwargs):
        return self.app.patch_json(url, body, headers=headers(persona),
                                   status=status, **kwargs)

    def delete(self, url, persona=MEMBER, status='*', **kwargs):
        return self.app.delete(url, headers=headers(persona), status=status,
                               **kwargs)

    # ---- resource helpers ---------------------------------------------

    def create_template(self, persona=MEMBER, **values):
        body = {'name': 'tmpl', 'device_driver': 'noop',
                'service_types': ['firewall'],
                'attributes': {'image': 'cirros'}}
        body.update(values)
        response = self.post('/v1/device_templates',
                             {'device_template': body}, persona, status=201)
        return response.json['device_template']

    def create_device(self, template_id=None, persona=MEMBER, wait=True,
                      **values):
        if template_id is None:
            template_id = self.create_template(persona)['id']
        body = {'name': 'dev', 'template_id': template_id}
        body.update(values)
        response = self.post('/v1/devices', {'device': body}, persona,
                             status=202)
        device = response.json['device']
        if wait:
            device = self.wait_for_device(device['id'], 'ACTIVE', persona)
        return device

    def wait_for_device(self, device_id, status, persona=ADMIN,
                        timeout=20):
        """Poll until the device has ``status`` (None: until it is gone);
        returns the device (or None)."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.app.get('/v1/devices/%s' % device_id,
                                    headers=headers(persona), status='*')
            if status is None and response.status_int == 404:
                return None
            if response.status_int == 200:
                device = response.json['device']
                if device['status'] == status:
                    return device
            if time.monotonic() > deadline:
                self.fail('device %s did not reach %s in %ss; last: %s'
                          % (device_id, status, timeout, response.body))
            time.sleep(0.02)

    def assertError(self, response, status, field=None, contains=None):
        """The response is an error in the one flat shape."""
        self.assertEqual(status, response.status_int, response.body)
        self.assertEqual('application/json', response.content_type)
        errors = response.json['errors']
        self.assertEqual(1, len(errors))
        error = errors[0]
        self.assertEqual(status, error['status'])
        for key in ('code', 'title', 'detail', 'request_id'):
            self.assertTrue(error.get(key), 'error lacks %s: %s'
                            % (key, error))
        if field is not None:
            self.assertEqual(field, error.get('field'), error)
        if contains is not None:
            self.assertIn(contains, error['detail'])
        return error


# ---- helpers of the API behaviour tests --------------------------------

FINAL_OPERATION_STATES = ('COMPLETED', 'FAILED', 'CANCELLED', 'ROLLED_BACK')


class APIBehaviourTestCase(APITestCase):
    """APITestCase with raw requests, row counts and waits for the
    conductor to finish its work."""

    def request(self, method, url, body=None, persona=MEMBER,
                content_type='application/json', extra_headers=None,
                status='*'):
        """A request with a raw ``body`` (bytes or str) as sent."""
        request_headers = headers(persona, **(extra_headers or {}))
        kwargs = {}
        if body is not None:
            kwargs['body'] = body.encode() if isinstance(body, str) else body
            if content_type:
                request_headers['Content-Type'] = content_type
        return self.app.request(url, method=method, headers=request_headers,
                                status=status, **kwargs)

    def table_counts(self):
        """{table: row count} of every table but alembic's."""
        with self.engine.connect() as conn:
            names = sa.inspect(conn).get_table_names()
            return {name: conn.execute(
                sa.text('SELECT count(*) FROM %s' % name)).scalar()
                for name in names if name != 'alembic_version'}

    @contextlib.contextmanager
    def assertNoNewRows(self):
        """The block changes no table's row count (call wait_settled
        first if the conductor may still be writing)."""
        before = self.table_counts()
        yield
        self.assertEqual(before, self.table_counts())

    def wait_settled(self, timeout=20):
        """Wait until every operation is in a final state and its closing
        event (<type>.<kind>.end, .error, .rolled_back or .cancelled, or
        operation.fail) is recorded."""
        final = ', '.join("'%s'" % s for s in FINAL_OPERATION_STATES)
        query = sa.text(
            "SELECT count(*) FROM operations o WHERE o.state NOT IN (%s) "
            "OR NOT EXISTS (SELECT 1 FROM events e WHERE "
            "e.operation_id = o.id AND e.event_type IN ("
            "o.resource_type || '.' || o.kind || '.end', "
            "o.resource_type || '.' || o.kind || '.error', "
            "o.resource_type || '.' || o.kind || '.rolled_back', "
            "o.resource_type || '.' || o.kind || '.cancelled', "
            "'operation.fail'))" % final)
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as conn:
                if not conn.execute(query).scalar():
                    return
            if time.monotonic() > deadline:
                self.fail('operations still running after %ss' % timeout)
            time.sleep(0.01)

    def wait_for_operation(self, operation_id, state='COMPLETED',
                           persona=ADMIN, timeout=20):
        """Poll GET /v1/operations/{id} until it is in ``state``."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.get('/v1/operations/%s' % operation_id,
                                 persona).json['operation']
            if operation['state'] == state:
                return operation
            if time.monotonic() > deadline:
                self.fail('operation %s did not reach %s in %ss: %s'
                          % (operation_id, state, timeout, operation))
            time.sleep(0.01)
