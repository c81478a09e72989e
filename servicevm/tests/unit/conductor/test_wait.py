"""wait_for: a driver whose poll waits for its next cycle is polled
again at once; the others are polled [conductor] poll_interval apart."""

import types

from servicevm.conductor import steps
from servicevm.drivers.device import base as driver_base
from servicevm.tests import base


class Driver:

    def __init__(self, poll_waits):
        self.poll_waits = poll_waits
        self.slept = []

    def sleep(self, context, seconds):
        self.slept.append(seconds)


class Work:

    def __init__(self, driver, answers):
        self.driver = driver
        self.conf = types.SimpleNamespace(conductor=types.SimpleNamespace(
            poll_interval=5.0, device_timeout=60,
            delete_retry_interval=120))
        self.answers = list(answers)
        self.polls = 0

    def poll(self, ctx):
        self.polls += 1
        return driver_base.PollResult(self.answers.pop(0))


class TestWaitFor(base.TestCase):

    def wait(self, poll_waits):
        driver = Driver(poll_waits)
        work = Work(driver, ['building', 'building', 'active'])
        result = steps.wait_for(None, work, lambda r: r.state == 'active',
                                'active')
        self.assertEqual('active', result.state)
        self.assertEqual(3, work.polls)
        return driver.slept

    def test_a_batched_poll_is_asked_again_without_a_pause(self):
        self.assertEqual([], self.wait(poll_waits=True))

    def test_a_poll_that_answers_at_once_is_paced_by_poll_interval(self):
        self.assertEqual([5.0, 5.0], self.wait(poll_waits=False))

    def test_the_drivers_say_whether_their_poll_waits(self):
        from servicevm.drivers.device import heat
        from servicevm.drivers.device import noop
        from servicevm.drivers.device import nova
        self.assertTrue(nova.NovaDeviceDriver.poll_waits)
        self.assertTrue(heat.HeatDeviceDriver.poll_waits)
        self.assertFalse(noop.NoopDeviceDriver.poll_waits)


class StepWork(Work):
    """Work as the wait steps use it."""

    def __init__(self, driver, answers):
        super().__init__(driver, answers)
        self.device = {'id': 'd1', 'mgmt_address': None}
        self.final_values = None

    def note(self, **values):
        self.device.update(values)


class TestWaitStepsCheck(base.TestCase):
    """The success check after a wait step's run takes what the run saw:
    a poll again would wait for the driver's next cycle."""

    def test_wait_active(self):
        work = StepWork(Driver(True), ['building', 'active'])
        step = steps.WaitActive()
        self.assertIn('active', step.run(None, work))
        self.assertTrue(step.check(None, work))
        self.assertEqual(2, work.polls)
        # Resuming (a new run): the check asks the VIM.
        work = StepWork(Driver(True), ['building'])
        self.assertFalse(step.check(None, work))
        self.assertEqual(1, work.polls)

    def test_wait_gone(self):
        work = StepWork(Driver(True), ['building', 'gone'])
        step = steps.WaitGone()
        self.assertEqual('gone', step.run(None, work))
        self.assertTrue(step.check(None, work))
        self.assertEqual(2, work.polls)
        work = StepWork(Driver(True), ['gone'])
        self.assertTrue(step.check(None, work))
        self.assertEqual(1, work.polls)
