"""SQLAlchemy implementation of the database interface."""

from oslo_db import exception as db_exc
from oslo_utils import timeutils
from oslo_utils import uuidutils
import sqlalchemy as sa
from sqlalchemy.orm import attributes as orm_attributes

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models

_CONTEXT_FIELDS = ('network_id', 'subnet_id', 'port_id', 'router_id', 'role',
                   'index')


def _scope(query, model, context, listing):
    """Limit ``query`` to what ``context`` may see.

    Reading one row by id, an admin sees every project; listing, only with
    ``all_projects``. Everyone else sees their own project only.
    """
    if listing:
        unscoped = context.all_projects
    else:
        unscoped = context.is_admin_role
    if not unscoped:
        query = query.filter(model.project_id == context.project_id)
    return query


def _paginate(query, model, limit, marker, sort_key, sort_dir,
              not_found_marker):
    key_col = getattr(model, sort_key)
    if sort_key == 'updated_at':
        # A row never updated has no updated_at: it was last updated when
        # it was created (NULL would break the order and the marker).
        key_col = sa.func.coalesce(model.updated_at, model.created_at)
    ascending = sort_dir == 'asc'
    if marker is not None:
        row = query.filter(model.id == marker).first()
        if row is None:
            raise exceptions.InvalidParameter(
                reason='The marker %s is not a %s this request can see; '
                       'use the id of the last item of the previous page.'
                       % (marker, not_found_marker), field='marker')
        value = getattr(row, sort_key)
        if sort_key == 'updated_at' and value is None:
            value = row.created_at
        if sort_key == 'id':
            query = query.filter(
                model.id > marker if ascending else model.id < marker)
        else:
            after = key_col > value if ascending else key_col < value
            tie = sa.and_(key_col == value,
                          model.id > marker if ascending else
                          model.id < marker)
            query = query.filter(sa.or_(after, tie))
    direction = sa.asc if ascending else sa.desc
    order = [direction(key_col)]
    if sort_key != 'id':
        order.append(direction(model.id))
    return query.order_by(*order).limit(limit).all()


def _apply_filters(query, model, filters):
    for key, value in (filters or {}).items():
        if value is None:
            continue
        column = getattr(model, key)
        if isinstance(value, (list, tuple)):
            query = query.filter(column.in_(value))
        else:
            query = query.filter(column == value)
    return query


def _kv_rows(model, project_id, pairs, **parent):
    return [model(project_id=project_id, key=k, value=v, **parent)
            for k, v in (pairs or {}).items()]


def _context_rows(model, project_id, contexts, **parent):
    return [model(project_id=project_id,
                  **{f: c.get(f) for f in _CONTEXT_FIELDS}, **parent)
            for c in (contexts or ())]


def _event(context, resource_type, resource_id, project_id, event_type,
           result='ok', message=None, details=None, operation_id=None):
    return models.Event(
        project_id=project_id, resource_type=resource_type,
        resource_id=resource_id, event_type=event_type, result=result,
        message=message, details=details, operation_id=operation_id,
        user_id=getattr(context, 'user_id', None),
        request_id=getattr(context, 'request_id', None))


def _operation(context, resource_type, resource_id, project_id, kind,
               params=None, on_failure=None):
    return models.Operation(
        id=uuidutils.generate_uuid(), project_id=project_id,
        user_id=context.user_id, request_id=context.request_id,
        resource_type=resource_type, resource_id=resource_id, kind=kind,
        state=states.OP_PROCESSING, params=params,
        on_failure=on_failure or 'fail_temp')


