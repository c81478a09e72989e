"""Alarms: failures that need a person (a failed or stuck delete) are
listed at /v1/alarms and /v1/devices/{id}/alarms, acknowledged once, by
the project's members, and sent as notifications."""

from oslo_messaging.notify import _impl_test

from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D
A = '/v1/alarms'


class TestAlarms(op_base.OperationTestCase):

    autostart = False

    def setUp(self):
        super().setUp()
        self.record_notifications()
        self.start_conductor_now()

    def failed_delete(self):
        device_id = self.make_device({'delete': {'fail': 'disk busy'}})
        response = self.delete('%s/%s' % (D, device_id), base.MEMBER,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'FAILED_TEMP')
        return device_id

    def test_list_show_acknowledge(self):
        device_id = self.failed_delete()
        other = self.make_device()
        (alarm,) = self.get(A, base.MEMBER).json['alarms']
        self.assertEqual((device_id, 'device.delete.error', False, None),
                         (alarm['resource_id'], alarm['event_type'],
                          alarm['acknowledged'], alarm['acknowledged_by']))
        self.assertIn('disk busy', alarm['message'])
        self.assertEqual([alarm['id']], [a['id'] for a in self.get(
            '%s/%s/alarms' % (D, device_id), base.MEMBER).json['alarms']])
        self.assertEqual([], self.get('%s/%s/alarms' % (D, other),
                                      base.MEMBER).json['alarms'])
        url = '%s/%s' % (A, alarm['id'])
        self.assertEqual(alarm, self.get(url, base.MEMBER).json['alarm'])

        # Another project neither sees nor acknowledges it; a reader
        # cannot acknowledge.
        self.assertEqual([], self.get(A, base.OTHER_MEMBER).json['alarms'])
        self.assertError(self.get(url, base.OTHER_MEMBER, status=404), 404)
        self.assertError(self.post(url + '/action', {
            'action': 'acknowledge'}, base.OTHER_MEMBER), 404)
        self.assertError(self.post(url + '/action', {
            'action': 'acknowledge'}, base.READER), 403)
        self.assertError(self.post(url + '/action', {'action': 'mute'}),
                         400, field='action')

        acked = self.post(url + '/action', {'action': 'acknowledge'},
                          base.MEMBER, status=200).json['alarm']
        self.assertTrue(acked['acknowledged'])
        self.assertEqual('member-user', acked['acknowledged_by'])
        error = self.assertError(self.post(url + '/action', {
            'action': 'acknowledge'}), 409)
        self.assertIn('acknowledged already', error['detail'])
        self.assertEqual([], self.get(A + '?acknowledged=0').json['alarms'])
        self.assertEqual([alarm['id']], [a['id'] for a in self.get(
            A + '?acknowledged=1').json['alarms']])
        self.assertError(self.get(A + '/nope', status=404), 404)
        self.assertError(self.get(A + '/99999999', status=404), 404)

        types = [m['event_type'] for _, m, _, _ in _impl_test.NOTIFICATIONS]
        self.assertIn('servicevm.alarm.raise', types)
        self.assertIn('servicevm.alarm.acknowledge', types)

    def test_admin_lists_every_project(self):
        self.failed_delete()
        self.assertEqual(1, len(self.get(A + '?all_projects=1',
                                         base.ADMIN).json['alarms']))
        self.assertError(self.get(A + '?all_projects=1', base.MEMBER,
                                  status=403), 403)
