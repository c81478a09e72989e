"""The OpenAPI 3.1 document of the v1 API (served at /v1/openapi.json).

Built from ROUTES and the very JSON Schemas the controllers validate
bodies and query strings with (servicevm/api/schemas.py), so that the two
cannot part: tests/unit/api/test_openapi.py drives every route and checks
that each validates with the schema this document gives it, and that
every route the API answers is here.
"""

import copy

from servicevm.api import schemas as S

ID = {'name': 'id', 'in': 'path', 'required': True,
      'schema': {'type': 'string', 'maxLength': 255}}

# (path, method, operation id, query schema, body schema, statuses, what)
ROUTES = (
    ('/', 'get', 'listVersions', None, None, (200,),
     'The API versions.'),
    ('/v1', 'get', 'showVersionV1', None, None, (200,),
     'The v1 version and its resources.'),
    ('/v1/openapi.json', 'get', 'showOpenAPI', None, None, (200,),
     'This document.'),
    ('/v1/device_templates', 'get', 'listDeviceTemplates',
     S.template_list_query, None, (200,), 'Device templates.'),
    ('/v1/device_templates', 'post', 'createDeviceTemplate', None,
     S.template_create, (201,), 'Create a device template.'),
    ('/v1/device_templates/{id}', 'get', 'showDeviceTemplate',
     S.resource_query(S.TEMPLATE_FIELDS), None, (200,),
     'One device template.'),
    ('/v1/device_templates/{id}', 'patch', 'updateDeviceTemplate', None,
     S.template_update, (200,), 'Change a device template.'),
    ('/v1/device_templates/{id}', 'put', 'replaceDeviceTemplate', None,
     S.template_update, (200,), 'Change a device template.'),
    ('/v1/device_templates/{id}', 'delete', 'deleteDeviceTemplate', None,
     None, (204,), 'Delete a device template no device uses.'),
    ('/v1/devices', 'get', 'listDevices', S.device_list_query, None,
     (200,), 'Devices.'),
    ('/v1/devices', 'post', 'createDevice', None, S.device_create, (202,),
     'Create a device (a create operation).'),
    ('/v1/devices/{id}', 'get', 'showDevice',
     S.resource_query(S.DEVICE_FIELDS), None, (200,), 'One device.'),
    ('/v1/devices/{id}', 'patch', 'updateDevice', None, S.device_update,
     (200, 202), 'Rename a device, or change its kwargs (an update '
                 'operation).'),
    ('/v1/devices/{id}', 'put', 'replaceDevice', None, S.device_update,
     (200, 202), 'As PATCH.'),
    ('/v1/devices/{id}', 'delete', 'deleteDevice', S.device_delete_query,
     None, (202,), 'Delete a device (a delete operation; ?force, '
                   '?cascade).'),
    ('/v1/devices/{id}/action', 'post', 'deviceAction', None,
     S.device_action, (202,), 'Run one of the driver\'s actions; or '
                              'reconfigure, heal, respawn.'),
    ('/v1/devices/{id}/events', 'get', 'listDeviceEvents',
     S.event_list_query, None, (200,), 'The device\'s history.'),
    ('/v1/service_instances', 'get', 'listServiceInstances',
     S.service_instance_list_query, None, (200,), 'Service instances.'),
    ('/v1/service_instances', 'post', 'createServiceInstance', None,
     S.service_instance_create, (201, 202), 'Create a service instance '
                                            'and bind it.'),
    ('/v1/service_instances/{id}', 'get', 'showServiceInstance',
     S.resource_query(S.SERVICE_FIELDS), None, (200,),
     'One service instance.'),
    ('/v1/service_instances/{id}', 'patch', 'updateServiceInstance', None,
     S.service_instance_update, (200,), 'Change a service instance.'),
    ('/v1/service_instances/{id}', 'put', 'replaceServiceInstance', None,
     S.service_instance_update, (200,), 'As PATCH.'),
    ('/v1/service_instances/{id}', 'delete', 'deleteServiceInstance', None,
     None, (202, 204), 'Delete a service instance (staged).'),
    ('/v1/operations', 'get', 'listOperations', S.operation_list_query,
     None, (200,), 'Operations.'),
    ('/v1/operations/{id}', 'get', 'showOperation',
     S.resource_query(S.OPERATION_FIELDS), None, (200,),
     'One operation and its steps.'),
    ('/v1/operations/{id}/action', 'post', 'operationAction', None,
     S.operation_action, (200, 202), 'Pause, resume, cancel, retry, '
                                     'roll back or fail an operation.'),
    ('/v1/alarms', 'get', 'listAlarms', S.alarm_list_query, None, (200,),
     'Failures that need a person.'),
    ('/v1/alarms/{id}', 'get', 'showAlarm', None, None, (200,),
     'One alarm.'),
    ('/v1/alarms/{id}/action', 'post', 'alarmAction', None,
     S.alarm_action, (200,), 'Acknowledge an alarm.'),
    ('/v1/devices/{id}/alarms', 'get', 'listDeviceAlarms',
     S.alarm_list_query, None, (200,), 'The device\'s alarms.'),
    ('/v1/devices/{id}/metrics', 'get', 'showDeviceMetrics', S.no_query,
     None, (200,), 'The device\'s last poll: power state, usage, '
                   'last_seen.'),
)

