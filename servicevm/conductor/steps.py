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
from servicevm.conductor import monitor
from servicevm.conductor import scriptenv
from servicevm.drivers.device.base import ACTIONS


class Step:
    name = None
    depends_on = ()
    #: False when the step's effect cannot be undone (a deleted VM).
    reversible = True
    #: A step of the respawn, skipped in a heal that a reboot did.
    respawn_only = False

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
    bounded by [conductor] device_timeout; returns the last result. Polls
    are [conductor] poll_interval apart, unless the driver's poll waits
    for its next cycle itself (a pause as well would miss cycles)."""
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
        if not work.driver.poll_waits:
            work.driver.sleep(ctx, conf.poll_interval)


class CreateVM(Step):
    name = 'create_vm'
    respawn_only = True

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
    respawn_only = True
    depends_on = ('create_vm',)

    def run(self, ctx, work):
        result = wait_for(ctx, work, lambda r: r.state == 'active', 'active')
        self._found(work, result)
        work.seen_active = True
        heard = result.details.get('heard')
        return 'active at %s%s' % (result.mgmt_address, (
            ' (told by the VIM\'s notification %s)' % heard
            if heard else ''))

    def check(self, ctx, work):
        if getattr(work, 'seen_active', False):
            # This run saw it (a poll again would wait a whole cycle).
            return True
        result = work.poll(ctx)
        if result.state != 'active':
            return False
        self._found(work, result)
        return True

    @staticmethod
    def _found(work, result):
        # The address goes in with the step's end: the lifecycle scripts
        # after it (in this run or a later one) reach the device there.
        if result.mgmt_address != work.device.get('mgmt_address'):
            work.note(mgmt_address=result.mgmt_address)
        work.final_values = {'mgmt_address': result.mgmt_address,
                             'power_state': result.power_state,
                             'ready': True}


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
    respawn_only = True
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
    respawn_only = True
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
        work.seen_gone = True
        if retries[0]:
            return 'gone (delete asked %d times)' % (retries[0] + 1)
        return 'gone'

    def check(self, ctx, work):
        # This run saw it gone, else a poll tells.
        return (getattr(work, 'seen_gone', False) or
                work.poll(ctx).state == 'gone')


class RunAction(Step):
    """One of the driver's optional actions (reboot, resize, scale...)."""
    name = 'run_action'

    def precondition(self, ctx, work):
        if not work.device.get('instance_id'):
            raise StepError(reason='the device has no VM (its create did '
                                   'not complete); delete it instead')

    def run(self, ctx, work):
        params = work.operation.params or {}
        if params['action'] == 'scale' and 'members_before' not in params:
            # Kept with the operation: its SCALE_OUT scripts (after the
            # action, in this run or a later one) run only if it grew.
            members = work.poll(ctx).details.get('instance_ids')
            if members is not None:
                params = dict(params, members_before=len(members))
                work.runner.dbapi.operation_update(
                    work.ctx, work.operation.id, {'params': params})
                work.operation.params = params
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


def healed_by_reboot(work):
    return (work.operation.kind == 'heal' and
            (work.operation.params or {}).get('healed_by') == 'reboot')


class RebootVM(Step):
    """A heal's first try: a hard reboot (the driver's reset, else its
    reboot). The device is healed if its VM is active again, and answers
    its liveness monitor, within [conductor] heal_reboot_timeout; then
    the respawn steps are skipped. Otherwise it is respawned: this step
    never fails."""
    name = 'reboot_vm'

    def run(self, ctx, work):
        why = self._reboot(ctx, work)
        work.reboot_tried = True
        if why:
            return 'the reboot did not heal the device (%s): respawning ' \
                'it' % why
        params = dict(work.operation.params or {}, healed_by='reboot')
        work.runner.dbapi.operation_update(work.ctx, work.operation.id,
                                           {'params': params})
        work.operation.params = params
        return 'the reboot healed the device: no respawn'

    def _reboot(self, ctx, work):
        actions = work.driver.supported_actions
        action = ('reset' if 'reset' in actions else
                  'reboot' if 'reboot' in actions else None)
        if action is None or not work.device.get('instance_id'):
            return 'no VM to reboot, or its driver cannot reboot'
        if work.poll(ctx).state == 'gone':
            return 'the VM is gone'
        try:
            work.call('action', ctx, work.device, action, {})
        except exceptions.Interrupted:
            raise
        except Exception as e:
            return 'the %s failed: %s' % (action, e)
        spec = monitor.spec_of(work.template)
        deadline = time.monotonic() + work.conf.conductor.heal_reboot_timeout
        detail = None
        while True:
            result = work.poll(ctx)
            if result.state == 'active':
                device = dict(work.device, mgmt_address=result.mgmt_address
                              or work.device.get('mgmt_address'))
                alive, _, detail = (monitor.probe(work.conf, device, spec)
                                    if spec else (True, None, None))
                if alive:
                    WaitActive._found(work, result)
                    return None
            elif result.state == 'gone':
                return 'the VM is gone'
            # (A VM in error stays so a while after its reboot starts.)
            if time.monotonic() > deadline:
                return 'not back within %d s: VM %s%s' % (
                    work.conf.conductor.heal_reboot_timeout, result.state,
                    '; ' + (detail or result.error or '')
                    if detail or result.error else '')
            work.driver.sleep(ctx, work.conf.conductor.poll_interval)

    def check(self, ctx, work):
        return getattr(work, 'reboot_tried', False) or \
            healed_by_reboot(work)