class Connection:
    """Every query servicevm makes. Methods return detached ORM objects
    whose relationships are loaded."""

    # ---- device templates ------------------------------------------------

    def _template_query(self, context, session, template_id):
        query = _scope(session.query(models.DeviceTemplate),
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
        template.attributes = _kv_rows(models.DeviceTemplateAttribute,
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
            query = _scope(session.query(models.DeviceTemplate),
                           models.DeviceTemplate, context, listing=True)
            query = _apply_filters(query, models.DeviceTemplate, filters)
            return _paginate(query, models.DeviceTemplate, limit, marker,
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

    def _device_query(self, context, session, device_id, lock=False):
        query = _scope(session.query(models.Device), models.Device,
                       context, listing=False)
        query = query.filter(models.Device.id == device_id)
        if lock:
            query = query.with_for_update()
        row = query.first()
        if row is None:
            raise exceptions.DeviceNotFound(id=device_id)
        return row

    def device_create(self, context, values, on_failure=None):
        """Create a device in PENDING_CREATE and its create operation in
        one transaction; returns (device, operation)."""
        values = dict(values)
        kwargs = values.pop('kwargs', None) or {}
        contexts = values.pop('service_contexts', None) or []
        project_id = values['project_id']
        device_id = values.pop('id', None) or uuidutils.generate_uuid()
        with ef.writer.using(context) as session:
            # The template must be the device's project's (not just one
            # an admin can see).
            template = _scope(
                session.query(models.DeviceTemplate.project_id),
                models.DeviceTemplate, context, listing=False).filter(
                models.DeviceTemplate.id == values['template_id'],
                models.DeviceTemplate.project_id == project_id).first()
            if template is None:
                raise exceptions.InvalidParameter(
                    reason='Device template %s could not be found in '
                           'project %s.' % (values['template_id'],
                                            project_id),
                    field='device.template_id')
            device = models.Device(id=device_id,
                                   status=states.PENDING_CREATE, **values)
            device.kwargs = _kv_rows(models.DeviceArg, project_id, kwargs)
            device.service_contexts = _context_rows(
                models.DeviceServiceContext, project_id, contexts)
            # A new device has no bindings; say so without a query.
            orm_attributes.set_committed_value(device, 'bindings', [])
            operation = _operation(context, 'device', device_id, project_id,
                                   'create', on_failure=on_failure)
            session.add_all([
                device, operation,
                _event(context, 'device', device_id, project_id,
                       'device.create.requested',
                       operation_id=operation.id)])
        return device, operation

    def device_get(self, context, device_id):
        with ef.reader.using(context) as session:
            return self._device_query(context, session, device_id)

    def device_list(self, context, filters=None, limit=None, marker=None,
                    sort_key='created_at', sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = _scope(session.query(models.Device), models.Device,
                           context, listing=True)
            query = _apply_filters(query, models.Device, filters)
            return _paginate(query, models.Device, limit, marker, sort_key,
                             sort_dir, 'device')

    def device_update(self, context, device_id, values):
        """Change a device's descriptive fields (no operation needed)."""
        with ef.writer.using(context) as session:
            device = self._device_query(context, session, device_id)
            for key, value in values.items():
                setattr(device, key, value)
            device.updated_at = timeutils.utcnow()
            session.add(_event(context, 'device', device_id,
                               device.project_id, 'device.update',
                               details={'fields': sorted(values)}))
        return device

    def device_start_operation(self, context, device_id, kind, params=None,
                               on_failure=None):
        """Move a device to the pending state of ``kind`` (a compare-and-
        swap on its status) and record the operation, in one transaction;
        returns (device, operation)."""
        allowed, pending = states.DEVICE_ACTIONS[kind]
        with ef.writer.using(context) as session:
            device = self._device_query(context, session, device_id)
            if kind == 'delete':
                bound = [b.service_instance_id for b in device.bindings]
                if bound:
                    raise exceptions.DeviceInUse(
                        id=device_id, services=', '.join(bound))
            busy = session.query(models.Operation).filter(
                models.Operation.resource_id == device_id,
                models.Operation.state.notin_(
                    states.OPERATION_FINAL_STATES)).first()
            if busy is not None:
                raise exceptions.DeviceBusy(id=device_id,
                                            operation_id=busy.id,
                                            kind=busy.kind)
            changed = session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.status.in_(allowed)).update(
                {'status': pending, 'status_reason': None,
                 'updated_at': timeutils.utcnow()},
                synchronize_session=False)
            if not changed:
                raise exceptions.InvalidState(
                    resource='Device', id=device_id, current=device.status,
                    action=kind, allowed=', '.join(allowed))
            if kind == 'update' and params and 'kwargs' in params:
                device.kwargs = _kv_rows(models.DeviceArg, device.project_id,
                                         params['kwargs'])
            operation = _operation(context, 'device', device_id,
                                   device.project_id, kind, params=params,
                                   on_failure=on_failure)
            session.add_all([
                operation,
                _event(context, 'device', device_id, device.project_id,
                       'device.%s.requested' % kind,
                       operation_id=operation.id)])
            session.flush()
            session.refresh(device)
        return device, operation

    def device_set_status(self, context, device_id, expected, values):
        """Compare-and-swap: apply ``values`` only while the device's status
        is ``expected``; returns whether it did."""
        values = dict(values, updated_at=timeutils.utcnow())
        with ef.writer.using(context) as session:
            changed = session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.status == expected).update(
                values, synchronize_session=False)
        return bool(changed)

    def operation_finish(self, context, operation_id, device_id, expected,
                         device_values, operation_values, event):
        """End an operation in one transaction: the device leaves its
        pending state ``expected`` (``device_values`` None removes it),
        the operation takes ``operation_values``, and ``event`` (keyword
        arguments of an event) is recorded. A client that sees the
        device's new status therefore also sees the operation ended."""
        now = timeutils.utcnow()
        with ef.writer.using(context) as session:
            query = session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.status == expected)
            if device_values is None:
                device = query.first()
                if device is not None:
                    session.delete(device)
            else:
                query.update(dict(device_values, updated_at=now),
                             synchronize_session=False)
            session.query(models.Operation).filter(
                models.Operation.id == operation_id).update(
                dict(operation_values, updated_at=now),
                synchronize_session=False)
            session.add(_event(context, **event))

    # ---- service instances ----------------------------------------------

    def _service_query(self, context, session, service_id):
        query = _scope(session.query(models.ServiceInstance),
                       models.ServiceInstance, context, listing=False)
        row = query.filter(models.ServiceInstance.id == service_id).first()
        if row is None:
            raise exceptions.ServiceInstanceNotFound(id=service_id)
        return row

    def _check_bindable(self, session, project_id, service_type,
                        device_ids):
        for device_id in device_ids:
            device = session.query(models.Device).filter(
                models.Device.id == device_id,
                models.Device.project_id == project_id).first()
            if device is None:
                raise exceptions.InvalidParameter(
                    reason='Device %s could not be found in project %s.'
                           % (device_id, project_id),
                    field='service_instance.devices')
            if device.status in (states.PENDING_DELETE, states.ERROR,
                                 states.DEAD):
                raise exceptions.Conflict(
                    reason='device %s is %s and cannot host a service.'
                           % (device_id, device.status),
                    field='service_instance.devices')
            offered = session.query(models.ServiceType.service_type).filter(
                models.ServiceType.template_id == device.template_id).all()
            offered = sorted(r[0] for r in offered)
            if service_type not in offered:
                raise exceptions.Conflict(
                    reason='device %s offers service types %s, not %r.'
                           % (device_id, offered or 'none', service_type),
                    field='service_instance.service_type')

    def service_instance_create(self, context, values):
        values = dict(values)
        kwargs = values.pop('kwargs', None) or {}
        contexts = values.pop('service_contexts', None) or []
        device_ids = values.pop('devices', None) or []
        project_id = values['project_id']
        service_id = values.pop('id', None) or uuidutils.generate_uuid()
        with ef.writer.using(context) as session:
            self._check_bindable(session, project_id, values['service_type'],
                                 device_ids)
            service = models.ServiceInstance(id=service_id,
                                             status=states.ACTIVE, **values)
            service.kwargs = _kv_rows(models.ServiceInstanceArg, project_id,
                                      kwargs)
            service.service_contexts = _context_rows(
                models.ServiceContext, project_id, contexts)
            service.bindings = [
                models.ServiceDeviceBinding(project_id=project_id,
                                            device_id=d, position=i)
                for i, d in enumerate(device_ids)]
            session.add(service)
            session.add(_event(context, 'service_instance', service_id,
                               project_id, 'service_instance.create',
                               details={'devices': device_ids}))
            for device_id in device_ids:
                session.add(_event(context, 'device', device_id, project_id,
                                   'device.service.bind',
                                   details={'service_instance': service_id}))
        return service

    def service_instance_get(self, context, service_id):
        with ef.reader.using(context) as session:
            return self._service_query(context, session, service_id)

    def service_instance_list(self, context, filters=None, limit=None,
                              marker=None, sort_key='created_at',
                              sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = _scope(session.query(models.ServiceInstance),
                           models.ServiceInstance, context, listing=True)
            device_id = (filters or {}).pop('device_id', None)
            if device_id:
                query = query.join(models.ServiceDeviceBinding).filter(
                    models.ServiceDeviceBinding.device_id == device_id)
            query = _apply_filters(query, models.ServiceInstance, filters)
            return _paginate(query, models.ServiceInstance, limit, marker,
                             sort_key, sort_dir, 'service instance')

    def service_instance_update(self, context, service_id, values):
        values = dict(values)
        with ef.writer.using(context) as session:
            service = self._service_query(context, session, service_id)
            if 'kwargs' in values:
                service.kwargs = _kv_rows(models.ServiceInstanceArg,
                                          service.project_id,
                                          values.pop('kwargs') or {})
            for key, value in values.items():
                setattr(service, key, value)
            service.updated_at = timeutils.utcnow()
            session.add(_event(context, 'service_instance', service_id,
                               service.project_id, 'service_instance.update'))
            session.flush()
            session.refresh(service)
        return service

    def service_instance_destroy(self, context, service_id):
        with ef.writer.using(context) as session:
            service = self._service_query(context, session, service_id)
            for binding in service.bindings:
                session.add(_event(context, 'device', binding.device_id,
                                   service.project_id,
                                   'device.service.unbind',
                                   details={'service_instance': service_id}))
            session.add(_event(context, 'service_instance', service_id,
                               service.project_id, 'service_instance.delete'))
            session.delete(service)

    # ---- operations, steps, events --------------------------------------

    def operation_get(self, context, operation_id):
        with ef.reader.using(context) as session:
            row = _scope(session.query(models.Operation), models.Operation,
                         context, listing=False).filter(
                models.Operation.id == operation_id).first()
            if row is None:
                raise exceptions.OperationNotFound(id=operation_id)
            return row

    def operation_list(self, context, filters=None, limit=None, marker=None,
                       sort_key='created_at', sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = _scope(session.query(models.Operation), models.Operation,
                           context, listing=True)
            query = _apply_filters(query, models.Operation, filters)
            return _paginate(query, models.Operation, limit, marker,
                             sort_key, sort_dir, 'operation')

    def operation_update(self, context, operation_id, values,
                         expected_state=None):
        values = dict(values, updated_at=timeutils.utcnow())
        with ef.writer.using(context) as session:
            query = session.query(models.Operation).filter(
                models.Operation.id == operation_id)
            if expected_state is not None:
                query = query.filter(
                    models.Operation.state == expected_state)
            return bool(query.update(values, synchronize_session=False))

    def step_create(self, context, operation, seq, name, depends_on=None):
        with ef.writer.using(context) as session:
            step = models.OperationStep(
                project_id=operation.project_id, operation_id=operation.id,
                seq=seq, name=name, state=states.STEP_PENDING,
                depends_on=depends_on or [], attempts=0)
            session.add(step)
        return step

    def step_update(self, context, step_id, values, event=None):
        """Update a step and, in the same transaction, record ``event``
        (a dict of _event's keyword arguments)."""
        values = dict(values, updated_at=timeutils.utcnow())
        with ef.writer.using(context) as session:
            session.query(models.OperationStep).filter(
                models.OperationStep.id == step_id).update(
                values, synchronize_session=False)
            if event:
                session.add(_event(context, **event))

    def event_create(self, context, **kwargs):
        with ef.writer.using(context) as session:
            session.add(_event(context, **kwargs))

    def event_list(self, context, resource_id, limit=None, marker=None,
                   sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = session.query(models.Event).filter(
                models.Event.resource_id == resource_id)
            query = _scope(query, models.Event, context, listing=False)
            return _paginate(query, models.Event, limit, marker, 'id',
                             sort_dir, 'event')