ERROR = {
    'type': 'object',
    'required': ['errors'],
    'properties': {'errors': {'type': 'array', 'items': {
        'type': 'object',
        'required': ['status', 'code', 'title', 'detail'],
        'properties': {
            'status': {'type': 'integer'},
            'code': {'type': 'string'},
            'title': {'type': 'string'},
            'detail': {'type': 'string'},
            'request_id': {'type': ['string', 'null']},
            'field': {'type': ['string', 'null']}}}}}}
ERROR_STATUSES = {400: 'Bad input (the field is named).',
                  401: 'No or a bad token.',
                  403: 'Not allowed by policy.',
                  404: 'No such resource (or another project\'s).',
                  405: 'Method not allowed.',
                  406: 'Not acceptable.',
                  409: 'Conflicts with the resource\'s state.',
                  413: 'Body too large.',
                  415: 'Not JSON.'}


def _parameters(query):
    parameters = []
    for name, schema in sorted(((query or {}).get('properties') or
                                {}).items()):
        parameters.append({'name': name, 'in': 'query', 'required': False,
                           'schema': copy.deepcopy(schema)})
    return parameters


def _operation(operation_id, query, body, statuses, what, path):
    operation = {'operationId': operation_id, 'summary': what,
                 'responses': {}}
    parameters = ([ID] if '{id}' in path else []) + _parameters(query)
    if parameters:
        operation['parameters'] = copy.deepcopy(parameters)
    if body is not None:
        operation['requestBody'] = {'required': True, 'content': {
            'application/json': {'schema': copy.deepcopy(body)}}}
    for status in statuses:
        if status == 204:
            operation['responses']['204'] = {'description': 'Done.'}
        else:
            operation['responses'][str(status)] = {
                'description': 'Accepted: an operation started.'
                if status == 202 else 'OK.',
                'content': {'application/json': {
                    'schema': {'type': 'object'}}}}
    for status, description in ERROR_STATUSES.items():
        operation['responses'][str(status)] = {
            'description': description,
            'content': {'application/json': {
                'schema': {'$ref': '#/components/schemas/Error'}}}}
    return operation


def document(server_url='/'):
    """The OpenAPI document (a fresh dict)."""
    paths = {}
    for path, method, operation_id, query, body, statuses, what in ROUTES:
        paths.setdefault(path, {})[method] = _operation(
            operation_id, query, body, statuses, what, path)
    return {
        'openapi': '3.1.0',
        'info': {'title': 'servicevm', 'version': '1.0',
                 'description': 'Life-cycle manager of service VMs: '
                                'device templates, devices, service '
                                'instances and the operations that change '
                                'them.'},
        'servers': [{'url': server_url}],
        'paths': paths,
        'components': {
            'schemas': {'Error': ERROR},
            'securitySchemes': {'keystone': {
                'type': 'apiKey', 'in': 'header', 'name': 'X-Auth-Token'}}},
        'security': [{'keystone': []}, {}],
    }


def route(path, method):
    """(query schema, body schema) ROUTES gives ``method`` on ``path``."""
    for p, m, _, query, body, _, _ in ROUTES:
        if (p, m) == (path, method):
            return query, body
    raise KeyError((path, method))
