"""/v1/device_templates: how to build a kind of device."""

from oslo_config import cfg
import pecan

from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import exceptions
from servicevm.common import policy
from servicevm.db import api as db_api
from servicevm.drivers import loader

CONF = cfg.CONF
RULE = 'servicevm:device_template'


class DeviceTemplatesController(utils.RestController):

    def __init__(self):
        self.dbapi = db_api.get_instance()

    @pecan.expose('json')
    def get_all(self):
        ctx = utils.context()
        params = utils.query(schemas.template_list_query)
        project = utils.scope_listing(ctx, params, RULE)
        limit, marker, sort_key, sort_dir = utils.paging(params)
        filters = {'name': params.get('name'),
                   'device_driver': params.get('device_driver'),
                   'project_id': project}
        rows = self.dbapi.template_list(ctx, filters, limit, marker,
                                        sort_key, sort_dir)
        return utils.collection('device_templates',
                                [r.as_dict() for r in rows], limit,
                                utils.fields(params))

    @pecan.expose('json')
    def get_one(self, template_id):
        ctx = utils.context()
        params = utils.query(schemas.resource_query(schemas.TEMPLATE_FIELDS))
        template = self.dbapi.template_get(ctx, template_id)
        policy.authorize(RULE + ':get', ctx,
                         {'project_id': template.project_id})
        return {'device_template': utils.view(template.as_dict(),
                                              utils.fields(params))}

    @pecan.expose('json')
    def post(self):
        ctx = utils.context()
        values = utils.body(schemas.template_create)['device_template']
        values['project_id'] = utils.owner(ctx, values, 'device_template')
        policy.authorize(RULE + ':create', ctx,
                         {'project_id': values['project_id']})
        values.setdefault('mgmt_driver', 'noop')
        loader.check_enabled(CONF, loader.DEVICE_NAMESPACE,
                             values['device_driver'],
                             'device_template.device_driver')
        loader.check_enabled(CONF, loader.MGMT_NAMESPACE,
                             values['mgmt_driver'],
                             'device_template.mgmt_driver')
        monitor = (values.get('attributes') or {}).get('monitor') or {}
        if monitor.get('type') in ('ssh', 'netconf'):
            # Its probes go through that management driver.
            loader.check_enabled(CONF, loader.MGMT_NAMESPACE,
                                 monitor['type'],
                                 'device_template.attributes.monitor.type')
        values['service_types'] = [
            t['service_type'] if isinstance(t, dict) else t
            for t in values.get('service_types') or ()]
        if len(set(values['service_types'])) != len(values['service_types']):
            raise exceptions.ValidationError(
                reason='device_template.service_types has duplicates.',
                field='device_template.service_types')
        _check_scripts(values)
        template = self.dbapi.template_create(ctx, values)
        pecan.response.status = 201
        pecan.response.headers['Location'] = utils.href('device_templates',
                                                        template.id)
        return {'device_template': template.as_dict()}

    def _update(self, template_id):
        ctx = utils.context()
        values = utils.body(schemas.template_update)['device_template']
        template = self.dbapi.template_get(ctx, template_id)
        policy.authorize(RULE + ':update', ctx,
                         {'project_id': template.project_id})
        _check_scripts(values)
        template = self.dbapi.template_update(ctx, template_id, values)
        return {'device_template': template.as_dict()}

    @pecan.expose('json')
    def patch(self, template_id):
        return self._update(template_id)

    @pecan.expose('json')
    def put(self, template_id):
        return self._update(template_id)

    @pecan.expose('json')
    def delete(self, template_id):
        ctx = utils.context()
        template = self.dbapi.template_get(ctx, template_id)
        policy.authorize(RULE + ':delete', ctx,
                         {'project_id': template.project_id})
        self.dbapi.template_destroy(ctx, template_id)
        pecan.response.status = 204
        # No body (the json renderer would say null); exposed as json so
        # that "Accept: application/json" is not a 406.
        return pecan.response


def _check_scripts(values):
    """Script names are unique within an event (a step of an operation
    is named after its script)."""
    for event, scripts in (values.get('lifecycle_events') or {}).items():
        seen = set()
        for i, script in enumerate(scripts):
            if script['name'] in seen:
                field = 'device_template.lifecycle_events.%s.%d.name' % (
                    event, i)
                raise exceptions.ValidationError(
                    reason='%s: a script of %s is already named %r; names '
                           'are unique within an event.' % (
                               field, event, script['name']),
                    field=field)
            seen.add(script['name'])
