"""Runs operations: the plan of unit steps of each lifecycle request.

Each step's start and end is committed (with an event of the resource)
before the next step begins, so the record always says how far an
operation got. A failed step fails the operation and leaves the device in
ERROR with the reason, from where it can be deleted.
"""

import time

from oslo_log import log as logging
from oslo_utils import timeutils

from servicevm.common import context as svm_context
from servicevm.common import exceptions
from servicevm.common import states
from servicevm.db import api as db_api
from servicevm.drivers import loader

LOG = logging.getLogger(__name__)

MAX_OUTPUT = 4096


class OperationRunner:

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host
        self.dbapi = db_api.get_instance()

    # ---- plans -------------------------------------------------------

    def _plan(self, kind):
        return {
            'create': [('create_vm', self._create_vm),
                       ('wait_active', self._wait_active)],
            'update': [('update_vm', self._update_vm)],
            'delete': [('delete_vm', self._delete_vm),
                       ('wait_gone', self._wait_gone)],
        }[kind]

    def _create_vm(self, ctx, work):
        instance_id = work.driver.create(ctx, work.device)
        work.device['instance_id'] = instance_id
        self.dbapi.device_set_status(
            ctx, work.device['id'], work.pending,
            {'instance_id': instance_id})
        return 'instance %s' % instance_id

    def _poll_until(self, ctx, work, done):
        deadline = time.monotonic() + self.conf.conductor.device_timeout
        while True:
            result = work.driver.poll(ctx, [work.device])[work.device['id']]
            if done(result):
                return result
            if result.state == 'error':
                raise exceptions.DriverError(
                    driver=work.template['device_driver'], action='build',
                    reason=result.error or 'the VIM reports an error')
            if time.monotonic() > deadline:
                raise exceptions.DriverError(
                    driver=work.template['device_driver'], action='wait',
                    reason='no result after %d s (state %s)'
                           % (self.conf.conductor.device_timeout,
                              result.state))
            time.sleep(self.conf.conductor.poll_interval)

    def _wait_active(self, ctx, work):
        result = self._poll_until(ctx, work, lambda r: r.state == 'active')
        work.final_values = {'mgmt_address': result.mgmt_address,
                             'power_state': result.power_state,
                             'ready': True}
        return 'active at %s' % result.mgmt_address

    def _update_vm(self, ctx, work):
        work.driver.update(ctx, work.device)
        work.final_values = {}
        return 'updated'

    def _delete_vm(self, ctx, work):
        work.driver.delete(ctx, work.device)
        return 'delete requested'

    def _wait_gone(self, ctx, work):
        self._poll_until(ctx, work, lambda r: r.state == 'gone')
        return 'gone'

    # ---- running -----------------------------------------------------

    def run(self, context, operation_id):
        ctx = svm_context.get_admin_context()
        ctx.request_id = getattr(context, 'request_id', None)
        ctx.user_id = getattr(context, 'user_id', None)
        operation = self.dbapi.operation_get(ctx, operation_id)
        if operation.state != states.OP_PROCESSING or operation.lease_owner:
            LOG.info('Operation %s is %s (owner %s); not running it.',
                     operation_id, operation.state, operation.lease_owner)
            return
        claimed = self.dbapi.operation_update(
            ctx, operation_id,
            {'lease_owner': self.host, 'started_at': timeutils.utcnow()},
            expected_state=states.OP_PROCESSING)
        if not claimed:
            return
        work = _Work()
        try:
            device = self.dbapi.device_get(ctx, operation.resource_id)
            work.device = device.as_dict()
            work.pending = device.status
            work.template = self.dbapi.template_get(
                ctx, device.template_id).as_dict()
            work.device['template'] = work.template
            work.driver = loader.get_device_driver(
                self.conf, work.template['device_driver'])
        except Exception as e:
            LOG.exception('Operation %s cannot start', operation_id)
            self._finish(ctx, operation, work, error=e)
            return
        plan = self._plan(operation.kind)
        steps = list(operation.steps)
        for seq, (name, _func) in enumerate(plan):
            if seq >= len(steps):
                steps.append(self.dbapi.step_create(
                    ctx, operation, seq, name,
                    depends_on=[plan[seq - 1][0]] if seq else []))
        for step, (name, func) in zip(steps, plan):
            if step.state == states.STEP_COMPLETED:
                continue
            error = self._run_step(ctx, operation, step, func, work)
            if error is not None:
                self._finish(ctx, operation, work, error=error)
                return
        self._finish(ctx, operation, work)

    def _event(self, operation, event_type, result='ok', message=None):
        return {'resource_type': operation.resource_type,
                'resource_id': operation.resource_id,
                'project_id': operation.project_id,
                'operation_id': operation.id, 'event_type': event_type,
                'result': result, 'message': message,
                'details': {'conductor': self.host}}

    def _run_step(self, ctx, operation, step, func, work):
        prefix = 'device.%s.%s' % (operation.kind, step.name)
        self.dbapi.step_update(
            ctx, step.id,
            {'state': states.STEP_RUNNING, 'attempts': step.attempts + 1,
             'started_at': timeutils.utcnow(), 'error': None},
            event=self._event(operation, prefix + '.start'))
        try:
            output = func(ctx, work)
        except Exception as e:
            LOG.warning('Step %s of operation %s failed: %s', step.name,
                        operation.id, e)
            message = str(e)[:MAX_OUTPUT]
            self.dbapi.step_update(
                ctx, step.id,
                {'state': states.STEP_FAILED, 'error': message,
                 'finished_at': timeutils.utcnow()},
                event=self._event(operation, prefix + '.error', 'error',
                                  message))
            return e
        self.dbapi.step_update(
            ctx, step.id,
            {'state': states.STEP_COMPLETED,
             'output': (output or '')[:MAX_OUTPUT],
             'finished_at': timeutils.utcnow()},
            event=self._event(operation, prefix + '.end', message=output))
        return None

    def _finish(self, ctx, operation, work, error=None):
        success, failure = states.DEVICE_RESOLUTION.get(
            work.pending, (states.ACTIVE, states.ERROR))
        kind = operation.kind
        op_values = {'finished_at': timeutils.utcnow(), 'lease_owner': None}
        if error is None:
            device_values = (None if success is None else
                             dict(work.final_values or {}, status=success))
            op_values['state'] = states.OP_COMPLETED
            event = self._event(operation, 'device.%s.end' % kind)
            LOG.info('Operation %s (%s of device %s) completed',
                     operation.id, kind, operation.resource_id)
        else:
            reason = '%s failed: %s' % (kind, error)
            device_values = {'status': failure,
                             'status_reason': reason[:MAX_OUTPUT]}
            op_values.update(state=states.OP_FAILED,
                             error=str(error)[:MAX_OUTPUT])
            event = self._event(operation, 'device.%s.error' % kind,
                                'error', reason)
        self.dbapi.operation_finish(ctx, operation.id,
                                    operation.resource_id, work.pending,
                                    device_values, op_values, event)


class _Work:
    """What the steps of one run share."""
    device = None
    template = None
    driver = None
    pending = None
    final_values = None