class RanThisRun(Step):
    """A step whose effect cannot be seen from here: done when this run
    did it (a resumed one runs again, so it must be harmless to repeat)."""

    def done(self, work):
        work.scripts_ran.add(self.name)

    def check(self, ctx, work):
        return self.name in work.scripts_ran


class ConfigureServices(RanThisRun):
    """Bind service instances to the device, take them off it, or apply
    theirs again (``params``: ``services``, ``change`` bind, unbind or
    reapply): the device's
    management driver applies (removes) each one's ``kwargs.config``.
    The template's CONFIGURE scripts run after it."""
    name = 'configure_services'

    def _apply(self, ctx, work, push):
        mgmt = work.mgmt()
        lines = []
        for service in work.changing_services():
            config = (service.get('kwargs') or {}).get('config')
            method = mgmt.push_config if push else mgmt.remove_config
            output = method(ctx, work.device, config)
            lines.append('%s %s%s' % (
                'configured' if push else 'removed', service['id'],
                ': %s' % output if output else ''))
        return '; '.join(lines) or 'no service instance to configure'

    def run(self, ctx, work):
        # bind and reapply apply the configuration; unbind removes it.
        output = self._apply(ctx, work, work.service_change() != 'unbind')
        sync_config(ctx, work)
        self.done(work)
        return output

    def rollback(self, ctx, work):
        # Undo: remove what a bind applied, put back what an unbind took
        # (applying a configuration again is not undone).
        change = work.service_change()
        if change == 'reapply':
            return 'nothing to undo (the configuration was applied again)'
        return self._apply(ctx, work, change == 'unbind')


class RunScript(RanThisRun):
    """One lifecycle script of the device's template, run on the device
    by the template's management driver; named ``script.<EVENT>.<name>``.
    The script is read from the template when the step runs, so a retry
    after the template was fixed (PATCH) runs the fixed script."""

    def __init__(self, event, script_name):
        self.event = event
        self.script_name = script_name
        self.name = script_step(event, script_name)

    def _script(self, work):
        events = work.template.get('lifecycle_events') or {}
        for script in events.get(self.event) or ():
            if script['name'] == self.script_name:
                return script['script']
        raise StepError(reason='the template no longer has a %s script '
                               'named %r' % (self.event, self.script_name))

    def run(self, ctx, work):
        device = work.device
        skip = scale_skips(ctx, work, self.event) or (
            'the reboot healed the device' if self.event == 'INSTANTIATE'
            and healed_by_reboot(work) else None)
        if skip:
            self.done(work)
            return 'skipped: ' + skip
        if not device.get('mgmt_address'):
            if self.event == 'TERMINATE':
                # Nothing to reach (its create never got that far): the
                # delete goes on.
                self.done(work)
                return 'skipped: the device has no management address'
            raise StepError(reason='the device has no management address '
                                   'to run its %s script %r on' % (
                                       self.event, self.script_name))
        script = self._script(work)
        code, out, err = work.mgmt().run_script(
            ctx, device, script, scriptenv.script_env(work, self.event,
                                                      ctx))
        summary = 'exit %s; stdout: %s; stderr: %s' % (
            code, _tail(out), _tail(err))
        if code != 0:
            raise StepError(reason='%s script %r failed: %s' % (
                self.event, self.script_name, summary))
        sync_config(ctx, work)
        self.done(work)
        return summary

    def rollback(self, ctx, work):
        return 'nothing to undo (a script is not reverted)'


