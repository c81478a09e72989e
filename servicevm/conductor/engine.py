"""Runs operations: the plans of unit steps of lifecycle requests.

A conductor runs an operation only while it holds the operation's lease.
Every step's start and end is committed, with an event of the resource,
before the next step begins, so the record always says how far an
operation got, and a conductor that takes over an operation whose holder
died resumes it at its unfinished step, checking first whether that step
had in fact finished.

Forward (PROCESSING): run the steps whose dependencies are complete. A
failed step stops the operation in FAILED_TEMP (the device in ERROR, still
held by the operation) or, with ``on_failure: rollback``, rolls it back.
Backward (ROLLING_BACK): undo, in reverse order, every step that may have
changed something; the operation ends ROLLED_BACK, or CANCELLED after a
cancel.
"""

import concurrent.futures
import threading
import time

from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import timeutils
from sqlalchemy import exc as sa_exc

from servicevm.common import context as svm_context
from servicevm.common import exceptions
from servicevm.common import keystone
from servicevm.common import notify
from servicevm.common import states
from servicevm.conductor import rpcapi
from servicevm.conductor import steps as plan_steps
from servicevm.conductor.work import Handle
from servicevm.conductor.work import Work
from servicevm.db import api as db_api
from servicevm.drivers import loader

LOG = logging.getLogger(__name__)

MAX_OUTPUT = 4096

OK, FAILED, STOPPED = 'ok', 'failed', 'stopped'
# Operations whose failure needs a person (an alarm).
ALARM_KINDS = ('delete', 'heal')

# The database failed, not the step (a connection dropped or refused): the
# run stops with the step left as it is, and resumes (checking the step
# first) once the database answers; the lease is still this conductor's.
DB_TROUBLE = (db_exc.DBConnectionError, db_exc.DBDeadlock,
              sa_exc.OperationalError, sa_exc.InterfaceError)


