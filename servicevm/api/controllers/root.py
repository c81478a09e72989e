"""/ and /v1: version discovery and the v1 resources."""

from oslo_config import cfg
import pecan

from servicevm.api.controllers.v1 import alarms
from servicevm.api.controllers.v1 import device_templates
from servicevm.api.controllers.v1 import devices
from servicevm.api.controllers.v1 import operations
from servicevm.api.controllers.v1 import service_instances
from servicevm.api.controllers.v1 import utils
from servicevm.api import metrics
from servicevm.api import openapi
from servicevm.api import versions
from servicevm.common import context as svm_context
from servicevm.db import api as db_api

CONF = cfg.CONF

RESOURCES = ('device_templates', 'devices', 'service_instances',
             'operations', 'alarms')


def _only_get():
    """Version documents are read-only: other methods get 405."""
    if pecan.request.method not in ('GET', 'HEAD'):
        pecan.abort(405, headers={'Allow': 'GET, HEAD'})


def _version():
    return {
        'id': 'v1',
        'status': 'CURRENT',
        'min_version': versions.fmt(versions.MIN_VERSION),
        'version': versions.fmt(versions.MAX_VERSION),
        'links': [{'rel': 'self', 'href': utils.href('')}],
        'media-types': [{'base': 'application/json',
                         'type': 'application/vnd.openstack.servicevm.v1'
                                 '+json'}],
    }


class V1Controller:
    device_templates = device_templates.DeviceTemplatesController()
    devices = devices.DevicesController()
    service_instances = service_instances.ServiceInstancesController()
    operations = operations.OperationsController()
    alarms = alarms.AlarmsController()

    @pecan.expose('json')
    def index(self):
        _only_get()
        version = _version()
        version['resources'] = [
            {'name': name, 'links': [{'rel': 'self',
                                      'href': utils.href(name)}]}
            for name in RESOURCES]
        return {'version': version}

    @pecan.expose('json', route='openapi.json')
    def openapi_document(self):
        """GET /v1/openapi.json: the OpenAPI document of this API."""
        _only_get()
        return openapi.document(server_url=utils.href('').rsplit(
            '/v1', 1)[0] or '/')


class RootController:
    v1 = V1Controller()

    @pecan.expose(content_type=metrics.CONTENT_TYPE)
    def metrics(self):
        """GET /metrics: Prometheus metrics (when ``[api]
        metrics_enabled``; 404 otherwise)."""
        _only_get()
        if not CONF.api.metrics_enabled:
            pecan.abort(404)
        return metrics.render(db_api.get_instance().metrics_snapshot(
            svm_context.get_admin_context()))

    @pecan.expose('json')
    def index(self):
        _only_get()
        return {'name': 'servicevm',
                'description': 'Life-cycle manager of service VMs.',
                'default_version': _version(),
                'versions': [_version()]}
