"""/v1/alarms: failures that need a person (a VM its delete could not
remove, a delete that failed...), raised by the conductors as events with
result ``alarm``; users acknowledge them."""

from oslo_config import cfg
from oslo_utils import strutils
import pecan

from servicevm.api.controllers.v1 import utils
from servicevm.api import schemas
from servicevm.common import exceptions
from servicevm.common import notify
from servicevm.common import policy
from servicevm.db import api as db_api

CONF = cfg.CONF
RULE = 'servicevm:alarm'


def list_alarms(dbapi, ctx, params, resource_id=None):
    """The alarms a listing asks for (also /v1/devices/{id}/alarms)."""
    project = utils.scope_listing(ctx, params, RULE)
    limit, _marker, _key, sort_dir = utils.paging(params)
    marker = params.get('marker')
    acknowledged = params.get('acknowledged')
    filters = {'project_id': project,
               'resource_id': resource_id or params.get('resource_id'),
               'event_type': params.get('event_type'),
               'acknowledged': (None if acknowledged is None else
                                strutils.bool_from_string(acknowledged))}
    rows = dbapi.alarm_list(ctx, filters, limit,
                            int(marker) if marker else None, sort_dir)
    return utils.collection('alarms', [r.as_alarm() for r in rows], limit)


class AlarmsController(utils.RestController):

    _custom_actions = {'action': ['POST']}

    def __init__(self):
        self.dbapi = db_api.get_instance()

    @pecan.expose('json')
    def get_all(self):
        ctx = utils.context()
        params = utils.query(schemas.alarm_list_query)
        return list_alarms(self.dbapi, ctx, params)

    @pecan.expose('json')
    def get_one(self, alarm_id):
        ctx = utils.context()
        alarm = self.dbapi.alarm_get(ctx, _id(alarm_id))
        policy.authorize(RULE + ':get', ctx,
                         {'project_id': alarm.project_id})
        return {'alarm': alarm.as_alarm()}

    @pecan.expose('json')
    def action(self, alarm_id):
        """POST /v1/alarms/{id}/action {"action": "acknowledge"}: 200, or
        409 when it was acknowledged already."""
        ctx = utils.context()
        utils.body(schemas.alarm_action)
        alarm = self.dbapi.alarm_get(ctx, _id(alarm_id))
        policy.authorize(RULE + ':acknowledge', ctx,
                         {'project_id': alarm.project_id})
        alarm = self.dbapi.alarm_acknowledge(ctx, alarm.id)
        notify.notify(CONF, ctx, 'servicevm-api:%s' % CONF.host,
                      'alarm.acknowledge', 'alarm', alarm.as_alarm())
        return {'alarm': alarm.as_alarm()}


def _id(alarm_id):
    """An alarm id from the path (an integer; anything else is no
    alarm)."""
    if not alarm_id.isdigit() or len(alarm_id) > 18:
        raise exceptions.AlarmNotFound(id=alarm_id)
    return int(alarm_id)
