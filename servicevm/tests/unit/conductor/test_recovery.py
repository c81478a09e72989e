"""Crash safety in one process: operations a dead conductor held (its
lease expired, a step left RUNNING) or that nobody was told about (a lost
cast) are taken over by the supervisor within ``takeover_time`` and
finished, re-checking the unfinished step first, so nothing is created
or deleted twice; a run that loses its lease stops at once, and one that
keeps it (heartbeat) is never taken over."""

import datetime
import time
import types
from unittest import mock

from oslo_config import cfg
from oslo_utils import timeutils
import sqlalchemy as sa

from servicevm.cmd import conductor as conductor_cmd
from servicevm.conductor import manager
from servicevm.conductor import rpcapi
from servicevm.db.sqlalchemy import models
from servicevm.drivers.device import fault
from servicevm.tests.unit.conductor import base as op_base

CONF = cfg.CONF
D = op_base.D
OPS_T = models.Operation.__table__
STEPS_T = models.OperationStep.__table__
DEVICES_T = models.Device.__table__
DEAD = 'dead-conductor'


def _in(seconds):
    return timeutils.utcnow() + datetime.timedelta(seconds=seconds)


class RecoveryTestCase(op_base.OperationTestCase):

    autostart = False

    def lost_casts(self):
        """Requests whose cast to the conductors is lost."""
        return mock.patch.object(rpcapi.ConductorAPI, 'run_operation')

    def die_holding(self, op_id, step_states, expires_in=1.0,
                    state='PROCESSING'):
        """Make the operation look as a conductor left it when it died:
        claimed by DEAD until ``expires_in`` seconds from now, its steps
        in ``step_states`` [(name, state, depends_on, reversible)]."""
        operation = self.operation(op_id)
        now = timeutils.utcnow()
        with self.engine.begin() as conn:
            changed = conn.execute(
                sa.update(OPS_T).where(OPS_T.c.id == op_id,
                                       OPS_T.c.lease_owner.is_(None))
                .values(lease_owner=DEAD, state=state,
                        lease_expires_at=_in(expires_in),
                        started_at=now, updated_at=now)).rowcount
            self.assertEqual(1, changed)
            for seq, (name, step_state, depends_on, reversible) in (
                    enumerate(step_states)):
                conn.execute(sa.insert(STEPS_T).values(
                    project_id=operation['project_id'], operation_id=op_id,
                    seq=seq, name=name, state=step_state,
                    depends_on=list(depends_on), reversible=reversible,
                    attempts=0 if step_state == 'PENDING' else 1,
                    started_at=None if step_state == 'PENDING' else now,
                    created_at=now))

    def vim_create(self, device_id, op_id, record=True):
        """The dead conductor's create reached the VIM (and, with
        ``record``, was recorded on the device)."""
        instance_id = fault.FaultDeviceDriver(CONF).create(
            types.SimpleNamespace(operation_id=op_id), {'id': device_id})
        if record:
            with self.engine.begin() as conn:
                conn.execute(sa.update(DEVICES_T).where(
                    DEVICES_T.c.id == device_id).values(
                    instance_id=instance_id))
        return instance_id

    def assertTakenOver(self, op_id, state='COMPLETED', after=0.0,
                        started=None):
        """The operation ends in ``state`` no sooner than ``after``
        seconds (its lease held until then) and within takeover_time of
        that."""
        operation = self.wait_rest(op_id, state, timeout=15)
        if started is not None:
            took = time.monotonic() - started
            self.assertGreaterEqual(took, after - 0.1)
            self.assertLess(took, after + CONF.conductor.takeover_time + 2)
        return operation


