"""Operations end to end through the API: the failure policy, retry,
rollback and fail, pause/resume/cancel at every step, one operation per
device, and the events every step transition leaves. The ``fault``
driver's VIM is checked for duplicates and leftovers after each."""

import time
from unittest import mock

import fixtures

from servicevm.conductor import steps as plan_steps
from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D
OPS = op_base.OPS


class TestFailurePolicy(op_base.OperationTestCase):

    def test_failed_create_step_then_retry(self):
        device_id, op_id = self.start_create(
            {'create': {'fail': 'no capacity', 'times': 1}})
        operation = self.wait_rest(op_id, 'FAILED_TEMP')
        self.assertIn('create_vm', operation['error'])
        self.assertIn('no capacity', operation['error'])
        steps = self.steps(op_id)
        self.assertEqual('FAILED', steps['create_vm']['state'])
        self.assertIn('no capacity', steps['create_vm']['error'])
        self.assertEqual('PENDING', steps['wait_active']['state'])
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIn('no capacity', device['status_reason'])
        self.assertIn(op_id, device['status_reason'])
        # Still held: another request is refused, naming the operation.
        self.assertEqual(op_id, device['operation_id'])
        self.assertError(self.delete('%s/%s' % (D, device_id)), 409,
                         contains=op_id)
        self.assertEqual({}, self.vim())

        response = self.action(op_id, 'retry', 202)
        self.assertEqual('PROCESSING', response.json['operation']['state'])
        self.wait_rest(op_id, 'COMPLETED')
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertIsNone(device['status_reason'])
        self.assertIsNone(device['operation_id'])
        self.assertEqual(self.vim()[device_id]['instance_id'],
                         device['instance_id'])
        self.assertOneInstance(device_id)
        steps = self.steps(op_id)
        self.assertEqual(2, steps['create_vm']['attempts'])
        self.assertEqual(1, steps['wait_active']['attempts'])
        self.assertIsNone(steps['create_vm']['error'])
        self.assertIsNone(self.operation(op_id)['error'])
        # A retry looks for what the failed try may have made.
        self.assertEqual([False], [r['new'] for r in self.journal_records(
            device_id) if r['event'] == 'create'])

    def test_first_try_of_a_create_is_new(self):
        device_id, op_id = self.start_create({})
        self.wait_rest(op_id, 'COMPLETED')
        # Nothing to look for in the VIM first.
        self.assertEqual([True], [r['new'] for r in self.journal_records(
            device_id) if r['event'] == 'create'])

    def test_failed_wait_step_then_retry(self):
        # The first two polls (create_vm's check, wait_active) see an
        # error; the retry sees the instance active.
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error', 'error': 'kernel panic',
                      'times': 2}})
        self.wait_rest(op_id, 'FAILED_TEMP')
        steps = self.steps(op_id)
        self.assertEqual('COMPLETED', steps['create_vm']['state'])
        self.assertEqual('FAILED', steps['wait_active']['state'])
        self.assertIn('kernel panic', steps['wait_active']['error'])
        self.assertEqual('ERROR', self.device(device_id)['status'])
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual('ACTIVE', self.device(device_id)['status'])
        # Retried from the failed step only.
        steps = self.steps(op_id)
        self.assertEqual(1, steps['create_vm']['attempts'])
        self.assertEqual(2, steps['wait_active']['attempts'])
        self.assertOneInstance(device_id)

    def _check_create_rolled_back(self, device_id, op_id, state):
        self.wait_rest(op_id, state)
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['instance_id'])
        self.assertIsNone(device['operation_id'])
        self.assertIn(state.lower(), device['status_reason'])
        self.assertNoLeftovers(device_id)
        for step in self.operation(op_id)['steps']:
            self.assertIn(step['state'], ('ROLLED_BACK', 'PENDING'), step)
        # The user deletes it.
        self.delete('%s/%s' % (D, device_id), status=202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.assertNoLeftovers(device_id)

    def test_rollback_per_request(self):
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error', 'error': 'kernel panic'}},
            on_failure='rollback')
        self.assertEqual('rollback', self.operation(op_id)['on_failure'])
        self._check_create_rolled_back(device_id, op_id, 'ROLLED_BACK')
        self.wait_settled(timeout=5)
        self.assertIn('kernel panic', self.operation(op_id)['error'])
        # An instance was made, then removed.
        self.assertEqual([('create', device_id), ('delete', device_id)],
                         self.journal(device_id))

    def test_rollback_per_template(self):
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error'}},
            template_attrs={'on_failure': 'rollback'})
        self.assertEqual('rollback', self.operation(op_id)['on_failure'])
        self._check_create_rolled_back(device_id, op_id, 'ROLLED_BACK')

    def test_request_overrides_template_policy(self):
        device_id, op_id = self.start_create(
            {'create': {'fail': 'no capacity'}},
            template_attrs={'on_failure': 'rollback'},
            on_failure='fail_temp')
        self.wait_rest(op_id, 'FAILED_TEMP')
        self.action(op_id, 'fail', 200)

    def test_rollback_from_failed_temp(self):
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error', 'error': 'kernel panic'}})
        self.wait_rest(op_id, 'FAILED_TEMP')
        self.assertIn(device_id, self.vim())
        response = self.action(op_id, 'rollback', 202)
        self.assertEqual('ROLLING_BACK', response.json['operation']['state'])
        self._check_create_rolled_back(device_id, op_id, 'ROLLED_BACK')

    def test_fail_from_failed_temp(self):
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error', 'error': 'kernel panic'}})
        self.wait_rest(op_id, 'FAILED_TEMP')
        response = self.action(op_id, 'fail', 200)
        operation = response.json['operation']
        self.assertEqual('FAILED', operation['state'])
        self.assertIn('kernel panic', operation['error'])
        self.assertIsNotNone(operation['finished_at'])
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIn('kernel panic', device['status_reason'])
        self.assertIsNone(device['operation_id'])
        # Fail leaves the VIM as it is; the delete then clears it.
        self.assertIn(device_id, self.vim())
        for action in ('retry', 'rollback', 'resume', 'fail', 'cancel'):
            self.assertError(self.action(op_id, action), 409,
                             contains='FAILED')
        self.delete('%s/%s' % (D, device_id), status=202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.assertNoLeftovers(device_id)

    def test_cancel_from_failed_temp(self):
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error'}})
        self.wait_rest(op_id, 'FAILED_TEMP')
        response = self.action(op_id, 'cancel', 202)
        self.assertTrue(response.json['operation']['cancelled'])
        self._check_create_rolled_back(device_id, op_id, 'CANCELLED')


class TestPauseResumeCancel(op_base.OperationTestCase):

    # create_vm takes a while (create sleeps), so does wait_active (each
    # poll sleeps): both can be caught running.
    SLOW = {'create': {'sleep': 0.3}, 'poll': {'sleep': 0.15}}

    def _pause_at(self, step):
        device_id, op_id = self.start_create(
            self.SLOW, kwargs={'mgmt_address': '192.0.2.7'})
        self.wait_step(op_id, step)
        response = self.action(op_id, 'pause', 200)
        self.assertEqual('PAUSED', response.json['operation']['state'])
        # The running step ends, the next does not start.
        self.wait_rest(op_id, 'PAUSED')
        self.wait_step(op_id, step, 'COMPLETED')
        return device_id, op_id

    def test_pause_resume_at_create_vm(self):
        device_id, op_id = self._pause_at('create_vm')
        time.sleep(0.2)
        self.assertEqual('PENDING', self.steps(op_id)['wait_active']['state'])
        self.assertEqual('PENDING_CREATE', self.device(device_id)['status'])
        self.action(op_id, 'resume', 202)
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual('ACTIVE', self.device(device_id)['status'])
        self.assertOneInstance(device_id)

    def test_pause_resume_at_wait_active(self):
        # Paused while the last step runs: the step ends, the operation
        # stays paused until resumed.
        device_id, op_id = self._pause_at('wait_active')
        time.sleep(0.2)
        self.assertEqual('PAUSED', self.operation(op_id)['state'])
        self.assertEqual('PENDING_CREATE', self.device(device_id)['status'])
        self.action(op_id, 'resume', 202)
        self.wait_rest(op_id, 'COMPLETED')
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        # What wait_active found is recorded although the run that
        # completes the operation did not run it.
        self.assertEqual('192.0.2.7', device['mgmt_address'])
        self.assertTrue(device['ready'])
        self.assertEqual('running', device['power_state'])
        self.assertOneInstance(device_id)

    def test_pause_then_rollback(self):
        for step in ('create_vm', 'wait_active'):
            device_id, op_id = self._pause_at(step)
            self.action(op_id, 'rollback', 202)
            self.wait_rest(op_id, 'ROLLED_BACK')
            self.assertEqual('ERROR', self.device(device_id)['status'])
            self.assertNoLeftovers(device_id)

    def test_pause_then_cancel(self):
        for step in ('create_vm', 'wait_active'):
            device_id, op_id = self._pause_at(step)
            self.action(op_id, 'cancel', 202)
            operation = self.wait_rest(op_id, 'CANCELLED')
            self.wait_settled(timeout=5)
            self.assertTrue(operation['cancelled'])
            self.assertEqual('ERROR', self.device(device_id)['status'])
            self.assertNoLeftovers(device_id)

    def test_pause_then_fail(self):
        device_id, op_id = self._pause_at('create_vm')
        self.action(op_id, 'fail', 200)
        self.wait_settled()
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['operation_id'])
        self.delete('%s/%s' % (D, device_id), status=202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.assertNoLeftovers(device_id)

    def _pause_delete_at(self, step):
        device_id = self.make_device({'delete': {'sleep': 0.3},
                                      'poll': {'sleep': 0.1}})
        op_id = self.delete('%s/%s' % (D, device_id),
                            status=202).json['operation_id']
        self.wait_step(op_id, step)
        self.action(op_id, 'pause', 200)
        self.wait_rest(op_id, 'PAUSED')
        self.wait_step(op_id, step, 'COMPLETED')
        self.assertEqual('PENDING_DELETE', self.device(device_id)['status'])
        return device_id, op_id

    def test_pause_resume_delete(self):
        for step in ('delete_vm', 'wait_gone'):
            device_id, op_id = self._pause_delete_at(step)
            # The VM is gone: there is no way back.
            self.assertError(self.action(op_id, 'rollback'), 409,
                             contains='delete_vm')
            self.assertError(self.action(op_id, 'cancel'), 409,
                             contains='delete_vm')
            self.action(op_id, 'resume', 202)
            self.assertIsNone(self.wait_for_device(device_id, None))
            self.wait_rest(op_id, 'COMPLETED')
            self.assertNoLeftovers(device_id)

    def test_pause_update_then_resume_or_rollback(self):
        for action, state, flavor in (('resume', 'COMPLETED', 'large'),
                                      ('rollback', 'ROLLED_BACK', 'small')):
            device_id = self.make_device({'update': {'sleep': 0.3}},
                                         kwargs={'flavor': 'small'})
            op_id = self.patch('%s/%s' % (D, device_id), {
                'device': {'kwargs': {'flavor': 'large'}}},
                status=202).json['operation_id']
            self.wait_step(op_id, 'update_vm')
            self.action(op_id, 'pause', 200)
            self.wait_rest(op_id, 'PAUSED')
            self.assertEqual('COMPLETED',
                             self.steps(op_id)['update_vm']['state'])
            self.assertEqual('PENDING_UPDATE',
                             self.device(device_id)['status'])
            self.action(op_id, action, 202)
            self.wait_rest(op_id, state)
            device = self.device(device_id)
            self.assertEqual('ACTIVE', device['status'])
            self.assertEqual({'flavor': flavor}, device['kwargs'])
            self.assertIsNone(device['operation_id'])
            self.assertOneInstance(device_id)

    def _cancel_waiting(self, faults, action='cancel', state='CANCELLED'):
        device_id, op_id = self.start_create(faults)
        self.wait_step(op_id, 'create_vm')
        time.sleep(0.1)
        started = time.monotonic()
        response = self.action(op_id, action, 202)
        self.assertEqual('ROLLING_BACK', response.json['operation']['state'])
        self.wait_rest(op_id, state)
        self.assertLess(time.monotonic() - started, 5)
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['instance_id'])
        self.assertNoLeftovers(device_id)
        return device_id, op_id

    def test_cancel_interrupts_create(self):
        # The VIM takes 30 s to create: nothing was made when cancelled.
        device_id, op_id = self._cancel_waiting({'create': {'sleep': 30}})
        self.assertEqual([], self.journal(device_id))

    def test_cancel_interrupts_hanging_poll(self):
        # The instance is made, then its first poll hangs: cancel removes
        # it.
        device_id, op_id = self._cancel_waiting(
            {'poll': {'hang': True, 'times': 1}})
        self.assertEqual([('create', device_id), ('delete', device_id)],
                         self.journal(device_id))

    def test_rollback_interrupts_waiting_step(self):
        self._cancel_waiting({'poll': {'hang': True, 'times': 1}},
                             'rollback', 'ROLLED_BACK')


