"""The health watch against the real Nova: a server deleted behind
servicevm's back makes its device DEAD within two passes."""

import time

from servicevm.tests.integration import base

INTERVAL = 2


class TestHealthWatchNova(base.CloudTestCase):

    CONDUCTOR_HOSTS = ('health-conductor-1',)

    @classmethod
    def cloud_config(cls, env):
        config = super().cloud_config(env)
        config['conductor']['sync_interval'] = INTERVAL
        return config

    def test_server_deleted_behind_servicevms_back(self):
        template = self.nova_template()
        response = self.expect(202, 'POST', '/v1/devices', persona='demo1',
                               body={'device': {'name': 'it-health',
                                                'template_id':
                                                    template['id']}})
        device = response.json()['device']
        self.wait_operation(response.json()['operation_id'], 'COMPLETED')
        # Seen by the watch first.
        self.wait_until(lambda: self.expect(
            200, 'GET', '/v1/devices/%s/metrics' % device['id'],
            persona='demo1').json()['metrics']['last_seen'],
            'the watch to see the device', timeout=6 * INTERVAL + 30)
        (server,) = self.servers(device['id'])
        reply = self.session('admin').delete(
            '/servers/%s' % server['id'], endpoint_filter={
                'service_type': 'compute', 'interface': 'public'})
        self.assertEqual(204, reply.status_code)
        self.wait_until(lambda: not self.servers(device['id']),
                        'Nova to delete the server', timeout=self.VM_TIMEOUT)
        gone = time.monotonic()
        shown = self.wait_for_device(device['id'], 'DEAD', persona='demo1',
                                     timeout=self.VM_TIMEOUT)
        # Within two passes of the watch once Nova has deleted it (and a
        # little for the Nova listing itself).
        self.assertLess(time.monotonic() - gone, 2 * INTERVAL + 10)
        self.assertIn('gone', shown['status_reason'])
        self.assertIn('device.dead', [e['event_type'] for e in self.events(
            device['id'], persona='demo1')])
        self.expect(202, 'DELETE', '/v1/devices/%s' % device['id'],
                    persona='demo1')
        self.wait_for_device(device['id'], None, persona='demo1',
                             timeout=self.VM_TIMEOUT)
