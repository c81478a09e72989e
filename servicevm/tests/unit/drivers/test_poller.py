"""The batched poller: one query per cycle for every waiter, and a waiter
that arrives while a query is under way takes that query's answer only if
the query covers its devices and started after their last change."""

import threading
import time

from servicevm.drivers.device import base as driver_base
from servicevm.drivers.device import openstack
from servicevm.tests import base


class FakeDriver:
    """poll_batch answers each device with the number of the query, and
    holds query 1 until ``release`` is set."""

    group = 'fake'

    def __init__(self):
        self.queries = []
        self.started = threading.Event()
        self.release = threading.Event()
        self._changed = {}
        self.credentials = self

    def key(self, device):
        return None

    def sleep(self, context, seconds):
        time.sleep(seconds)

    def changed(self, device_id):
        self._changed[device_id] = time.monotonic()

    def changed_at(self, device_id):
        return self._changed.get(device_id, 0.0)

    def poll_batch(self, key, devices):
        self.queries.append(sorted(d['id'] for d in devices))
        n = len(self.queries)
        if n == 1:
            self.started.set()
            self.release.wait(5)
        return {d['id']: driver_base.PollResult('active', details={'q': n})
                for d in devices}


class TestBatchPoller(base.TestCase):

    def setUp(self):
        super().setUp()
        self.driver = FakeDriver()
        self.poller = openstack.BatchPoller(self.driver, None, 0.3)

    def two_waiters(self, change_between):
        """A waiter for d1 starts query 1; a second arrives while query 1
        is under way (after a change to d1 if ``change_between``).
        Returns the number of the query each one was answered by."""
        answers = [None, None]

        def wait(i):
            result = self.poller.wait(None, [{'id': 'd1'}], self.driver)
            answers[i] = result['d1'].details['q']
        threads = [threading.Thread(target=wait, args=(i,), daemon=True)
                   for i in (0, 1)]
        threads[0].start()
        self.assertTrue(self.driver.started.wait(5))
        if change_between:
            # e.g. the server's DELETE returned after query 1 started.
            self.driver.changed('d1')
        threads[1].start()
        deadline = time.monotonic() + 5
        while self.poller._waiting['d1'][1] < 2:    # both are waiting
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.005)
        self.driver.release.set()
        for thread in threads:
            thread.join(5)
        return answers

    def test_a_waiter_covered_by_the_query_under_way_takes_its_answer(self):
        self.assertEqual([1, 1], self.two_waiters(change_between=False))
        self.assertEqual([['d1']], self.driver.queries)

    def test_a_device_changed_after_the_query_started_waits_for_the_next(
            self):
        self.assertEqual([1, 2], self.two_waiters(change_between=True))
        self.assertEqual([['d1'], ['d1']], self.driver.queries)

    def test_a_push_answers_the_waiters_before_it_not_those_after(self):
        answers = []

        def wait():
            result = self.poller.wait(None, [{'id': 'd1'}], self.driver)
            answers.append(result['d1'].state)
        first = threading.Thread(target=wait, daemon=True)
        first.start()
        self.assertTrue(self.driver.started.wait(5))    # query 1 held
        pushed = driver_base.PollResult('stopped')
        self.assertFalse(self.poller.push('d2', lambda d: pushed))
        self.assertFalse(self.poller.push('d1', lambda d: None))
        self.assertTrue(self.poller.push('d1', lambda d: pushed))
        first.join(5)
        self.assertEqual(['stopped'], answers)
        # A waiter that comes after the push waits for a query.
        second = threading.Thread(target=wait, daemon=True)
        second.start()
        second.join(0.2)
        self.assertTrue(second.is_alive())
        self.driver.release.set()
        second.join(5)
        self.assertEqual(['stopped', 'active'], answers)

    def poll_once(self):
        """d1 polled once (query 1), so the poller knows it lately."""
        self.driver.release.set()
        return self.poller.wait(None, [{'id': 'd1'}], self.driver)['d1']

    def test_news_between_two_polls_is_taken_by_the_next_waiter(self):
        self.assertEqual('active', self.poll_once().state)
        self.assertTrue(self.poller.push(
            'd1', lambda d: driver_base.PollResult('stopped')))
        result = self.poller.wait(None, [{'id': 'd1'}], self.driver)
        self.assertEqual('stopped', result['d1'].state)
        self.assertEqual([['d1']], self.driver.queries)     # no query

    def test_news_older_than_a_change_or_a_query_is_not_taken(self):
        self.poll_once()
        self.assertTrue(self.poller.push(
            'd1', lambda d: driver_base.PollResult('stopped')))
        time.sleep(0.01)
        self.driver.changed('d1')           # e.g. a start asked since
        result = self.poller.wait(None, [{'id': 'd1'}], self.driver)
        self.assertEqual('active', result['d1'].state)
        self.assertEqual(2, len(self.driver.queries))
        # That query started after the news: it is dropped.
        self.assertNotIn('d1', self.poller._pushed)
