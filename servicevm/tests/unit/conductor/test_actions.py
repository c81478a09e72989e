"""POST /v1/devices/{id}/action: a driver's optional actions run as
operations (with the fault driver, which supports reboot, shutdown and
start)."""

from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D


class TestDeviceActions(op_base.OperationTestCase):

    def act(self, device_id, body, status=202, persona=base.MEMBER):
        response = self.post('%s/%s/action' % (D, device_id), body, persona)
        if status >= 400:
            return self.assertError(response, status)
        self.assertEqual(status, response.status_int, response.body)
        return response.json

    def test_shutdown_then_start(self):
        device_id = self.make_device()
        reply = self.act(device_id, {'action': 'shutdown'})
        self.assertEqual('PENDING_UPDATE', reply['device']['status'])
        op = self.wait_rest(reply['operation_id'], 'COMPLETED')
        self.assertEqual('action', op['kind'])
        self.assertEqual(['run_action', 'wait_action'],
                         [s['name'] for s in op['steps']])
        self.assertIn('shutdown: stopped', op['steps'][1]['output'])
        device = self.device(device_id)
        self.assertEqual(('ACTIVE', 'shutoff'),
                         (device['status'], device['power_state']))
        self.assertEqual('off', self.vim()[device_id]['power'])

        reply = self.act(device_id, {'action': 'start'})
        self.wait_rest(reply['operation_id'], 'COMPLETED')
        self.assertEqual('running', self.device(device_id)['power_state'])
        self.assertEqual(['create', 'shutdown', 'start'],
                         [e for e, _ in self.journal(device_id)])
        events = self.events(device_id, reply['operation_id'])
        self.assertIn('device.action.run_action.end', events)
        self.assertIn('device.action.end', events)

    def test_unsupported_action_is_400_naming_the_supported(self):
        device_id = self.make_device()
        error = self.act(device_id, {'action': 'resize'}, 400)
        self.assertEqual('action', error['field'])
        self.assertIn('reboot, scale, shutdown, start', error['detail'])
        # Nothing was started.
        self.assertEqual('ACTIVE', self.device(device_id)['status'])

    def test_bad_params_are_400_naming_the_param(self):
        device_id = self.make_device()
        error = self.act(device_id, {'action': 'reboot',
                                     'params': {'hard': 'yes'}}, 400)
        self.assertEqual('params.hard', error['field'])
        error = self.act(device_id, {'action': 'reboot',
                                     'params': {'force': True}}, 400)
        self.assertEqual('params.force', error['field'])
        error = self.act(device_id, {'params': {}}, 400)
        self.assertEqual('action', error['field'])

    def test_noop_driver_has_no_actions(self):
        template = self.create_template(base.MEMBER, device_driver='noop')
        device = self.post(D, {'device': {'template_id': template['id']}},
                           base.MEMBER, status=202).json
        self.wait_for_operation(device['operation_id'], 'COMPLETED')
        error = self.act(device['device']['id'], {'action': 'reboot'}, 400)
        self.assertIn('supported: none', error['detail'])

    def test_failed_action_then_retry(self):
        device_id = self.make_device({'reboot': {'fail': 'no power',
                                                 'times': 1}})
        reply = self.act(device_id, {'action': 'reboot'})
        op = self.wait_rest(reply['operation_id'], 'FAILED_TEMP')
        self.assertIn('no power', op['error'])
        self.assertEqual('ERROR', self.device(device_id)['status'])
        self.action(reply['operation_id'], 'retry', 202)
        self.wait_rest(reply['operation_id'], 'COMPLETED')
        self.assertEqual('ACTIVE', self.device(device_id)['status'])

    def test_rolled_back_action_restores_the_status(self):
        device_id = self.make_device({'reboot': {'fail': 'no power'}})
        reply = self.act(device_id, {'action': 'reboot'})
        self.wait_rest(reply['operation_id'], 'FAILED_TEMP')
        self.action(reply['operation_id'], 'rollback', 202)
        self.wait_rest(reply['operation_id'], 'ROLLED_BACK')
        self.assertEqual('ACTIVE', self.device(device_id)['status'])

    def test_busy_device_is_409(self):
        device_id = self.make_device({'shutdown': {'hang': True}})
        reply = self.act(device_id, {'action': 'shutdown'})
        self.wait_step(reply['operation_id'], 'run_action')
        error = self.act(device_id, {'action': 'start'}, 409)
        self.assertIn(reply['operation_id'], error['detail'])
        self.action(reply['operation_id'], 'cancel', 202)
        self.wait_rest(reply['operation_id'], 'CANCELLED')


class TestStuckDelete(op_base.OperationTestCase):
    """A VM stuck deleting: its delete is asked again, then an alarm."""

    def setUp(self):
        super().setUp()
        self.config(delete_retry_interval=1, group='conductor')

    def test_delete_asked_again_until_gone(self):
        device_id = self.make_device({'delete': {'keep': True, 'times': 1}})
        response = self.delete('%s/%s' % (D, device_id), base.MEMBER,
                               status=202)
        op = self.wait_rest(response.json['operation_id'], 'COMPLETED')
        self.assertEqual('gone (delete asked 2 times)',
                         op['steps'][1]['output'])
        self.assertNotIn(device_id, self.vim())

    def test_still_there_at_the_end_is_an_alarm(self):
        self.config(device_timeout=2, group='conductor')
        device_id = self.make_device({'delete': {'keep': True}})
        response = self.delete('%s/%s' % (D, device_id), base.MEMBER,
                               status=202)
        op = self.wait_rest(response.json['operation_id'], 'FAILED_TEMP')
        self.assertIn('wait_gone', op['error'])
        events = self.get('%s/%s/events' % (D, device_id),
                          base.ADMIN).json['events']
        alarms = [e for e in events if e['result'] == 'alarm']
        # What the wait saw, then the failed delete itself.
        self.assertEqual(['device.delete.stuck', 'device.delete.error'],
                         [e['event_type'] for e in alarms])
        self.assertIn('asked', alarms[0]['message'])
        self.assertEqual('ERROR', self.device(device_id)['status'])

    def test_failed_delete_is_an_alarm(self):
        device_id = self.make_device({'delete': {'fail': 'disk busy'}})
        response = self.delete('%s/%s' % (D, device_id), base.MEMBER,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'FAILED_TEMP')
        events = self.get('%s/%s/events' % (D, device_id),
                          base.ADMIN).json['events']
        alarms = [e for e in events if e['result'] == 'alarm']
        self.assertEqual(['device.delete.error'],
                         [e['event_type'] for e in alarms])
        self.assertIn('disk busy', alarms[0]['message'])
        self.assertEqual('ERROR', self.device(device_id)['status'])
