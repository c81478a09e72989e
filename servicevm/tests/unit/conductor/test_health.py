"""The health watch: ACTIVE devices are polled in batches (one driver
call per pass, however many devices), their power state and last_seen
recorded; a VM deleted behind servicevm's back makes its device DEAD
within two passes; the live conductors share the devices."""

import json
import os
import time

from oslo_messaging.notify import _impl_test

from servicevm.common import context as svm_context
from servicevm.conductor import monitor as svm_monitor
from servicevm.db import api as db_api
from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D
INTERVAL = 0.2


class WatchedTestCase(op_base.OperationTestCase):
    """A conductor whose health watch makes a pass every INTERVAL."""

    autostart = False

    def setUp(self):
        super().setUp()
        self.config(sync_interval=INTERVAL, group='conductor')
        self.record_notifications()
        self.server = self.start_conductor_now()
        self.watch = self.server.manager.health


class TestHealthWatch(WatchedTestCase):

    def test_polled_in_batches_then_dead_when_the_vm_is_gone(self):
        devices = [self.make_device() for _ in range(4)]
        passes = self.watch.passes
        self.wait_until(lambda: self.watch.passes >= passes + 2,
                        'two passes of the health watch')
        for device_id in devices:
            metrics = self.get('%s/%s/metrics' % (D, device_id),
                               base.MEMBER).json['metrics']
            self.assertEqual(('ACTIVE', 'running'),
                             (metrics['status'], metrics['power_state']))
            self.assertTrue(metrics['last_seen'])
        # One poll of the driver per pass, for all four devices.
        self.assertLessEqual(self.watch.polls['fault'],
                             self.watch.passes + 1)

        # The VM disappears behind servicevm's back.
        victim = devices[0]
        os.unlink(os.path.join(self.state_dir, 'instances',
                               victim + '.json'))
        started = time.monotonic()
        device = self.wait_until(
            lambda: (self.device(victim)['status'] == 'DEAD' and
                     self.device(victim)), 'the device to be DEAD')
        self.assertLess(time.monotonic() - started, 2 * INTERVAL + 2)
        self.assertIn('gone', device['status_reason'])
        self.assertIn('device.dead', self.events(victim))
        self.assertEqual('ACTIVE', self.device(devices[1])['status'])
        types = [m['event_type'] for _, m, _, _ in _impl_test.NOTIFICATIONS]
        self.assertIn('servicevm.device.dead', types)
        # A DEAD device can be deleted.
        response = self.delete('%s/%s' % (D, victim), base.MEMBER,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED')

    def test_live_conductors_share_the_devices(self):
        devices = {self.make_device() for _ in range(12)}
        dbapi = db_api.get_instance()
        ctx = svm_context.get_admin_context()
        hosts = ['conductor-a', 'conductor-b', 'conductor-c']
        shares = [{d['id'] for d in dbapi.devices_to_watch(ctx, h, hosts)}
                  for h in hosts]
        self.assertEqual(devices, set().union(*shares))
        self.assertEqual(sum(len(s) for s in shares), len(devices))
        # One is dead: the two others share all.
        shares = [{d['id'] for d in dbapi.devices_to_watch(ctx, h, hosts[:2])}
                  for h in hosts[:2]]
        self.assertEqual(devices, shares[0] | shares[1])
        self.assertEqual([], dbapi.devices_to_watch(ctx, 'conductor-c',
                                                    hosts[:2]))
        # A conductor not seen for takeover_time is not among the live.
        self.assertEqual(['test-conductor'], dbapi.conductor_alive(
            ctx, 'test-conductor', dead_after=60))


class TestHealthPolicies(op_base.OperationTestCase):

    autostart = False

    def setUp(self):
        super().setUp()
        self.config(sync_interval=INTERVAL, group='conductor')
        self.server = self.start_conductor_now()

    def kill(self, device_id):
        """The VM disappears behind servicevm's back."""
        os.unlink(os.path.join(self.state_dir, 'instances',
                               device_id + '.json'))

    def alarms(self):
        return self.get('/v1/alarms?all_projects=1&limit=1000',
                        base.ADMIN).json['alarms']

    def test_respawn_makes_a_new_vm_for_the_same_device(self):
        keep = self.make_device()
        device_id, op_id = self.start_create(
            template_attrs={'health_policy': 'respawn'})
        self.wait_rest(op_id, 'COMPLETED')
        old = self.device(device_id)['instance_id']
        self.kill(device_id)
        operation = self.wait_until(
            lambda: [o for o in self.get(
                '/v1/operations?all_projects=1&resource_id=%s' % device_id,
                base.ADMIN).json['operations'] if o['kind'] == 'heal'],
            'a heal operation')[0]
        operation = self.wait_rest(operation['id'], 'COMPLETED')
        self.assertEqual(['delete_vm', 'wait_gone', 'create_vm',
                          'wait_active'],
                         [s['name'] for s in operation['steps']])
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertNotEqual(old, device['instance_id'])
        self.assertIn(device_id, self.vim())
        self.assertIn('device.dead', self.events(device_id))
        self.assertEqual('ACTIVE', self.device(keep)['status'])

    def test_alarm_only_and_the_brake(self):
        devices = [self.make_device() for _ in range(4)]
        self.kill(devices[0])
        self.wait_until(lambda: any(a['event_type'] == 'device.dead'
                                    for a in self.alarms()),
                        'the device.dead alarm')
        self.assertEqual('DEAD', self.device(devices[0])['status'])
        # Three of the remaining three die at once: the brake trips.
        for device_id in devices[1:]:
            self.kill(device_id)
        brake = self.wait_until(
            lambda: [a for a in self.alarms()
                     if a['event_type'] == 'health.brake'],
            'the health.brake alarm')[0]
        self.assertIn('3 of the 3 devices', brake['message'])
        for device_id in devices[1:]:
            self.assertEqual('DEAD', self.device(device_id)['status'])
        self.assertEqual(1, len([a for a in self.alarms()
                                 if a['event_type'] == 'device.dead']))

    def stop_vm(self, device_id):
        """The VM is shut off behind servicevm's back."""
        path = os.path.join(self.state_dir, 'instances', device_id + '.json')
        with open(path) as f:
            instance = json.load(f)
        instance['power'] = 'off'
        with open(path + '.tmp', 'w') as f:
            json.dump(instance, f)
        os.replace(path + '.tmp', path)

    def test_stopped_behind_its_back(self):
        healed, op_id = self.start_create(
            template_attrs={'health_policy': 'respawn'})
        self.wait_rest(op_id, 'COMPLETED')
        reported = self.make_device()
        for device_id in (healed, reported):
            self.stop_vm(device_id)
        start = self.wait_until(
            lambda: [o for o in self.get(
                '/v1/operations?all_projects=1&resource_id=%s' % healed,
                base.ADMIN).json['operations'] if o['kind'] == 'action'],
            'a start operation')[0]
        self.wait_rest(start['id'], 'COMPLETED')
        self.wait_until(lambda: self.device(healed)['power_state'] ==
                        'running', 'the device to run again')
        self.wait_until(lambda: any(
            a['event_type'] == 'device.stopped' and
            a['resource_id'] == reported for a in self.alarms()),
            'the device.stopped alarm')
        self.assertEqual('ACTIVE', self.device(reported)['status'])

    def break_vm(self, device_id, message):
        """The VIM shows the VM in error, until a reboot."""
        path = os.path.join(self.state_dir, 'instances', device_id + '.json')
        with open(path) as f:
            instance = json.load(f)
        instance['error'] = message
        with open(path + '.tmp', 'w') as f:
            json.dump(instance, f)
        os.replace(path + '.tmp', path)

    def heal_operation(self, device_id):
        return self.wait_until(
            lambda: [o for o in self.get(
                '/v1/operations?all_projects=1&resource_id=%s' % device_id,
                base.ADMIN).json['operations'] if o['kind'] == 'heal'],
            'a heal operation')[0]

    def test_heal_reboots_first(self):
        device_id, op_id = self.start_create(
            template_attrs={'health_policy': 'heal'})
        self.wait_rest(op_id, 'COMPLETED')
        old = self.device(device_id)['instance_id']
        self.break_vm(device_id, 'kernel panic')
        operation = self.wait_rest(self.heal_operation(device_id)['id'],
                                   'COMPLETED')
        steps = {s['name']: s for s in operation['steps']}
        self.assertEqual(['reboot_vm', 'delete_vm', 'wait_gone', 'create_vm',
                          'wait_active'],
                         [s['name'] for s in operation['steps']])
        self.assertIn('healed the device', steps['reboot_vm']['output'])
        for name in ('delete_vm', 'create_vm'):
            self.assertIn('skipped', steps[name]['output'])
        device = self.device(device_id)
        self.assertEqual(('ACTIVE', old), (device['status'],
                                           device['instance_id']))
        # Rebooted, not made again.
        self.assertEqual([('create', device_id), ('reboot', device_id)],
                         self.journal(device_id))
        self.assertIn('device.dead', self.events(device_id))

    def test_heal_respawns_when_the_reboot_fails(self):
        device_id, op_id = self.start_create(
            {'reboot': {'fail': 'the hypervisor is gone'}},
            template_attrs={'health_policy': 'heal'})
        self.wait_rest(op_id, 'COMPLETED')
        old = self.device(device_id)['instance_id']
        self.break_vm(device_id, 'disk lost')
        operation = self.wait_rest(self.heal_operation(device_id)['id'],
                                   'COMPLETED')
        steps = {s['name']: s for s in operation['steps']}
        self.assertIn('the hypervisor is gone', steps['reboot_vm']['output'])
        self.assertIn('respawning', steps['reboot_vm']['output'])
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertNotEqual(old, device['instance_id'])
        self.assertEqual([('create', device_id), ('delete', device_id),
                          ('create', device_id)], self.journal(device_id))

    def test_a_failed_heal_is_an_alarm(self):
        device_id, op_id = self.start_create(
            template_attrs={'health_policy': 'respawn'})
        self.wait_rest(op_id, 'COMPLETED')
        # From now on the VIM has no room for it.
        response = self.patch('%s/%s' % (D, device_id), {'device': {
            'kwargs': {'fault': {'create': {'fail': 'no room left'}}}}},
            base.MEMBER, status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED')
        self.kill(device_id)
        operation = self.wait_rest(self.heal_operation(device_id)['id'],
                                   'FAILED_TEMP')
        self.assertIn('no room left', operation['error'])
        alarm = self.wait_until(lambda: [
            a for a in self.alarms() if a['event_type'] ==
            'device.heal.error' and a['resource_id'] == device_id],
            'the device.heal.error alarm')[0]
        self.assertIn('no room left', alarm['message'])
        self.assertEqual('ERROR', self.device(device_id)['status'])

    def test_heals_are_limited_then_by_hand(self):
        self.config(heal_max=1, group='conductor')
        device_id, op_id = self.start_create(
            template_attrs={'health_policy': 'respawn'})
        self.wait_rest(op_id, 'COMPLETED')
        # Healing a device that is not dead is refused.
        response = self.post('%s/%s/action' % (D, device_id),
                             {'action': 'respawn'}, base.MEMBER)
        self.assertError(response, 409)
        self.kill(device_id)
        self.wait_rest(self.heal_operation(device_id)['id'], 'COMPLETED')
        self.wait_until(lambda: self.device(device_id)['status'] ==
                        'ACTIVE', 'the device to be ACTIVE again')
        # It dies again: no second heal within the window, an alarm.
        self.kill(device_id)
        alarm = self.wait_until(lambda: [
            a for a in self.alarms() if a['event_type'] ==
            'device.heal.exhausted' and a['resource_id'] == device_id],
            'the device.heal.exhausted alarm')[0]
        self.assertIn('after 1 heals', alarm['message'])
        self.assertEqual('DEAD', self.device(device_id)['status'])
        heals = [o for o in self.get(
            '/v1/operations?all_projects=1&resource_id=%s' % device_id,
            base.ADMIN).json['operations'] if o['kind'] == 'heal']
        self.assertEqual(1, len(heals))
        # By hand, it is healed.
        response = self.post('%s/%s/action' % (D, device_id),
                             {'action': 'heal', 'params': {'x': 1}},
                             base.MEMBER)
        self.assertError(response, 400, field='params.x')
        response = self.post('%s/%s/action' % (D, device_id),
                             {'action': 'respawn'}, base.MEMBER, status=202)
        operation = self.wait_rest(response.json['operation_id'],
                                   'COMPLETED')
        self.assertEqual('heal', operation['kind'])
        self.assertEqual('ACTIVE', self.device(device_id)['status'])


class TestMonitors(WatchedTestCase):
    """Liveness through the management plane, with the real ping."""

    def all_events(self, device_id):
        return self.get('%s/%s/events?limit=1000' % (D, device_id),
                        base.ADMIN).json['events']

    def test_ping_monitor(self):
        monitor = {'type': 'ping', 'interval': 1, 'timeout': 1,
                   'failures': 2}
        up = self.make_device(template_attrs={'monitor': monitor},
                              kwargs={'mgmt_address': '127.0.0.1'})
        # 240.0.0.0/4 is reserved: nothing answers there.
        down = self.make_device(template_attrs={'monitor': monitor},
                                kwargs={'mgmt_address': '240.0.0.1'})
        device = self.wait_until(
            lambda: (self.device(down)['status'] == 'DEAD' and
                     self.device(down)), 'the unreachable device to be DEAD',
            timeout=30, interval=0.2)
        self.assertIn('the ping monitor failed 2 times in a row',
                      device['status_reason'])
        failed = [e for e in self.all_events(down)
                  if e['event_type'] == 'device.monitor.failed']
        self.assertEqual(2, len(failed), failed)
        self.assertIn('1 of 2 failures', failed[0]['message'])
        self.assertIn('device.dead', self.events(down))
        # The other answers: an event when it first did, none for each
        # answer after.
        metrics = self.get('%s/%s/metrics' % (D, up), base.MEMBER).json[
            'metrics']
        self.assertEqual(('ping', 'up', 0), (
            metrics['monitor']['type'], metrics['monitor']['state'],
            metrics['monitor']['failures']))
        self.assertEqual(1, self.events(up).count('device.monitor.up'))
        self.assertEqual('ACTIVE', self.device(up)['status'])
        self.assertGreaterEqual(self.server.manager.health.monitor.probes, 4)

    def test_the_template_monitor_is_checked(self):
        for monitor, field in (
                ({'type': 'icmp'}, 'monitor.type'),
                ({'type': 'ping', 'interval': 0}, 'monitor.interval'),
                ({'type': 'ssh', 'cmd': 'true'}, 'monitor.cmd'),
                ({'type': 'ping', 'failures': 'many'}, 'monitor.failures')):
            body = {'device_template': {'device_driver': 'fault',
                                        'attributes': {'monitor': monitor}}}
            response = self.post('/v1/device_templates', body, base.MEMBER)
            self.assertError(response, 400,
                             field='device_template.attributes.' + field)
        body = {'device_template': {'device_driver': 'fault', 'attributes': {
            'health_policy': 'respwan'}}}
        response = self.post('/v1/device_templates', body, base.MEMBER)
        self.assertError(response, 400,
                         field='device_template.attributes.health_policy',
                         contains='alarm-only, respawn, heal')


class TestPing(base.TestCase):
    """The real ping and fping, on loopback and a reserved address."""

    def test_one_ping(self):
        self.assertEqual((True, 'ping of 127.0.0.1 answered'),
                         svm_monitor.ping('127.0.0.1:22', 1))
        answered, detail = svm_monitor.ping('240.0.0.1', 1)
        self.assertFalse(answered)
        self.assertIn('ping of 240.0.0.1 failed', detail)
        self.assertEqual((False, 'the device has no management address'),
                         svm_monitor.ping('', 1))

    def test_fping_batch(self):
        found = svm_monitor.ping_many(
            ['127.0.0.1', '[::1]:830', '240.0.0.1', 'nosuch.invalid', ''], 1)
        self.assertEqual({'127.0.0.1': True, '[::1]:830': True,
                          '240.0.0.1': False, 'nosuch.invalid': False,
                          '': False},
                         {k: v[0] for k, v in found.items()})
        self.assertIn('no answer within 1 s', found['240.0.0.1'][1])
