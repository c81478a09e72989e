"""The ``openstack`` CLI plugin against servicevm behind the real
Keystone: a password login and a token, the endpoint found in Keystone's
catalog (registered for the test)."""

import json
import os
import subprocess
import sys

from servicevm.tests.integration import base

OPENSTACK = os.path.join(os.path.dirname(sys.executable), 'openstack')


class TestCLIWithKeystone(base.CloudTestCase):

    CONDUCTOR_HOSTS = ('cli-conductor-1',)

    def identity(self, method, path, **kwargs):
        return self.session('admin').request(
            path, method, endpoint_filter={'service_type': 'identity',
                                           'interface': 'public'},
            raise_exc=True, **kwargs)

    def setUp(self):
        super().setUp()
        # servicevm in the catalog, as devstack would register it.
        service = self.identity('POST', '/services', json={'service': {
            'type': 'servicevm', 'name': 'servicevm-cli-test'}}).json()[
            'service']
        self.addCleanup(self.identity, 'DELETE',
                        '/services/%s' % service['id'])
        self.identity('POST', '/endpoints', json={'endpoint': {
            'service_id': service['id'], 'interface': 'public',
            'region_id': self.cloud['MINICLOUD_REGION'],
            'url': self.api_url}})

    def openstack(self, *args, auth=None, check=True):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env.update(auth or self.password_auth())
        result = subprocess.run([OPENSTACK] + list(args), env=env,
                                capture_output=True, text=True, timeout=120)
        if check:
            self.assertEqual(0, result.returncode, result.stderr)
        return result

    def password_auth(self):
        env = self.cloud
        return {'OS_AUTH_URL': env['MINICLOUD_AUTH_URL'],
                'OS_USERNAME': env['MINICLOUD_DEMO1_USER'],
                'OS_PASSWORD': env['MINICLOUD_DEMO1_PASSWORD'],
                'OS_PROJECT_NAME': env['MINICLOUD_DEMO1_PROJECT'],
                'OS_USER_DOMAIN_NAME': env['MINICLOUD_DOMAIN'],
                'OS_PROJECT_DOMAIN_NAME': env['MINICLOUD_DOMAIN'],
                'OS_REGION_NAME': env['MINICLOUD_REGION'],
                'OS_IDENTITY_API_VERSION': '3'}

    def test_password_and_token(self):
        created = json.loads(self.openstack(
            'servicevm', 'template', 'create', '--device-driver', 'noop',
            '--mgmt-driver', 'noop', 'cli-template', '-f', 'json').stdout)
        self.assertEqual(self.project_id('demo1'), created['project_id'])
        listed = json.loads(self.openstack(
            'servicevm', 'template', 'list', '-f', 'json').stdout)
        self.assertIn(created['id'], [t.get('ID', t.get('id'))
                                      for t in listed])
        # A token of demo1's project, and no password.
        token = self.session('demo1').get_token()
        auth = {'OS_AUTH_TYPE': 'token', 'OS_TOKEN': token,
                'OS_AUTH_URL': self.cloud['MINICLOUD_AUTH_URL'],
                'OS_PROJECT_ID': self.project_id('demo1'),
                'OS_REGION_NAME': self.cloud['MINICLOUD_REGION'],
                'OS_IDENTITY_API_VERSION': '3'}
        shown = json.loads(self.openstack(
            'servicevm', 'template', 'show', created['id'], '-f', 'json',
            auth=auth).stdout)
        self.assertEqual(created['id'], shown['id'])
        # Another project's user does not see it.
        result = self.openstack('servicevm', 'template', 'show',
                                created['id'], auth=dict(
                                    self.password_auth(),
                                    OS_USERNAME=self.cloud[
                                        'MINICLOUD_DEMO2_USER'],
                                    OS_PASSWORD=self.cloud[
                                        'MINICLOUD_DEMO2_PASSWORD'],
                                    OS_PROJECT_NAME=self.cloud[
                                        'MINICLOUD_DEMO2_PROJECT']),
                                check=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('could not be found', result.stderr)
        self.openstack('servicevm', 'template', 'delete', created['id'])