class TestTakeover(RecoveryTestCase):

    CREATE_STEPS = [('create_vm', 'RUNNING', (), True),
                    ('wait_active', 'PENDING', ('create_vm',), True)]

    def _dead_create(self, made, record=True):
        with self.lost_casts():
            device_id, op_id = self.start_create()
        started = time.monotonic()
        self.die_holding(op_id, self.CREATE_STEPS, expires_in=1.0)
        instance_id = (self.vim_create(device_id, op_id, record)
                       if made else None)
        self.start_conductor_now()
        self.assertTakenOver(op_id, after=1.0, started=started)
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertIsNone(device['operation_id'])
        self.assertOneInstance(device_id)
        self.assertEqual(self.vim()[device_id]['instance_id'],
                         device['instance_id'])
        if instance_id:
            self.assertEqual(instance_id, device['instance_id'])
        steps = self.steps(op_id)
        self.assertEqual(2, steps['create_vm']['attempts'])
        self.assertEqual(1, steps['wait_active']['attempts'])
        events = self.get('%s/%s/events' % (D, device_id)).json['events']
        starts = [e for e in events
                  if e['event_type'] == 'device.create.create_vm.start']
        self.assertEqual(['test-conductor'],
                         [e['details']['conductor'] for e in starts])
        return steps

    def test_create_vm_made_before_the_crash(self):
        steps = self._dead_create(made=True)
        self.assertIn('already done', steps['create_vm']['output'])

    def test_create_vm_made_but_not_recorded(self):
        # The conductor died between the VIM's answer and recording it.
        self._dead_create(made=True, record=False)

    def test_create_vm_not_made_before_the_crash(self):
        steps = self._dead_create(made=False)
        self.assertNotIn('already done', steps['create_vm']['output'])

    def test_wait_active_left_running(self):
        with self.lost_casts():
            device_id, op_id = self.start_create(
                kwargs={'mgmt_address': '192.0.2.8'})
        self.die_holding(op_id, [
            ('create_vm', 'COMPLETED', (), True),
            ('wait_active', 'RUNNING', ('create_vm',), True)],
            expires_in=0)
        self.vim_create(device_id, op_id)
        self.start_conductor_now()
        self.assertTakenOver(op_id)
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertEqual('192.0.2.8', device['mgmt_address'])
        self.assertTrue(device['ready'])
        self.assertOneInstance(device_id)
        self.assertEqual(1, self.steps(op_id)['create_vm']['attempts'])

    def test_delete_vm_left_running(self):
        self.start_conductor_now()
        device_id = self.make_device()
        with self.lost_casts():
            op_id = self.delete('%s/%s' % (D, device_id),
                                status=202).json['operation_id']
        started = time.monotonic()
        self.die_holding(op_id, [
            ('delete_vm', 'RUNNING', (), False),
            ('wait_gone', 'PENDING', ('delete_vm',), True)],
            expires_in=1.0)
        # The dead conductor's delete reached the VIM.
        fault.FaultDeviceDriver(CONF).delete(None, {'id': device_id})
        self.assertTakenOver(op_id, after=1.0, started=started)
        self.assertIsNone(self.wait_for_device(device_id, None))
        self.assertNoLeftovers(device_id)
        self.assertEqual([('create', device_id), ('delete', device_id)],
                         self.journal(device_id))

    def test_rollback_left_running(self):
        with self.lost_casts():
            device_id, op_id = self.start_create()
        self.die_holding(op_id, [
            ('create_vm', 'ROLLING_BACK', (), True),
            ('wait_active', 'PENDING', ('create_vm',), True)],
            expires_in=0, state='ROLLING_BACK')
        self.vim_create(device_id, op_id)
        self.start_conductor_now()
        self.assertTakenOver(op_id, 'ROLLED_BACK')
        device = self.device(device_id)
        self.assertEqual('ERROR', device['status'])
        self.assertIsNone(device['instance_id'])
        self.assertNoLeftovers(device_id)

    def test_lease_not_expired_is_left_alone(self):
        self.start_conductor_now()
        with self.lost_casts():
            device_id, op_id = self.start_create()
        self.die_holding(op_id, self.CREATE_STEPS, expires_in=3600)
        time.sleep(CONF.conductor.takeover_time / 6 * 3)
        operation = self.operation(op_id)
        self.assertEqual(DEAD, operation['lease_owner'])
        self.assertEqual('RUNNING', self.steps(op_id)['create_vm']['state'])
        self.assertEqual([], self.journal())
        # The user may still steer it: a cancel is taken up once the
        # lease runs out.
        with self.engine.begin() as conn:
            conn.execute(sa.update(OPS_T).where(OPS_T.c.id == op_id)
                         .values(lease_expires_at=_in(-1)))
        self.action(op_id, 'cancel', 202)
        self.wait_rest(op_id, 'CANCELLED')
        self.assertNoLeftovers(device_id)

    def test_restarted_conductor_reclaims_its_own(self):
        # The conductor died and came back under the same name before
        # its lease ran out: it needs not wait for it.
        with self.lost_casts():
            device_id, op_id = self.start_create()
        self.die_holding(op_id, self.CREATE_STEPS, expires_in=3600)
        with self.engine.begin() as conn:
            conn.execute(sa.update(OPS_T).where(OPS_T.c.id == op_id)
                         .values(lease_owner=CONF.host))
        self.vim_create(device_id, op_id)
        # (Had it to wait for its lease, the wait would time out.)
        self.start_conductor_now()
        self.assertTakenOver(op_id)
        self.assertOneInstance(device_id)

    def test_silent_conductor_is_taken_over(self):
        # Conductor A stops its heartbeat (partitioned, frozen) while a
        # step hangs; B takes the operation over once A's lease ran out,
        # and A, when it wakes up, writes nothing.
        a = self.start_conductor_now().manager
        b = manager.ConductorManager(CONF, 'conductor-b')
        b.start()
        self.addCleanup(b.stop)
        self.addCleanup(self.stop_runs, b)
        self.conductors.append(types.SimpleNamespace(manager=b))
        device_id, op_id = self.start_create(
            {'poll': {'hang': True, 'times': 1}})
        self.wait_step(op_id, 'create_vm')
        self.wait_until(lambda: op_id in a.runner.active, 'A to run it')
        a.supervisor.stop()
        started = time.monotonic()
        self.wait_for_operation(op_id, 'COMPLETED')
        took = time.monotonic() - started
        self.assertGreater(took, a.runner.lease_seconds * 2 / 3 - 0.2)
        self.assertLess(took, CONF.conductor.takeover_time + 3)
        self.assertIn(op_id, a.runner.active)
        events = self.events(device_id, op_id)
        a.runner.active[op_id].stop('A wakes up')
        self.wait_until(lambda: op_id not in a.runner.active, 'A to stop')
        self.assertEqual(events, self.events(device_id, op_id))
        self.assertEqual('COMPLETED', self.operation(op_id)['state'])
        starts = [e for e in self.get('%s/%s/events' % (D, device_id))
                  .json['events']
                  if e['event_type'] == 'device.create.create_vm.start']
        self.assertEqual(['test-conductor', 'conductor-b'],
                         [e['details']['conductor'] for e in starts])
        self.assertOneInstance(device_id)
        self.assertEqual('ACTIVE', self.device(device_id)['status'])


