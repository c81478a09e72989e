"""Credentials are sealed at rest, shown as "***", unsealed only for the
drivers, never logged, and their key can be rotated."""

import logging

import fixtures
import sqlalchemy as sa

from servicevm.common import context as svm_context
from servicevm.common import secrets
from servicevm.db import api as db_api
from servicevm.drivers.device import noop
from servicevm.tests import base

PASSWORD = 'pw-0f3c9a1e-sekret'
KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END'
TOP = 'top-level-secret-7d1e'
NEW = 'new-secret-after-update-5b2a'
PLAIN = (PASSWORD, KEY, TOP, NEW)


class TestSecrets(base.APIBehaviourTestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.driver_saw = []
        real_create = noop.NoopDeviceDriver.create

        def create(driver, context, device, new=False):
            self.driver_saw.append(device)
            return real_create(driver, context, device, new)
        self.useFixture(fixtures.MockPatchObject(
            noop.NoopDeviceDriver, 'create', create))

    def template(self):
        return self.create_template(base.MEMBER, device_driver='noop',
                                    attributes={
                                        'image': 'cirros',
                                        'mgmt_auth': {
                                            'username': 'svm',
                                            'password': PASSWORD,
                                            'private_key': KEY}})

    def raw(self, table):
        with self.engine.connect() as conn:
            return ' '.join(str(r) for r in conn.execute(
                sa.text('SELECT * FROM %s' % table)))

    def assertNoPlaintext(self, text, where):
        for secret in PLAIN:
            self.assertNotIn(secret, text, where)

    def test_sealed_masked_revealed_never_logged(self):
        template = self.template()
        auth = template['attributes']['mgmt_auth']
        self.assertEqual({'username': 'svm', 'password': '***',
                          'private_key': '***'}, auth)
        reply = self.post('/v1/devices', {'device': {
            'template_id': template['id'],
            'kwargs': {'password': TOP, 'flavor': 'm1'}}}, base.MEMBER,
            status=202).json
        self.assertEqual({'password': '***', 'flavor': 'm1'},
                         reply['device']['kwargs'])
        self.wait_for_operation(reply['operation_id'], 'COMPLETED')
        device_id = reply['device']['id']
        self.patch('/v1/devices/%s' % device_id,
                   {'device': {'kwargs': {'password': NEW}}}, base.MEMBER,
                   status=202)

        # At rest: sealed, in every table that holds them.
        for table in ('device_template_attributes', 'device_kwargs',
                      'operations'):
            raw = self.raw(table)
            self.assertNoPlaintext(raw, table)
        self.assertIn(secrets.MARK, self.raw('device_template_attributes'))
        self.assertIn(secrets.MARK, self.raw('device_kwargs'))

        # The driver got them in the clear.
        seen = self.driver_saw[0]
        self.assertEqual(TOP, seen['kwargs']['password'])
        self.assertEqual(PASSWORD, seen['template']['attributes'][
            'mgmt_auth']['password'])
        self.assertEqual(KEY, seen['template']['attributes'][
            'mgmt_auth']['private_key'])

        # No API answer, event or log line shows them.
        for path in ('/v1/device_templates', '/v1/devices',
                     '/v1/devices/%s' % device_id,
                     '/v1/devices/%s/events' % device_id,
                     '/v1/operations?resource_id=%s' % device_id,
                     '/v1/operations/%s' % reply['operation_id']):
            self.assertNoPlaintext(self.get(path, base.MEMBER).text, path)
        self.assertNoPlaintext(self.log.output, 'logs')

    def test_rotation(self):
        template = self.template()
        old = self.raw('device_template_attributes')
        new_key = secrets.new_key()
        self.config(fernet_keys=[new_key, base.TEST_SECRET_KEY],
                    group='secrets')
        changed = db_api.get_instance().secrets_reseal(
            svm_context.get_admin_context())
        self.assertEqual(1, changed)
        self.assertNotEqual(old, self.raw('device_template_attributes'))
        # The old key can go: the new one alone unseals.
        self.config(fernet_keys=[new_key], group='secrets')
        row = db_api.get_instance().template_get(
            svm_context.get_admin_context(), template['id'])
        self.assertEqual(PASSWORD, row.as_dict(reveal=True)['attributes'][
            'mgmt_auth']['password'])

    def test_key_file(self):
        path = self.useFixture(fixtures.TempDir()).path + '/k/secrets.key'
        secrets.ensure_key_file(path)
        with open(path) as f:
            key = f.read().strip()
        secrets.ensure_key_file(path)   # kept, not replaced
        with open(path) as f:
            self.assertEqual(key, f.read().strip())
        self.config(fernet_keys=[], key_file=path, group='secrets')
        self.assertEqual(PASSWORD, secrets.reveal(secrets.seal(
            {'password': PASSWORD}))['password'])

    def test_without_a_key_a_secret_is_refused_and_nothing_stored(self):
        self.config(fernet_keys=[], key_file=None, group='secrets')
        response = self.post('/v1/device_templates', {'device_template': {
            'device_driver': 'noop',
            'attributes': {'mgmt_auth': {'password': PASSWORD}}}},
            base.MEMBER)
        error = self.assertError(response, 503)
        self.assertIn('[secrets]', error['detail'])
        self.assertNotIn('mgmt_auth', self.raw('device_template_attributes'))
        # Without secrets, no key is needed.
        self.create_template(base.MEMBER, device_driver='noop',
                             attributes={'image': 'cirros'})

    def test_unknown_key_is_a_clear_error(self):
        sealed = secrets.seal({'password': PASSWORD})
        self.config(fernet_keys=[secrets.new_key()], group='secrets')
        e = self.assertRaises(secrets.SecretsUnavailable, secrets.reveal,
                              sealed)
        self.assertIn('no longer configured', str(e))


class TestScrub(base.TestCase):
    """What a device or a script says back is stored with the secrets it
    was given masked."""

    def test_scrub(self):
        key = ('-----BEGIN OPENSSH PRIVATE KEY-----\n'
               'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n'
               '-----END OPENSSH PRIVATE KEY-----\n')
        found = secrets.secret_values([
            {'mgmt_auth': {'username': 'admin', 'password': 's3cret!',
                           'private_key': key}},
            {'configurations': {'token': 'tok-123', 'port': 22}},
            {'sealed': {secrets.MARK: 'ciphertext'}}, None])
        self.assertNotIn('admin', found)
        text = ('login admin/s3cret! with tok-123; key line '
                'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ on port 22')
        self.assertEqual('login admin/*** with ***; key line *** on port 22',
                         secrets.scrub(text, found))
        self.assertEqual('', secrets.scrub('', found))
        self.assertIsNone(secrets.scrub(None, found))
