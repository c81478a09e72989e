"""The health watch against the real Nova: a server deleted behind
servicevm's back makes its device DEAD within two passes and, with the
``respawn`` policy, a new server is made for it and its service instance
configured again; a server put in error is healed by a hard reboot
(``heal``); a server stopped behind servicevm's back is started again."""

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

    def nova(self, method, path, **kwargs):
        return getattr(self.session('admin'), method)(
            path, endpoint_filter={'service_type': 'compute',
                                   'interface': 'public'},
            raise_exc=False, **kwargs)

    def device_with_policy(self, policy, name):
        template = self.nova_template(health_policy=policy)
        response = self.expect(202, 'POST', '/v1/devices', persona='demo1',
                               body={'device': {'name': name,
                                                'template_id':
                                                    template['id']}})
        device = response.json()['device']
        self.wait_operation(response.json()['operation_id'], 'COMPLETED')
        # Seen by the watch first.
        self.wait_until(lambda: self.expect(
            200, 'GET', '/v1/devices/%s/metrics' % device['id'],
            persona='demo1').json()['metrics']['last_seen'],
            'the watch to see the device', timeout=6 * INTERVAL + 30)
        self.addCleanup(self.delete_device, device['id'])
        return device

    def delete_device(self, device_id):
        response = self.request('DELETE', '/v1/devices/%s' % device_id,
                                persona='demo1')
        if response.status_code == 202:
            self.wait_for_device(device_id, None, persona='demo1',
                                 timeout=self.VM_TIMEOUT)

    def heal_operation(self, device_id):
        found = self.wait_until(lambda: [
            o for o in self.expect(
                200, 'GET', '/v1/operations?resource_id=%s' % device_id,
                persona='demo1').json()['operations']
            if o['kind'] in ('heal', 'action')],
            'the watch to react', timeout=6 * INTERVAL + 60)
        return self.wait_operation(found[0]['id'], 'COMPLETED')

    def test_server_deleted_behind_servicevms_back_is_respawned(self):
        device = self.device_with_policy('respawn', 'it-respawn')
        response = self.expect(202, 'POST', '/v1/service_instances',
                               persona='demo1', body={'service_instance': {
                                   'name': 'it-fw', 'service_type':
                                   'firewall', 'devices': [device['id']]}})
        service_id = response.json()['service_instance']['id']
        self.wait_operation(response.json()['operation_id'], 'COMPLETED')
        self.addCleanup(self.request, 'DELETE',
                        '/v1/service_instances/%s' % service_id,
                        persona='demo1')
        (server,) = self.servers(device['id'])
        self.assertEqual(204, self.nova('delete', '/servers/%s'
                                        % server['id']).status_code)
        self.wait_until(lambda: not self.servers(device['id']),
                        'Nova to delete the server', timeout=self.VM_TIMEOUT)
        gone = time.monotonic()
        self.wait_until(lambda: 'device.dead' in [
            e['event_type'] for e in self.events(device['id'],
                                                 persona='demo1')],
            'the device to be DEAD', timeout=self.VM_TIMEOUT)
        # Within two passes of the watch once Nova has deleted it (and a
        # little for the Nova listing itself).
        self.assertLess(time.monotonic() - gone, 2 * INTERVAL + 10)
        operation = self.heal_operation(device['id'])
        self.assertEqual('heal', operation['kind'])
        names = [s['name'] for s in operation['steps']]
        self.assertEqual(['delete_vm', 'wait_gone', 'create_vm',
                          'wait_active', 'configure_services'], names)
        shown = self.wait_for_device(device['id'], 'ACTIVE', persona='demo1')
        (new,) = self.servers(device['id'])
        self.assertNotEqual(server['id'], new['id'])
        self.assertEqual(new['id'], shown['instance_id'])
        self.assertEqual('ACTIVE', self.expect(
            200, 'GET', '/v1/service_instances/%s' % service_id,
            persona='demo1').json()['service_instance']['status'])

    def test_server_in_error_is_healed_by_a_reboot(self):
        device = self.device_with_policy('heal', 'it-heal')
        (server,) = self.servers(device['id'])
        reply = self.nova('post', '/servers/%s/action' % server['id'],
                          json={'os-resetState': {'state': 'error'}})
        self.assertEqual(202, reply.status_code, reply.text)
        operation = self.heal_operation(device['id'])
        steps = {s['name']: s for s in operation['steps']}
        self.assertIn('healed the device', steps['reboot_vm']['output'])
        self.assertIn('skipped', steps['create_vm']['output'])
        shown = self.wait_for_device(device['id'], 'ACTIVE', persona='demo1')
        (same,) = self.servers(device['id'])
        self.assertEqual(server['id'], same['id'])
        self.assertEqual('ACTIVE', same['status'])
        self.assertEqual(server['id'], shown['instance_id'])

    def test_server_stopped_behind_servicevms_back_is_started(self):
        device = self.device_with_policy('heal', 'it-stopped')
        (server,) = self.servers(device['id'])
        reply = self.nova('post', '/servers/%s/action' % server['id'],
                          json={'os-stop': None})
        self.assertEqual(202, reply.status_code, reply.text)
        operation = self.heal_operation(device['id'])
        self.assertEqual('action', operation['kind'])
        self.wait_until(lambda: self.servers(device['id'])[0]['status'] ==
                        'ACTIVE', 'the server to run again',
                        timeout=self.VM_TIMEOUT)
        self.wait_until(lambda: self.expect(
            200, 'GET', '/v1/devices/%s' % device['id'],
            persona='demo1').json()['device']['power_state'] == 'running',
            'the device to run again', timeout=6 * INTERVAL + 30)
