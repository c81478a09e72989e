"""The API and two conductors as separate processes, over real HTTP, on
PostgreSQL and RabbitMQ."""

import collections
import concurrent.futures
import uuid

import requests

from servicevm.tests.functional import base

PENDING = ('PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE',
           'PENDING_HEAL')


class TestDeviceLifecycle(base.ServiceTestCase):

    DEVICES = 20

    def _all_devices(self):
        return self.expect(200, 'GET',
                           '/v1/devices?all_projects=1&limit=1000',
                           persona=base.ADMIN).json()['devices']

    def test_concurrent_create_and_delete_on_two_conductors(self):
        template = self.create_template()

        def create(i):
            return self.create_device(template['id'], name='dev-%02d' % i)

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            created = list(pool.map(create, range(self.DEVICES)))
        ids = [d['id'] for d in created]
        self.assertEqual(self.DEVICES, len(set(ids)))
        for device in created:
            self.assertEqual('PENDING_CREATE', device['status'])
        for device_id in ids:
            device = self.wait_for_device(device_id, 'ACTIVE')
            self.assertTrue(device['instance_id'])

        # Which conductor ran each create: the engine writes its host into
        # the details of every event of an operation.
        ran_by = collections.Counter()
        for device_id in ids:
            events = self.wait_for_event(device_id, 'device.create.end')
            end = [e for e in events if e['event_type'] == 'device.create.end']
            self.assertEqual(1, len(end), events)
            hosts = {e['details']['conductor'] for e in events
                     if 'conductor' in (e.get('details') or {})}
            self.assertEqual(1, len(hosts), events)
            ran_by[hosts.pop()] += 1
        self.assertEqual(set(self.CONDUCTOR_HOSTS), set(ran_by),
                         'create operations ran on %s' % dict(ran_by))

        def delete(device_id):
            return self.request('DELETE', '/v1/devices/%s' % device_id)

        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            responses = list(pool.map(delete, ids))
        for response in responses:
            self.assertIn(response.status_code, (202, 204), response.text)
        for device_id in ids:
            self.wait_for_device(device_id, None)
        left = [d for d in self._all_devices() if d['id'] in set(ids)]
        self.assertEqual([], left)
        self.assertEqual([], [d for d in self._all_devices()
                              if d['status'] in PENDING])
        # The history outlives the device, ending with the delete.
        deleted_by = collections.Counter()
        for device_id in ids:
            events = self.wait_for_event(device_id, 'device.delete.end')
            self.assertEqual('device.delete.end', events[-1]['event_type'],
                             events)
            deleted_by[events[-1]['details']['conductor']] += 1
        self.assertLessEqual(set(deleted_by), set(self.CONDUCTOR_HOSTS))
        # Every operation of these devices completed.
        operations = self.expect(
            200, 'GET', '/v1/operations?all_projects=1&limit=1000',
            persona=base.ADMIN).json()['operations']
        ours = [o for o in operations if o['resource_id'] in set(ids)]
        self.assertEqual(2 * self.DEVICES, len(ours))
        self.assertEqual({'COMPLETED'}, {o['state'] for o in ours}, ours)

    def test_tenancy(self):
        template = self.create_template(persona=base.PROJECT_A)
        device = self.create_device(template['id'], persona=base.PROJECT_A,
                                    name='only-for-a')
        device = self.wait_for_device(device['id'], 'ACTIVE',
                                      persona=base.PROJECT_A)
        path = '/v1/devices/%s' % device['id']
        b = base.PROJECT_B

        for method, kwargs in (
                ('GET', {}),
                ('PATCH', {'body': {'device': {'name': 'stolen'}}}),
                ('DELETE', {})):
            response = self.expect(404, method, path, persona=b, **kwargs)
            self.assertIn('errors', response.json())
        self.expect(404, 'GET', path + '/events', persona=b)
        self.expect(404, 'GET', '/v1/device_templates/%s' % template['id'],
                    persona=b)
        # A device of B cannot be built on A's template, and the answer is
        # the one for a template that does not exist at all.
        unknown = str(uuid.uuid4())
        foreign = self.request('POST', '/v1/devices', persona=b,
                               body={'device': {'template_id':
                                                template['id']}})
        missing = self.request('POST', '/v1/devices', persona=b,
                               body={'device': {'template_id': unknown}})
        self.assertIn(foreign.status_code, (400, 404), foreign.text)
        self.assertEqual(missing.status_code, foreign.status_code)
        self.assertEqual(
            missing.json()['errors'][0]['detail'].replace(unknown, 'X'),
            foreign.json()['errors'][0]['detail'].replace(template['id'],
                                                          'X'))

        listed_b = self.expect(200, 'GET', '/v1/devices',
                               persona=b).json()['devices']
        self.assertNotIn(device['id'], [d['id'] for d in listed_b])
        self.assertEqual(set(), {d['project_id'] for d in listed_b}
                         - {b[1]})
        # all_projects is for admins only: never widens a member's view.
        response = self.request('GET', '/v1/devices?all_projects=1',
                                persona=b)
        if response.status_code == 200:
            self.assertNotIn(device['id'],
                             [d['id'] for d in response.json()['devices']])
        else:
            self.assertEqual(403, response.status_code, response.text)

        listed_a = self.expect(200, 'GET', '/v1/devices',
                               persona=base.PROJECT_A).json()['devices']
        self.assertIn(device['id'], [d['id'] for d in listed_a])
        self.assertEqual({base.PROJECT_A[1]},
                         {d['project_id'] for d in listed_a})
        # Untouched by B.
        self.assertEqual('only-for-a', self.expect(
            200, 'GET', path, persona=base.PROJECT_A).json()['device']['name'])

    def test_api_restart_keeps_data(self):
        template = self.create_template()
        device = self.create_device(template['id'], name='survivor')
        device = self.wait_for_device(device['id'], 'ACTIVE')
        self.stop_api()
        self.assertRaises(requests.ConnectionError, requests.get,
                          self.api_url + '/', timeout=5)
        self.start_api()
        again = self.expect(200, 'GET', '/v1/devices/%s' % device['id']
                            ).json()['device']
        self.assertEqual('ACTIVE', again['status'])
        self.assertEqual(device['instance_id'], again['instance_id'])
        self.assertEqual('survivor', again['name'])
        # The new API process casts to the conductors too.
        second = self.create_device(template['id'], name='after-restart')
        self.wait_for_device(second['id'], 'ACTIVE')
        self.expect(202, 'DELETE', '/v1/devices/%s' % second['id'])
        self.wait_for_device(second['id'], None)

    def test_bad_input_is_4xx(self):
        template = self.create_template()
        before = self._all_devices()
        expected = {'malformed JSON': 400, 'huge body': 413,
                    'negative limit': 400, 'unknown sort key': 400}
        cases = [
            ('malformed JSON', 'POST', '/v1/devices',
             {'data': '{"device": {"template_id": '}),
            ('not an object', 'POST', '/v1/devices', {'data': '[1, 2]'}),
            ('huge body', 'POST', '/v1/devices',
             {'data': '{"device": {"name": "%s"}}' % ('x' * (2 << 20))}),
            ('bad UUID in the body', 'POST', '/v1/devices',
             {'body': {'device': {'template_id': 'not-a-uuid'}}}),
            ('unknown template', 'POST', '/v1/devices',
             {'body': {'device': {'template_id': str(uuid.uuid4())}}}),
            ('unknown field', 'POST', '/v1/devices',
             {'body': {'device': {'template_id': template['id'],
                                  'bogus': 1}}}),
            ('over-long name', 'POST', '/v1/devices',
             {'body': {'device': {'template_id': template['id'],
                                  'name': 'n' * 256}}}),
            ('bad UUID in the path', 'GET', '/v1/devices/not-a-uuid', {}),
            ('bad UUID in a delete', 'DELETE', '/v1/devices/%27%3B--', {}),
            ('negative limit', 'GET', '/v1/devices?limit=-1', {}),
            ('unknown sort key', 'GET', '/v1/devices?sort_key=password', {}),
        ]
        for what, method, path, kwargs in cases:
            response = self.request(method, path, **kwargs)
            self.assertTrue(400 <= response.status_code < 500,
                            '%s: %s %s' % (what, response.status_code,
                                           response.text[:500]))
            if what in expected:
                self.assertEqual(expected[what], response.status_code,
                                 '%s: %s' % (what, response.text[:500]))
            errors = response.json()['errors']
            self.assertEqual(response.status_code, errors[0]['status'],
                             what)
            self.assertTrue(errors[0]['detail'], what)
        self.assertEqual(sorted(d['id'] for d in before),
                         sorted(d['id'] for d in self._all_devices()))
        # The server is still fine.
        self.expect(200, 'GET', '/v1/devices')
