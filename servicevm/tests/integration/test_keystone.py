"""The API behind keystonemiddleware, against the local cloud's real
Keystone: tokens, project scope, roles."""

import uuid

import requests

from servicevm.tests.integration import base


class TestKeystoneAuth(base.CloudTestCase):

    CONDUCTOR_HOSTS = ('keystone-conductor-1',)

    def identity(self, method, path, **kwargs):
        """A request to Keystone's API (v3, ``path`` under it) as the
        cloud's admin."""
        session = self.session('admin')
        return session.request(path, method, endpoint_filter={
            'service_type': 'identity', 'interface': 'public'},
            raise_exc=True, **kwargs)

    def reader_of(self, user):
        """A new Keystone user with only the reader role in ``user``'s
        project; its token headers."""
        project_id = self.project_id(user)
        name = 'svm-reader-%s' % uuid.uuid4().hex[:8]
        password = uuid.uuid4().hex
        created = self.identity('POST', '/users', json={'user': {
            'name': name, 'password': password,
            'domain_id': self.cloud.get('MINICLOUD_DOMAIN_ID', 'default'),
            'default_project_id': project_id}}).json()['user']
        self.addCleanup(self.identity, 'DELETE',
                        '/users/%s' % created['id'])
        role = self.identity('GET', '/roles', params={
            'name': 'reader'}).json()['roles'][0]
        self.identity('PUT', '/projects/%s/users/%s/roles/%s' % (
            project_id, created['id'], role['id']))
        self.cloud['MINICLOUD_%s_USER' % name.upper()] = name
        self.cloud['MINICLOUD_%s_PASSWORD' % name.upper()] = password
        self.cloud['MINICLOUD_%s_PROJECT' % name.upper()] = self.cloud[
            'MINICLOUD_%s_PROJECT' % user.upper()]
        return name

    def test_tokens_projects_and_roles(self):
        # No token, or a bad one: 401, in the API's error shape.
        for headers in ({}, {'X-Auth-Token': 'not-a-token'}):
            response = requests.get(self.api_url + '/v1/devices',
                                    headers=headers, timeout=30)
            self.assertEqual(401, response.status_code, response.text)
        # The version document needs no token.
        self.assertEqual(200, requests.get(self.api_url + '/',
                                           timeout=30).status_code)

        # A token scoped to demo1's project sees only that project's.
        template = self.nova_template()
        self.assertEqual(self.project_id('demo1'), template['project_id'])
        url = '/v1/device_templates/%s' % template['id']
        self.expect(200, 'GET', url, persona='demo1')
        self.expect(404, 'GET', url, persona='demo2')
        listed = self.expect(200, 'GET', '/v1/device_templates',
                             persona='demo2').json()['device_templates']
        self.assertNotIn(template['id'], [t['id'] for t in listed])

        # Only the reader role: reads, cannot create or delete.
        reader = self.reader_of('demo1')
        self.expect(200, 'GET', url, persona=reader)
        self.expect(403, 'POST', '/v1/device_templates', persona=reader,
                    body={'device_template': {'device_driver': 'nova'}})
        self.expect(403, 'DELETE', url, persona=reader)

        # The admin role lists across projects.
        listed = self.expect(
            200, 'GET', '/v1/device_templates?all_projects=1',
            persona='admin').json()['device_templates']
        self.assertIn(template['id'], [t['id'] for t in listed])
        self.expect(204, 'DELETE', url, persona='demo1')