class TestLostCast(RecoveryTestCase):

    def test_never_cast_with_conductor_running(self):
        self.start_conductor_now()
        with self.lost_casts() as cast:
            device_id, op_id = self.start_create()
        self.assertTrue(cast.called)
        started = time.monotonic()
        self.assertTakenOver(op_id, after=0, started=started)
        self.assertEqual('ACTIVE', self.device(device_id)['status'])
        self.assertOneInstance(device_id)

    def test_requests_while_no_conductor_runs(self):
        with self.lost_casts():
            device_id, op_id = self.start_create()
            other_id, other_op = self.start_create()
        time.sleep(0.1)
        self.assertEqual('PROCESSING', self.operation(op_id)['state'])
        self.assertIsNone(self.operation(op_id)['lease_owner'])
        self.start_conductor_now()
        for dev, op in ((device_id, op_id), (other_id, other_op)):
            self.assertTakenOver(op)
            self.assertEqual('ACTIVE', self.device(dev)['status'])
            self.assertOneInstance(dev)

    def test_lost_resume(self):
        self.start_conductor_now()
        device_id, op_id = self.start_create({'create': {'sleep': 0.3}})
        self.wait_step(op_id, 'create_vm')
        self.action(op_id, 'pause', 200)
        self.wait_rest(op_id, 'PAUSED')
        with self.lost_casts():
            self.action(op_id, 'resume', 202)
        self.assertTakenOver(op_id)
        self.assertOneInstance(device_id)


