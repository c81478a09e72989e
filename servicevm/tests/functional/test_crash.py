"""Crash safety and steering of operations, with the API and conductors as
separate processes on PostgreSQL and RabbitMQ, and the ``fault`` device
driver as the VIM (its state dir is shared by every conductor, so the tests
see what was "created" and check that nothing was created twice or left
behind).

- a conductor killed (kill -9) in the middle of each step of a device
  create and delete: the other conductor takes the operation over within
  ``takeover_time``; a lone conductor restarted under its own host name
  resumes it at once;
- pause, resume, cancel, retry, rollback and fail through the API at
  representative steps;
- 200 operations across 3 conductors killed and restarted at random;
- RabbitMQ and PostgreSQL restarted in the middle of a run (on servers of
  the class's own).
"""

import collections
import concurrent.futures
import os
import random
import threading
import time

import sqlalchemy as sa
from testtools import content

from servicevm.tests.functional import base

TAKEOVER_TIME = 6
LEASE = TAKEOVER_TIME * 5 / 6

FAULT_CONFIG = {
    'DEFAULT': {'enabled_device_drivers': 'noop,fault'},
    'conductor': {'takeover_time': TAKEOVER_TIME, 'watch_interval': 0.2,
                  'poll_interval': 0.1, 'driver_call_retries': 0},
}

PENDING = ('PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE',
           'PENDING_HEAL')
RESTING = ('COMPLETED', 'ROLLED_BACK', 'FAILED', 'FAILED_TEMP',
           'CANCELLED')


class FaultMixin:
    """Devices on the fault driver, their operations."""

    def fault_template(self, fault=None, **attributes):
        attributes = dict(attributes, image='cirros')
        if fault is not None:
            attributes['fault'] = fault
        return self.create_template(device_driver='fault',
                                    attributes=attributes)

    def create(self, template_id, fault=None, on_failure=None, name='dev'):
        """POST a device; returns (device id, operation id)."""
        body = {'name': name, 'template_id': template_id}
        if fault is not None:
            body['kwargs'] = {'fault': fault}
        if on_failure:
            body['on_failure'] = on_failure
        response = self.expect(202, 'POST', '/v1/devices',
                               body={'device': body}).json()
        return response['device']['id'], response['operation_id']

    def delete(self, device_id, force=False, status=202):
        path = '/v1/devices/%s' % device_id
        if force:
            path += '?force=true'
        return self.expect(status, 'DELETE', path).json().get(
            'operation_id')

    def set_fault(self, device_id, fault):
        """Change a device's faults (an update operation)."""
        response = self.expect(
            202, 'PATCH', '/v1/devices/%s' % device_id,
            body={'device': {'kwargs': {'fault': fault}}}).json()
        self.wait_for_operation(response['operation_id'], 'COMPLETED')
        self.wait_for_device(device_id, 'ACTIVE')

    def active_device(self, template_id, fault=None):
        device_id, operation_id = self.create(template_id, fault)
        self.wait_for_operation(operation_id, 'COMPLETED')
        return self.wait_for_device(device_id, 'ACTIVE')

    def device_status(self, device_id):
        response = self.request('GET', '/v1/devices/%s' % device_id,
                                persona=base.ADMIN)
        if response.status_code == 404:
            return None
        self.assertEqual(200, response.status_code, response.text)
        return response.json()['device']

    @staticmethod
    def step(operation, name):
        return {s['name']: s for s in operation['steps']}[name]


# ------------------------------------------------------------ kill -9


# Slow enough to kill a conductor in the middle of any step: create_vm is
# the create call then a poll (its success check), wait_active a poll then
# a poll; delete_vm and wait_gone the same with delete.
SLOW_CREATE = {'create': {'sleep': 1.5}, 'poll': {'sleep': 1.0}}
SLOW_DELETE = {'delete': {'sleep': 1.5}, 'poll': {'sleep': 1.0}}

# The VM is made, but the create call has not answered yet: killed now,
# the conductor never recorded the instance.
UNANSWERED_CREATE = {'create': {'sleep_after': 2}, 'poll': {'sleep': 1.0}}

