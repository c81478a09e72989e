"""Queries of operations, their steps, and events.

A conductor works on an operation only while it holds its lease
(``lease_owner``, ``lease_expires_at``), taken and renewed with
compare-and-swap updates; a device is held by at most one operation
(``devices.operation_id``), taken the same way.
"""

import datetime

from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy import orm

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import utils as du

Op = models.Operation


def _later(seconds):
    return timeutils.utcnow() + datetime.timedelta(seconds=seconds)


class OperationQueries:

    # ---- reading -------------------------------------------------------

    def operation_get(self, context, operation_id):
        with ef.reader.using(context) as session:
            row = du.scope(session.query(Op), Op, context,
                           listing=False).filter(Op.id == operation_id).first()
            if row is None:
                raise exceptions.OperationNotFound(id=operation_id)
            return row

    def operation_list(self, context, filters=None, limit=None, marker=None,
                       sort_key='created_at', sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = du.scope(session.query(Op), Op, context, listing=True)
            query = du.apply_filters(query, Op, filters)
            return du.paginate(query, Op, limit, marker, sort_key, sort_dir,
                               'operation')

    def operation_load(self, context, operation_id, plan=None,
                       known_templates=()):
        """An operation with its steps, the device it works on (without
        its bindings) and the device's template, in one transaction.

        ``plan(operation, template, key)`` gives the (name, depends_on,
        reversible) steps recorded for a runnable operation that has none
        yet (``template``: the template model, None when its key is
        known). The template is only read when its (id, updated_at) key is
        not in ``known_templates``. Returns (operation, device or None,
        template or None, template key or None).
        """
        with ef.writer.using(context) as session:
            return self._load(session, context, operation_id, plan,
                              known_templates, None)

    def operation_claim_load(self, context, operation_id, host,
                             lease_seconds, reclaim_own=False, plan=None,
                             known_templates=(), start_event=None):
        """Take the lease of a runnable operation if nobody holds it (or
        its holder's lease expired; with ``reclaim_own``, also if ``host``
        holds it from an earlier life) and load it as operation_load
        does, in one transaction; None when the lease could not be had.

        With ``start_event(operation, step_name)`` (the event of a step's
        start), the steps planned now that depend on nothing are recorded
        as started when the operation already holds its device; they are
        marked ``fresh`` (not resumed) on the returned rows."""
        with ef.writer.using(context) as session:
            if not self._claim(session, operation_id, host, lease_seconds,
                               reclaim_own):
                return None
            return self._load(session, context, operation_id, plan,
                              known_templates, start_event)

    @staticmethod
    def _load(session, context, operation_id, plan, known_templates,
              start_event):
        operation = session.query(Op).options(orm.joinedload(
            Op.steps)).filter(Op.id == operation_id).first()
        if operation is None:
            raise exceptions.OperationNotFound(id=operation_id)
        device = template = key = None
        if operation.resource_type == 'device':
            # The device, its kwargs and contexts, and its template's
            # version, in one query.
            found = session.query(
                models.Device, models.DeviceTemplate.updated_at).outerjoin(
                models.DeviceTemplate, models.DeviceTemplate.id ==
                models.Device.template_id).options(
                orm.noload(models.Device.bindings),
                orm.joinedload(models.Device.kwargs),
                orm.joinedload(models.Device.service_contexts)).filter(
                models.Device.id == operation.resource_id).first()
            if found is not None:
                device, updated_at = found
                key = (device.template_id, updated_at)
                if key not in known_templates:
                    template = session.get(models.DeviceTemplate,
                                           device.template_id)
        if (plan is not None and not operation.steps and
                operation.state == states.OP_PROCESSING):
            start = (start_event is not None and device is not None and
                     device.operation_id == operation.id)
            now = timeutils.utcnow()
            rows = []
            for seq, (name, depends_on, reversible) in enumerate(
                    plan(operation, template, key)):
                row = models.OperationStep(
                    project_id=operation.project_id, seq=seq, name=name,
                    state=states.STEP_PENDING, depends_on=list(depends_on),
                    reversible=reversible, attempts=0)
                if start and not depends_on:
                    row.state = states.STEP_RUNNING
                    row.attempts = 1
                    row.started_at = now
                    session.add(du.event(context,
                                         **start_event(operation, name)))
                rows.append(row)
            operation.steps = rows
            session.flush()
            for row in rows:
                row.fresh = row.state == states.STEP_RUNNING
        return operation, device, template, key

    def operation_states(self, context, operation_ids):
        """{id: (state, lease_owner)} of the given operations."""
        if not operation_ids:
            return {}
        with ef.reader.using(context) as session:
            rows = session.query(Op.id, Op.state, Op.lease_owner).filter(
                Op.id.in_(list(operation_ids))).all()
        return {r.id: (r.state, r.lease_owner) for r in rows}

    # ---- leases --------------------------------------------------------

    @staticmethod
    def _claim(session, operation_id, host, lease_seconds, reclaim_own):
        now = timeutils.utcnow()
        free = [Op.lease_owner.is_(None), Op.lease_expires_at < now]
        if reclaim_own:
            free.append(Op.lease_owner == host)
        return bool(session.query(Op).filter(
            Op.id == operation_id,
            Op.state.in_(states.OPERATION_RUNNING_STATES),
            sa.or_(*free)).update(
            {'lease_owner': host,
             'lease_expires_at': _later(lease_seconds),
             'started_at': sa.func.coalesce(Op.started_at, now),
             'updated_at': now}, synchronize_session=False))

    def operation_renew_leases(self, context, host, operation_ids,
                               lease_seconds):
        """Extend ``host``'s leases; returns the ids it still holds."""
        if not operation_ids:
            return set()
        ids = list(operation_ids)
        with ef.writer.using(context) as session:
            session.query(Op).filter(
                Op.id.in_(ids), Op.lease_owner == host).update(
                {'lease_expires_at': _later(lease_seconds)},
                synchronize_session=False)
            rows = session.query(Op.id).filter(
                Op.id.in_(ids), Op.lease_owner == host).all()
        return {r.id for r in rows}

    def operation_find_orphans(self, context, host, unclaimed_for, limit):
        """Runnable operations nobody works on: their lease expired, or
        nobody claimed them for ``unclaimed_for`` seconds (a lost cast),
        or ``host`` holds them from an earlier life (the caller skips
        those it is running)."""
        now = timeutils.utcnow()
        before = now - datetime.timedelta(seconds=unclaimed_for)
        with ef.reader.using(context) as session:
            rows = session.query(Op.id).filter(
                Op.state.in_(states.OPERATION_RUNNING_STATES),
                sa.or_(Op.lease_expires_at < now,
                       Op.lease_owner == host,
                       sa.and_(Op.lease_owner.is_(None),
                               sa.func.coalesce(Op.updated_at,
                                                Op.created_at) < before))
            ).order_by(Op.created_at).limit(limit).all()
        return [r.id for r in rows]

    def operation_release(self, context, operation_id, host):
        with ef.writer.using(context) as session:
            session.query(Op).filter(
                Op.id == operation_id, Op.lease_owner == host).update(
                {'lease_owner': None, 'lease_expires_at': None},
                synchronize_session=False)

    # ---- steps -----------------------------------------------------------

    @staticmethod
    def _fence(session, operation_id, host, now, mode=None):
        """Whether ``host`` holds the operation (and it is in state
        ``mode``, if given); touches it if so."""
        query = session.query(Op).filter(Op.id == operation_id,
                                         Op.lease_owner == host)
        if mode is not None:
            query = query.filter(Op.state == mode)
        return bool(query.update({'updated_at': now},
                                 synchronize_session=False))

    def operation_transition(self, context, operation, host, mode=None,
                             ends=(), starts=(), device_values=None):
        """Record in one transaction steps that ended and steps that
        start, each a (step id, values, event) with the event given as
        keyword arguments, and ``device_values`` (what the ended steps
        found) on the device the operation holds.

        Only while ``host`` holds the operation's lease, and the starts
        only while the operation is in state ``mode``: when it left that
        state (a pause, a cancel) the ends are still recorded but nothing
        starts. Returns whether everything given was recorded."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            recorded = list(ends)
            complete = True
            if starts and self._fence(session, operation.id, host, now,
                                      mode):
                recorded += list(starts)
            else:
                complete = not starts
                if not (ends or device_values) or not self._fence(
                        session, operation.id, host, now):
                    return False
            events = self._record_steps(session, context, recorded, now)
            if device_values:
                self._settle_device(session, operation, device_values,
                                    False, now)
            session.add_all(events)
        return complete

    @staticmethod
    def _record_steps(session, context, steps, now):
        """Update the steps; returns their events, to be added last (an
        update flushes what was added before it: added together, the
        events go in one INSERT)."""
        for step_id, values, event in steps:
            session.query(models.OperationStep).filter(
                models.OperationStep.id == step_id).update(
                dict(values, updated_at=now), synchronize_session=False)
        return [du.event(context, **event) for _, _, event in steps if event]

    # ---- state changes -------------------------------------------------

    def operation_update(self, context, operation_id, values,
                         expected_state=None):
        values = dict(values, updated_at=timeutils.utcnow())
        with ef.writer.using(context) as session:
            query = session.query(Op).filter(Op.id == operation_id)
            if expected_state is not None:
                query = query.filter(Op.state == expected_state)
            return bool(query.update(values, synchronize_session=False))

    def operation_finish(self, context, operation, host, device_values,
                         operation_values, event, release_device=True,
                         expected_states=None, ends=(), outcome=None,
                         follow_ups=None, notices=None):
        """Move an operation to a resting state in one transaction: the
        steps that just ended are recorded (``ends``, as for
        operation_transition), the device it holds takes
        ``device_values`` (None removes the device) and is released
        (unless ``release_device`` is false), the operation takes
        ``operation_values`` and gives up its lease, and ``event`` is
        recorded. Only while ``host`` holds the lease (None: whoever
        holds it), and while it is in one of ``expected_states`` if given
        (a user's action since wins: then only ``ends`` are recorded);
        returns whether it did. ``outcome`` (completed, failed_temp,
        rolled_back) settles the service bindings the operation
        configured; ``follow_ups`` gets the ids of the operations that
        starts, to run once this is committed, and ``notices`` what
        became of those services (for notifications)."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            query = session.query(Op).filter(Op.id == operation.id)
            if host is not None:
                query = query.filter(Op.lease_owner == host)
            if expected_states is not None:
                query = query.filter(Op.state.in_(expected_states))
            changed = query.update(
                dict(operation_values, lease_owner=None,
                     lease_expires_at=None, updated_at=now),
                synchronize_session=False)
            if not changed:
                if ends and host is not None and self._fence(
                        session, operation.id, host, now):
                    session.add_all(self._record_steps(session, context,
                                                       ends, now))
                return False
            events = self._record_steps(session, context, ends, now)
            self._settle_device(session, operation, device_values,
                                release_device, now)
            session.add_all(events + [du.event(context, **event)])
            if outcome is not None:
                started = self._settle_services(
                    context, session, operation, outcome,
                    operation_values.get('error', operation.error) or (
                        'cancelled' if operation.cancelled else None),
                    notices)
                if follow_ups is not None:
                    follow_ups.extend(started)
        return True

    @staticmethod
    def _settle_device(session, operation, device_values, release, now):
        query = session.query(models.Device).filter(
            models.Device.id == operation.resource_id,
            models.Device.operation_id == operation.id)
        if device_values is None:
            device = query.first()
            if device is not None:
                session.delete(device)
            return
        values = dict(device_values, updated_at=now)
        if release:
            values['operation_id'] = None
        query.update(values, synchronize_session=False)

    def operation_action(self, context, operation_id, action, event):
        """Apply a user's action (pause, resume, retry, rollback, cancel,
        fail) to an operation with a compare-and-swap on its state;
        returns the updated operation."""
        allowed, target = states.OPERATION_ACTIONS[action]
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            operation = du.scope(session.query(Op), Op, context,
                                 listing=False).filter(
                Op.id == operation_id).first()
            if operation is None:
                raise exceptions.OperationNotFound(id=operation_id)
            if operation.state not in allowed:
                raise exceptions.InvalidState(
                    resource='Operation', id=operation_id,
                    current=operation.state, action=action,
                    allowed=', '.join(allowed))
            if action in ('rollback', 'cancel'):
                self._check_reversible(operation)
            values = {'state': target, 'updated_at': now}
            if action == 'cancel':
                values['cancelled'] = True
            if action == 'fail':
                values.update(finished_at=now, lease_owner=None,
                              lease_expires_at=None,
                              error=operation.error or 'failed by the user')
            changed = session.query(Op).filter(
                Op.id == operation_id, Op.state == operation.state).update(
                values, synchronize_session=False)
            if not changed:
                raise exceptions.Conflict(
                    reason='operation %s changed state meanwhile; read it '
                           'again.' % operation_id)
            pending = states.KIND_PENDING.get(operation.kind)
            if action == 'fail':
                self._settle_device(session, operation, {
                    'status': states.ERROR,
                    'status_reason': '%s failed: %s (operation %s)' % (
                        operation.kind, values['error'], operation.id)},
                    True, now)
                self._settle_services(context, session, operation, 'failed',
                                      values['error'])
            elif operation.state == states.OP_FAILED_TEMP and pending:
                # Work resumes: the device shows it again.
                self._settle_device(session, operation, {
                    'status': pending, 'status_reason': None}, False, now)
            session.add(du.event(context, **event))
            session.flush()
            session.refresh(operation)
            return operation

    @staticmethod
    def _check_reversible(operation):
        blocking = [s.name for s in operation.steps
                    if s.state == states.STEP_COMPLETED and not s.reversible]
        if blocking:
            raise exceptions.Conflict(
                reason='operation %s cannot be rolled back: step %s '
                       'cannot be undone. Retry it or fail it instead.'
                       % (operation.id, ', '.join(blocking)))

    # ---- events --------------------------------------------------------

    def event_create(self, context, **kwargs):
        with ef.writer.using(context) as session:
            session.add(du.event(context, **kwargs))

    def event_list(self, context, resource_id, limit=None, marker=None,
                   sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = session.query(models.Event).filter(
                models.Event.resource_id == resource_id)
            query = du.scope(query, models.Event, context, listing=False)
            return du.paginate(query, models.Event, limit, marker, 'id',
                               sort_dir, 'event')

    # ---- alarms ----------------------------------------------------------

    def alarm_list(self, context, filters=None, limit=None, marker=None,
                   sort_dir='asc'):
        """Events with result ``alarm``; filters: project_id,
        resource_id, event_type, acknowledged (bool)."""
        filters = dict(filters or {})
        acknowledged = filters.pop('acknowledged', None)
        with ef.reader.using(context) as session:
            query = du.scope(session.query(models.Event), models.Event,
                             context, listing=True).filter(
                models.Event.result == 'alarm')
            if acknowledged is not None:
                column = models.Event.acknowledged_at
                query = query.filter(column.isnot(None) if acknowledged
                                     else column.is_(None))
            query = du.apply_filters(query, models.Event, filters)
            return du.paginate(query, models.Event, limit, marker, 'id',
                               sort_dir, 'alarm')

    @staticmethod
    def _alarm(session, context, alarm_id):
        row = du.scope(session.query(models.Event), models.Event,
                       context, listing=False).filter(
            models.Event.id == alarm_id,
            models.Event.result == 'alarm').first()
        if row is None:
            raise exceptions.AlarmNotFound(id=alarm_id)
        return row

    def alarm_get(self, context, alarm_id):
        with ef.reader.using(context) as session:
            return self._alarm(session, context, alarm_id)

    def alarm_acknowledge(self, context, alarm_id):
        """Mark an alarm acknowledged by the caller (once: 409 after)."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            row = self._alarm(session, context, alarm_id)
            changed = session.query(models.Event).filter(
                models.Event.id == alarm_id,
                models.Event.acknowledged_at.is_(None)).update(
                {'acknowledged_at': now,
                 'acknowledged_by': context.user_id},
                synchronize_session=False)
            if not changed:
                raise exceptions.Conflict(
                    reason='alarm %s was acknowledged already, by %s at '
                           '%s.' % (alarm_id, row.acknowledged_by,
                                    row.acknowledged_at), field='action')
            session.flush()
            session.refresh(row)
            return row

    # ---- metrics -----------------------------------------------------------

    def metrics_snapshot(self, context):
        """Aggregates for the Prometheus metrics, every project."""
        Step = models.OperationStep
        with ef.reader.using(context) as session:
            def counts(*columns):
                return session.query(*columns, sa.func.count()).group_by(
                    *columns).all()
            steps = session.query(
                Step.name, Step.started_at, Step.finished_at).filter(
                Step.state == states.STEP_COMPLETED,
                Step.started_at.isnot(None),
                Step.finished_at.isnot(None)).all()
            durations = {}
            for name, started, finished in steps:
                if name.startswith('script.'):
                    name = name.rsplit('.', 1)[0]
                count, total = durations.get(name, (0, 0.0))
                durations[name] = (count + 1, total + max(
                    (finished - started).total_seconds(), 0.0))
            alarms = session.query(
                models.Event.acknowledged_at.isnot(None),
                sa.func.count()).filter(
                models.Event.result == 'alarm').group_by(
                models.Event.acknowledged_at.isnot(None)).all()
            return {
                'devices': dict(counts(models.Device.status)),
                'service_instances': dict(counts(
                    models.ServiceInstance.status)),
                'operations': {(k, st): n for k, st, n in counts(
                    Op.kind, Op.state)},
                'steps': durations,
                'alarms': {bool(a): n for a, n in alarms},
                'power': session.query(
                    models.Device.id, models.Device.project_id,
                    models.Device.power_state).order_by(
                    models.Device.id).all(),
                'usage': session.query(
                    models.Device.id, models.Device.project_id,
                    models.Device.usage).filter(
                    models.Device.usage.isnot(None)).order_by(
                    models.Device.id).all(),
                'vim_calls': session.query(
                    models.Conductor.host, models.Conductor.vim_calls).filter(
                    models.Conductor.vim_calls.isnot(None)).order_by(
                    models.Conductor.host).all(),
            }
