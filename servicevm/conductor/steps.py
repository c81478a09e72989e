"""Unit steps and the plans they make up.

A step (seeds/004): states its precondition, does its work idempotently
(running it twice is harmless: drivers find what an earlier run made),
has a success check used after running and when resuming an operation a
dead conductor left, a rollback that removes what it made, and the steps
it depends on. Steps never touch the database directly: they read and
write through the ``Work`` of their operation.
"""

import time

from servicevm.common import exceptions
from servicevm.common import secrets
from servicevm.drivers.device.base import ACTIONS


class Step:
    name = None
    depends_on = ()
    #: False when the step's effect cannot be undone (a deleted VM).
    reversible = True

    def precondition(self, ctx, work):
        """Raise StepError when the step cannot run now."""

    def run(self, ctx, work):
        """Do the work; return a line of output."""
        raise NotImplementedError()

    def check(self, ctx, work):
        """Whether the step's work is done (after running, or when a
        conductor resumes an operation whose step was under way)."""
        return True

    def rollback(self, ctx, work):
        """Undo the step's work (idempotent); return a line of output."""
        return 'nothing to undo'


class StepError(exceptions.ServiceVMException):
    error_code = 'servicevm.step_failed'
    msg_fmt = '%(reason)s'


def wait_for(ctx, work, done, what):
    """Poll the device's VIM state until ``done(result)``; interruptible,
    bounded by [conductor] device_timeout; returns the last result."""
    conf = work.conf.conductor
    deadline = time.monotonic() + conf.device_timeout
    while True:
        result = work.poll(ctx)
        if done(result):
            return result
        if result.state == 'error':
            raise StepError(reason='the VIM reports the device in error: '
                                   '%s' % (result.error or 'no reason'))
        if time.monotonic() > deadline:
            raise StepError(reason='the device was not %s after %d s '
                                   '(state %s)' % (what, conf.device_timeout,
                                                   result.state))
        work.driver.sleep(ctx, conf.poll_interval)


class CreateVM(Step):
    name = 'create_vm'

    def run(self, ctx, work):
        instance_id = work.call('create', ctx, work.device,
                                new=self.name in work.first_tries)
        work.note(instance_id=instance_id)
        return 'instance %s' % instance_id

    def check(self, ctx, work):
        # Done only once recorded too: a run that died between the VIM's
        # answer and recording it is re-run (the create finds the VM).
        return (bool(work.device.get('instance_id')) and
                work.poll(ctx).state != 'gone')

    def rollback(self, ctx, work):
        work.call('delete', ctx, work.device)
        # Forget the instance once its delete is asked for (a re-run of
        # this rollback deletes by device id, which the VIM still knows).
        work.record(instance_id=None, mgmt_address=None)
        wait_for(ctx, work, lambda r: r.state == 'gone', 'gone')
        return 'instance deleted'


class WaitActive(Step):
    name = 'wait_active'
    depends_on = ('create_vm',)

    def run(self, ctx, work):
        result = wait_for(ctx, work, lambda r: r.state == 'active', 'active')
        work.final_values = {'mgmt_address': result.mgmt_address,
                             'power_state': result.power_state,
                             'ready': True}
        return 'active at %s' % result.mgmt_address

    def check(self, ctx, work):
        result = work.poll(ctx)
        if result.state != 'active':
            return False
        work.final_values = {'mgmt_address': result.mgmt_address,
                             'power_state': result.power_state,
                             'ready': True}
        return True


class UpdateVM(Step):
    name = 'update_vm'

    def run(self, ctx, work):
        work.call('update', ctx, work.device)
        work.final_values = {}
        return 'kwargs applied'

    def check(self, ctx, work):
        # The VIM cannot tell whether kwargs were applied: done only when
        # this run applied them (re-applying them is harmless).
        return work.final_values is not None

    def rollback(self, ctx, work):
        old = (work.operation.params or {}).get('old_kwargs')
        if old is None:
            return 'nothing to undo'
        work.device['kwargs'] = secrets.reveal_map(old)
        work.call('update', ctx, work.device)
        work.restore_kwargs(old)
        return 'previous kwargs applied'


class DeleteVM(Step):
    name = 'delete_vm'
    reversible = False

    def run(self, ctx, work):
        work.call('delete', ctx, work.device)
        return 'delete requested'

    def check(self, ctx, work):
        # Taken by the VIM (wait_gone waits for the end).
        result = work.poll(ctx)
        return result.state == 'gone' or result.deleting

    def rollback(self, ctx, work):
        # Only reached when the delete did not complete: the VM is there.
        return 'the VM was not deleted'


class WaitGone(Step):
    name = 'wait_gone'
    depends_on = ('delete_vm',)

    def run(self, ctx, work):
        """Wait until gone; a VM stuck deleting gets its delete asked
        again every [conductor] delete_retry_interval, and one still there
        at the end is an alarm."""
        conf = work.conf.conductor
        retries = [0]
        last = [time.monotonic()]

        def gone(result):
            if result.state == 'gone':
                return True
            if time.monotonic() - last[0] >= conf.delete_retry_interval:
                retries[0] += 1
                last[0] = time.monotonic()
                work.call('delete', ctx, work.device)
            return False
        try:
            wait_for(ctx, work, gone, 'gone')
        except StepError as e:
            work.alarm('device.delete.stuck',
                       'the VM of device %s is still in the VIM after its '
                       'delete was asked %d times: %s' % (
                           work.device['id'], retries[0] + 1, e))
            raise
        if retries[0]:
            return 'gone (delete asked %d times)' % (retries[0] + 1)
        return 'gone'

    def check(self, ctx, work):
        return work.poll(ctx).state == 'gone'


class RunAction(Step):
    """One of the driver's optional actions (reboot, resize, scale...)."""
    name = 'run_action'

    def precondition(self, ctx, work):
        if not work.device.get('instance_id'):
            raise StepError(reason='the device has no VM (its create did '
                                   'not complete); delete it instead')

    def run(self, ctx, work):
        params = work.operation.params or {}
        output = work.call('action', ctx, work.device, params['action'],
                           params.get('params') or {})
        work.action_started = True
        return output or '%s requested' % params['action']

    def check(self, ctx, work):
        # The VIM cannot tell whether a reboot was asked: done only when
        # this run asked it (asking again is harmless).
        return getattr(work, 'action_started', False)

    def rollback(self, ctx, work):
        return 'nothing to undo (an action is not reverted)'


class WaitAction(Step):
    """Wait until the VM rests in the state its action leads to."""
    name = 'wait_action'
    depends_on = ('run_action',)

    def run(self, ctx, work):
        action = (work.operation.params or {})['action']
        target = ACTIONS.get(action)
        if target is None:
            result = work.poll(ctx)
        else:
            result = wait_for(ctx, work, lambda r: r.state == target,
                              target)
        work.final_values = {'power_state': result.power_state}
        if result.mgmt_address:
            work.final_values['mgmt_address'] = result.mgmt_address
        members = result.details.get('instance_ids')
        if members is not None:
            # A scaled group: which VMs it has now.
            return '%s: %s; members now: %s' % (
                action, result.state, members)
        return '%s: %s' % (action, result.state)

    def check(self, ctx, work):
        return work.final_values is not None


PLANS = {
    ('device', 'create'): (CreateVM(), WaitActive()),
    ('device', 'update'): (UpdateVM(),),
    ('device', 'delete'): (DeleteVM(), WaitGone()),
    ('device', 'action'): (RunAction(), WaitAction()),
}


def plan_for(operation):
    return PLANS[(operation.resource_type, operation.kind)]