# Where to kill: (kind, step, whether the VIM has done the step's call,
# faults).
KILL_POINTS = {
    'create_vm_before_vim': ('create', 'create_vm', False, SLOW_CREATE),
    'create_vm_before_answer': ('create', 'create_vm', True,
                                UNANSWERED_CREATE),
    # The create answered; the step is checking it (its poll is slow).
    'create_vm_after_vim': ('create', 'create_vm', True, SLOW_CREATE),
    'wait_active': ('create', 'wait_active', None, SLOW_CREATE),
    'delete_vm_before_vim': ('delete', 'delete_vm', False, SLOW_DELETE),
    'delete_vm_after_vim': ('delete', 'delete_vm', True, SLOW_DELETE),
    'wait_gone': ('delete', 'wait_gone', None, SLOW_DELETE),
}


class KillMixin(FaultMixin):
    """kill -9 the conductor running an operation at a given point."""

    CONFIG = FAULT_CONFIG

    def recover(self, victim, operation_id, killed_at, step):
        """What happens after the kill; returns once the operation runs
        again (or is done)."""
        raise NotImplementedError()

    def _kill_at(self, point):
        kind, step, vim_done, fault = KILL_POINTS[point]
        template = self.fault_template()
        if kind == 'create':
            device_id, operation_id = self.create(template['id'], fault)
        else:
            device_id = self.active_device(template['id'])['id']
            self.set_fault(device_id, fault)
            operation_id = self.delete(device_id)
        operation = self.wait_for_step(operation_id, step)
        if vim_done is not None:
            # The step's VIM call is under way (sleeping) or done (the
            # step is checking it): kill before or after it took effect.
            def vim_changed():
                return (device_id in self.vim_instances()) == (
                    kind == 'create')
            if vim_done:
                self.wait_until(vim_changed, 'changed in the VIM',
                                timeout=10, interval=0.02)
                operation = self.operation(operation_id)
            else:
                self.assertFalse(vim_changed(), 'too late to kill')
        self.assertEqual('RUNNING', self.step(operation, step)['state'],
                         operation)
        self.assertEqual(1, self.step(operation, step)['attempts'])
        if point.startswith('create_vm_'):
            # The instance id is recorded with the step's end: killed
            # now, the next run's create finds the VM (the journal below
            # shows it made once).
            self.assertIsNone(self.device_status(device_id)['instance_id'])
        victim = operation['lease_owner']
        self.kill_conductor(victim)
        killed_at = time.monotonic()

        self.recover(victim, operation_id, killed_at, step)
        operation = self.wait_for_operation(operation_id, 'COMPLETED',
                                            timeout=30)
        self.assertIsNone(operation['lease_owner'])
        # The killed step was started again (and checked first).
        self.assertEqual(2, self.step(operation, step)['attempts'],
                         operation)
        for other in operation['steps']:
            self.assertEqual('COMPLETED', other['state'], operation)
        if kind == 'create':
            device = self.wait_for_device(device_id, 'ACTIVE')
            self.assertTrue(device['instance_id'], device)
            self.assertIsNone(device['operation_id'])
        else:
            self.wait_for_device(device_id, None)
            self.assertNotIn(device_id, self.vim_instances())
        journal = [r['event'] for r in self.vim_journal()
                   if r['device_id'] == device_id]
        self.assertEqual(['create'] if kind == 'create'
                         else ['create', 'delete'], journal)
        self.assert_vim_consistent([device_id])
        return operation


def _kill_tests(cls):
    for point in KILL_POINTS:
        def test(self, point=point):
            self._kill_at(point)
        test.__name__ = 'test_kill_during_%s' % point
        setattr(cls, test.__name__, test)
    return cls


