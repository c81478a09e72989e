"""Queries of service instances and their bindings to devices.

A service instance is bound to devices; each binding is configured by a
``configure`` operation of its device (the device's management driver and
its template's CONFIGURE scripts). Creating a service starts one per
device (``change: bind``); deleting one is staged: first a ``configure``
operation with ``change: unbind`` takes the service's configuration off
each device, then, as each of those ends, a device the service owns and
that no other service uses is deleted. How those operations end settles
the bindings and the service (``_settle_services``, in the transaction
that ends the operation).
"""

from oslo_utils import timeutils
from oslo_utils import uuidutils
import sqlalchemy as sa

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import utils as du

Binding = models.ServiceDeviceBinding
CAPACITY_ATTRIBUTE = 'max_service_instances'
FIELD = 'service_instance.devices'


class ServiceInstanceQueries:

    def _service_query(self, context, session, service_id):
        query = du.scope(session.query(models.ServiceInstance),
                         models.ServiceInstance, context, listing=False)
        row = query.filter(models.ServiceInstance.id == service_id).first()
        if row is None:
            raise exceptions.ServiceInstanceNotFound(id=service_id)
        return row

    # ---- where a service can go ----------------------------------------

    @staticmethod
    def _offers(session, template_id):
        return sorted(r[0] for r in session.query(
            models.ServiceType.service_type).filter(
            models.ServiceType.template_id == template_id))

    @staticmethod
    def _capacity(session, template_id):
        row = session.query(models.DeviceTemplateAttribute.value).filter(
            models.DeviceTemplateAttribute.template_id == template_id,
            models.DeviceTemplateAttribute.key == CAPACITY_ATTRIBUTE).first()
        value = row[0] if row else None
        return value if isinstance(value, int) and value > 0 else None

    @staticmethod
    def _bound_count(session, device_id):
        return session.query(sa.func.count()).select_from(Binding).filter(
            Binding.device_id == device_id).scalar()

    def _check_bindable(self, session, project_id, service_type, device):
        offered = self._offers(session, device.template_id)
        if service_type not in offered:
            raise exceptions.Conflict(
                reason='device %s offers service types %s, not %r.'
                       % (device.id, offered or 'none', service_type),
                field='service_instance.service_type')
        capacity = self._capacity(session, device.template_id)
        if capacity is not None and self._bound_count(
                session, device.id) >= capacity:
            raise exceptions.Conflict(
                reason='device %s already hosts %d service instance(s), '
                       'its template\'s %s.' % (
                           device.id, capacity, CAPACITY_ATTRIBUTE),
                field=FIELD)
        if device.operation_id:
            holder = session.get(models.Operation, device.operation_id)
            raise exceptions.DeviceBusy(
                id=device.id, operation_id=device.operation_id,
                kind=holder.kind if holder else '?', field=FIELD)
        if device.status != states.ACTIVE:
            raise exceptions.InvalidState(
                resource='Device', id=device.id, current=device.status,
                action='binding a service instance', allowed='ACTIVE',
                field=FIELD)

    def _schedule(self, session, project_id, service_type):
        """The least loaded ACTIVE, ready, idle device of the project
        whose template offers ``service_type`` and has room for one more
        service instance."""
        load = sa.select(sa.func.count()).where(
            Binding.device_id == models.Device.id).scalar_subquery()
        rows = session.query(models.Device, load).join(
            models.ServiceType,
            models.ServiceType.template_id == models.Device.template_id
        ).filter(models.Device.project_id == project_id,
                 models.Device.status == states.ACTIVE,
                 models.Device.ready.is_(True),
                 models.Device.operation_id.is_(None),
                 models.ServiceType.service_type == service_type).order_by(
            load, models.Device.created_at).all()
        capacities = {}
        for device, count in rows:
            if device.template_id not in capacities:
                capacities[device.template_id] = self._capacity(
                    session, device.template_id)
            capacity = capacities[device.template_id]
            if capacity is None or count < capacity:
                return device
        raise exceptions.Conflict(
            reason='no ACTIVE, ready device of project %s offers service '
                   'type %r with room for another service instance; name '
                   'devices, or a template_id to create one from.'
                   % (project_id, service_type), field=FIELD)

    # ---- create ----------------------------------------------------------

    def service_instance_create(self, context, values, device_values=None):
        """Create a service instance and start configuring it, in one
        transaction. It is bound to ``values['devices']`` if given (an
        empty list: to none), else to a new device made from
        ``device_values`` (which it owns) if given, else to the device
        the scheduler picks. Returns (service, [operation ids])."""
        values = dict(values)
        kwargs = values.pop('kwargs', None) or {}
        contexts = values.pop('service_contexts', None) or []
        device_ids = values.pop('devices', None)
        on_failure = values.pop('on_failure', None)
        project_id = values['project_id']
        service_id = values.pop('id', None) or uuidutils.generate_uuid()
        params = {'services': [service_id], 'change': 'bind'}
        with ef.writer.using(context) as session:
            service = models.ServiceInstance(id=service_id,
                                             status=states.PENDING_CREATE,
                                             **values)
            service.kwargs = du.kv_rows(models.ServiceInstanceArg, project_id,
                                        kwargs)
            service.service_contexts = du.context_rows(
                models.ServiceContext, project_id, contexts)
            operations, bindings = [], []
            if device_ids is None and device_values is not None:
                device, operation = self._create_device(
                    context, session, dict(device_values,
                                           project_id=project_id),
                    on_failure, params=params,
                    field='service_instance.template_id')
                self._check_offers(session, device.template_id,
                                   values['service_type'])
                bindings.append((device.id, True))
                operations.append(operation)
            else:
                if device_ids is None:
                    device_ids = [self._schedule(
                        session, project_id, values['service_type']).id]
                for device_id in device_ids:
                    device = self._bindable_device(session, project_id,
                                                   device_id)
                    self._check_bindable(session, project_id,
                                         values['service_type'], device)
                    operation, _ = self._start_operation(
                        context, session, device, 'configure', params,
                        on_failure)
                    bindings.append((device.id, False))
                    operations.append(operation)
            if not bindings:
                service.status = states.ACTIVE
            session.add(service)
            service.bindings = [
                Binding(project_id=project_id, device_id=d, position=i,
                        owner=owner, status=states.BINDING_PENDING)
                for i, (d, owner) in enumerate(bindings)]
            session.add(du.event(context, 'service_instance', service_id,
                                 project_id, 'service_instance.create',
                                 details={'devices': [d for d, _ in bindings],
                                          'operations': [o.id for o in
                                                         operations]}))
            session.flush()
        return service, [o.id for o in operations]

    def _check_offers(self, session, template_id, service_type):
        offered = self._offers(session, template_id)
        if service_type not in offered:
            raise exceptions.Conflict(
                reason='template %s offers service types %s, not %r.'
                       % (template_id, offered or 'none', service_type),
                field='service_instance.template_id')

    @staticmethod
    def _bindable_device(session, project_id, device_id):
        device = session.query(models.Device).filter(
            models.Device.id == device_id,
            models.Device.project_id == project_id).first()
        if device is None:
            raise exceptions.InvalidParameter(
                reason='Device %s could not be found in project %s.'
                       % (device_id, project_id), field=FIELD)
        return device

    # ---- read, update ----------------------------------------------------

    def device_services(self, context, device_id):
        """[(service instance dict with secrets revealed, binding
        status)] of every service instance bound to a device."""
        with ef.reader.using(context) as session:
            rows = session.query(models.ServiceInstance, Binding.status).join(
                Binding).filter(Binding.device_id == device_id).order_by(
                models.ServiceInstance.created_at).all()
            return [(service.as_dict(reveal=True), status)
                    for service, status in rows]

    def service_instance_get(self, context, service_id):
        with ef.reader.using(context) as session:
            return self._service_query(context, session, service_id)

    def service_instance_list(self, context, filters=None, limit=None,
                              marker=None, sort_key='created_at',
                              sort_dir='asc'):
        with ef.reader.using(context) as session:
            query = du.scope(session.query(models.ServiceInstance),
                             models.ServiceInstance, context, listing=True)
            device_id = (filters or {}).pop('device_id', None)
            if device_id:
                query = query.join(Binding).filter(
                    Binding.device_id == device_id)
            query = du.apply_filters(query, models.ServiceInstance, filters)
            return du.paginate(query, models.ServiceInstance, limit, marker,
                               sort_key, sort_dir, 'service instance')

    def service_instance_update(self, context, service_id, values):
        values = dict(values)
        with ef.writer.using(context) as session:
            service = self._service_query(context, session, service_id)
            if 'kwargs' in values:
                service.kwargs = du.kv_rows(models.ServiceInstanceArg,
                                            service.project_id,
                                            values.pop('kwargs') or {})
            for key, value in values.items():
                setattr(service, key, value)
            service.updated_at = timeutils.utcnow()
            session.add(du.event(context, 'service_instance', service_id,
                                 service.project_id,
                                 'service_instance.update'))
            session.flush()
            session.refresh(service)
        return service

    # ---- staged delete ---------------------------------------------------

    def service_instance_delete(self, context, service_id):
        """Start the staged delete of a service instance: its
        configuration is taken off each ACTIVE device it is bound to
        (configure operations); a binding to a device in ERROR or DEAD is
        dropped at once (there is nothing to reach), and a device it
        owned and no other service uses is deleted. Returns (the service,
        or None when it is gone already, [ids of the operations
        started])."""
        with ef.writer.using(context) as session:
            service = self._service_query(context, session, service_id)
            started = self._delete_services(context, session, [service])
            session.flush()
            if sa.inspect(service).persistent:
                session.refresh(service)
                return service, started
        return None, started

    def _delete_services(self, context, session, services, owning=None):
        """The first stage of deleting ``services``: one configure
        operation per ACTIVE device they are bound to takes them all off
        it. ``owning``: a device they take ownership of (a cascading
        device delete: the last of them to let go deletes it)."""
        by_device = {}
        for service in services:
            if service.status == states.PENDING_DELETE:
                raise exceptions.InvalidState(
                    resource='Service instance', id=service.id,
                    current=service.status, action='delete',
                    allowed='ACTIVE, ERROR, PENDING_CREATE')
            for binding in service.bindings:
                by_device.setdefault(binding.device_id, []).append(
                    (service, binding))
        devices = {d: session.get(models.Device, d) for d in by_device}
        for device in devices.values():
            # A device still busy (being configured for the service, say):
            # that must end first.
            if device.operation_id:
                holder = session.get(models.Operation, device.operation_id)
                raise exceptions.DeviceBusy(
                    id=device.id, operation_id=device.operation_id,
                    kind=holder.kind if holder else '?', field=None)
        started = []
        for device_id, pairs in by_device.items():
            device = devices[device_id]
            for _, binding in pairs:
                binding.owner = binding.owner or device_id == owning
            if device.status == states.ACTIVE:
                operation, _ = self._start_operation(
                    context, session, device, 'configure',
                    {'services': [s.id for s, _ in pairs],
                     'change': 'unbind'})
                for _, binding in pairs:
                    binding.status = states.BINDING_REMOVING
                started.append(operation.id)
            else:
                for service, binding in pairs:
                    started.extend(self._unbind(context, session, service,
                                                binding))
        for service in services:
            service.status = states.PENDING_DELETE
            service.status_reason = None
            service.updated_at = timeutils.utcnow()
            session.add(du.event(context, 'service_instance', service.id,
                                 service.project_id,
                                 'service_instance.delete.requested',
                                 details={'operations': started}))
            self._forget_if_unbound(context, session, service)
        return started

    def _unbind(self, context, session, service, binding):
        """Drop a binding; a device the service owned and nothing else
        uses is deleted. Returns the ids of the operations started."""
        device_id = binding.device_id
        service.bindings.remove(binding)
        session.delete(binding)
        session.flush()
        session.add(du.event(context, 'device', device_id,
                             service.project_id, 'device.service.unbind',
                             details={'service_instance': service.id}))
        if not binding.owner or self._bound_count(session, device_id):
            return []
        device = session.get(models.Device, device_id)
        session.refresh(device)
        if device.operation_id:
            return []   # already being deleted (a forced delete)
        operation, _ = self._start_operation(context, session, device,
                                             'delete')
        return [operation.id]

    @staticmethod
    def _forget_if_unbound(context, session, service):
        """A service being deleted (or whose configuration was just taken
        off its last device) with no binding left is gone."""
        if service.bindings:
            return
        session.add(du.event(context, 'service_instance', service.id,
                             service.project_id,
                             'service_instance.delete.end'))
        session.delete(service)

    def device_delete_cascade(self, context, device_id):
        """Delete a device and, first, the service instances bound to it
        (staged: they take the device over, and the last to let go of it
        deletes it). Returns (device, [operation ids])."""
        with ef.writer.using(context) as session:
            device = self._device_query(context, session, device_id)
            services = [session.get(models.ServiceInstance,
                                    b.service_instance_id)
                        for b in device.bindings]
            started = self._delete_services(context, session, services,
                                            owning=device.id)
            session.flush()
            session.refresh(device)
        return device, started

    # ---- how configure operations end ------------------------------------

    def _settle_services(self, context, session, operation, outcome,
                         error=None, notices=None):
        """An operation of a device ends (``outcome``: completed,
        failed_temp, failed, rolled_back; ``error``: why): the bindings it
        configured and their service instances follow. Returns the ids of
        the operations this starts (deleting a device a service owned)."""
        params = operation.params or {}
        if operation.resource_type != 'device':
            return []
        started = []
        for service_id in params.get('services') or ():
            service = session.get(models.ServiceInstance, service_id)
            binding = session.get(Binding,
                                  (service_id, operation.resource_id))
            if service is None or binding is None:
                continue
            before = service.status
            if params.get('change') == 'unbind':
                started.extend(self._settle_unbind(
                    context, session, operation, outcome, error, service,
                    binding))
            else:
                self._settle_bind(context, session, operation, outcome,
                                  error, service, binding,
                                  params.get('change') == 'reapply')
            if notices is not None:
                self._notice(session, notices, service, before,
                             params.get('change'))
        return started

    @staticmethod
    def _notice(session, notices, service, before, change):
        """(event type, payload values, error) of what became of a
        service, for the notification sent once this is committed."""
        stage = {'unbind': 'delete', 'reapply': 'reconfigure'}.get(
            change, 'create')
        session.flush()
        values = {'id': service.id, 'project_id': service.project_id,
                  'user_id': service.user_id, 'name': service.name,
                  'service_type': service.service_type,
                  'status': service.status,
                  'status_reason': service.status_reason}
        if not sa.inspect(service).persistent:
            notices.append(('service_instance.delete.end',
                            dict(values, status='DELETED'), False))
        elif service.status == states.ERROR:
            notices.append(('service_instance.%s.error' % stage, values,
                            True))
        elif service.status == states.ACTIVE and before != states.ACTIVE:
            notices.append(('service_instance.%s.end' % stage, values,
                            False))

    def _settle_unbind(self, context, session, operation, outcome, error,
                       service, binding):
        if outcome == 'completed':
            started = self._unbind(context, session, service, binding)
            self._forget_if_unbound(context, session, service)
            return started
        self._service_error(context, session, operation, outcome, error,
                            service, 'removing it from', 'delete')
        return []

    def _settle_bind(self, context, session, operation, outcome, error,
                     service, binding, again=False):
        stage = 'reconfigure' if again else 'create'
        if outcome != 'completed':
            binding.status = states.ERROR
            self._service_error(
                context, session, operation, outcome, error, service,
                'applying its configuration again on' if again
                else 'configuring', stage)
            return
        binding.status = states.ACTIVE
        service.updated_at = timeutils.utcnow()
        session.add(du.event(context, 'device', binding.device_id,
                             service.project_id,
                             'device.service.%s' % (
                                 'reconfigure' if again else 'bind'),
                             operation_id=operation.id,
                             details={'service_instance': service.id}))
        if all(b.status == states.ACTIVE for b in service.bindings):
            service.status = states.ACTIVE
            service.status_reason = None
            session.add(du.event(context, 'service_instance', service.id,
                                 service.project_id,
                                 'service_instance.%s.end' % stage,
                                 operation_id=operation.id))

    @staticmethod
    def _service_error(context, session, operation, outcome, error, service,
                       what, stage):
        if outcome == 'failed_temp':
            advice = ('retry operation %s (after fixing the cause), or '
                      'roll it back or fail it and delete the service '
                      'instance' % operation.id)
        else:
            advice = 'delete the service instance'
        service.status = states.ERROR
        service.status_reason = ('%s device %s %s: %s; %s' % (
            what, operation.resource_id,
            'was rolled back' if outcome == 'rolled_back' else 'failed',
            error or 'no reason given', advice))[:4096]
        service.updated_at = timeutils.utcnow()
        session.add(du.event(context, 'service_instance', service.id,
                             service.project_id,
                             'service_instance.%s.error' % stage,
                             result='error', message=service.status_reason,
                             operation_id=operation.id))
