"""The Nova driver against real Keystone, Neutron, Glance and Nova."""

import sqlalchemy as sa

from servicevm.tests.integration import base


class TestNovaDevices(base.CloudTestCase):

    CONDUCTOR_HOSTS = ('nova-conductor-1', 'nova-conductor-2')

    @classmethod
    def cloud_config(cls, env):
        config = super().cloud_config(env)
        config['conductor']['takeover_time'] = 6
        return config

    def create(self, template_id, user='demo1', **values):
        response = self.expect(202, 'POST', '/v1/devices', persona=user,
                               body={'device': dict(
                                   name='it-dev', template_id=template_id,
                                   **values)})
        return response.json()['device'], response.json()['operation_id']

    def act(self, device_id, action, status=202, user='demo1', **params):
        response = self.request('POST', '/v1/devices/%s/action' % device_id,
                                persona=user, body={'action': action,
                                                    'params': params})
        self.assertEqual(status, response.status_code, response.text)
        return response.json()

    def act_and_wait(self, device_id, action, **params):
        op_id = self.act(device_id, action, **params)['operation_id']
        operation = self.wait_operation(op_id, ('COMPLETED', 'FAILED_TEMP'))
        self.assertEqual('COMPLETED', operation['state'], operation)
        return operation

    def delete_and_check_gone(self, device_id, server_id, user='demo1'):
        port_ids = [p['id'] for p in self.ports(server_id)]
        self.expect(202, 'DELETE', '/v1/devices/%s' % device_id,
                    persona=user)
        self.wait_for_device(device_id, None, persona=user,
                             timeout=self.VM_TIMEOUT)
        self.assertEqual([], self.servers(device_id))
        for port_id in port_ids:
            self.assertIsNone(self.cloud_get('network',
                                             '/v2.0/ports/%s' % port_id))

    def server(self, device_id):
        servers = self.servers(device_id)
        self.assertEqual(1, len(servers), servers)
        return servers[0]

    # ---- tests -----------------------------------------------------------

    def test_create_in_the_users_project_then_delete(self):
        template = self.nova_template()
        device, op_id = self.create(
            template['id'],
            service_contexts=[{'network_id': self.cloud['MINICLOUD_DATA_NET'],
                               'role': 'data'}])
        self.assertEqual('COMPLETED',
                         self.wait_operation(op_id, ('COMPLETED',
                                                     'FAILED_TEMP'))['state'])
        device = self.wait_for_device(device['id'], 'ACTIVE',
                                      persona='demo1')
        server = self.server(device['id'])
        # The VM is in the requesting user's project (through the trust),
        # not in servicevm's own.
        self.assertEqual(self.project_id('demo1'), server['tenant_id'])
        self.assertEqual(server['id'], device['instance_id'])
        self.assertIn('svm-op-%s' % op_id, server['tags'])
        self.assertTrue(device['mgmt_address'].startswith('10.10.0.'),
                        device)
        self.assertEqual('running', device['power_state'])
        # One real, bound Neutron port per network.
        ports = self.ports(server['id'])
        self.assertEqual({self.cloud['MINICLOUD_MGMT_NET'],
                          self.cloud['MINICLOUD_DATA_NET']},
                         {p['network_id'] for p in ports})
        self.delete_and_check_gone(device['id'], server['id'])

    def test_actions(self):
        device, op_id = self.create(self.nova_template()['id'])
        self.wait_operation(op_id, 'COMPLETED')
        device_id = device['id']
        server_id = self.server(device_id)['id']

        self.act_and_wait(device_id, 'shutdown')
        self.assertEqual('SHUTOFF', self.server(device_id)['status'])
        self.assertEqual('shutoff', self.wait_for_device(
            device_id, 'ACTIVE', persona='demo1')['power_state'])
        self.act_and_wait(device_id, 'start')
        self.assertEqual('ACTIVE', self.server(device_id)['status'])
        self.act_and_wait(device_id, 'reboot')
        self.act_and_wait(device_id, 'reset')

        ports_before = {p['id'] for p in self.ports(server_id)}
        self.act_and_wait(device_id, 'attach_nic',
                          network_id=self.cloud['MINICLOUD_DATA_NET'])
        added = {p['id'] for p in self.ports(server_id)} - ports_before
        self.assertEqual(1, len(added))
        self.act_and_wait(device_id, 'detach_nic', port_id=added.pop())
        self.wait_until(lambda: {p['id'] for p in self.ports(server_id)}
                        == ports_before, 'the port detached',
                        timeout=60, interval=0.5)

        operation = self.act_and_wait(device_id, 'snapshot_create',
                                      name='it-snap')
        output = operation['steps'][0]['output']
        image_id = output.split('(image ')[1].rstrip(')')
        self.act_and_wait(device_id, 'snapshot_revert', image_id=image_id)
        self.act_and_wait(device_id, 'snapshot_delete', image_id=image_id)
        self.assertIsNone(self.cloud_get('image', '/v2/images/%s' % image_id))

        self.act_and_wait(device_id, 'resize',
                          flavor=self.cloud['MINICLOUD_FLAVOR_SMALL_NAME'])
        self.assertEqual(self.cloud['MINICLOUD_FLAVOR_SMALL_NAME'],
                         self.server(device_id)['flavor']['original_name'])

        error = self.act(device_id, 'migrate', status=400)
        self.assertIn('reboot', error['errors'][0]['detail'])
        self.delete_and_check_gone(device_id, server_id)

    def test_failed_boot_then_rollback_leaves_nothing(self):
        template = self.nova_template(
            flavor=self.cloud['MINICLOUD_FLAVOR_HUGE_NAME'])
        device, op_id = self.create(template['id'])
        operation = self.wait_operation(op_id, ('FAILED_TEMP', 'COMPLETED'))
        self.assertEqual('FAILED_TEMP', operation['state'])
        # Nova's fault message is the reason.
        self.assertIn('No valid host', operation['error'])
        device = self.expect(200, 'GET', '/v1/devices/%s' % device['id'],
                             persona='demo1').json()['device']
        self.assertEqual('ERROR', device['status'])
        self.assertIn('No valid host', device['status_reason'])
        self.operation_action(op_id, 'rollback', 202, persona='demo1')
        self.wait_operation(op_id, 'ROLLED_BACK')
        self.assertEqual([], self.servers(device['id']))
        self.expect(202, 'DELETE', '/v1/devices/%s' % device['id'],
                    persona='demo1')
        self.wait_for_device(device['id'], None, persona='demo1',
                             timeout=self.VM_TIMEOUT)

    def test_on_failure_rollback_at_once(self):
        template = self.nova_template(
            flavor=self.cloud['MINICLOUD_FLAVOR_HUGE_NAME'])
        device, op_id = self.create(template['id'], on_failure='rollback')
        self.wait_operation(op_id, 'ROLLED_BACK')
        self.assertEqual([], self.servers(device['id']))
        events = [e['event_type'] for e in self.events(device['id'])]
        self.assertIn('device.create.create_vm.rollback.end', events)

    def test_two_projects_do_not_see_each_other(self):
        device, op_id = self.create(self.nova_template()['id'])
        self.wait_operation(op_id, 'COMPLETED')
        server = self.server(device['id'])
        self.expect(404, 'GET', '/v1/devices/%s' % device['id'],
                    persona='demo2')
        self.expect(404, 'GET', '/v1/operations/%s' % op_id,
                    persona='demo2')
        listed = self.expect(200, 'GET', '/v1/devices',
                             persona='demo2').json()['devices']
        self.assertNotIn(device['id'], [d['id'] for d in listed])
        # Nor does Nova show demo2 the VM.
        self.assertNotIn(server['id'],
                         [s['id'] for s in self.servers(user='demo2')])
        self.assertIn(server['id'],
                      [s['id'] for s in self.servers(user='demo1')])
        self.expect(404, 'DELETE', '/v1/devices/%s' % device['id'],
                    persona='demo2')
        self.delete_and_check_gone(device['id'], server['id'])

    def test_conductor_killed_while_nova_builds(self):
        device, op_id = self.create(self.nova_template()['id'])
        operation = self.wait_for_step(op_id, 'wait_active', timeout=60,
                                       interval=0.02)
        victim = operation['lease_owner']
        self.kill_conductor(victim)
        self.addCleanup(self.start_conductor, victim)
        operation = self.wait_operation(op_id, ('COMPLETED', 'FAILED_TEMP'))
        self.assertEqual('COMPLETED', operation['state'], operation)
        self.assertEqual(1, len(self.servers(device['id'])))
        starts = [e['details']['conductor'] for e in self.events(device['id'])
                  if e['event_type'] == 'device.create.wait_active.start']
        self.assertEqual(2, len(starts), starts)
        self.assertEqual(victim, starts[0])
        self.assertNotEqual(victim, starts[1])
        self.delete_and_check_gone(device['id'], self.server(
            device['id'])['id'])

    def query(self, sql, **params):
        engine = sa.create_engine(self.database.url_string)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).fetchall()
        finally:
            engine.dispose()

    def trust_of(self, device_id):
        return self.query('SELECT trust_id FROM devices WHERE id = :id',
                          id=device_id)[0][0]

    def trust_exists(self, trust_id):
        reply = self.session('demo1').get(
            '/OS-TRUST/trusts/%s' % trust_id, endpoint_filter={
                'service_type': 'identity', 'interface': 'public',
                'version': (3, 0)}, raise_exc=False)
        self.assertIn(reply.status_code, (200, 404), reply.text[:300])
        return reply.status_code == 200

    def test_one_trust_per_user_and_project(self):
        """A user's devices in a project share one Keystone trust, which
        lives as long as one of them does."""
        template = self.nova_template()
        first, op_id = self.create(template['id'])
        self.wait_operation(op_id, 'COMPLETED')
        second, op_id = self.create(template['id'])
        self.wait_operation(op_id, 'COMPLETED')
        trust_id = self.trust_of(first['id'])
        self.assertTrue(trust_id)
        self.assertEqual(trust_id, self.trust_of(second['id']))
        self.assertTrue(self.trust_exists(trust_id))
        self.delete_and_check_gone(first['id'],
                                   self.server(first['id'])['id'])
        self.assertTrue(self.trust_exists(trust_id))
        # The other device still acts through it.
        result = self.act(second['id'], 'reboot')
        self.wait_operation(result['operation_id'], 'COMPLETED')
        self.delete_and_check_gone(second['id'],
                                   self.server(second['id'])['id'])
        # Devices of demo1 left by the class's earlier tests may hold it
        # too: it goes with the last of them.
        for (device_id,) in self.query(
                'SELECT id FROM devices WHERE trust_id = :t', t=trust_id):
            self.assertTrue(self.trust_exists(trust_id))
            self.expect(202, 'DELETE', '/v1/devices/%s' % device_id,
                        persona='demo1')
            self.wait_for_device(device_id, None, persona='demo1',
                                 timeout=self.VM_TIMEOUT)
        self.wait_until(lambda: not self.trust_exists(trust_id),
                        'the trust to be deleted', timeout=30)
