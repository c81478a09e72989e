"""keystone.trust_for: one trust for a burst of a user's first requests
in a project, and none left behind by a request that failed."""

import threading
import time
from unittest import mock

from oslo_context import context as oslo_context
import testtools

from servicevm.common import keystone
from servicevm.tests import base


class FakeDevices:
    """The devices table, as far as trust_for reads it."""

    def __init__(self):
        self.rows = []
        self.lock = threading.Lock()

    def device_trust_for(self, context, user_id, project_id):
        with self.lock:
            for user, project, trust_id in self.rows:
                if (user, project) == (user_id, project_id):
                    return trust_id
        return None

    def commit(self, context, trust_id):
        time.sleep(0.01)    # the insert takes a while
        with self.lock:
            self.rows.append((context.user_id, context.project_id,
                              trust_id))


class TestTrustFor(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(auth_strategy='keystone')
        self.config(credentials='trust', group='vim')
        self.made = []
        self.deleted = []

        def create(conf, context):
            time.sleep(0.05)    # Keystone's answer takes a while
            self.made.append('trust-%d' % len(self.made))
            return self.made[-1]
        self._patch('create_trust', create)
        self._patch('delete_trust',
                    lambda conf, trust_id: self.deleted.append(trust_id))
        self.devices = FakeDevices()

    def _patch(self, name, fn):
        patcher = mock.patch.object(keystone, name, side_effect=fn)
        patcher.start()
        self.addCleanup(patcher.stop)

    @staticmethod
    def context(user='u1', project='p1'):
        return oslo_context.RequestContext(
            user_id=user, project_id=project, auth_token='token')

    def create_device(self, ctx, results):
        with keystone.trust_for(base.CONF, ctx, self.devices) as trust_id:
            self.devices.commit(ctx, trust_id)
        results.append(trust_id)

    def test_a_burst_of_first_requests_makes_one_trust(self):
        results = []
        threads = [threading.Thread(target=self.create_device,
                                    args=(self.context(), results))
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(['trust-0'], self.made)
        self.assertEqual(['trust-0'] * 8, results)
        # Another project of the same user gets a trust of its own.
        self.create_device(self.context(project='p2'), results)
        self.assertEqual(['trust-0', 'trust-1'], self.made)
        self.assertEqual([], self.deleted)

    def test_a_failed_request_deletes_the_trust_it_made(self):
        with testtools.ExpectedException(RuntimeError):
            with keystone.trust_for(base.CONF, self.context(), self.devices):
                raise RuntimeError('the insert failed')
        self.assertEqual(['trust-0'], self.deleted)
        # A failure with a trust another device holds keeps it.
        self.create_device(self.context(), [])
        with testtools.ExpectedException(RuntimeError):
            with keystone.trust_for(base.CONF, self.context(), self.devices):
                raise RuntimeError('the insert failed')
        self.assertEqual(['trust-0'], self.deleted)

    def test_no_trust_without_a_token(self):
        ctx = oslo_context.RequestContext(user_id='u1', project_id='p1')
        with keystone.trust_for(base.CONF, ctx, self.devices) as trust_id:
            self.assertIsNone(trust_id)
        self.assertEqual([], self.made)
