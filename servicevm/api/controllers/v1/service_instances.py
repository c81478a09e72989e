"""/v1/service_instances: logical services bound to devices."""

from oslo_config import cfg
import pecan

from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import policy
from servicevm.db import api as db_api
from servicevm.drivers import loader

CONF = cfg.CONF
RULE = 'servicevm:service_instance'


class ServiceInstancesController(utils.RestController):

    def __init__(self):
        self.dbapi = db_api.get_instance()

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

    @pecan.expose('json')
    def post(self):
        ctx = utils.context()
        values = utils.body(
            schemas.service_instance_create)['service_instance']
        values['project_id'] = utils.owner(ctx, values, 'service_instance')
        values['user_id'] = ctx.user_id
        policy.authorize(RULE + ':create', ctx,
                         {'project_id': values['project_id']})
        values.setdefault('mgmt_driver', 'noop')
        loader.check_enabled(CONF, loader.MGMT_NAMESPACE,
                             values['mgmt_driver'],
                             'service_instance.mgmt_driver')
        service = self.dbapi.service_instance_create(ctx, values)
        pecan.response.status = 201
        pecan.response.headers['Location'] = utils.href('service_instances',
                                                        service.id)
        return {'service_instance': service.as_dict()}

    def _update(self, service_id):
        ctx = utils.context()
        values = utils.body(
            schemas.service_instance_update)['service_instance']
        service = self.dbapi.service_instance_get(ctx, service_id)
        policy.authorize(RULE + ':update', ctx,
                         {'project_id': service.project_id})
        service = self.dbapi.service_instance_update(ctx, service_id, values)
        return {'service_instance': service.as_dict()}

    @pecan.expose('json')
    def patch(self, service_id):
        return self._update(service_id)

    @pecan.expose('json')
    def put(self, service_id):
        return self._update(service_id)

    @pecan.expose()  # 204: no body (the json renderer would say null)
    def delete(self, service_id):
        ctx = utils.context()
        service = self.dbapi.service_instance_get(ctx, service_id)
        policy.authorize(RULE + ':delete', ctx,
                         {'project_id': service.project_id})
        self.dbapi.service_instance_destroy(ctx, service_id)
        pecan.response.status = 204