class TestLeases(RecoveryTestCase):

    autostart = True

    def test_heartbeat_keeps_a_long_step(self):
        # create_vm outlasts the lease: the heartbeat renews it, so the
        # recovery scan never takes the operation from its runner.
        lease = self.conductors[0].manager.runner.lease_seconds
        device_id, op_id = self.start_create(
            {'create': {'sleep': lease + 0.5}})
        self.wait_rest(op_id, 'COMPLETED', timeout=lease + 10)
        self.assertEqual(1, self.steps(op_id)['create_vm']['attempts'])
        self.assertOneInstance(device_id)

    def test_lost_lease_interrupts_the_step(self):
        device_id, op_id = self.start_create(
            {'poll': {'hang': True, 'times': 1}})
        self.wait_step(op_id, 'create_vm')
        runner = self.conductors[0].manager.runner
        self.wait_until(lambda: op_id in runner.active, 'the run')
        # Another conductor took the lease (this one was thought dead).
        with self.engine.begin() as conn:
            conn.execute(sa.update(OPS_T).where(OPS_T.c.id == op_id)
                         .values(lease_owner=DEAD,
                                 lease_expires_at=_in(2.0)))
        started = time.monotonic()
        self.wait_until(lambda: op_id not in runner.active,
                        'the run to stop', timeout=5)
        # Well before the lease the thief took (2 s) runs out.
        self.assertLess(time.monotonic() - started, 1.5)
        operation = self.operation(op_id)
        self.assertEqual('PROCESSING', operation['state'])
        self.assertEqual(DEAD, operation['lease_owner'])
        # The other conductor dies in turn: this one takes it back and
        # re-runs the step, whose create finds the instance made (its end,
        # with the instance id, was never recorded).
        self.wait_rest(op_id, 'COMPLETED')
        steps = self.steps(op_id)
        self.assertEqual(2, steps['create_vm']['attempts'])
        self.assertOneInstance(device_id)


class TestShutdown(RecoveryTestCase):

    def test_stopping_conductor_hands_its_operations_over(self):
        # The first poll of the device (create_vm's check) hangs until
        # interrupted.
        device_id, op_id = self.start_create({'poll': {'hang': True,
                                                       'times': 1}})
        first = self.start_conductor_now()
        # Made, and its check's poll hangs.
        self.wait_until(lambda: device_id in self.vim(), 'the instance',
                        timeout=10)
        time.sleep(0.2)
        started = time.monotonic()
        conductor_cmd.stop_conductor(first)
        self.assertLess(time.monotonic() - started, 5)
        operation = self.operation(op_id)
        self.assertEqual('PROCESSING', operation['state'])
        self.assertIsNone(operation['lease_owner'])
        # Another conductor takes it up at once (no lease to wait out),
        # checks the step the first one left, and finishes.
        started = time.monotonic()
        self.start_conductor_now()
        self.wait_rest(op_id, 'COMPLETED', timeout=15)
        self.assertLess(time.monotonic() - started,
                        CONF.conductor.takeover_time)
        self.assertOneInstance(device_id)