class OperationRunner:

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host
        self.dbapi = db_api.get_instance()
        self.active = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(conf.conductor.workers)
        self._driver_slots = {}
        # Template dicts by (id, updated_at).
        self._templates = {}
        self.stopping = False
        self._rpcapi = None

    @property
    def publisher(self):
        return 'servicevm-conductor:%s' % self.host

    def _announce(self, ctx, operation, device_values, state, outcome,
                  notices):
        """Notifications of an operation that came to rest."""
        device = None
        if operation.resource_type == 'device':
            device = dict(device_values or {}, id=operation.resource_id,
                          project_id=operation.project_id)
        notify.operation_ended(self.conf, ctx, self.publisher, operation,
                               device, state, outcome, notices)

    def raise_alarm(self, ctx, operation, event_type, message,
                    record=True):
        """An alarm: an event with result ``alarm`` (unless recorded
        already) and its notification."""
        event = self._event(operation, event_type, 'alarm', message)
        if record:
            self.dbapi.event_create(ctx, **event)
        notify.notify(self.conf, ctx, self.publisher, 'alarm.raise',
                      'alarm', event, error=True)

    @property
    def rpcapi(self):
        if self._rpcapi is None:
            self._rpcapi = rpcapi.ConductorAPI(self.conf)
        return self._rpcapi

    @property
    def lease_seconds(self):
        return self.conf.conductor.takeover_time * 5 / 6

    def driver_slots(self, name):
        with self._lock:
            if name not in self._driver_slots:
                self._driver_slots[name] = threading.BoundedSemaphore(
                    self.conf.conductor.max_parallel_driver_calls)
            return self._driver_slots[name]

    # ---- entry -------------------------------------------------------

    def shutdown(self):
        """Stop every run now: each leaves its step as it is (whoever
        takes the operation up checks that step first) and gives up its
        lease, so that another conductor takes it at once."""
        with self._lock:
            self.stopping = True
            handles = list(self.active.values())
        for handle in handles:
            handle.stop('the conductor is stopping')

    def run(self, context, operation_id, reclaim_own=False):
        """Run an operation if its lease can be had; returns when it
        rests (completed, failed, paused...) or this conductor lost it."""
        handle = Handle(operation_id)
        with self._lock:
            if operation_id in self.active:
                # Its run may be letting go just now (a resume or retry
                # right after it paused or failed): it looks once more.
                self.active[operation_id].again = True
                return
            self.active[operation_id] = handle
        try:
            with self._slots:
                ctx = svm_context.get_admin_context()
                ctx.request_id = getattr(context, 'request_id', None)
                while not self.stopping:
                    loaded = self.dbapi.operation_claim_load(
                        ctx, operation_id, self.host, self.lease_seconds,
                        reclaim_own=reclaim_own, plan=self._plan,
                        known_templates=self._templates,
                        start_event=self._start_event)
                    if loaded is not None:
                        LOG.debug('Conductor %s runs operation %s',
                                  self.host, operation_id)
                        self._drive(ctx, handle, loaded)
                    with self._lock:
                        if not handle.again:
                            self.active.pop(operation_id, None)
                            return
                        handle.again = False
        except Exception:
            # The lease runs out and another run takes the operation up.
            LOG.exception('Operation %s stopped unexpectedly', operation_id)
        finally:
            with self._lock:
                if self.active.get(operation_id) is handle:
                    self.active.pop(operation_id)

    def _plan(self, operation, template, key):
        """The steps of an operation that has none yet: its kind's, and
        the scripts its template's lifecycle events add."""
        if key is not None:
            template = self._template(template, key)
        return plan_steps.plan_for(operation, template)

    def _template(self, template, key):
        """The template as a dict, from the cache when its (id,
        updated_at) key is known: a template changes rarely, and its
        drivers and attributes never after creation."""
        with self._lock:
            if template is None and key in self._templates:
                return self._templates[key]
        if template is None:
            # Dropped from the cache meanwhile.
            template = self.dbapi.template_get(
                svm_context.get_admin_context(), key[0])
        with self._lock:
            if len(self._templates) > 1000:
                self._templates.clear()
            self._templates[key] = template = template.as_dict(
                reveal=True)
            return template

    def _drive(self, ctx, handle, loaded):
        while True:
            operation, device, template, key = loaded
            if device is not None:
                template = self._template(template, key)
            loaded = None
            if operation.lease_owner != self.host:
                return
            handle.mode = operation.state
            handle.interrupt.clear()
            if self.stopping:
                # (Checked after the clear: shutdown sets it first.)
                self.dbapi.operation_release(ctx, operation.id, self.host)
                LOG.info('Operation %s left to another conductor: this one '
                         'stops', operation.id)
                return
            ctx.interrupt = handle.interrupt
            ctx.interrupt_reason = 'the operation was stopped'
            ctx.operation_id = operation.id
            if operation.state == states.OP_PROCESSING:
                ended = self._forward(ctx, handle, operation, device,
                                      template)
            elif operation.state == states.OP_ROLLING_BACK:
                ended = self._backward(ctx, handle, operation, device,
                                       template)
            else:
                self.dbapi.operation_release(ctx, operation.id, self.host)
                LOG.info('Operation %s is %s; conductor %s leaves it',
                         operation.id, operation.state, self.host)
                return
            if ended:
                # The operation rests and the lease is given up: no need
                # to read it again.
                return
            loaded = self.dbapi.operation_load(
                ctx, handle.operation_id, plan=self._plan,
                known_templates=self._templates)

    # ---- loading -----------------------------------------------------

    def _work(self, ctx, operation, device, template):
        if device is None:
            raise exceptions.DeviceNotFound(id=operation.resource_id)
        trust_id = device.trust_id
        device = device.as_dict(reveal=True)
        device['trust_id'] = trust_id
        device['template'] = template
        driver = loader.get_device_driver(self.conf,
                                          template['device_driver'])
        return Work(self, ctx, operation, device, template, driver)

    def _acquire(self, ctx, handle, work):
        """A forced delete waits for the operation it cancelled to let go
        of the device."""
        operation = work.operation
        deadline = time.monotonic() + self.conf.conductor.device_timeout
        while not self.dbapi.device_acquire(ctx, work.device['id'],
                                            operation):
            holder = self.dbapi.device_get(ctx, work.device['id'])
            holder = (holder.operation_id and
                      self.dbapi.operation_get(ctx, holder.operation_id))
            if holder and holder.state not in (
                    states.OPERATION_RUNNING_STATES) and (
                    # It may have let go just after our first try.
                    not self.dbapi.device_acquire(ctx, work.device['id'],
                                                  operation)):
                # Its rollback stopped (FAILED_TEMP): no use waiting.
                raise plan_steps.StepError(
                    reason='device %s is held by operation %s, which is '
                           '%s' % (work.device['id'], holder.id,
                                   holder.state))
            if time.monotonic() > deadline:
                raise plan_steps.StepError(
                    reason='device %s is still held by operation %s'
                           % (work.device['id'], work.device['operation_id']))
            work.driver.sleep(ctx, self.conf.conductor.poll_interval)
        work.device.update(self.dbapi.device_get(
            ctx, work.device['id']).as_dict(reveal=True))

    # ---- forward -----------------------------------------------------

    def _forward(self, ctx, handle, operation, device, template):
        """Run the operation's steps; returns True once it rests."""
        try:
            work = self._work(ctx, operation, device, template)
            if work.device['operation_id'] != operation.id:
                self._acquire(ctx, handle, work)
        except exceptions.Interrupted:
            return
        except DB_TROUBLE:
            raise
        except Exception as e:
            LOG.warning('Operation %s cannot start: %s', operation.id, e)
            return self._suspend(ctx, operation, None, e)
        try:
            return self._forward_steps(ctx, handle, operation, work)
        finally:
            work.close()

    def _forward_steps(self, ctx, handle, operation, work):
        pairs = [(row, plan_steps.step_for(row)) for row in operation.steps]
        # Ends of steps not recorded yet: they go with the next starts, or
        # with the operation's end.
        ends = []
        while True:
            done = {r.name for r, _ in pairs
                    if r.state == states.STEP_COMPLETED}
            todo = [(r, s) for r, s in pairs
                    if r.state != states.STEP_COMPLETED]
            if not todo:
                if work.final_values is None:
                    # Every step completed in an earlier run (paused,
                    # or taken over): their checks find what they found.
                    for _, step in pairs:
                        step.check(ctx, work)
                return self._complete(ctx, operation, work, ends)
            ready = [(r, s) for r, s in todo
                     if set(r.depends_on or ()) <= done]
            if not self._start(ctx, handle, operation, work, ready, ends):
                return
            results = self._run_ready(ctx, handle, operation, work, ready)
            ends = [r[2] for r in results if r[0] == OK]
            if any(r[0] == STOPPED for r in results):
                self._record_ends(ctx, operation, work, ends)
                return
            failed = [r for r in results if r[0] == FAILED]
            if failed:
                _, row, error = failed[0]
                message = str(error)[:MAX_OUTPUT]
                ends.append((row.id, {
                    'state': states.STEP_FAILED, 'error': message,
                    'finished_at': timeutils.utcnow()},
                    self._event(operation, self._prefix(operation, row) +
                                '.error', 'error', message)))
                if not self._record_ends(ctx, operation, work, ends):
                    return
                row.state = states.STEP_FAILED
                return self._on_failure(ctx, operation, row, error)

    @staticmethod
    def _prefix(operation, row):
        return '%s.%s.%s' % (operation.resource_type, operation.kind,
                             row.name)

    def _start_event(self, operation, name):
        return self._event(operation, '%s.%s.%s.start' % (
            operation.resource_type, operation.kind, name))

    def _start(self, ctx, handle, operation, work, ready, ends):
        """Record the start of the ready steps, with the ends of those
        before; False when they must not run (the operation was stopped,
        or is no longer this conductor's)."""
        if handle.interrupt.is_set():
            self._record_ends(ctx, operation, work, ends)
            return False
        starts = []
        for row, _ in ready:
            row.resumed = (row.state == states.STEP_RUNNING and
                           not getattr(row, 'fresh', False))
            if getattr(row, 'fresh', False):
                # Recorded as started when the operation was loaded.
                row.fresh = False
                continue
            starts.append((row.id, {
                'state': states.STEP_RUNNING, 'attempts': row.attempts + 1,
                'started_at': timeutils.utcnow(), 'error': None},
                self._start_event(operation, row.name)))
        if starts or ends:
            if not self.dbapi.operation_transition(
                    ctx, operation, self.host, states.OP_PROCESSING,
                    ends=ends, starts=starts,
                    device_values=work.take_notes()):
                return False
        for row, _ in ready:
            if row.state != states.STEP_RUNNING:
                row.attempts += 1
                row.state = states.STEP_RUNNING
        return True

    def _record_ends(self, ctx, operation, work, ends):
        if not ends and not work.notes:
            return True
        return self.dbapi.operation_transition(
            ctx, operation, self.host, ends=ends,
            device_values=work.take_notes())

    def _run_ready(self, ctx, handle, operation, work, ready):
        if len(ready) == 1:
            return [self._run_step(ctx, handle, operation, work, *ready[0])]
        with concurrent.futures.ThreadPoolExecutor(len(ready)) as pool:
            futures = [pool.submit(self._run_step, ctx, handle, operation,
                                   work, row, step) for row, step in ready]
            return [f.result() for f in futures]

    def _event(self, operation, event_type, result='ok', message=None):
        return {'resource_type': operation.resource_type,
                'resource_id': operation.resource_id,
                'project_id': operation.project_id,
                'operation_id': operation.id, 'event_type': event_type,
                'result': result, 'message': message,
                'details': {'conductor': self.host}}

    def _run_step(self, ctx, handle, operation, work, row, step):
        """Run a started step; returns (OK, row, its end to record),
        (FAILED, row, error) or (STOPPED, row, None)."""
        if row.attempts == 1 and not row.resumed:
            work.first_tries.add(row.name)
        try:
            if step.respawn_only and plan_steps.healed_by_reboot(work):
                output = 'skipped: the reboot healed the device'
            elif row.resumed and step.check(ctx, work):
                output = 'already done (found on resuming)'
            else:
                step.precondition(ctx, work)
                output = step.run(ctx, work)
                if not step.check(ctx, work):
                    raise plan_steps.StepError(
                        reason='the step ran but its success check fails')
        except exceptions.Interrupted as e:
            LOG.info('Step %s of operation %s interrupted: %s', row.name,
                     operation.id, e)
            return STOPPED, row, None
        except DB_TROUBLE:
            raise
        except Exception as e:
            # What a device or script said back may hold a secret.
            text = work.scrub(str(e))
            if text != str(e):
                e = plan_steps.StepError(reason=text)
            LOG.warning('Step %s of operation %s failed: %s', row.name,
                        operation.id, e)
            return FAILED, row, e
        row.state = states.STEP_COMPLETED
        output = work.scrub(output)
        return OK, row, (row.id, {
            'state': states.STEP_COMPLETED,
            'output': (output or '')[:MAX_OUTPUT],
            'finished_at': timeutils.utcnow()},
            self._event(operation, self._prefix(operation, row) + '.end',
                        message=output))

    def _on_failure(self, ctx, operation, row, error):
        message = 'step %s failed: %s' % (row.name, error)
        if operation.on_failure == 'rollback':
            if self.dbapi.operation_update(
                    ctx, operation.id,
                    {'state': states.OP_ROLLING_BACK,
                     'error': message[:MAX_OUTPUT]},
                    expected_state=states.OP_PROCESSING):
                self.dbapi.event_create(ctx, **self._event(
                    operation, 'operation.rollback', 'error',
                    'rolling back: ' + message))
                notify.operation_state(self.conf, ctx, self.publisher,
                                       operation, states.OP_ROLLING_BACK,
                                       error=message)
            return False
        return self._suspend(ctx, operation, row, error)

    def _suspend(self, ctx, operation, row, error):
        """FAILED_TEMP: the device is in ERROR and still held, waiting
        for the user to retry, roll back or fail the operation."""
        where = ' at step %s' % row.name if row is not None else ''
        message = '%s failed%s: %s' % (operation.kind, where, error)
        advice = ('; retry, roll back or fail operation %s' % operation.id)
        notices = []
        ended = self.dbapi.operation_finish(
            ctx, operation, self.host,
            {'status': states.ERROR,
             'status_reason': (message + advice)[:MAX_OUTPUT]},
            {'state': states.OP_FAILED_TEMP, 'error': message[:MAX_OUTPUT]},
            # A delete that fails leaves a VM someone must look at; a
            # heal that fails, a dead device.
            self._event(operation, '%s.%s.error' % (
                operation.resource_type, operation.kind),
                'alarm' if operation.kind in ALARM_KINDS else 'error',
                message),
            release_device=False,
            # Not over a cancel or rollback the user asked for meanwhile.
            expected_states=(operation.state, states.OP_PAUSED),
            outcome='failed_temp', notices=notices)
        if ended:
            self._announce(ctx, operation, {
                'status': states.ERROR, 'status_reason': message},
                states.OP_FAILED_TEMP, 'error', notices)
            if operation.kind in ALARM_KINDS:
                # (Its event, an alarm, is recorded with the failure.)
                self.raise_alarm(ctx, operation, '%s.%s.error' % (
                    operation.resource_type, operation.kind), message,
                    record=False)
        return ended

    def _complete(self, ctx, operation, work, ends):
        success, _ = states.DEVICE_RESOLUTION[
            states.KIND_PENDING[operation.kind]]
        follow_ups, notices = [], []
        device_values = (None if success is None else
                         dict(work.take_notes(), **(work.final_values or {}),
                              status=success, status_reason=None))
        ended = self.dbapi.operation_finish(
            ctx, operation, self.host, device_values,
            {'state': states.OP_COMPLETED, 'error': None,
             'finished_at': timeutils.utcnow()},
            self._event(operation, '%s.%s.end' % (operation.resource_type,
                                                  operation.kind)),
            # Paused, cancelled or rolled back while the last step ran:
            # the user's action wins.
            expected_states=(states.OP_PROCESSING,), ends=ends,
            outcome='completed', follow_ups=follow_ups, notices=notices)
        if ended and device_values is None:
            keystone.release_trust(self.conf, ctx, self.dbapi,
                                   work.device.get('trust_id'))
        if ended:
            LOG.info('Operation %s (%s of %s %s) completed', operation.id,
                     operation.kind, operation.resource_type,
                     operation.resource_id)
            self._announce(ctx, operation, dict(
                work.device, **(device_values or {'status': 'DELETED'})),
                states.OP_COMPLETED, 'end', notices)
        for operation_id in follow_ups:
            # (Deleting a device its service owned.) Lost, the recovery
            # scan finds it.
            self.rpcapi.run_operation(ctx, operation_id)
        return ended

    # ---- backward ----------------------------------------------------

    def _backward(self, ctx, handle, operation, device, template):
        """Undo the operation's steps; returns True once it rests."""
        try:
            work = self._work(ctx, operation, device, template)
        except DB_TROUBLE:
            raise
        except Exception as e:
            return self._suspend(ctx, operation, None, e)
        for row in sorted(operation.steps, key=lambda r: -r.seq):
            if row.state not in states.STEP_UNDO_STATES:
                continue
            step = plan_steps.step_for(row)
            if row.state == states.STEP_COMPLETED and not step.reversible:
                return self._suspend(ctx, operation, row, plan_steps.StepError(
                    reason='it cannot be undone, so the operation cannot '
                           'be rolled back'))
            prefix = '%s.%s.%s.rollback' % (operation.resource_type,
                                            operation.kind, row.name)
            if not self.dbapi.operation_transition(
                    ctx, operation, self.host, states.OP_ROLLING_BACK,
                    starts=[(row.id, {'state': states.STEP_ROLLING_BACK},
                             self._event(operation, prefix + '.start'))]):
                return
            try:
                output = step.rollback(ctx, work)
            except exceptions.Interrupted:
                return
            except DB_TROUBLE:
                raise
            except Exception as e:
                LOG.warning('Rollback of step %s of operation %s failed: %s',
                            row.name, operation.id, e)
                message = ('rollback failed: %s' % e)[:MAX_OUTPUT]
                if self.dbapi.operation_transition(
                        ctx, operation, self.host, ends=[(
                            row.id, {'state': states.STEP_FAILED,
                                     'error': message},
                            self._event(operation, prefix + '.error',
                                        'error', message))]):
                    return self._suspend(ctx, operation, row, message)
                return False
            if not self.dbapi.operation_transition(
                    ctx, operation, self.host, ends=[(
                        row.id, {'state': states.STEP_ROLLED_BACK,
                                 'output': output[:MAX_OUTPUT]},
                        self._event(operation, prefix + '.end',
                                    message=output))]):
                return
        return self._rolled_back(ctx, operation)

    def _rolled_back(self, ctx, operation):
        final = (states.OP_CANCELLED if operation.cancelled
                 else states.OP_ROLLED_BACK)
        notices = []
        if operation.kind == 'create':
            device_values = {
                'status': states.ERROR, 'instance_id': None,
                'mgmt_address': None, 'ready': False,
                'power_state': states.POWER_UNKNOWN,
                'status_reason': 'create %s: nothing was left in the VIM; '
                                 'delete the device' % final.lower()}
        else:
            device_values = {'status': operation.previous_status or
                             states.ACTIVE, 'status_reason': None}
        ended = self.dbapi.operation_finish(
            ctx, operation, self.host, device_values,
            {'state': final, 'finished_at': timeutils.utcnow()},
            self._event(operation, '%s.%s.%s' % (
                operation.resource_type, operation.kind, final.lower())),
            outcome='rolled_back', notices=notices)
        if ended:
            self._announce(ctx, operation, device_values, final, 'error',
                           notices)
            LOG.info('Operation %s (%s of %s %s) %s', operation.id,
                     operation.kind, operation.resource_type,
                     operation.resource_id, final)
        return ended
