"""A base for the tests of operations: the API and an in-process
conductor with fast timings, and the ``fault`` driver's pretend VIM in a
directory of the test's own."""

import json
import os
import time

import fixtures
from oslo_config import cfg
import sqlalchemy as sa

from servicevm.cmd import conductor as conductor_cmd
from servicevm.drivers.device import fault
from servicevm.drivers import loader
from servicevm.tests import base

CONF = cfg.CONF

D = '/v1/devices'
OPS = '/v1/operations'
FINAL = ('COMPLETED', 'FAILED', 'CANCELLED', 'ROLLED_BACK')
# States in which no conductor works on an operation.
RESTING = FINAL + ('PAUSED', 'FAILED_TEMP')


class OperationTestCase(base.APIBehaviourTestCase):

    # The conductor starts once the options below are set (unless
    # ``autostart`` is false: the test starts it).
    start_conductor = False
    autostart = True

    def setUp(self):
        super().setUp()
        self.state_dir = self.useFixture(fixtures.TempDir()).path
        self.config(enabled_device_drivers=['noop', 'fault'])
        self.config(state_dir=self.state_dir, group='fault_driver')
        self.config(watch_interval=0.05, poll_interval=0.02, takeover_time=3,
                    driver_retry_backoff=0.01, group='conductor')
        # Drivers are cached per process: the fault driver must see this
        # test's directory.
        loader._CACHE.clear()
        self.addCleanup(loader._CACHE.clear)
        self.conductors = []
        if self.autostart:
            self.start_conductor_now()

    def record_notifications(self):
        """Notifications on, recorded by oslo.messaging's ``test``
        driver (``_impl_test.NOTIFICATIONS``); before the conductor
        starts."""
        from oslo_messaging.notify import _impl_test

        from servicevm.common import notify
        self.config(driver=['test'], group='oslo_messaging_notifications')
        notify.reset()
        self.addCleanup(notify.reset)
        _impl_test.reset()
        self.addCleanup(_impl_test.reset)

    def start_conductor_now(self):
        server = conductor_cmd.start_conductor(CONF)
        self.addCleanup(conductor_cmd.stop_conductor, server)
        # First (cleanups run last in, first out): stop whatever still
        # waits on the VIM, so that stopping the conductor is quick.
        self.addCleanup(self.stop_runs, server.manager)
        self.conductors.append(server)
        return server

    def stop_runs(self, manager):
        """Take every lease from ``manager``'s runner and interrupt its
        runs (a run whose lease is gone lets go)."""
        runner = manager.runner
        with self.engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE operations SET lease_owner = 'the-test-is-over' "
                "WHERE lease_owner = :host"), {'host': runner.host})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with runner._lock:
                handles = list(runner.active.values())
            if not handles:
                return
            for handle in handles:
                handle.stop('the test is over')
            time.sleep(0.01)

    # ---- the pretend VIM --------------------------------------------------

    def vim(self):
        """{device id: instance} of what the fault driver's VIM holds."""
        return {i['device_id']: i
                for i in fault.FaultDeviceDriver(CONF).instances()}

    def journal_records(self, device_id=None):
        """The VIM's journal: what each driver call did."""
        path = os.path.join(self.state_dir, 'journal.jsonl')
        if not os.path.exists(path):
            return []
        with open(path) as f:
            # a line still being written has no newline yet
            records = [json.loads(line) for line in f
                       if line.endswith('\n') and line.strip()]
        return [r for r in records
                if device_id is None or r['device_id'] == device_id]

    def journal(self, device_id=None):
        """[(event, device_id)] of the VIM's journal."""
        return [(r['event'], r['device_id'])
                for r in self.journal_records(device_id)]

    def assertNoLeftovers(self, device_id):
        """Nothing of the device is left in the VIM, and it was never
        created twice (each create is followed by its delete)."""
        self.assertNotIn(device_id, self.vim())
        events = [e for e, _ in self.journal(device_id)]
        self.assertEqual(['create', 'delete'] * (len(events) // 2), events)

    def assertOneInstance(self, device_id):
        """The device has exactly one instance, created once."""
        self.assertIn(device_id, self.vim())
        self.assertEqual([('create', device_id)], self.journal(device_id))

    # ---- resources ------------------------------------------------------

    def fault_template(self, faults=None, persona=base.MEMBER, **attrs):
        attributes = {'image': 'cirros'}
        if faults is not None:
            attributes['fault'] = faults
        attributes.update(attrs)
        return self.create_template(persona, device_driver='fault',
                                    attributes=attributes)['id']

    def start_create(self, faults=None, template_attrs=None,
                     persona=base.MEMBER, **values):
        """POST a device of a fault template; returns (device id,
        operation id)."""
        template_id = self.fault_template(faults, persona,
                                          **(template_attrs or {}))
        body = {'device': dict(name='dev', template_id=template_id,
                               **values)}
        response = self.post(D, body, persona, status=202)
        self.assertIn('/v1/operations/%s' % response.json['operation_id'],
                      response.headers['Location'])
        return response.json['device']['id'], response.json['operation_id']

    def make_device(self, faults=None, **values):
        """An ACTIVE device whose create completed."""
        device_id, op_id = self.start_create(faults, **values)
        self.wait_for_operation(op_id, 'COMPLETED')
        return device_id

    def device(self, device_id, persona=base.ADMIN):
        return self.get('%s/%s' % (D, device_id), persona).json['device']

    def operation(self, op_id, persona=base.ADMIN):
        return self.get('%s/%s' % (OPS, op_id), persona).json['operation']

    def steps(self, op_id):
        return {s['name']: s for s in self.operation(op_id)['steps']}

    def events(self, device_id, op_id=None):
        events = self.get('%s/%s/events?limit=1000' % (D, device_id),
                          base.ADMIN).json['events']
        return [e['event_type'] for e in events
                if op_id is None or e['operation_id'] == op_id]

    def action(self, op_id, action, status=None, persona=base.MEMBER):
        response = self.post('%s/%s/action' % (OPS, op_id),
                             {'action': action}, persona)
        if status is not None:
            self.assertEqual(status, response.status_int, response.body)
        if response.status_int == 202:
            self.assertIn('/v1/operations/%s' % op_id,
                          response.headers['Location'])
        return response

    # ---- waits ------------------------------------------------------------

    def wait_until(self, predicate, what, timeout=15, interval=0.01):
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                self.fail('timed out waiting for %s' % what)
            time.sleep(interval)

    def wait_monitor(self, device_id, state='up', timeout=30):
        """The device's liveness monitor last found it in ``state``."""
        def found():
            return (self.get('%s/%s/metrics' % (D, device_id)).json[
                'metrics']['monitor'] or {}).get('state') == state
        self.wait_until(found, 'the monitor to find device %s %s' % (
            device_id, state), timeout=timeout, interval=0.2)

    def wait_reconfigured(self, device_id):
        """The monitor found the device re-initialised, and the
        configure operation that followed completed."""
        self.wait_until(lambda: 'device.reinitialised' in self.events(
            device_id), 'device %s to be found re-initialised' % device_id,
            timeout=30, interval=0.2)
        configure = self.wait_until(
            lambda: [o for o in self.get(
                '/v1/operations?resource_id=%s' % device_id).json[
                'operations'] if o['kind'] == 'configure'],
            'a configure operation', interval=0.2)[0]
        return self.wait_rest(configure['id'], 'COMPLETED', timeout=60)

    def wait_step(self, op_id, name, state='RUNNING', timeout=15):
        return self.wait_until(
            lambda: (self.steps(op_id)[name]
                     if self.steps(op_id).get(name, {}).get('state') == state
                     else None),
            'step %s of %s to be %s' % (name, op_id, state), timeout)

    def wait_rest(self, op_id, state, timeout=15):
        """The operation reaches ``state`` and no conductor holds it any
        more (its run has let go)."""
        operation = self.wait_for_operation(op_id, state, timeout=timeout)
        self.wait_until(lambda: self.idle(op_id),
                        'conductors to let go of %s' % op_id)
        return operation

    def idle(self, op_id):
        for server in self.conductors:
            runner = server.manager.runner
            with runner._lock:
                if op_id in runner.active:
                    return False
        return self.operation(op_id)['lease_owner'] is None
