"""/v1/devices: running appliances made from templates, and their
events."""

import contextlib

from oslo_config import cfg
from oslo_utils import strutils
import pecan

from servicevm.api.controllers.v1 import alarms
from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import context as svm_context
from servicevm.common import exceptions
from servicevm.common import keystone
from servicevm.common import policy
from servicevm.conductor import rpcapi
from servicevm.db import api as db_api
from servicevm.drivers import loader

CONF = cfg.CONF
RULE = 'servicevm:device'
# Driver actions after which the bound services' configuration is
# applied again.
REBOOTS = ('reboot', 'reset', 'start')


class DeviceEventsController(utils.RestController):
    """/v1/devices/{device_id}/events: the device's history, oldest first;
    still readable after the device is deleted."""

    def __init__(self):
        self.dbapi = db_api.get_instance()

    @pecan.expose('json')
    def get_all(self, device_id):
        ctx = utils.context()
        params = utils.query(schemas.event_list_query)
        limit, _marker, _key, sort_dir = utils.paging(params)
        marker = params.get('marker')
        try:
            device = self.dbapi.device_get(ctx, device_id)
            project_id = device.project_id
        except exceptions.DeviceNotFound:
            device = None
            project_id = ctx.project_id
        policy.authorize(RULE + ':events', ctx, {'project_id': project_id})
        rows = self.dbapi.event_list(ctx, device_id, limit,
                                     int(marker) if marker else None,
                                     sort_dir)
        if device is None and not rows and not marker:
            raise exceptions.DeviceNotFound(id=device_id)
        return utils.collection('events', [r.as_dict() for r in rows],
                                limit)


class DeviceAlarmsController(utils.RestController):
    """/v1/devices/{device_id}/alarms: the device's alarms (also after
    the device is gone)."""

    def __init__(self):
        self.dbapi = db_api.get_instance()

    @pecan.expose('json')
    def get_all(self, device_id):
        ctx = utils.context()
        params = utils.query(schemas.alarm_list_query)
        return alarms.list_alarms(self.dbapi, ctx, params,
                                  resource_id=device_id)


class DeviceMetricsController(utils.RestController):
    """/v1/devices/{device_id}/metrics: the health watch's last poll."""

    def __init__(self):
        self.dbapi = db_api.get_instance()

    @pecan.expose('json')
    def get_all(self, device_id):
        ctx = utils.context()
        utils.query(schemas.no_query)
        device = self.dbapi.device_get(ctx, device_id)
        policy.authorize(RULE + ':get', ctx,
                         {'project_id': device.project_id})
        values = device.as_dict()
        return {'metrics': {'device_id': device.id,
                            'status': device.status,
                            'power_state': device.power_state,
                            'last_seen': values['last_seen'],
                            'usage': device.usage or {},
                            'monitor': device.monitor}}


