"""Notifications on a real RabbitMQ: the API and the conductors (separate
processes) send them with the messagingv2 driver to a topic of the
class's own; the test consumes them with an oslo.messaging notification
listener."""

import threading
import uuid

from oslo_config import cfg
import oslo_messaging as messaging

from servicevm.tests.functional import base

TOPIC = 'servicevm-notifications-%s' % uuid.uuid4().hex[:8]


class _Collector:
    """Listener endpoint: keeps (priority, event type, payload)."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()

    def _keep(self, priority, event_type, payload):
        with self.lock:
            self.received.append((priority, event_type, payload))

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        self._keep('INFO', event_type, payload)

    def error(self, ctxt, publisher_id, event_type, payload, metadata):
        self._keep('ERROR', event_type, payload)


class TestNotifications(base.ServiceTestCase):

    CONFIG = {'oslo_messaging_notifications': {'driver': 'messagingv2',
                                               'topics': TOPIC}}

    def setUp(self):
        super().setUp()
        conf = cfg.ConfigOpts()
        conf([], project='servicevm-test')
        transport = messaging.get_notification_transport(
            conf, url=self.transport_url())
        self.addCleanup(transport.cleanup)
        self.collector = _Collector()
        listener = messaging.get_notification_listener(
            transport, [messaging.Target(topic=TOPIC)], [self.collector],
            executor='threading', pool='servicevm-functional')
        listener.start()
        self.addCleanup(listener.wait)
        self.addCleanup(listener.stop)

    def seen(self, event_type):
        with self.collector.lock:
            return [r for r in self.collector.received if r[1] == event_type]

    def wait_seen(self, event_type):
        return self.wait_until(lambda: self.seen(event_type),
                               'notification %s' % event_type)

    def test_device_and_service_notifications(self):
        template = self.create_template()
        device = self.create_device(template['id'])
        self.wait_for_device(device['id'], 'ACTIVE')
        start = self.wait_seen('servicevm.device.create.start')[0]
        end = self.wait_seen('servicevm.device.create.end')[0]
        self.assertEqual('INFO', end[0])
        data = end[2]['servicevm_object.data']
        self.assertEqual((device['id'], 'project-a', 'ACTIVE'),
                         (data['id'], data['project_id'], data['status']))
        self.assertEqual(start[2]['servicevm_object.data']['operation_id'],
                         data['operation_id'])
        self.assertEqual('DevicePayload', end[2]['servicevm_object.name'])
        completed = self.wait_seen('servicevm.operation.completed')[0]
        self.assertEqual(data['operation_id'],
                         completed[2]['servicevm_object.data']['id'])

        service = self.expect(202, 'POST', '/v1/service_instances', body={
            'service_instance': {'service_type': 'firewall',
                                 'devices': [device['id']]}}).json()
        self.wait_seen('servicevm.service_instance.create.start')
        end = self.wait_seen('servicevm.service_instance.create.end')[0]
        self.assertEqual(service['service_instance']['id'],
                         end[2]['servicevm_object.data']['id'])
        self.expect(202, 'DELETE', '/v1/service_instances/%s'
                    % service['service_instance']['id'])
        self.wait_seen('servicevm.service_instance.delete.end')
        self.expect(202, 'DELETE', '/v1/devices/%s' % device['id'])
        self.wait_seen('servicevm.device.delete.end')