class TestActions(op_base.OperationTestCase):

    def test_invalid_actions_name_the_state(self):
        device_id = self.make_device()
        op_id = self.get('%s?resource_id=%s' % (OPS, device_id)).json[
            'operations'][0]['id']
        for action in ('pause', 'resume', 'cancel', 'retry', 'rollback',
                       'fail'):
            error = self.assertError(self.action(op_id, action), 409,
                                     contains='COMPLETED')
            self.assertIn(action, error['detail'])

    def test_invalid_actions_while_processing(self):
        device_id, op_id = self.start_create({'create': {'sleep': 30}})
        self.wait_step(op_id, 'create_vm')
        for action in ('resume', 'retry', 'fail'):
            self.assertError(self.action(op_id, action), 409,
                             contains='PROCESSING')
        self.action(op_id, 'pause', 200)
        for action in ('pause', 'retry'):
            self.assertError(self.action(op_id, action), 409,
                             contains='PAUSED')
        self.action(op_id, 'cancel', 202)
        self.wait_rest(op_id, 'CANCELLED')
        self.assertNoLeftovers(device_id)

    def test_bad_requests(self):
        device_id, op_id = self.start_create({'create': {'sleep': 30}})
        self.wait_step(op_id, 'create_vm')
        url = '%s/%s/action' % (OPS, op_id)
        self.assertError(self.post(url, {'action': 'explode'}), 400)
        self.assertError(self.post(url, {}), 400)
        self.assertError(self.post(url, {'action': 'pause', 'x': 1}), 400)
        self.assertError(self.post(
            '%s/%s/action' % (OPS, '0b7c2f9e-8a1d-4c55-9e3b-3f7a2d1c6e41'),
            {'action': 'pause'}), 404)
        # Another project's operation does not exist for the caller; a
        # reader may not steer.
        self.assertError(self.action(op_id, 'cancel',
                                     persona=base.OTHER_MEMBER), 404)
        self.assertError(self.action(op_id, 'cancel', persona=base.READER),
                         403)
        self.assertEqual('PROCESSING', self.operation(op_id)['state'])
        # An admin may steer any project's.
        self.action(op_id, 'cancel', 202, persona=base.ADMIN)
        self.wait_rest(op_id, 'CANCELLED')
        self.assertNoLeftovers(device_id)


