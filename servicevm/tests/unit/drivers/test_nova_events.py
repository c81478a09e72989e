"""Nova's notifications heard by the Nova driver ([nova]
notifications_url): the end of an action that leaves a servicevm server
resting answers the polls waiting on its device at once; anything else
leaves them to the next list."""

import threading
import time
from unittest import mock

from oslo_config import cfg

from servicevm.common import states
from servicevm.drivers.device import nova_events
from servicevm.tests.unit.drivers import test_nova

CONF = cfg.CONF


def payload(server_id, device_id, state='active', task_state=None,
            power_state='running', metadata=None):
    """An instance notification's payload as Nova serializes it."""
    return {
        'nova_object.name': 'InstanceActionPayload',
        'nova_object.namespace': 'nova', 'nova_object.version': '1.8',
        'nova_object.data': {
            'uuid': server_id, 'state': state, 'task_state': task_state,
            'power_state': power_state,
            'metadata': dict({'servicevm_device_id': device_id}
                             if device_id else {}, **(metadata or {})),
            'tags': ['servicevm'], 'updated_at': '2026-12-05T14:00:00Z',
            'flavor': {'nova_object.name': 'FlavorPayload',
                       'nova_object.data': {'vcpus': 1, 'memory_mb': 512,
                                            'root_gb': 1}},
            'ip_addresses': [
                {'nova_object.name': 'IpPayload', 'nova_object.data': {
                    'label': 'data', 'address': '10.0.0.5', 'version': 4,
                    'mac': 'fa:16:3e:00:00:01'}},
                {'nova_object.name': 'IpPayload', 'nova_object.data': {
                    'label': 'mgmt', 'address': '192.168.1.5',
                    'version': 4, 'mac': 'fa:16:3e:00:00:02'}}]}}


class TestHeard(test_nova.NovaTestCase):

    def setUp(self):
        super().setUp()
        # Lists wait until the test lets them answer.
        self.gate = self.servers.list_gate = threading.Event()
        self.addCleanup(self.gate.set)
        self.device = self.device(
            attributes={'image': 'cirros', 'flavor': 'm1.tiny',
                        'mgmt_network': 'mgmt'})
        self.server = self.servers.add(self.device['id'], status='BUILD')
        self.device['instance_id'] = self.server.id

    def start_waiting(self):
        """A poll of the device in a thread of its own, under way (its
        list held at the gate); returns what it will answer."""
        answer = {}

        def poll():
            answer.update(self.driver.poll(self.ctx, [self.device]))
        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not any(self.device['id'] in p._waiting
                      for p in list(self.driver._pollers.values())):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.005)
        return thread, answer

    def test_the_end_of_a_build_answers_the_waiting_poll_at_once(self):
        thread, answer = self.start_waiting()
        self.driver.heard('instance.create.end',
                          payload(self.server.id, self.device['id']))
        thread.join(5)
        self.assertFalse(thread.is_alive())
        result = answer[self.device['id']]
        self.assertEqual('active', result.state)
        self.assertEqual(states.POWER_RUNNING, result.power_state)
        self.assertEqual('192.168.1.5', result.mgmt_address)
        self.assertEqual({'vcpus': 1, 'memory_mb': 512, 'disk_gb': 1},
                         result.usage)
        self.assertEqual({'data': ['10.0.0.5'], 'mgmt': ['192.168.1.5']},
                         result.addresses)
        self.assertEqual({'server_id': self.server.id, 'status': 'ACTIVE',
                          'task_state': None,
                          'heard': 'instance.create.end'}, result.details)
        self.assertEqual({'heard': 1, 'answered': 1},
                         self.driver.heard_counts)

    def assert_left_to_the_list(self, event_type, body):
        thread, answer = self.start_waiting()
        self.driver.heard(event_type, body)
        thread.join(0.3)
        self.assertTrue(thread.is_alive())
        self.gate.set()
        thread.join(5)
        # The list's answer: the server is still building.
        self.assertEqual('building', answer[self.device['id']].state)
        self.assertEqual(0, self.driver.heard_counts['answered'])

    def test_the_start_of_a_build_is_left_to_the_list(self):
        self.assert_left_to_the_list('instance.create.start', payload(
            self.server.id, self.device['id'], state='building',
            task_state='spawning', power_state='pending'))

    def test_a_server_with_a_task_under_way_is_left_to_the_list(self):
        self.assert_left_to_the_list('instance.reboot.end', payload(
            self.server.id, self.device['id'], task_state='rebooting'))

    def test_a_server_in_error_is_left_to_the_list(self):
        # (The list has Nova's fault message.)
        self.assert_left_to_the_list('instance.create.error', payload(
            self.server.id, self.device['id'], state='error'))

    def test_another_server_of_the_device_is_left_to_the_list(self):
        # e.g. the server a respawn replaced.
        self.assert_left_to_the_list('instance.create.end', payload(
            'srv-old', self.device['id']))

    def test_news_older_than_the_last_change_is_ignored(self):
        # A reboot asked after the notification was heard.
        self.driver._changed[self.device['id']] = time.monotonic() + 60
        self.assert_left_to_the_list('instance.create.end', payload(
            self.server.id, self.device['id']))

    def test_servers_that_are_not_servicevm_s_are_not_counted(self):
        self.driver.heard('instance.create.end', payload('srv-9', None))
        self.assertEqual({'heard': 0, 'answered': 0},
                         self.driver.heard_counts)

    def test_news_of_a_device_nobody_waits_on_answers_nothing(self):
        self.driver.heard('instance.create.end',
                          payload(self.server.id, self.device['id']))
        self.assertEqual({'heard': 1, 'answered': 0},
                         self.driver.heard_counts)


class TestListener(test_nova.NovaTestCase):

    def test_no_url_no_listener(self):
        with mock.patch.object(nova_events, 'listen') as listen:
            self.driver.start('host-1')
        listen.assert_not_called()

    def test_the_conductor_listens_in_a_pool_of_its_own(self):
        self.config(notifications_url='rabbit://u:p@127.0.0.1:5672/',
                    group='nova')
        with mock.patch.object(nova_events.messaging,
                               'get_notification_transport') as transport, \
                mock.patch.object(nova_events.messaging,
                                  'get_notification_listener') as listener:
            self.driver.start('host-1')
            self.driver.start('host-1')     # once
            self.driver.stop()
        transport.assert_called_once_with(
            CONF, url='rabbit://u:p@127.0.0.1:5672/')
        args, kwargs = listener.call_args
        self.assertEqual([('versioned_notifications', 'nova')],
                         [(t.topic, t.exchange) for t in args[1]])
        self.assertEqual('servicevm-host-1', kwargs['pool'])
        self.assertEqual('threading', kwargs['executor'])
        listener.return_value.start.assert_called_once_with()
        listener.return_value.stop.assert_called_once_with()

    def test_endpoint_takes_instance_notifications_and_survives_errors(
            self):
        driver = mock.Mock()
        driver.heard.side_effect = ValueError('boom')
        endpoint = nova_events.Endpoint(driver)
        self.assertIsNone(endpoint.info({}, 'nova-compute:host',
                                        'instance.create.end', {}, {}))
        self.assertIsNone(endpoint.error({}, 'nova-compute:host',
                                         'instance.create.error', {}, {}))
        self.assertEqual(2, driver.heard.call_count)
        rule = endpoint.filter_rule
        self.assertTrue(rule.match({}, 'nova-compute:host',
                                   'instance.create.end', {}, {}))
        self.assertFalse(rule.match({}, 'nova-compute:host',
                                    'service.update', {}, {}))
