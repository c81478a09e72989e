"""/v1/operations: lifecycle requests and their steps (read-only here)."""

import pecan

from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import policy
from servicevm.db import api as db_api

RULE = 'servicevm:operation'


class OperationsController(utils.RestController):

    def __init__(self):
        self.dbapi = db_api.get_instance()

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