class TestOneOperationPerDevice(op_base.OperationTestCase):

    def test_busy_device_refuses_then_force_delete(self):
        device_id, create_id = self.start_create(
            {'poll': {'hang': True, 'times': 1}})
        self.wait_step(create_id, 'create_vm')
        url = '%s/%s' % (D, device_id)
        self.assertError(self.patch(url, {'device': {'kwargs': {'a': 1}}}),
                         409, contains=create_id)
        self.assertError(self.delete(url), 409, contains=create_id)
        # Descriptive fields need no operation.
        self.patch(url, {'device': {'name': 'renamed'}}, status=200)
        self.assertEqual({}, self.device(device_id)['kwargs'])

        started = time.monotonic()
        response = self.delete(url + '?force=true', status=202)
        delete_id = response.json['operation_id']
        self.assertNotEqual(create_id, delete_id)
        self.assertIn(delete_id, response.headers['Location'])
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(self.operation(create_id)['cancelled'])
        self.wait_rest(create_id, 'CANCELLED')
        self.wait_rest(delete_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)
        self.assertEqual({}, self.vim())

    def test_force_delete_of_failed_temp(self):
        device_id, create_id = self.start_create(
            {'poll': {'state': 'error'}})
        self.wait_rest(create_id, 'FAILED_TEMP')
        delete_id = self.delete('%s/%s?force=true' % (D, device_id),
                                status=202).json['operation_id']
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(create_id, 'CANCELLED')
        self.wait_rest(delete_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_force_delete_of_paused_create(self):
        device_id, create_id = self.start_create({'create': {'sleep': 0.3}})
        self.wait_step(create_id, 'create_vm')
        self.action(create_id, 'pause', 200)
        self.wait_rest(create_id, 'PAUSED')
        self.assertIn(device_id, self.vim())
        delete_id = self.delete('%s/%s?force=true' % (D, device_id),
                                status=202).json['operation_id']
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(create_id, 'CANCELLED')
        self.wait_rest(delete_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_force_delete_of_failed_update(self):
        device_id = self.make_device({'update': {'fail': 'bad flavor',
                                                 'times': 1}},
                                     kwargs={'flavor': 'small'})
        update_id = self.patch('%s/%s' % (D, device_id), {
            'device': {'kwargs': {'flavor': 'large'}}},
            status=202).json['operation_id']
        self.wait_rest(update_id, 'FAILED_TEMP')
        delete_id = self.delete('%s/%s?force=true' % (D, device_id),
                                status=202).json['operation_id']
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(update_id, 'CANCELLED')
        self.wait_rest(delete_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_force_delete_when_the_cancel_fails(self):
        # The update cannot be undone either (every update call fails):
        # its rollback stops in FAILED_TEMP, and the delete, which cannot
        # take the device, stops too instead of waiting for it.
        device_id = self.make_device({'update': {'fail': 'bad flavor'}},
                                     kwargs={'flavor': 'small'})
        update_id = self.patch('%s/%s' % (D, device_id), {
            'device': {'kwargs': {'flavor': 'large'}}},
            status=202).json['operation_id']
        self.wait_rest(update_id, 'FAILED_TEMP')
        delete_id = self.delete('%s/%s?force=true' % (D, device_id),
                                status=202).json['operation_id']
        operation = self.wait_rest(update_id, 'FAILED_TEMP')
        self.assertIn('rollback failed', operation['error'])
        operation = self.wait_rest(delete_id, 'FAILED_TEMP', timeout=5)
        self.assertIn(update_id, operation['error'])
        device = self.device(device_id)
        self.assertEqual(update_id, device['operation_id'])
        # The user gives the update up; the delete then goes through.
        self.action(update_id, 'fail', 200)
        self.action(delete_id, 'retry', 202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(delete_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_force_delete_of_idle_device(self):
        device_id = self.make_device()
        self.delete('%s/%s?force=true' % (D, device_id), status=202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.assertNoLeftovers(device_id)


class TestDeleteAndUpdate(op_base.OperationTestCase):

    def test_failed_delete_then_rollback(self):
        device_id = self.make_device({'delete': {'fail': 'disk busy'}})
        instance = self.vim()[device_id]
        op_id = self.delete('%s/%s' % (D, device_id),
                            status=202).json['operation_id']
        self.wait_rest(op_id, 'FAILED_TEMP')
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIn('disk busy', device['status_reason'])
        self.assertEqual(op_id, device['operation_id'])
        self.assertEqual('FAILED', self.steps(op_id)['delete_vm']['state'])
        # delete_vm cannot be undone, but it did not happen.
        self.action(op_id, 'rollback', 202)
        self.wait_rest(op_id, 'ROLLED_BACK')
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertIsNone(device['status_reason'])
        self.assertIsNone(device['operation_id'])
        self.assertEqual(instance, self.vim()[device_id])
        self.assertOneInstance(device_id)

    def test_failed_delete_rolls_back_per_request(self):
        device_id = self.make_device({'delete': {'fail': 'disk busy',
                                                 'times': 1}})
        op_id = self.delete('%s/%s?on_failure=rollback' % (D, device_id),
                            status=202).json['operation_id']
        self.wait_rest(op_id, 'ROLLED_BACK')
        self.assertEqual('ACTIVE', self.device(device_id)['status'])
        self.assertOneInstance(device_id)
        # The cause is gone: the next delete works.
        op_id = self.delete('%s/%s' % (D, device_id),
                            status=202).json['operation_id']
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(op_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_failed_delete_then_retry(self):
        device_id = self.make_device({'delete': {'fail': 'disk busy',
                                                 'times': 1}})
        op_id = self.delete('%s/%s' % (D, device_id),
                            status=202).json['operation_id']
        self.wait_rest(op_id, 'FAILED_TEMP')
        self.assertEqual('ERROR', self.device(device_id)['status'])
        self.action(op_id, 'retry', 202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(op_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_rollback_after_irreversible_step_is_refused(self):
        device_id = self.make_device()
        with mock.patch.object(plan_steps.WaitGone, 'run',
                               side_effect=plan_steps.StepError(
                                   reason='the VIM lost track')):
            op_id = self.delete('%s/%s' % (D, device_id),
                                status=202).json['operation_id']
            self.wait_rest(op_id, 'FAILED_TEMP')
        steps = self.steps(op_id)
        self.assertEqual('COMPLETED', steps['delete_vm']['state'])
        self.assertEqual('FAILED', steps['wait_gone']['state'])
        for action in ('rollback', 'cancel'):
            self.assertError(self.action(op_id, action), 409,
                             contains='delete_vm')
        self.assertEqual('FAILED_TEMP', self.operation(op_id)['state'])
        # Nor can a forced delete cancel it.
        self.assertError(self.delete('%s/%s?force=true' % (D, device_id)),
                         409, contains='delete_vm')
        self.assertEqual('FAILED_TEMP', self.operation(op_id)['state'])
        # (the create and this delete: the refused one left nothing)
        self.assertEqual(2, len(self.get('%s?resource_id=%s' % (
            OPS, device_id)).json['operations']))
        self.action(op_id, 'retry', 202)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.wait_rest(op_id, 'COMPLETED')
        self.assertNoLeftovers(device_id)

    def test_irreversible_step_stops_automatic_rollback(self):
        device_id = self.make_device()
        with mock.patch.object(plan_steps.WaitGone, 'run',
                               side_effect=plan_steps.StepError(
                                   reason='the VIM lost track')):
            op_id = self.delete('%s/%s?on_failure=rollback' % (
                D, device_id), status=202).json['operation_id']
            operation = self.wait_rest(op_id, 'FAILED_TEMP')
        self.assertIn('cannot be undone', operation['error'])
        self.assertEqual('ERROR', self.device(device_id)['status'])
        self.action(op_id, 'fail', 200)
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['operation_id'])
        self.assertNoLeftovers(device_id)

    def test_update_rollback_restores_kwargs(self):
        device_id = self.make_device({'update': {'fail': 'bad flavor',
                                                 'times': 1}},
                                     kwargs={'flavor': 'small'})
        response = self.patch('%s/%s' % (D, device_id), {
            'device': {'kwargs': {'flavor': 'large'},
                       'on_failure': 'rollback'}}, status=202)
        op_id = response.json['operation_id']
        self.wait_rest(op_id, 'ROLLED_BACK')
        device = self.device(device_id)
        self.assertEqual({'flavor': 'small'}, device['kwargs'])
        self.assertEqual('ACTIVE', device['status'])
        self.assertIsNone(device['operation_id'])
        self.assertOneInstance(device_id)

    def test_update_failed_temp_then_rollback(self):
        device_id = self.make_device({'update': {'fail': 'bad flavor',
                                                 'times': 1}},
                                     kwargs={'flavor': 'small'})
        op_id = self.patch('%s/%s' % (D, device_id), {
            'device': {'kwargs': {'flavor': 'large'}}},
            status=202).json['operation_id']
        self.wait_rest(op_id, 'FAILED_TEMP')
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertEqual({'flavor': 'large'}, device['kwargs'])
        self.action(op_id, 'rollback', 202)
        self.wait_rest(op_id, 'ROLLED_BACK')
        device = self.device(device_id)
        self.assertEqual({'flavor': 'small'}, device['kwargs'])
        self.assertEqual('ACTIVE', device['status'])

    def test_update_retry(self):
        device_id = self.make_device({'update': {'fail': 'bad flavor',
                                                 'times': 1}},
                                     kwargs={'flavor': 'small'})
        op_id = self.patch('%s/%s' % (D, device_id), {
            'device': {'kwargs': {'flavor': 'large'}}},
            status=202).json['operation_id']
        self.wait_rest(op_id, 'FAILED_TEMP')
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED')
        device = self.device(device_id)
        self.assertEqual({'flavor': 'large'}, device['kwargs'])
        self.assertEqual('ACTIVE', device['status'])


class TestRaces(op_base.OperationTestCase):
    """A user's action that lands just as a step ends wins over what the
    conductor would have done next."""

    def _act_during(self, step_class, action, raises=None):
        """Patch ``step_class.run`` to do its work, then have the user
        ask ``action`` (202), then return (or raise ``raises``)."""
        original = step_class.run
        test = self

        def run(step, ctx, work):
            result = original(step, ctx, work)
            test.action(work.operation.id, action,
                        200 if action in ('pause', 'fail') else 202)
            if raises is not None:
                raise raises
            return result
        return mock.patch.object(step_class, 'run', run)

    def test_rollback_as_the_last_step_ends(self):
        with self._act_during(plan_steps.WaitActive, 'rollback'):
            device_id, op_id = self.start_create()
            self.wait_rest(op_id, 'ROLLED_BACK')
        self.assertEqual('ERROR', self.device(device_id)['status'])
        self.assertNoLeftovers(device_id)

    def test_cancel_as_the_last_step_ends(self):
        with self._act_during(plan_steps.WaitActive, 'cancel'):
            device_id, op_id = self.start_create()
            self.wait_rest(op_id, 'CANCELLED')
        self.assertNoLeftovers(device_id)

    def test_cancel_as_a_step_fails(self):
        with self._act_during(plan_steps.CreateVM, 'cancel',
                              plan_steps.StepError(reason='boom')):
            device_id, op_id = self.start_create()
            self.wait_rest(op_id, 'CANCELLED')
        self.assertEqual('ERROR', self.device(device_id)['status'])
        self.assertNoLeftovers(device_id)

    def test_pause_as_a_step_fails(self):
        with self._act_during(plan_steps.CreateVM, 'pause',
                              plan_steps.StepError(reason='boom')):
            device_id, op_id = self.start_create()
            self.wait_rest(op_id, 'FAILED_TEMP')
        self.action(op_id, 'rollback', 202)
        self.wait_rest(op_id, 'ROLLED_BACK')
        self.assertNoLeftovers(device_id)

    def test_rollback_of_a_noop_create(self):
        # The noop driver has no VIM to ask: its rolled back devices are
        # gone all the same (not left waiting for device_timeout).
        self.config(device_timeout=5, group='conductor')
        with self._act_during(plan_steps.WaitActive, 'rollback'):
            device = self.create_device(wait=False)
            op_id = self.get('%s?resource_id=%s' % (OPS, device['id'])).json[
                'operations'][0]['id']
            self.wait_rest(op_id, 'ROLLED_BACK', timeout=4)
        self.assertIsNone(self.device(device['id'])['instance_id'])
        self.delete('%s/%s' % (D, device['id']), status=202)
        self.assertIsNone(self.wait_for_device(device['id'], None))

    def test_retry_before_the_run_lets_go(self):
        # The run that stopped at FAILED_TEMP is slow to let go: the retry
        # asked meanwhile is not lost (nor left to the recovery scan,
        # which takes seconds with this takeover_time).
        self.config(takeover_time=60, group='conductor')
        runner = self.conductors[0].manager.runner
        original = runner._drive

        def slow_exit(*args):
            original(*args)
            time.sleep(0.3)
        self.useFixture(fixtures.MockPatchObject(runner, '_drive',
                                                 slow_exit))
        device_id, op_id = self.start_create(
            {'create': {'fail': 'no capacity', 'times': 1}})
        self.wait_for_operation(op_id, 'FAILED_TEMP')
        self.assertIn(op_id, runner.active)
        started = time.monotonic()
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED')
        self.assertLess(time.monotonic() - started, 5)
        self.assertOneInstance(device_id)


class TestEvents(op_base.OperationTestCase):

    def test_every_step_transition_is_an_event(self):
        device_id, op_id = self.start_create(
            {'create': {'fail': 'no capacity', 'times': 1}})
        self.wait_rest(op_id, 'FAILED_TEMP')
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual([
            'device.create.requested',
            'device.create.create_vm.start',
            'device.create.create_vm.error',
            'device.create.error',
            'operation.retry',
            'device.create.create_vm.start',
            'device.create.create_vm.end',
            'device.create.wait_active.start',
            'device.create.wait_active.end',
            'device.create.end'], self.events(device_id, op_id))

        delete_id = self.delete('%s/%s' % (D, device_id),
                                status=202).json['operation_id']
        self.wait_rest(delete_id, 'COMPLETED')
        self.assertEqual([
            'device.delete.requested',
            'device.delete.delete_vm.start',
            'device.delete.delete_vm.end',
            'device.delete.wait_gone.start',
            'device.delete.wait_gone.end',
            'device.delete.end'], self.events(device_id, delete_id))
        # Still readable once the device is gone; every event is the
        # device's and names the conductor that ran the step.
        events = self.get('%s/%s/events?limit=1000' % (D, device_id)).json[
            'events']
        for event in events:
            self.assertEqual(device_id, event['resource_id'])
            if '_' in event['event_type']:
                self.assertEqual('test-conductor',
                                 event['details']['conductor'])

    def test_rollback_events(self):
        device_id, op_id = self.start_create(
            {'poll': {'state': 'error', 'error': 'kernel panic'}},
            on_failure='rollback')
        self.wait_rest(op_id, 'ROLLED_BACK')
        self.assertEqual([
            'device.create.requested',
            'device.create.create_vm.start',
            'device.create.create_vm.end',
            'device.create.wait_active.start',
            'device.create.wait_active.error',
            'operation.rollback',
            'device.create.wait_active.rollback.start',
            'device.create.wait_active.rollback.end',
            'device.create.create_vm.rollback.start',
            'device.create.create_vm.rollback.end',
            'device.create.rolled_back'], self.events(device_id, op_id))

    def test_pause_cancel_events(self):
        device_id, op_id = self.start_create({'create': {'sleep': 0.3}})
        self.wait_step(op_id, 'create_vm')
        self.action(op_id, 'pause', 200)
        self.wait_rest(op_id, 'PAUSED')
        self.action(op_id, 'resume', 202)
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual([
            'device.create.requested',
            'device.create.create_vm.start',
            'operation.pause',
            'device.create.create_vm.end',
            'operation.resume',
            'device.create.wait_active.start',
            'device.create.wait_active.end',
            'device.create.end'], self.events(device_id, op_id))


class TestConductorThreads(op_base.OperationTestCase):

    autostart = False

    def test_workers_option_sizes_the_rpc_threads(self):
        # Set after the process read its configuration files, as a
        # deployer's servicevm.conf does.
        self.config(workers=3, group='conductor')
        server = self.start_conductor_now()
        self.assertEqual(3, server.server._work_executor._max_workers)
