"""SQLAlchemy implementation of the database interface."""

from oslo_db import exception as db_exc
from oslo_utils import timeutils
from oslo_utils import uuidutils
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import attributes as orm_attributes

from servicevm.common import exceptions
from servicevm.common import secrets
from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import health
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import operations
from servicevm.db.sqlalchemy import services
from servicevm.db.sqlalchemy import utils as du
from servicevm.db.sqlalchemy import views


def _template_for_device():
    """The on_failure attribute (NULL if none) of a template of a
    project; no row when the project has no such template."""
    template = models.DeviceTemplate.__table__
    attr = models.DeviceTemplateAttribute.__table__
    return sa.select(attr.c.value).select_from(template.outerjoin(
        attr, sa.and_(attr.c.template_id == template.c.id,
                      attr.c.key == 'on_failure'))).where(
        template.c.id == sa.bindparam('template_id'),
        template.c.project_id == sa.bindparam('project_id'))


# Built once (a device create runs it each time).
_TEMPLATE_FOR_DEVICE = _template_for_device()


class Connection(services.ServiceInstanceQueries,
                 operations.OperationQueries, health.HealthQueries):
    """Every query servicevm makes. Methods return detached ORM objects
    whose relationships are loaded."""

    # ---- device templates ------------------------------------------------

    def _template_query(self, context, session, template_id):
        query = du.scope(session.query(models.DeviceTemplate),
                         models.DeviceTemplate, context, listing=False)
        row = query.filter(models.DeviceTemplate.id == template_id).first()
        if row is None:
            raise exceptions.DeviceTemplateNotFound(id=template_id)
        return row

    def template_create(self, context, values):
        values = dict(values)
        attributes = values.pop('attributes', None) or {}
        service_types = values.pop('service_types', None) or []
        project_id = values['project_id']
        template = models.DeviceTemplate(
            id=values.pop('id', None) or uuidutils.generate_uuid(), **values)
        template.attributes = du.kv_rows(models.DeviceTemplateAttribute,
                                         project_id, attributes)
        template.service_types = [
            models.ServiceType(project_id=project_id, service_type=t)
            for t in service_types]
        with ef.writer.using(context) as session:
            session.add(template)
        return template

    def template_get(self, context, template_id):
        with ef.reader.using(context) as session:
            return self._template_query(context, session, template_id)

    def template_list(self, context, filters=None, limit=None, marker=None,
                      sort_key='created_at', sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = du.scope(session.query(models.DeviceTemplate),
                             models.DeviceTemplate, context, listing=True)
            query = du.apply_filters(query, models.DeviceTemplate, filters)
            return du.paginate(query, models.DeviceTemplate, limit, marker,
                               sort_key, sort_dir, 'device template')

    def template_update(self, context, template_id, values):
        with ef.writer.using(context) as session:
            template = self._template_query(context, session, template_id)
            for key, value in values.items():
                setattr(template, key, value)
            template.updated_at = timeutils.utcnow()
        return template

    def template_destroy(self, context, template_id):
        with ef.writer.using(context) as session:
            template = self._template_query(context, session, template_id)
            users = session.query(models.Device.id).filter(
                models.Device.template_id == template_id)
            count = users.count()
            if count:
                raise exceptions.TemplateInUse(
                    id=template_id, count=count, example=users.first()[0],
                    field='template_id')
            try:
                session.delete(template)
                session.flush()
            except db_exc.DBReferenceError:
                raise exceptions.TemplateInUse(
                    id=template_id, count=1, example='(just created)',
                    field='template_id')

    # ---- devices ---------------------------------------------------------

    def _device_query(self, context, session, device_id, lock=False,
                      joined=False):
        query = du.scope(session.query(models.Device), models.Device,
                         context, listing=False)
        query = query.filter(models.Device.id == device_id)
        if lock:
            query = query.with_for_update()
        elif joined:
            # Its collections in the same query (each selectin load is a
            # round trip of its own).
            query = query.options(
                orm.joinedload(models.Device.kwargs),
                orm.joinedload(models.Device.service_contexts),
                orm.joinedload(models.Device.bindings))
        row = query.first()
        if row is None:
            raise exceptions.DeviceNotFound(id=device_id)
        return row

    def device_trust_for(self, context, user_id, project_id):
        """The trust of a live device of ``user_id`` in ``project_id``
        (one trust serves all of a user's devices in a project), or
        None."""
        Device = models.Device
        with ef.reader.using(context) as session:
            row = session.query(Device.trust_id).filter(
                Device.user_id == user_id, Device.project_id == project_id,
                Device.trust_id.isnot(None),
                Device.status != states.PENDING_DELETE).first()
            return row[0] if row else None

    def trust_in_use(self, context, trust_id):
        """Whether a device still holds ``trust_id``."""
        with ef.reader.using(context) as session:
            return session.query(models.Device.id).filter(
                models.Device.trust_id == trust_id).first() is not None

    def device_create(self, context, values, on_failure=None):
        """Create a device in PENDING_CREATE, held by its create
        operation, in one transaction; returns (device, operation)."""
        with ef.writer.using(context) as session:
            device, operation = self._create_device(context, session,
                                                    values, on_failure)
            # A new device has no bindings; say so without a query.
            orm_attributes.set_committed_value(device, 'bindings', [])
        return device, operation

    def _create_device(self, context, session, values, on_failure=None,
                       params=None, field='device.template_id'):
        values = dict(values)
        kwargs = values.pop('kwargs', None) or {}
        contexts = values.pop('service_contexts', None) or []
        project_id = values['project_id']
        device_id = values.pop('id', None) or uuidutils.generate_uuid()
        # The template must be the device's project's (not just one an
        # admin can see), and so the caller's unless an admin's.
        template = None
        if project_id == context.project_id or not du.scoped(
                context, listing=False):
            template = session.connection().execute(
                _TEMPLATE_FOR_DEVICE, {'template_id': values['template_id'],
                                       'project_id': project_id}).first()
        if template is None:
            raise exceptions.InvalidParameter(
                reason='Device template %s could not be found in '
                       'project %s.' % (values['template_id'], project_id),
                field=field)
        if template.value in states.ON_FAILURE_POLICIES:
            on_failure = on_failure or template.value
        operation = du.operation(
            context, 'device', device_id, project_id, 'create',
            params=params, on_failure=on_failure)
        device = models.Device(id=device_id, status=states.PENDING_CREATE,
                               operation_id=operation.id, **values)
        device.kwargs = du.kv_rows(models.DeviceArg, project_id, kwargs)
        device.service_contexts = du.context_rows(
            models.DeviceServiceContext, project_id, contexts)
        session.add_all([
            device, operation,
            du.event(context, 'device', device_id, project_id,
                     'device.create.requested', operation_id=operation.id)])
        return device, operation

    def device_get(self, context, device_id):
        with ef.reader.using(context) as session:
            return self._device_query(context, session, device_id,
                                      joined=True)

    def device_show(self, context, device_id, wanted=None):
        """The API's view of a device (a dict, see views.py); its
        collections only when ``wanted`` (field names, None: all) asks
        for them."""
        # A Core connection: no ORM session to set up for a read of rows.
        with ef.reader.connection.using(context) as connection:
            view = views.device_one(connection, context, device_id, wanted)
        if view is None:
            raise exceptions.DeviceNotFound(id=device_id)
        return view

    def device_list(self, context, filters=None, limit=None, marker=None,
                    sort_key='created_at', sort_dir='asc', wanted=None):
        """A page of devices, as the API shows them (dicts)."""
        with ef.reader.connection.using(context) as connection:
            return views.device_page(connection, context, filters, limit,
                                     marker, sort_key, sort_dir, wanted)

    def device_update(self, context, device_id, values):
        """Change a device's descriptive fields (no operation needed)."""
        with ef.writer.using(context) as session:
            device = self._device_query(context, session, device_id)
            for key, value in values.items():
                setattr(device, key, value)
            device.updated_at = timeutils.utcnow()
            session.add(du.event(context, 'device', device_id,
                                 device.project_id, 'device.update',
                                 details={'fields': sorted(values)}))
        return device

    def device_start_operation(self, context, device_id, kind, params=None,
                               on_failure=None, force=False):
        """Start operation ``kind`` on a device, in one transaction: a
        compare-and-swap takes the device (no other operation may hold it)
        and moves its status to the pending state of ``kind``.

        With ``force`` (delete only), an operation holding the device is
        cancelled instead of refused, and the delete takes the device once
        that operation has rolled back. Returns (device, operation, id of
        the cancelled operation or None).
        """
        with ef.writer.using(context) as session:
            device = self._device_query(context, session, device_id)
            if kind == 'delete':
                bound = [b.service_instance_id for b in device.bindings]
                if bound:
                    raise exceptions.DeviceInUse(
                        id=device_id, services=', '.join(bound))
            operation, cancelled = self._start_operation(
                context, session, device, kind, params, on_failure, force)
            session.flush()
            session.refresh(device)
        return device, operation, cancelled

    def _start_operation(self, context, session, device, kind, params=None,
                         on_failure=None, force=False):
        """Start operation ``kind`` on ``device`` in ``session`` (see
        device_start_operation); returns (operation, cancelled id)."""
        allowed, pending = states.DEVICE_ACTIONS[kind]
        now = timeutils.utcnow()
        device_id = device.id
        operation = du.operation(
            context, 'device', device_id, device.project_id, kind,
            params=params, on_failure=on_failure or
            self._template_on_failure(session, device.template_id))
        operation.previous_status = device.status
        cancelled = None
        if device.operation_id and force:
            cancelled = self._cancel_holder(context, session, device)
        else:
            self._take_device(session, device, operation, allowed,
                              pending, kind, now)
        if kind == 'update' and params and 'kwargs' in params:
            # The old kwargs are kept for a rollback.
            # (Secrets stay sealed in both.)
            operation.params = dict(params, kwargs={
                k: secrets.seal(v, key=k)
                for k, v in params['kwargs'].items()}, old_kwargs={
                a.key: a.value for a in device.kwargs})
            # Delete the old rows before inserting the new: a key
            # kept would break the unique (device_id, key).
            device.kwargs = []
            session.flush()
            device.kwargs = du.kv_rows(models.DeviceArg,
                                       device.project_id,
                                       params['kwargs'])
        session.add_all([
            operation,
            du.event(context, 'device', device_id, device.project_id,
                     'device.%s.requested' % kind,
                     operation_id=operation.id,
                     details={'cancelled': cancelled}
                     if cancelled else None)])
        return operation, cancelled

    @staticmethod
    def _template_on_failure(session, template_id):
        """The failure policy a template sets (attribute on_failure)."""
        row = session.query(models.DeviceTemplateAttribute.value).filter(
            models.DeviceTemplateAttribute.template_id == template_id,
            models.DeviceTemplateAttribute.key == 'on_failure').first()
        if row is not None and row[0] in states.ON_FAILURE_POLICIES:
            return row[0]
        return None

    @staticmethod
    def _take_device(session, device, operation, allowed, pending, kind,
                     now):
        changed = session.query(models.Device).filter(
            models.Device.id == device.id,
            models.Device.operation_id.is_(None),
            models.Device.status.in_(allowed)).update(
            {'status': pending, 'status_reason': None,
             'operation_id': operation.id, 'updated_at': now},
            synchronize_session=False)
        if changed:
            return
        if device.operation_id:
            holder = session.get(models.Operation, device.operation_id)
            raise exceptions.DeviceBusy(
                id=device.id, operation_id=device.operation_id,
                kind=holder.kind if holder else '?', field=None)
        raise exceptions.InvalidState(
            resource='Device', id=device.id, current=device.status,
            action=kind, allowed=', '.join(allowed))

    @staticmethod
    def _cancel_holder(context, session, device):
        """Cancel (and so roll back) the operation holding ``device``."""
        holder = session.query(models.Operation).filter(
            models.Operation.id == device.operation_id).first()
        if holder is None or holder.state not in dict(
                states.OPERATION_ACTIONS)['cancel'][0]:
            return None
        # As a cancel would be: 409 when a step cannot be undone.
        operations.OperationQueries._check_reversible(holder)
        session.query(models.Operation).filter(
            models.Operation.id == holder.id,
            models.Operation.state == holder.state).update(
            {'state': states.OP_ROLLING_BACK, 'cancelled': True,
             'updated_at': timeutils.utcnow()},
            synchronize_session=False)
        session.add(du.event(context, 'device', device.id,
                             device.project_id, 'operation.cancel',
                             operation_id=holder.id,
                             message='cancelled by a forced delete'))
        return holder.id

    def device_acquire(self, context, device_id, operation):
        """Let ``operation`` (a forced delete) take a device nobody holds
        any more; returns whether it holds it now."""
        allowed, pending = states.DEVICE_ACTIONS[operation.kind]
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            device = session.query(models.Device).filter(
                models.Device.id == device_id).first()
            if device is None or device.operation_id == operation.id:
                return True
            if device.operation_id is not None:
                return False
            session.query(models.Operation).filter(
                models.Operation.id == operation.id).update(
                {'previous_status': device.status},
                synchronize_session=False)
            return bool(session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.operation_id.is_(None)).update(
                {'status': pending, 'status_reason': None,
                 'operation_id': operation.id, 'updated_at': now},
                synchronize_session=False))

    def device_update_held(self, context, device_id, operation_id, values,
                           host):
        """Update fields of a device held by ``operation_id`` (the
        conductor recording what a step did), while ``host`` holds the
        operation's lease."""
        values = dict(values, updated_at=timeutils.utcnow())
        with ef.writer.using(context) as session:
            return bool(session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.operation_id == operation_id,
                models.Device.operation_id.in_(sa.select(
                    models.Operation.id).where(
                    models.Operation.lease_owner == host))).update(
                values, synchronize_session=False))

    def secrets_reseal(self, context):
        """Re-seal every sealed value with the first key; returns how
        many rows changed."""
        count = 0
        with ef.writer.using(context) as session:
            for model in (models.DeviceTemplateAttribute, models.DeviceArg,
                          models.ServiceInstanceArg):
                for row in session.query(model).all():
                    value = secrets.reseal(row.value)
                    if value != row.value:
                        row.value = value
                        count += 1
            for op in session.query(models.Operation).filter(
                    models.Operation.params.isnot(None)).all():
                value = secrets.reseal(op.params)
                if value != op.params:
                    op.params = value
                    count += 1
        return count

    def device_set_kwargs(self, context, device_id, kwargs):
        with ef.writer.using(context) as session:
            device = session.query(models.Device).filter(
                models.Device.id == device_id).first()
            if device is not None:
                device.kwargs = []
                session.flush()
                device.kwargs = du.kv_rows(models.DeviceArg,
                                           device.project_id, kwargs)
