"""/v1/operations: lifecycle requests, their steps, and the actions that
steer them."""

from oslo_config import cfg
import pecan

from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import notify
from servicevm.common import policy
from servicevm.conductor import rpcapi
from servicevm.db import api as db_api

CONF = cfg.CONF

RULE = 'servicevm:operation'


# Actions after which a conductor has work to do.
_WAKING_ACTIONS = ('resume', 'retry', 'rollback', 'cancel')


class OperationsController(utils.RestController):

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
        params = utils.query(schemas.operation_list_query)
        project = utils.scope_listing(ctx, params, RULE)
        limit, marker, sort_key, sort_dir = utils.paging(params)
        filters = {'resource_id': params.get('resource_id'),
                   'state': params.get('state'),
                   'kind': params.get('kind'),
                   'project_id': project}
        rows = self.dbapi.operation_list(ctx, filters, limit, marker,
                                         sort_key, sort_dir)
        return utils.collection(
            'operations', [r.as_dict(with_steps=False) for r in rows],
            limit, utils.fields(params))

    @pecan.expose('json')
    def get_one(self, operation_id):
        ctx = utils.context()
        params = utils.query(
            schemas.resource_query(schemas.OPERATION_FIELDS))
        operation = self.dbapi.operation_get(ctx, operation_id)
        policy.authorize(RULE + ':get', ctx,
                         {'project_id': operation.project_id})
        return {'operation': utils.view(operation.as_dict(),
                                        utils.fields(params))}

    @pecan.expose('json')
    def action(self, operation_id):
        """POST /v1/operations/{id}/action {"action": ...}: 202 when a
        conductor takes the operation up again (resume, retry, rollback,
        cancel), 200 otherwise (pause, fail); 409 naming the state when
        the action does not fit it."""
        ctx = utils.context()
        name = utils.body(schemas.operation_action)['action']
        operation = self.dbapi.operation_get(ctx, operation_id)
        policy.authorize(RULE + ':action', ctx,
                         {'project_id': operation.project_id})
        operation = self.dbapi.operation_action(
            ctx, operation_id, name,
            {'resource_type': operation.resource_type,
             'resource_id': operation.resource_id,
             'project_id': operation.project_id,
             'operation_id': operation.id,
             'event_type': 'operation.%s' % name})
        if name in _WAKING_ACTIONS:
            self.rpcapi.run_operation(ctx, operation.id)
            utils.accepted(operation.id)
        notify.operation_state(CONF, ctx, 'servicevm-api:%s' % CONF.host,
                               operation, operation.state)
        return {'operation': operation.as_dict()}
