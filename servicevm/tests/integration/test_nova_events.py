"""The Nova driver hears Nova's versioned notifications on the cloud's
bus ([nova] notifications_url): the end of a build answers the operation
waiting on it, without waiting for the next batched poll."""

from servicevm.tests.integration import base

# Far more than the fake virt driver takes to build a server (a second or
# two): the notification comes long before the poll's next cycle.
SLOW_POLL = 10.0


class TestNovaNotifications(base.CloudTestCase):

    CONDUCTOR_HOSTS = ('events-conductor-1',)

    @classmethod
    def cloud_config(cls, env):
        config = super().cloud_config(env)
        config['nova']['poll_interval'] = SLOW_POLL
        return config

    def test_the_end_of_the_build_is_heard_from_nova(self):
        self.assertTrue(self.cloud.get('MINICLOUD_NOTIFICATIONS_URL'),
                        'the cloud sends no notifications: a cloud started '
                        'before they were configured (restart it)')
        template = self.nova_template()
        response = self.expect(202, 'POST', '/v1/devices', persona='demo1',
                               body={'device': {'name': 'it-heard',
                                                'template_id':
                                                    template['id']}})
        device = response.json()['device']
        operation = self.wait_operation(
            response.json()['operation_id'], ('COMPLETED', 'FAILED_TEMP'))
        self.assertEqual('COMPLETED', operation['state'], operation)
        # Told by the notification, not by a poll.
        steps = {s['name']: s for s in operation['steps']}
        self.assertIn('notification instance.create.end',
                      steps['wait_active']['output'])
        device = self.wait_for_device(device['id'], 'ACTIVE',
                                      persona='demo1')
        (server,) = self.servers(device['id'])
        self.assertEqual(server['id'], device['instance_id'])
        self.assertTrue(device['mgmt_address'].startswith('10.10.0.'),
                        device)
        self.assertEqual('running', device['power_state'])
        # Its delete is told by the poll (its next cycle).
        self.expect(202, 'DELETE', '/v1/devices/%s' % device['id'],
                    persona='demo1')
        self.wait_for_device(device['id'], None, persona='demo1',
                             timeout=3 * SLOW_POLL + 30)
        self.assertEqual([], self.servers(device['id']))
