"""Notifications of lifecycle changes: sent (oslo.messaging's ``test``
driver records them) when enabled, with versioned payloads that carry
the resource, the operation and the project, and never a secret."""

import json

from oslo_messaging.notify import _impl_test

from servicevm.common import notify
from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D


class NotificationTestCase(op_base.OperationTestCase):

    autostart = False

    def setUp(self):
        super().setUp()
        self.record_notifications()
        self.start_conductor_now()

    def sent(self):
        # (context, message, priority, retry) each.
        return [(m['event_type'], priority, m['payload'])
                for _, m, priority, _ in _impl_test.NOTIFICATIONS]

    def types(self):
        return [t for t, _, _ in self.sent()]

    def test_device_lifecycle_notifications(self):
        device_id, op_id = self.start_create(
            kwargs={'mgmt_auth': {'password': 'hunter2-secret'}})
        self.wait_rest(op_id, 'COMPLETED')
        self.wait_until(lambda: 'servicevm.operation.completed'
                        in self.types(), 'the completed notification')
        sent = self.sent()
        types = [t for t, _, _ in sent]
        for expected in ('servicevm.device.create.start',
                         'servicevm.operation.processing',
                         'servicevm.device.create.end',
                         'servicevm.operation.completed'):
            self.assertIn(expected, types)
        self.assertLess(types.index('servicevm.device.create.start'),
                        types.index('servicevm.device.create.end'))
        _, priority, payload = sent[types.index(
            'servicevm.device.create.end')]
        self.assertEqual('INFO', priority)
        self.assertEqual(('DevicePayload', 'servicevm', '1.0'), (
            payload['servicevm_object.name'],
            payload['servicevm_object.namespace'],
            payload['servicevm_object.version']))
        data = payload['servicevm_object.data']
        self.assertEqual((device_id, 'project-a', 'ACTIVE', op_id), (
            data['id'], data['project_id'], data['status'],
            data['operation_id']))
        self.assertNotIn('hunter2', json.dumps(sent))

        # A failed delete: the error, at ERROR priority.
        self.patch_faults(device_id)
        response = self.delete('%s/%s' % (D, device_id), base.MEMBER,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'FAILED_TEMP')
        self.wait_until(lambda: 'servicevm.device.delete.error'
                        in self.types(), 'the delete error notification')
        sent = {t: (p, d) for t, p, d in self.sent()}
        priority, payload = sent['servicevm.device.delete.error']
        self.assertEqual('ERROR', priority)
        self.assertEqual('ERROR', payload['servicevm_object.data']['status'])
        priority, payload = sent['servicevm.operation.failed_temp']
        self.assertEqual(('ERROR', 'FAILED_TEMP'), (
            priority, payload['servicevm_object.data']['state']))

        # The user's action on the operation.
        self.action(response.json['operation_id'], 'fail', 200)
        self.assertIn('servicevm.operation.failed', self.types())

    def patch_faults(self, device_id):
        import sqlalchemy as sa
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO device_kwargs (project_id, device_id, key, "
                "value, created_at) VALUES ('project-a', :d, 'fault', :v, "
                "CURRENT_TIMESTAMP)"),
                {'d': device_id,
                 'v': json.dumps({'delete': {'fail': 'disk busy'}})})

    def test_off_by_default(self):
        self.config(driver=[], group='oslo_messaging_notifications')
        notify.reset()
        _impl_test.reset()
        _, op_id = self.start_create()
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual([], self.sent())