@_kill_tests
class TestTakeover(KillMixin, base.ServiceTestCase):
    """Two conductors: the survivor finishes what the killed one ran."""

    def recover(self, victim, operation_id, killed_at, step):
        self.addCleanup(self.start_conductor, victim)
        (survivor,) = set(self.CONDUCTOR_HOSTS) - {victim}

        def taken_over():
            operation = self.operation(operation_id)
            if operation['lease_owner'] == survivor:
                return operation
            if operation['state'] == 'COMPLETED':
                return operation
            return None

        self.wait_until(taken_over, 'taken over by %s' % survivor,
                        timeout=TAKEOVER_TIME + 5)
        took = time.monotonic() - killed_at
        # Within takeover_time of the kill (plus slack for this test's
        # polling on a busy machine).
        self.assertLess(took, TAKEOVER_TIME + 1.5,
                        'took %.1fs to take over' % took)
        # The step's start events say who ran it: the victim, then the
        # survivor.
        device_id = self.operation(operation_id)['resource_id']

        def started_by():
            return [e['details']['conductor']
                    for e in self.events(device_id)
                    if e['operation_id'] == operation_id and
                    e['event_type'].endswith('.%s.start' % step)]

        self.wait_until(lambda: len(started_by()) >= 2,
                        'step %s started again' % step, timeout=10)
        self.assertEqual([victim, survivor], started_by())


@_kill_tests
class TestRestart(KillMixin, base.ServiceTestCase):
    """A lone conductor, killed and restarted under its host name, takes
    its operations up again at once, not after its leases expire."""

    CONDUCTOR_HOSTS = ('lone-conductor',)

    def recover(self, victim, operation_id, killed_at, step):
        time.sleep(0.3)
        self.start_conductor(victim)
        ready_at = time.monotonic()

        def resumed():
            operation = self.operation(operation_id)
            return (operation['state'] == 'COMPLETED' or
                    self.step(operation, step)['attempts'] >= 2)

        self.wait_until(resumed, 'resumed', timeout=LEASE + 5)
        took = time.monotonic() - ready_at
        # At once: its first recovery pass, not after the lease expires.
        self.assertLess(took, 2.5, 'resumed %.1fs after the restart' % took)


class TestRespawnTakeover(FaultMixin, base.ServiceTestCase):
    """A device whose VM vanished is respawned by the health watch; the
    conductor running the respawn is killed (kill -9) while it makes the
    new VM, and the other conductor finishes the respawn: one new VM, the
    device ACTIVE again."""

    CONFIG = {
        'DEFAULT': FAULT_CONFIG['DEFAULT'],
        'conductor': dict(FAULT_CONFIG['conductor'], sync_interval=0.5),
    }

    def test_conductor_killed_during_a_respawn(self):
        template = self.fault_template({'create': {'sleep': 3}},
                                       health_policy='respawn')
        device = self.active_device(template['id'])
        device_id = device['id']
        os.unlink(os.path.join(self.fault_dir, 'instances',
                               device_id + '.json'))

        def heal():
            return [o for o in self.operations(resource_id=device_id)
                    if o['kind'] == 'heal']
        operation_id = self.wait_until(heal, 'a heal operation',
                                       timeout=20)[0]['id']
        operation = self.wait_for_step(operation_id, 'create_vm')
        victim = operation['lease_owner']
        self.assertIn(victim, self.CONDUCTOR_HOSTS)
        self.kill_conductor(victim)
        self.addCleanup(self.start_conductor, victim)
        (survivor,) = set(self.CONDUCTOR_HOSTS) - {victim}

        operation = self.wait_for_operation(operation_id, 'COMPLETED',
                                            timeout=TAKEOVER_TIME + 30)
        self.assertEqual(2, self.step(operation, 'create_vm')['attempts'])
        starts = [e['details']['conductor'] for e in self.events(device_id)
                  if e['operation_id'] == operation_id and
                  e['event_type'] == 'device.heal.create_vm.start']
        self.assertEqual([victim, survivor], starts)
        device = self.wait_for_device(device_id, 'ACTIVE')
        self.assertNotEqual(device['instance_id'],
                            self.vim_journal()[0]['instance_id'])
        self.assertEqual(device['instance_id'],
                         self.vim_instances()[device_id]['instance_id'])
        # The first VM, then exactly one new one.
        self.assertEqual(['create', 'create'], [
            r['event'] for r in self.vim_journal()
            if r['device_id'] == device_id])
        self.assertEqual(1, len(heal()))


# ------------------------------------------------------------ steering


