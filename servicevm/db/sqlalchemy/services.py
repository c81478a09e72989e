"""Queries of service instances and their bindings to devices."""

from oslo_utils import timeutils
from oslo_utils import uuidutils

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.db.sqlalchemy import enginefacade as ef
from servicevm.db.sqlalchemy import models
from servicevm.db.sqlalchemy import utils as du


class ServiceInstanceQueries:

    def _service_query(self, context, session, service_id):
        query = du.scope(session.query(models.ServiceInstance),
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
            service.kwargs = du.kv_rows(models.ServiceInstanceArg, project_id,
                                        kwargs)
            service.service_contexts = du.context_rows(
                models.ServiceContext, project_id, contexts)
            service.bindings = [
                models.ServiceDeviceBinding(project_id=project_id,
                                            device_id=d, position=i)
                for i, d in enumerate(device_ids)]
            session.add(service)
            session.add(du.event(context, 'service_instance', service_id,
                                 project_id, 'service_instance.create',
                                 details={'devices': device_ids}))
            for device_id in device_ids:
                session.add(du.event(context, 'device', device_id, project_id,
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
            query = du.scope(session.query(models.ServiceInstance),
                             models.ServiceInstance, context, listing=True)
            device_id = (filters or {}).pop('device_id', None)
            if device_id:
                query = query.join(models.ServiceDeviceBinding).filter(
                    models.ServiceDeviceBinding.device_id == device_id)
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

    def service_instance_destroy(self, context, service_id):
        with ef.writer.using(context) as session:
            service = self._service_query(context, session, service_id)
            for binding in service.bindings:
                session.add(du.event(context, 'device', binding.device_id,
                                     service.project_id,
                                     'device.service.unbind',
                                     details={'service_instance': service_id}))
            session.add(du.event(context, 'service_instance', service_id,
                                 service.project_id,
                                 'service_instance.delete'))
            session.delete(service)
