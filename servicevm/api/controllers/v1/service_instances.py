"""/v1/service_instances: logical services bound to devices."""

import contextlib

from oslo_config import cfg
import pecan

from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import exceptions
from servicevm.common import keystone
from servicevm.common import policy
from servicevm.conductor import rpcapi
from servicevm.db import api as db_api
from servicevm.drivers import loader

CONF = cfg.CONF
RULE = 'servicevm:service_instance'


class ServiceInstancesController(utils.RestController):

    def __init__(self):
        self.dbapi = db_api.get_instance()
        self._rpcapi = None

    @pecan.expose('json')
    def get_all(self):
        ctx = utils.context()
        params = utils.query(schemas.service_instance_list_query)
        project = utils.scope_listing(ctx, params, RULE)
        limit, marker, sort_key, sort_dir = utils.paging(params)
        filters = {'name': params.get('name'),
                   'status': params.get('status'),
                   'service_type': params.get('service_type'),
                   'device_id': params.get('device_id'),
                   'project_id': project}
        rows = self.dbapi.service_instance_list(ctx, filters, limit, marker,
                                                sort_key, sort_dir)
        return utils.collection('service_instances',
                                [r.as_dict() for r in rows], limit,
                                utils.fields(params))

    @pecan.expose('json')
    def get_one(self, service_id):
        ctx = utils.context()
        params = utils.query(schemas.resource_query(schemas.SERVICE_FIELDS))
        service = self.dbapi.service_instance_get(ctx, service_id)
        policy.authorize(RULE + ':get', ctx,
                         {'project_id': service.project_id})
        return {'service_instance': utils.view(service.as_dict(),
                                               utils.fields(params))}

    @property
    def rpcapi(self):
        if self._rpcapi is None:
            self._rpcapi = rpcapi.ConductorAPI(CONF)
        return self._rpcapi

    def _started(self, ctx, operation_ids, service, kind):
        """Cast the operations started (once committed); 202 with a
        Location of the first."""
        for operation_id in operation_ids:
            self.rpcapi.run_operation(ctx, operation_id)
        utils.accepted(operation_ids[0], 'service_instance', service, kind,
                       others=operation_ids[1:])

    @pecan.expose('json')
    def post(self):
        """Create a service instance bound to ``devices``, to a new
        device made from ``template_id`` (which the service owns), or to
        the device the scheduler picks; 202 with the configure (or
        create) operations started, or 201 when bound to no device."""
        ctx = utils.context()
        values = utils.body(
            schemas.service_instance_create)['service_instance']
        values['project_id'] = utils.owner(ctx, values, 'service_instance')
        values['user_id'] = ctx.user_id
        policy.authorize(RULE + ':create', ctx,
                         {'project_id': values['project_id']})
        values.setdefault('mgmt_driver', 'noop')
        values.setdefault('managed_by_user', True)
        loader.check_enabled(CONF, loader.MGMT_NAMESPACE,
                             values['mgmt_driver'],
                             'service_instance.mgmt_driver')
        device_values, trusted = None, False
        template_id = values.pop('template_id', None)
        device_kwargs = values.pop('device_kwargs', None)
        if template_id is not None:
            if values.get('devices') is not None:
                raise exceptions.InvalidParameter(
                    reason='Give devices or template_id, not both.',
                    field='service_instance.template_id')
            device_values = {
                'template_id': template_id, 'user_id': ctx.user_id,
                'name': 'service-%s' % (values.get('name') or 'instance'),
                'kwargs': device_kwargs or {}}
            # The conductor acts in the caller's project through a trust.
            trusted = values['project_id'] == ctx.project_id
        elif device_kwargs is not None:
            raise exceptions.InvalidParameter(
                reason='device_kwargs goes with template_id (the device '
                       'made for the service instance).',
                field='service_instance.device_kwargs')
        with (keystone.trust_for(CONF, ctx, self.dbapi) if trusted
              else contextlib.nullcontext()) as trust_id:
            if trusted:
                device_values['trust_id'] = trust_id
            service, started = self.dbapi.service_instance_create(
                ctx, values, device_values)
        body = {'service_instance': service.as_dict()}
        if not started:
            pecan.response.status = 201
            pecan.response.headers['Location'] = utils.href(
                'service_instances', service.id)
            return body
        self._started(ctx, started, body['service_instance'], 'create')
        return dict(body, operation_id=started[0], operation_ids=started)

    @staticmethod
    def _check_managed(ctx, service, action):
        if not service.managed_by_user and not ctx.is_admin_role:
            raise exceptions.Forbidden(
                action='%s of service instance %s (managed_by_user is '
                       'false: another service manages it; an admin may)'
                       % (action, service.id))

    def _update(self, service_id):
        ctx = utils.context()
        values = utils.body(
            schemas.service_instance_update)['service_instance']
        service = self.dbapi.service_instance_get(ctx, service_id)
        policy.authorize(RULE + ':update', ctx,
                         {'project_id': service.project_id})
        self._check_managed(ctx, service, 'update')
        service = self.dbapi.service_instance_update(ctx, service_id, values)
        return {'service_instance': service.as_dict()}

    @pecan.expose('json')
    def patch(self, service_id):
        return self._update(service_id)

    @pecan.expose('json')
    def put(self, service_id):
        return self._update(service_id)

    @pecan.expose('json')
    def delete(self, service_id):
        """Staged delete: 202 with the operations that take the service
        off its devices (then delete the devices it owns); 204 when it was
        bound to no device it could reach (it is gone at once)."""
        ctx = utils.context()
        service = self.dbapi.service_instance_get(ctx, service_id)
        policy.authorize(RULE + ':delete', ctx,
                         {'project_id': service.project_id})
        self._check_managed(ctx, service, 'delete')
        project_id = service.project_id
        service, started = self.dbapi.service_instance_delete(ctx,
                                                              service_id)
        if not started:
            pecan.response.status = 204
            return pecan.response  # no body (json would render null)
        self._started(ctx, started, service.as_dict() if service else {
            'id': service_id, 'project_id': project_id,
            'status': 'DELETED'}, 'delete')
        return {'service_instance': service and service.as_dict(),
                'operation_id': started[0], 'operation_ids': started}
