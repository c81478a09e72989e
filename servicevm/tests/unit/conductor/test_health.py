"""The health watch: ACTIVE devices are polled in batches (one driver
call per pass, however many devices), their power state and last_seen
recorded; a VM deleted behind servicevm's back makes its device DEAD
within two passes; the live conductors share the devices."""

import os
import time

from oslo_messaging.notify import _impl_test

from servicevm.common import context as svm_context
from servicevm.common import notify
from servicevm.db import api as db_api
from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D
INTERVAL = 0.2


class TestHealthWatch(op_base.OperationTestCase):

    autostart = False

    def setUp(self):
        super().setUp()
        self.config(sync_interval=INTERVAL, group='conductor')
        self.config(driver=['test'], group='oslo_messaging_notifications')
        notify.reset()
        self.addCleanup(notify.reset)
        _impl_test.reset()
        self.server = self.start_conductor_now()
        self.watch = self.server.manager.health

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
        shares = [{d.id for d in dbapi.devices_to_watch(ctx, h, hosts)}
                  for h in hosts]
        self.assertEqual(devices, set().union(*shares))
        self.assertEqual(sum(len(s) for s in shares), len(devices))
        # One is dead: the two others share all.
        shares = [{d.id for d in dbapi.devices_to_watch(ctx, h, hosts[:2])}
                  for h in hosts[:2]]
        self.assertEqual(devices, shares[0] | shares[1])
        self.assertEqual([], dbapi.devices_to_watch(ctx, 'conductor-c',
                                                    hosts[:2]))
        # A conductor not seen for takeover_time is not among the live.
        self.assertEqual(['test-conductor'], dbapi.conductor_alive(
            ctx, 'test-conductor', dead_after=60))
