"""The Heat driver against real Keystone, Neutron, Nova and Heat."""

from servicevm.tests.integration import base


class TestHeatDevices(base.CloudTestCase):

    CONDUCTOR_HOSTS = ('heat-conductor-1',)

    def heat_template(self, user='demo1', flavor=None, **attributes):
        vdu = {'image': self.cloud['MINICLOUD_IMAGE_NAME'],
               'flavor': flavor or self.cloud['MINICLOUD_FLAVOR_TINY_NAME'],
               'networks': [self.cloud['MINICLOUD_MGMT_NET_NAME']],
               'mgmt': True}
        attrs = {'vdus': {'fw': vdu}}
        attrs.update(attributes)
        return self.create_template(persona=user, device_driver='heat',
                                    attributes=attrs)

    def create(self, template_id, user='demo1', **values):
        response = self.expect(202, 'POST', '/v1/devices', persona=user,
                               body={'device': dict(
                                   name='it-stack', template_id=template_id,
                                   **values)})
        return response.json()['device'], response.json()['operation_id']

    def stack(self, device_id, user='demo1'):
        found = [s for s in self.stacks(user)
                 if s['stack_name'] == 'svm-%s' % device_id]
        return found[0] if found else None

    def stack_servers(self, stack):
        """The Nova servers of a stack and its nested stacks."""
        reply = self.cloud_get(
            'orchestration', '/stacks/%s/%s/resources' % (
                stack['stack_name'], stack['id']),
            user='demo1', params={'nested_depth': 3})
        return sorted(r['physical_resource_id'] for r in reply['resources']
                      if r['resource_type'] == 'OS::Nova::Server'
                      and r['physical_resource_id'])

    def delete_and_check_gone(self, device_id, server_ids):
        self.expect(202, 'DELETE', '/v1/devices/%s' % device_id,
                    persona='demo1')
        self.wait_for_device(device_id, None, persona='demo1',
                             timeout=self.VM_TIMEOUT)
        self.assertIsNone(self.stack(device_id))
        for server_id in server_ids:
            self.assertIsNone(self.cloud_get(
                'compute', '/servers/%s' % server_id))
            self.assertEqual([], self.ports(server_id))

    def test_stack_from_vdus(self):
        device, op_id = self.create(self.heat_template()['id'])
        operation = self.wait_operation(op_id, ('COMPLETED', 'FAILED_TEMP'))
        self.assertEqual('COMPLETED', operation['state'], operation)
        device = self.wait_for_device(device['id'], 'ACTIVE',
                                      persona='demo1')
        stack = self.stack(device['id'])
        self.assertEqual('CREATE_COMPLETE', stack['stack_status'])
        # In the requesting user's project (through the trust): listed
        # there, not in another project.
        self.assertIsNone(self.stack(device['id'], user='demo2'))
        self.assertEqual(stack['id'], device['instance_id'])
        self.assertTrue(device['mgmt_address'].startswith('10.10.0.'),
                        device)
        servers = self.stack_servers(stack)
        self.assertEqual(1, len(servers))
        self.assertEqual(1, len(self.ports(servers[0])))
        self.delete_and_check_gone(device['id'], servers)

    def scale(self, device_id, count):
        response = self.expect(
            202, 'POST', '/v1/devices/%s/action' % device_id,
            persona='demo1', body={'action': 'scale',
                                   'params': {'count': count}})
        return self.wait_operation(response.json()['operation_id'],
                                   ('COMPLETED', 'FAILED_TEMP'))

    def test_scale_out_and_in(self):
        template = self.heat_template(
            scaling={'min': 1, 'max': 3, 'desired': 1})
        device, op_id = self.create(template['id'])
        self.wait_operation(op_id, 'COMPLETED')
        stack = self.stack(device['id'])
        first = self.stack_servers(stack)
        self.assertEqual(1, len(first))

        operation = self.scale(device['id'], 3)
        self.assertEqual('COMPLETED', operation['state'], operation)
        grown = self.stack_servers(stack)
        self.assertEqual(3, len(grown))
        self.assertTrue(set(first) <= set(grown))
        # The operation records which VMs there were and are.
        self.assertIn(first[0], operation['steps'][0]['output'])
        for server_id in grown:
            self.assertIn(server_id, operation['steps'][1]['output'])

        operation = self.scale(device['id'], 1)
        self.assertEqual('COMPLETED', operation['state'], operation)
        self.assertEqual(1, len(self.stack_servers(stack)))

        # Beyond the template's bounds: refused at once, nothing starts.
        response = self.request(
            'POST', '/v1/devices/%s/action' % device['id'], persona='demo1',
            body={'action': 'scale', 'params': {'count': 5}})
        self.assertEqual(400, response.status_code, response.text)
        self.assertEqual('params.count',
                         response.json()['errors'][0]['field'])
        self.assertEqual('ACTIVE', self.wait_for_device(
            device['id'], 'ACTIVE', persona='demo1')['status'])
        self.delete_and_check_gone(device['id'], grown)

    def test_failed_stack_rolled_back_leaves_nothing(self):
        template = self.heat_template(
            flavor=self.cloud['MINICLOUD_FLAVOR_HUGE_NAME'])
        device, op_id = self.create(template['id'])
        operation = self.wait_operation(op_id, ('FAILED_TEMP', 'COMPLETED'))
        self.assertEqual('FAILED_TEMP', operation['state'])
        self.assertIn('CREATE_FAILED', operation['error'])
        self.operation_action(op_id, 'rollback', 202, persona='demo1')
        self.wait_operation(op_id, 'ROLLED_BACK')
        self.assertIsNone(self.stack(device['id']))
        self.assertEqual([], self.servers(device['id']))