class DevicesController(utils.RestController):

    events = DeviceEventsController()
    alarms = DeviceAlarmsController()
    metrics = DeviceMetricsController()
    _custom_actions = {'action': ['POST']}

    def __init__(self):
        self.dbapi = db_api.get_instance()
        self._rpcapi = None

    @property
    def rpcapi(self):
        if self._rpcapi is None:
            self._rpcapi = rpcapi.ConductorAPI(CONF)
        return self._rpcapi

    @pecan.expose('json')
    def get_all(self):
        ctx = utils.context()
        params = utils.query(schemas.device_list_query)
        project = utils.scope_listing(ctx, params, RULE)
        limit, marker, sort_key, sort_dir = utils.paging(params)
        filters = {'name': params.get('name'),
                   'status': params.get('status'),
                   'template_id': params.get('template_id'),
                   'project_id': project}
        wanted = utils.fields(params)
        return utils.collection(
            'devices', self.dbapi.device_list(ctx, filters, limit, marker,
                                              sort_key, sort_dir, wanted),
            limit, wanted)

    @pecan.expose('json')
    def get_one(self, device_id):
        ctx = utils.context()
        params = utils.query(schemas.resource_query(schemas.DEVICE_FIELDS))
        wanted = utils.fields(params)
        device = self.dbapi.device_show(ctx, device_id, wanted)
        policy.authorize(RULE + ':get', ctx,
                         {'project_id': device['project_id']})
        return {'device': utils.view(device, wanted)}

    @pecan.expose('json')
    def post(self):
        ctx = utils.context()
        values = utils.body(schemas.device_create)['device']
        values['project_id'] = utils.owner(ctx, values, 'device')
        values['user_id'] = ctx.user_id
        policy.authorize(RULE + ':create', ctx,
                         {'project_id': values['project_id']})
        # The conductor will act in the caller's project through a trust
        # (none for a device made in another project).
        with (keystone.trust_for(CONF, ctx, self.dbapi)
              if values['project_id'] == ctx.project_id
              else contextlib.nullcontext()) as trust_id:
            values['trust_id'] = trust_id
            device, operation = self.dbapi.device_create(
                ctx, values, on_failure=values.pop('on_failure', None))
        # Cast only once the device and its operation are committed.
        self.rpcapi.run_operation(ctx, operation.id)
        utils.accepted(operation.id, 'device', device.as_dict(), 'create')
        return {'device': device.as_dict(), 'operation_id': operation.id}

    def _update(self, device_id):
        ctx = utils.context()
        values = utils.body(schemas.device_update)['device']
        device = self.dbapi.device_get(ctx, device_id)
        policy.authorize(RULE + ':update', ctx,
                         {'project_id': device.project_id})
        kwargs = values.pop('kwargs', None)
        on_failure = values.pop('on_failure', None)
        operation = None
        if kwargs is not None:
            # First, so that a busy device (409) is left unchanged.
            device, operation, _ = self.dbapi.device_start_operation(
                ctx, device_id, 'update', params={'kwargs': kwargs},
                on_failure=on_failure)
        if values:
            device = self.dbapi.device_update(ctx, device_id, values)
        if operation is None:
            return {'device': device.as_dict()}
        self.rpcapi.run_operation(ctx, operation.id)
        utils.accepted(operation.id, 'device', device.as_dict(), 'update')
        return {'device': device.as_dict(), 'operation_id': operation.id}

    @pecan.expose('json')
    def patch(self, device_id):
        return self._update(device_id)

    @pecan.expose('json')
    def put(self, device_id):
        return self._update(device_id)

    @pecan.expose('json')
    def delete(self, device_id):
        """202 and a delete operation. A device busy with another
        operation is 409, unless ``force=true``: then that operation is
        cancelled (rolled back) and the delete follows it."""
        ctx = utils.context()
        params = utils.query(schemas.device_delete_query)
        device = self.dbapi.device_get(ctx, device_id)
        policy.authorize(RULE + ':delete', ctx,
                         {'project_id': device.project_id})
        if device.bindings and strutils.bool_from_string(
                params.get('cascade', '0')):
            # Staged: the service instances go first, and the last of
            # them to let go of the device deletes it.
            device, started = self.dbapi.device_delete_cascade(
                ctx, device_id)
            for operation_id in started:
                self.rpcapi.run_operation(ctx, operation_id)
            if started:
                utils.accepted(started[0], 'device', device.as_dict(),
                               'delete', others=started[1:])
                return {'device': device.as_dict(),
                        'operation_id': started[0],
                        'operation_ids': started}
        device, operation, cancelled = self.dbapi.device_start_operation(
            ctx, device_id, 'delete', on_failure=params.get('on_failure'),
            force=strutils.bool_from_string(params.get('force', '0')))
        if cancelled:
            self.rpcapi.run_operation(ctx, cancelled)
        self.rpcapi.run_operation(ctx, operation.id)
        utils.accepted(operation.id, 'device', device.as_dict(), 'delete')
        return {'device': device.as_dict(), 'operation_id': operation.id}

    @pecan.expose('json')
    def action(self, device_id):
        """POST /v1/devices/{id}/action {"action": ..., "params": {...}}:
        202 and an operation running one of the device driver's actions;
        400 naming the supported actions when the driver has no such
        action or the params do not fit it."""
        ctx = utils.context()
        body = utils.body(schemas.device_action)
        device = self.dbapi.device_get(ctx, device_id)
        policy.authorize(RULE + ':action', ctx,
                         {'project_id': device.project_id})
        if body['action'] == 'reconfigure':
            return self._reconfigure(ctx, device, body)
        if body['action'] in ('heal', 'respawn'):
            return self._heal(ctx, device, body)
        # The device's template, even if shared by another project.
        template = self.dbapi.template_get(
            svm_context.get_admin_context(), device.template_id)
        driver = loader.get_device_driver(CONF, template.device_driver)
        params = body.get('params') or {}
        driver.check_action(body['action'], params,
                            template=template.as_dict())
        values = {'action': body['action'], 'params': params}
        services = [b.service_instance_id for b in device.bindings]
        if services and body['action'] in REBOOTS:
            # The VM restarts, and may come back without the services'
            # configuration: it is applied again at the end.
            values.update(services=services, change='reapply')
        device, operation, _ = self.dbapi.device_start_operation(
            ctx, device_id, 'action', params=values,
            on_failure=body.get('on_failure'))
        self.rpcapi.run_operation(ctx, operation.id)
        utils.accepted(operation.id, 'device', device.as_dict(), 'action')
        return {'device': device.as_dict(), 'operation_id': operation.id}

    def _heal(self, ctx, device, body):
        """Heal a DEAD or ERROR device by hand, as the health policies
        do: ``respawn`` (a new VM for the same device, its scripts run
        again, its services' configuration applied again) or ``heal``
        (a hard reboot first, the respawn only if that does not bring it
        back). 409 for a device in another state."""
        if body.get('params'):
            raise exceptions.InvalidParameter(
                field='params.' + sorted(body['params'])[0],
                reason='action %s takes no parameters' % body['action'])
        params = {'policy': body['action'], 'by_hand': True}
        services = [b.service_instance_id for b in device.bindings]
        if services:
            params.update(services=services, change='reapply')
        device, operation, _ = self.dbapi.device_start_operation(
            ctx, device.id, 'heal', params=params,
            on_failure=body.get('on_failure'))
        self.rpcapi.run_operation(ctx, operation.id)
        utils.accepted(operation.id, 'device', device.as_dict(), 'heal')
        return {'device': device.as_dict(), 'operation_id': operation.id}

    def _reconfigure(self, ctx, device, body):
        """Apply the configuration of every service instance bound to the
        device again (a device that came back without it): a configure
        operation, as when they were bound."""
        if body.get('params'):
            raise exceptions.InvalidParameter(
                field='params.' + sorted(body['params'])[0],
                reason='action reconfigure takes no parameters')
        services = [b.service_instance_id for b in device.bindings]
        if not services:
            raise exceptions.Conflict(
                reason='device %s hosts no service instance: there is no '
                       'configuration to apply again.' % device.id,
                field='action')
        device, operation, _ = self.dbapi.device_start_operation(
            ctx, device.id, 'configure',
            params={'services': services, 'change': 'reapply'},
            on_failure=body.get('on_failure'))
        self.rpcapi.run_operation(ctx, operation.id)
        utils.accepted(operation.id, 'device', device.as_dict(),
                       'configure')
        return {'device': device.as_dict(), 'operation_id': operation.id}