SCRIPT_OUTPUT = 1500


def scale_skips(ctx, work, event):
    """Why a SCALE_IN or SCALE_OUT script of a scale action does not
    run (the group does not shrink, or did not grow), or None."""
    if event not in ('SCALE_IN', 'SCALE_OUT'):
        return None
    params = work.operation.params or {}
    target = (params.get('params') or {}).get('count')
    if event == 'SCALE_IN':
        # Before the action: the group as it is now.
        members = work.poll(ctx).details.get('instance_ids')
        if members is None or target is None or target >= len(members):
            return 'the group does not shrink (%s -> %s members)' % (
                'unknown' if members is None else len(members), target)
        return None
    before = params.get('members_before')
    if before is None or target is None or target <= before:
        return 'the group did not grow (%s -> %s members)' % (
            'unknown' if before is None else before, target)
    return None


def sync_config(ctx, work):
    """Keep on the device record its configuration as the device now
    reports it (NETCONF get-config; drivers that cannot read it give
    None)."""
    config = work.mgmt().get_config(ctx, work.device)
    if config is not None:
        work.note(mgmt_config=work.scrub(config))


def _tail(text):
    text = (text or '').strip()
    return text if len(text) <= SCRIPT_OUTPUT else '...' + text[
        -SCRIPT_OUTPUT:]


def script_step(event, script_name):
    return 'script.%s.%s' % (event, script_name)


# Each plan: its steps in order, and the lifecycle events whose scripts
# (the template's) run at that point.
PLANS = {
    ('device', 'create'): (CreateVM(), WaitActive(), 'INSTANTIATE',
                           'START'),
    ('device', 'update'): (UpdateVM(),),
    ('device', 'delete'): ('TERMINATE', DeleteVM(), WaitGone()),
    ('device', 'action'): (RunAction(), WaitAction()),
    ('device', 'configure'): (ConfigureServices(), 'CONFIGURE'),
    # Respawn a dead device: what is left of its VM goes, a new one comes
    # (same device), and its scripts run again.
    ('device', 'heal'): (DeleteVM(), WaitGone(), CreateVM(), WaitActive(),
                         'INSTANTIATE', 'START', 'HEAL'),
}
ACTION_PLANS = {'shutdown': ('STOP', RunAction(), WaitAction()),
                'start': (RunAction(), WaitAction(), 'START'),
                'scale': ('SCALE_IN', RunAction(), WaitAction(),
                          'SCALE_OUT')}
STEPS = {s.name: s for plan in PLANS.values() for s in plan
         if isinstance(s, Step)}
STEPS[RebootVM.name] = RebootVM()


def plan_for(operation, template=None):
    """The (name, depends_on, reversible) steps of ``operation``, in a
    chain: its kind's, with the template's lifecycle scripts where their
    events fall. A create for a service instance (a device it owns), or a
    restart of a device with services, configures them at the end."""
    params = operation.params or {}
    sequence = PLANS[(operation.resource_type, operation.kind)]
    if operation.kind == 'action':
        sequence = ACTION_PLANS.get(params.get('action'), sequence)
    if operation.kind == 'heal' and params.get('policy') == 'heal':
        sequence = (RebootVM(),) + sequence
    if operation.kind in ('create', 'action', 'heal') and params.get(
            'services'):
        # A device made for a service, or restarted with services bound:
        # their configuration, at the end.
        sequence += PLANS[('device', 'configure')]
    events = (template or {}).get('lifecycle_events') or {}
    plan, last = [], None
    for item in sequence:
        if isinstance(item, Step):
            entries = [(item.name, item.reversible)]
        else:
            entries = [(script_step(item, s['name']), True)
                       for s in events.get(item) or ()]
        for name, reversible in entries:
            plan.append((name, (last,) if last else (), reversible))
            last = name
    return plan


def step_for(row):
    """The step a recorded step row stands for."""
    if row.name.startswith('script.'):
        _, event, script_name = row.name.split('.', 2)
        return RunScript(event, script_name)
    return STEPS[row.name]
