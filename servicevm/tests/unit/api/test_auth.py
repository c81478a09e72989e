"""Authentication strategies: keystone (auth_token) and noauth."""

import fixtures
import webtest

from servicevm.api import app
from servicevm.tests import base


class TestKeystoneStrategy(base.DBTestCase):

    def setUp(self):
        super().setUp()
        self.config(auth_strategy='keystone')
        self.config(www_authenticate_uri='http://127.0.0.1:1/identity',
                    delay_auth_decision=False,
                    group='keystone_authtoken')
        self.app = webtest.TestApp(app.setup_app(base.CONF))

    def test_no_token_is_401_in_the_error_shape(self):
        response = self.app.get('/v1/devices', status='*')
        self.assertEqual(401, response.status_int)
        error = response.json['errors'][0]
        self.assertEqual(401, error['status'])
        self.assertTrue(error['detail'])
        self.assertTrue(error['request_id'])
        self.assertIn('WWW-Authenticate', response.headers)

    def test_version_discovery_needs_no_token(self):
        for path in ('/', '/v1'):
            response = self.app.get(path, status='*')
            self.assertEqual(200, response.status_int, path)
        # ... but nothing below it.
        self.assertEqual(401, self.app.get('/v1/operations',
                                           status='*').status_int)

    def test_identity_headers_alone_are_not_trusted(self):
        response = self.app.get(
            '/v1/devices', headers=base.headers(base.ADMIN), status='*')
        self.assertEqual(401, response.status_int)


class TestNoAuthStrategy(base.APITestCase):

    def test_without_headers_the_caller_is_admin_of_admin(self):
        response = self.app.post_json(
            '/v1/device_templates',
            {'device_template': {'device_driver': 'noop'}}, status=201)
        self.assertEqual('admin', response.json['device_template'][
            'project_id'])
        # admin may list every project.
        self.app.get('/v1/devices?all_projects=1', status=200)

    def test_headers_give_the_caller(self):
        template = self.create_template(base.MEMBER)
        self.assertEqual('project-a', template['project_id'])

    def test_noauth_warns_at_start(self):
        logger = self.useFixture(fixtures.FakeLogger(name='servicevm'))
        app.setup_app(base.CONF)
        self.assertIn('noauth', logger.output)