class TestOperationActions(FaultMixin, base.ServiceTestCase):
    """pause, resume, cancel, retry, rollback and fail at representative
    steps (the unit suite covers every combination)."""

    CONFIG = FAULT_CONFIG

    def setUp(self):
        super().setUp()
        self.template = self.fault_template()

    def _gone_from_vim(self, device_id):
        self.assertNotIn(device_id, self.vim_instances())
        self.assert_vim_consistent([device_id])

    def _conflict(self, operation_id, action, state):
        response = self.operation_action(operation_id, action, 409)
        self.assertIn(state, response.text)

    def test_pause_in_create_vm_then_resume(self):
        device_id, op = self.create(self.template['id'],
                                    {'create': {'sleep': 1.5}})
        self.wait_for_step(op, 'create_vm')
        self.operation_action(op, 'pause', 200)
        # The running step ends; the next does not start.
        operation = self.wait_for_operation(op, 'PAUSED')
        operation = self.wait_until(
            lambda: (lambda o: o if o['lease_owner'] is None else None)(
                self.operation(op)), 'released')
        self.assertEqual('COMPLETED',
                         self.step(operation, 'create_vm')['state'])
        self.assertEqual('PENDING',
                         self.step(operation, 'wait_active')['state'])
        time.sleep(0.5)
        self.assertEqual('PAUSED', self.operation(op)['state'])
        self.assertEqual('PENDING_CREATE',
                         self.device_status(device_id)['status'])
        self._conflict(op, 'pause', 'PAUSED')
        self._conflict(op, 'retry', 'PAUSED')
        self.operation_action(op, 'resume', 202)
        self.wait_for_operation(op, 'COMPLETED')
        self.wait_for_device(device_id, 'ACTIVE')
        self._conflict(op, 'resume', 'COMPLETED')
        self._conflict(op, 'cancel', 'COMPLETED')
        self.assert_vim_consistent([device_id])

    def test_cancel_interrupts_create_vm(self):
        device_id, op = self.create(self.template['id'],
                                    {'create': {'hang': True}})
        self.wait_for_step(op, 'create_vm')
        started = time.monotonic()
        self.operation_action(op, 'cancel', 202)
        operation = self.wait_for_operation(op, 'CANCELLED', timeout=10)
        self.assertLess(time.monotonic() - started, 5)
        self.assertTrue(operation['cancelled'])
        self.assertEqual('ROLLED_BACK',
                         self.step(operation, 'create_vm')['state'])
        device = self.device_status(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['instance_id'])
        self._gone_from_vim(device_id)
        self.wait_for_operation(self.delete(device_id), 'COMPLETED')

    def test_cancel_in_wait_active_removes_the_vm(self):
        device_id, op = self.create(self.template['id'],
                                    {'poll': {'sleep': 1.0}})
        self.wait_for_step(op, 'wait_active')
        self.assertIn(device_id, self.vim_instances())
        self.operation_action(op, 'cancel', 202)
        operation = self.wait_for_operation(op, 'CANCELLED', timeout=15)
        self.assertEqual('ROLLED_BACK',
                         self.step(operation, 'create_vm')['state'])
        self.assertEqual('ERROR', self.device_status(device_id)['status'])
        self._gone_from_vim(device_id)

    def test_failed_create_vm_retry(self):
        device_id, op = self.create(
            self.template['id'], {'create': {'fail': 'no capacity',
                                             'times': 1}})
        operation = self.wait_for_operation(op, 'FAILED_TEMP')
        self.assertIn('no capacity', operation['error'])
        self.assertEqual('FAILED', self.step(operation, 'create_vm')['state'])
        device = self.device_status(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertEqual(op, device['operation_id'])
        self._conflict(op, 'resume', 'FAILED_TEMP')
        self._conflict(op, 'pause', 'FAILED_TEMP')
        # Another request on the held device is refused, naming it.
        response = self.request('DELETE', '/v1/devices/%s' % device_id)
        self.assertEqual(409, response.status_code, response.text)
        self.assertIn(op, response.text)
        self.operation_action(op, 'retry', 202)
        operation = self.wait_for_operation(op, 'COMPLETED')
        self.assertEqual(2, self.step(operation, 'create_vm')['attempts'])
        self.wait_for_device(device_id, 'ACTIVE')
        self.assert_vim_consistent([device_id])

    def test_failed_wait_active_rollback(self):
        device_id, op = self.create(
            self.template['id'], {'poll': {'state': 'error',
                                           'error': 'kernel panic'}})
        operation = self.wait_for_operation(op, 'FAILED_TEMP')
        self.assertEqual('COMPLETED',
                         self.step(operation, 'create_vm')['state'])
        self.assertEqual('FAILED',
                         self.step(operation, 'wait_active')['state'])
        self.assertIn('kernel panic', operation['error'])
        self.assertIn(device_id, self.vim_instances())
        self.operation_action(op, 'rollback', 202)
        operation = self.wait_for_operation(op, 'ROLLED_BACK')
        self.assertFalse(operation['cancelled'])
        self.assertEqual('ROLLED_BACK',
                         self.step(operation, 'create_vm')['state'])
        self._gone_from_vim(device_id)
        self.wait_for_operation(self.delete(device_id), 'COMPLETED')
        self.wait_for_device(device_id, None)

    def test_on_failure_rollback_and_fail(self):
        # on_failure=rollback: no FAILED_TEMP stop, straight back.
        device_id, op = self.create(
            self.template['id'], {'create': {'fail': 'quota'}},
            on_failure='rollback')
        self.wait_for_operation(op, 'ROLLED_BACK')
        self._gone_from_vim(device_id)
        # fail: the operation ends FAILED, the device ERROR and free.
        other_id, op2 = self.create(self.template['id'],
                                    {'create': {'fail': 'quota'}})
        self.wait_for_operation(op2, 'FAILED_TEMP')
        response = self.operation_action(op2, 'fail', 200)
        self.assertEqual('FAILED', response.json()['operation']['state'])
        device = self.device_status(other_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['operation_id'])
        self._conflict(op2, 'retry', 'FAILED')
        for device in (device_id, other_id):
            self.wait_for_operation(self.delete(device), 'COMPLETED')
            self.wait_for_device(device, None)
        self.assert_vim_consistent([device_id, other_id])

    def test_pause_then_rollback_and_pause_then_cancel(self):
        for action, final in (('rollback', 'ROLLED_BACK'),
                              ('cancel', 'CANCELLED')):
            device_id, op = self.create(
                self.template['id'], {'create': {'sleep': 1.0}})
            self.wait_for_step(op, 'create_vm')
            self.operation_action(op, 'pause', 200)
            self.wait_for_operation(op, 'PAUSED')
            self.operation_action(op, action, 202)
            operation = self.wait_for_operation(op, final)
            self.assertEqual('ROLLED_BACK',
                             self.step(operation, 'create_vm')['state'])
            self.assertEqual('PENDING',
                             self.step(operation, 'wait_active')['state'])
            self._gone_from_vim(device_id)

    def test_failed_delete_retry_and_rollback(self):
        # retry: the delete goes on from its failed step.
        device_id = self.active_device(
            self.template['id'], {'delete': {'fail': 'busy', 'times': 1}}
        )['id']
        op = self.delete(device_id)
        operation = self.wait_for_operation(op, 'FAILED_TEMP')
        self.assertEqual('FAILED', self.step(operation, 'delete_vm')['state'])
        self.operation_action(op, 'retry', 202)
        self.wait_for_operation(op, 'COMPLETED')
        self.wait_for_device(device_id, None)
        self._gone_from_vim(device_id)
        # rollback of a delete that did not delete: the device is back.
        device_id = self.active_device(
            self.template['id'], {'delete': {'fail': 'busy'}})['id']
        op = self.delete(device_id)
        self.wait_for_operation(op, 'FAILED_TEMP')
        self.operation_action(op, 'rollback', 202)
        self.wait_for_operation(op, 'ROLLED_BACK')
        device = self.wait_for_device(device_id, 'ACTIVE')
        self.assertIsNone(device['operation_id'])
        self.assertIn(device_id, self.vim_instances())
        self.assert_vim_consistent([device_id])

    def test_no_rollback_once_the_vm_is_deleted(self):
        device_id = self.active_device(self.template['id'])['id']
        self.set_fault(device_id, {'poll': {'sleep': 1.5}})
        op = self.delete(device_id)
        self.wait_for_step(op, 'wait_gone')
        for action in ('rollback', 'cancel'):
            response = self.operation_action(op, action, 409)
            self.assertIn('delete_vm', response.text)
        self.wait_for_operation(op, 'COMPLETED')
        self.wait_for_device(device_id, None)
        self._gone_from_vim(device_id)

    def test_force_delete_cancels_a_hanging_create(self):
        device_id, op = self.create(self.template['id'],
                                    {'create': {'hang': True}})
        self.wait_for_step(op, 'create_vm')
        response = self.request('DELETE', '/v1/devices/%s' % device_id)
        self.assertEqual(409, response.status_code, response.text)
        delete_op = self.delete(device_id, force=True)
        self.wait_for_operation(op, 'CANCELLED', timeout=10)
        self.wait_for_operation(delete_op, 'COMPLETED', timeout=15)
        self.wait_for_device(device_id, None)
        self._gone_from_vim(device_id)


# ------------------------------------------------------------ chaos


class TestChaos(FaultMixin, base.ServiceTestCase):
    """200 operations on 3 conductors killed and restarted at random."""

    CONDUCTOR_HOSTS = ('chaos-conductor-1', 'chaos-conductor-2',
                       'chaos-conductor-3')
    CONFIG = FAULT_CONFIG
    DEVICES = 100
    # kind: (how many, fault, on_failure, create ends, delete ends)
    KINDS = {
        'ok': (68, None, None, 'COMPLETED', 'COMPLETED'),
        'create_fails_rollback': (8, {'create': {'fail': 'no host'}},
                                  'rollback', 'ROLLED_BACK', 'COMPLETED'),
        # FAILED_TEMP, then failed by the test.
        'create_fails': (6, {'create': {'fail': 'no host'}}, None,
                         'FAILED', 'COMPLETED'),
        'active_error_rollback': (6, {'poll': {'state': 'error'}},
                                  'rollback', 'ROLLED_BACK', 'COMPLETED'),
        # FAILED_TEMP, then rolled back by the test.
        'active_error': (4, {'poll': {'state': 'error'}}, None,
                         'ROLLED_BACK', 'COMPLETED'),
        'delete_fails': (4, {'delete': {'fail': 'stuck'}}, None,
                         'COMPLETED', 'FAILED_TEMP'),
        # FAILED_TEMP, then retried by the test.
        'delete_fails_once': (4, {'delete': {'fail': 'stuck', 'times': 1}},
                              None, 'COMPLETED', 'COMPLETED'),
    }
    SETTLE_TIMEOUT = 120

    def setUp(self):
        super().setUp()
        seed = int(os.environ.get('SERVICEVM_CHAOS_SEED') or
                   random.randrange(1 << 30))
        self.random = random.Random(seed)
        self.addDetail('seed', content.text_content('%d' % seed))
        self.kills = []
        self._stop = threading.Event()
        self._chaos_errors = []

    def _chaos(self):
        """Until stopped: every second or so, kill -9 a conductor (never
        the last one up) and start it again later."""
        down = set()
        lock = threading.Lock()

        def restart(host, after):
            try:
                time.sleep(after)
                self.start_conductor(host)
            except Exception as e:
                self._chaos_errors.append(e)
            finally:
                with lock:
                    down.discard(host)

        restarts = []
        try:
            while not self._stop.wait(self.random.uniform(0.3, 1.5)):
                with lock:
                    up = sorted(set(self.CONDUCTOR_HOSTS) - down)
                    if len(up) < 2:
                        continue
                    host = self.random.choice(up)
                    down.add(host)
                self.kill_conductor(host)
                # Mostly back at once (it resumes its own operations);
                # sometimes down longer than takeover_time (the others
                # take them over).
                after = self.random.choice((0.1, 0.5, 1.0, 2.0,
                                            TAKEOVER_TIME + 1))
                self.kills.append((host, after))
                thread = threading.Thread(target=restart,
                                          args=(host, after), daemon=True)
                thread.start()
                restarts.append(thread)
        except Exception as e:
            self._chaos_errors.append(e)
        for thread in restarts:
            thread.join(60)

    def _settle(self, operation_ids, timeout):
        deadline = time.monotonic() + timeout
        while True:
            states = {o['id']: o for o in self.operations()
                      if o['id'] in operation_ids}
            busy = [o for o in states.values()
                    if o['state'] not in RESTING or o['lease_owner']]
            if len(states) == len(operation_ids) and not busy:
                return states
            if time.monotonic() > deadline:
                self.fail('%d operations still busy after %ss: %s' % (
                    len(busy), timeout, busy[:5]))
            time.sleep(0.3)

    def _expect_states(self, operations, expected, what):
        wrong = {i: (operations[i]['state'], expected[i],
                     operations[i].get('error'))
                 for i in expected
                 if operations[i]['state'] != expected[i]}
        self.assertEqual({}, wrong, '%s operations (got, expected, error)'
                         % what)

    def test_200_operations_with_random_kills(self):
        started = time.monotonic()
        template = self.fault_template({'poll': {'sleep': 0.05}})
        plan = []
        for kind, (count, fault, on_failure, _, _) in self.KINDS.items():
            for _ in range(count):
                # Steps long enough for kills to land in them.
                slow = {'create': {'sleep': round(
                            self.random.uniform(0.3, 2.0), 2)},
                        'delete': {'sleep': round(
                            self.random.uniform(0.2, 1.0), 2)}}
                for action, spec in (fault or {}).items():
                    slow[action] = dict(slow.get(action, {}), **spec)
                plan.append((kind, slow, on_failure))
        self.random.shuffle(plan)
        self.assertEqual(self.DEVICES, len(plan))

        chaos = threading.Thread(target=self._chaos, daemon=True)
        chaos.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                created = list(pool.map(
                    lambda item: self.create(
                        template['id'], item[1][1], item[1][2],
                        name='chaos-%03d-%s' % (item[0], item[1][0])),
                    enumerate(plan)))
            kinds = {device_id: kind for (device_id, _), (kind, _, _)
                     in zip(created, plan)}
            creates = {op: device_id for device_id, op in created}
            done = self._settle(set(creates), self.SETTLE_TIMEOUT)

            # The user's part: fail or roll back what stopped.
            for op, device_id in creates.items():
                if done[op]['state'] != 'FAILED_TEMP':
                    continue
                action = {'create_fails': 'fail',
                          'active_error': 'rollback'}.get(kinds[device_id])
                if action:
                    self.operation_action(op, action)
            done = self._settle(set(creates), self.SETTLE_TIMEOUT)
            self._expect_states(done, {
                op: self.KINDS[kinds[d]][3] for op, d in creates.items()},
                'create')

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                deletes = dict(pool.map(
                    lambda device_id: (self.delete(device_id), device_id),
                    kinds))
            done = self._settle(set(deletes), self.SETTLE_TIMEOUT)
            for op, device_id in deletes.items():
                if (done[op]['state'] == 'FAILED_TEMP' and
                        kinds[device_id] == 'delete_fails_once'):
                    self.operation_action(op, 'retry', 202)
            done = self._settle(set(deletes), self.SETTLE_TIMEOUT)
        finally:
            self._stop.set()
            chaos.join(60)
            self.addDetail('kills', content.text_content(
                '%d kills (host, seconds down): %s' % (len(self.kills),
                                                       self.kills)))
        self.assertEqual([], self._chaos_errors)
        for host in self.CONDUCTOR_HOSTS:
            if not self.processes[host].alive():
                self.start_conductor(host)
        self._expect_states(done, {
            op: self.KINDS[kinds[d]][4] for op, d in deletes.items()},
            'delete')
        self.assertGreaterEqual(len(self.kills), 3)

        devices = {d['id']: d for d in self.expect(
            200, 'GET', '/v1/devices?all_projects=1&limit=1000',
            persona=base.ADMIN).json()['devices']}
        self.assertEqual([], [d for d in devices.values()
                              if d['status'] in PENDING])
        left = {d for d in kinds if d in devices}
        self.assertEqual({d for d, k in kinds.items()
                          if self.KINDS[k][4] != 'COMPLETED'}, left)
        for device_id in left:
            self.assertEqual('ERROR', devices[device_id]['status'])
            self.assertIn(device_id, self.vim_instances())
        self.assert_vim_consistent(kinds)
        # Nothing left in the VIM but the devices whose delete failed.
        self.assertEqual(left, set(self.vim_instances()))
        self.addDetail('run-time', content.text_content(
            '%.1fs' % (time.monotonic() - started)))


# ------------------------------------------------------------ restarts


class TestServerRestarts(FaultMixin, base.PrivateServersTestCase):
    """RabbitMQ and PostgreSQL restarted in the middle of a run (servers of
    this class's own: the other classes' servers are not touched)."""

    CONFIG = FAULT_CONFIG
    BATCH = 8

    def _batch(self, template_id, name):
        return [self.create(template_id, name='%s-%d' % (name, i))
                for i in range(self.BATCH)]

    def _all_active(self, batch, timeout=60):
        for device_id, op in batch:
            self.wait_for_operation(op, 'COMPLETED', timeout=timeout)
            self.wait_for_device(device_id, 'ACTIVE')

    def test_rabbitmq_and_postgresql_restarts(self):
        template = self.fault_template(
            {'create': {'sleep': 1.0}, 'poll': {'sleep': 0.1}})
        # RabbitMQ goes away while operations run (and some casts may not
        # have been consumed yet).
        first = self._batch(template['id'], 'before-rabbit')
        self.servers.stop('rabbitmq')
        time.sleep(1)
        self.servers.start('rabbitmq')
        self._all_active(first)
        # The API and the conductors talk over the new broker.
        second = self._batch(template['id'], 'after-rabbit')
        self._all_active(second, timeout=30)

        # PostgreSQL goes away while steps run and record.
        third = self._batch(template['id'], 'before-db')
        self.wait_for_step(third[-1][1], 'create_vm')
        self.servers.stop('postgres')
        time.sleep(1)
        self.servers.start('postgres')
        self._all_active(third)
        fourth = self._batch(template['id'], 'after-db')
        self._all_active(fourth, timeout=30)

        devices = [d for d, _ in first + second + third + fourth]
        deletes = [self.delete(d) for d in devices]
        for op in deletes:
            self.wait_for_operation(op, 'COMPLETED', timeout=60)
        for device_id in devices:
            self.wait_for_device(device_id, None)
        self.assert_vim_consistent(devices)
        self.assertEqual(set(), set(devices) & set(self.vim_instances()))
        journal = collections.Counter(
            (r['device_id'], r['event']) for r in self.vim_journal()
            if r['device_id'] in devices)
        self.assertEqual({1}, set(journal.values()))
        self.assertEqual(2 * len(devices), len(journal))

    def test_database_connections_dropped(self):
        """Every connection of the conductors is cut (as by a failover or
        a proxy restart) again and again while steps run and record: no
        step fails for it, every operation completes."""
        template = self.fault_template(
            {'create': {'sleep': 0.3}, 'poll': {'sleep': 0.05}})
        batch = [self.create(template['id'], name='cut-%d' % i)
                 for i in range(20)]
        admin = sa.create_engine(self.database.admin_url,
                                 isolation_level='AUTOCOMMIT',
                                 poolclass=sa.pool.NullPool)
        self.addCleanup(admin.dispose)
        cut = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            with admin.connect() as connection:
                cut += connection.execute(sa.text(
                    'SELECT count(pg_terminate_backend(pid)) '
                    'FROM pg_stat_activity WHERE datname = :name '
                    'AND pid <> pg_backend_pid()'),
                    {'name': self.database.name}).scalar()
            time.sleep(0.05)
        self.assertGreater(cut, 20)
        self._all_active(batch)
        self.assert_vim_consistent([d for d, _ in batch])
