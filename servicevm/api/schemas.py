"""JSON Schemas of every request body and query string of the v1 API."""

import copy
import functools

UUID_PATTERN = ('^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?'
                '[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$')

uuid = {'type': 'string', 'pattern': UUID_PATTERN, 'maxLength': 36,
        'description': 'A UUID.'}
nullable_uuid = {'type': ['string', 'null'], 'pattern': UUID_PATTERN,
                 'maxLength': 36}
name = {'type': 'string', 'maxLength': 255}
description = {'type': 'string', 'maxLength': 1024}
project_id = {'type': 'string', 'minLength': 1, 'maxLength': 255,
              'pattern': '^[A-Za-z0-9_.@-]+$'}
driver_name = {'type': 'string', 'minLength': 1, 'maxLength': 255,
               'pattern': '^[A-Za-z0-9_.-]+$'}
key_name = {'type': 'string', 'minLength': 1, 'maxLength': 255}

# A (key -> any JSON value) mapping: template attributes, kwargs.
kv_mapping = {'type': ['object', 'null'], 'maxProperties': 200,
              'propertyNames': key_name}

service_type = {'type': 'string', 'minLength': 1, 'maxLength': 255,
                'pattern': '^[A-Za-z0-9_.:-]+$'}

service_context = {
    'type': 'object',
    'properties': {
        'network_id': nullable_uuid,
        'subnet_id': nullable_uuid,
        'port_id': nullable_uuid,
        'router_id': nullable_uuid,
        'role': {'type': ['string', 'null'], 'maxLength': 255},
        'index': {'type': ['integer', 'null'], 'minimum': 0,
                  'maximum': 65535},
    },
    'additionalProperties': False,
}
service_contexts = {'type': 'array', 'items': service_context,
                    'maxItems': 64}

# ---- device templates ----------------------------------------------------

TEMPLATE_FIELDS = ('id', 'project_id', 'name', 'description',
                   'device_driver', 'mgmt_driver', 'attributes',
                   'service_types', 'lifecycle_events', 'created_at',
                   'updated_at')

# The moments of a device's life that run scripts (in this order within
# an operation: see servicevm/conductor/steps.py).
LIFECYCLE_EVENTS = ('INSTANTIATE', 'CONFIGURE', 'START', 'STOP', 'TERMINATE',
                    'SCALE_OUT', 'SCALE_IN', 'HEAL')
lifecycle_script = {
    'type': 'object',
    'properties': {
        'name': {'type': 'string', 'minLength': 1, 'maxLength': 64,
                 'pattern': '^[A-Za-z0-9_-]+$'},
        'script': {'type': 'string', 'minLength': 1, 'maxLength': 65536},
    },
    'required': ['name', 'script'],
    'additionalProperties': False,
}
lifecycle_events = {
    'type': ['object', 'null'],
    'properties': {event: {'type': 'array', 'maxItems': 32,
                           'items': lifecycle_script}
                   for event in LIFECYCLE_EVENTS},
    'additionalProperties': False,
}

HEALTH_POLICIES = ('alarm-only', 'respawn', 'heal')
monitor = {
    'type': 'object',
    'properties': {
        'type': {'enum': ['ping', 'ssh', 'netconf']},
        'interval': {'type': 'number', 'minimum': 1, 'maximum': 86400},
        'timeout': {'type': 'number', 'minimum': 0.1, 'maximum': 600},
        'failures': {'type': 'integer', 'minimum': 1, 'maximum': 100},
        'command': {'type': 'string', 'minLength': 1, 'maxLength': 4096},
        'filter': {'type': 'string', 'minLength': 1, 'maxLength': 65536},
        'configured': {'type': 'string', 'minLength': 1,
                       'maxLength': 65536},
    },
    'required': ['type'],
    'additionalProperties': False,
}
# A template's attributes; those the health watch reads are checked.
template_attributes = dict(kv_mapping, properties={
    'health_policy': {'enum': list(HEALTH_POLICIES)},
    'monitor': monitor})

template_create = {
    'type': 'object',
    'properties': {
        'device_template': {
            'type': 'object',
            'properties': {
                'name': name,
                'description': description,
                'project_id': project_id,
                'tenant_id': project_id,
                'device_driver': driver_name,
                'mgmt_driver': driver_name,
                'attributes': template_attributes,
                'lifecycle_events': lifecycle_events,
                'service_types': {
                    'type': 'array', 'maxItems': 32, 'uniqueItems': True,
                    'items': {'anyOf': [
                        service_type,
                        {'type': 'object',
                         'properties': {'service_type': service_type},
                         'required': ['service_type'],
                         'additionalProperties': False}]}},
            },
            'required': ['device_driver'],
            'additionalProperties': False,
        },
    },
    'required': ['device_template'],
    'additionalProperties': False,
}

template_update = {
    'type': 'object',
    'properties': {
        'device_template': {
            'type': 'object',
            'properties': {'name': name, 'description': description,
                           'lifecycle_events': lifecycle_events},
            'additionalProperties': False,
            'minProperties': 1,
        },
    },
    'required': ['device_template'],
    'additionalProperties': False,
}

# ---- devices ---------------------------------------------------------------

DEVICE_FIELDS = ('id', 'project_id', 'user_id', 'name', 'description',
                 'template_id', 'instance_id', 'mgmt_address', 'mgmt_config',
                 'last_seen', 'status',
                 'status_reason', 'power_state', 'ready', 'operation_id',
                 'kwargs', 'service_contexts', 'services', 'created_at',
                 'updated_at')

# What to do when a step fails: stop in FAILED_TEMP, or roll back.
on_failure = {'type': 'string', 'enum': ['fail_temp', 'rollback']}

device_create = {
    'type': 'object',
    'properties': {
        'device': {
            'type': 'object',
            'properties': {
                'name': name,
                'description': description,
                'project_id': project_id,
                'tenant_id': project_id,
                'template_id': uuid,
                'kwargs': kv_mapping,
                'service_contexts': service_contexts,
                'on_failure': on_failure,
            },
            'required': ['template_id'],
            'additionalProperties': False,
        },
    },
    'required': ['device'],
    'additionalProperties': False,
}

device_update = {
    'type': 'object',
    'properties': {
        'device': {
            'type': 'object',
            'properties': {'name': name, 'description': description,
                           'kwargs': kv_mapping, 'on_failure': on_failure},
            'additionalProperties': False,
            'minProperties': 1,
        },
    },
    'required': ['device'],
    'additionalProperties': False,
}

# ---- service instances -----------------------------------------------------

SERVICE_FIELDS = ('id', 'project_id', 'user_id', 'name', 'description',
                  'service_type', 'service_table_id', 'managed_by_user',
                  'mgmt_driver', 'mgmt_address', 'status', 'status_reason',
                  'kwargs', 'service_contexts', 'devices', 'bindings',
                  'created_at',
                  'updated_at')

service_instance_create = {
    'type': 'object',
    'properties': {
        'service_instance': {
            'type': 'object',
            'properties': {
                'name': name,
                'description': description,
                'project_id': project_id,
                'tenant_id': project_id,
                'service_type': service_type,
                'service_table_id': {'type': ['string', 'null'],
                                     'maxLength': 255},
                'managed_by_user': {'type': 'boolean'},
                'mgmt_driver': driver_name,
                'mgmt_address': {'type': ['string', 'null'],
                                 'maxLength': 255},
                'service_contexts': service_contexts,
                'devices': {'type': 'array', 'items': uuid, 'maxItems': 32,
                            'uniqueItems': True},
                # Or a new device, made from this template, that the
                # service instance owns (with these kwargs).
                'template_id': uuid,
                'device_kwargs': kv_mapping,
                'on_failure': on_failure,
                'kwargs': kv_mapping,
            },
            'required': ['service_type'],
            'additionalProperties': False,
        },
    },
    'required': ['service_instance'],
    'additionalProperties': False,
}

service_instance_update = {
    'type': 'object',
    'properties': {
        'service_instance': {
            'type': 'object',
            'properties': {'name': name, 'description': description,
                           'kwargs': kv_mapping},
            'additionalProperties': False,
            'minProperties': 1,
        },
    },
    'required': ['service_instance'],
    'additionalProperties': False,
}

# ---- operations and events -------------------------------------------------

OPERATION_FIELDS = ('id', 'project_id', 'user_id', 'request_id',
                    'resource_type', 'resource_id', 'kind', 'state',
                    'on_failure', 'cancelled', 'error', 'lease_owner',
                    'started_at', 'finished_at', 'created_at', 'updated_at',
                    'steps')

device_action = {
    'type': 'object',
    'properties': {
        'action': {'type': 'string', 'minLength': 1, 'maxLength': 64},
        'params': {'type': 'object'},
        'on_failure': {'type': 'string', 'enum': ['fail_temp', 'rollback']},
    },
    'required': ['action'],
    'additionalProperties': False,
}

operation_action = {
    'type': 'object',
    'properties': {
        'action': {'type': 'string',
                   'enum': ['pause', 'resume', 'cancel', 'retry',
                            'rollback', 'fail']},
    },
    'required': ['action'],
    'additionalProperties': False,
}

EVENT_FIELDS = ('id', 'project_id', 'resource_type', 'resource_id',
                'operation_id', 'event_type', 'result', 'message',
                'details', 'user_id', 'request_id', 'created_at')

# ---- query strings ---------------------------------------------------------

_flag = {'type': 'string',
         'enum': ['1', '0', 'true', 'false', 'True', 'False', 'yes', 'no']}
_limit = {'type': 'string', 'pattern': '^[0-9]{1,9}$'}
_sort_dir = {'type': 'string', 'enum': ['asc', 'desc']}


def collection_query(fields, sort_keys, filters):
    """The query string schema of a collection: paging, sorting, fields
    and the given filters (name -> schema)."""
    properties = {
        'limit': _limit,
        'marker': uuid,
        'sort_key': {'type': 'string', 'enum': list(sort_keys)},
        'sort_dir': _sort_dir,
        'fields': {'type': 'string', 'maxLength': 1024,
                   'pattern': '^(%s)(,(%s))*$' % ('|'.join(fields),
                                                  '|'.join(fields))},
        'all_projects': _flag,
        'project_id': project_id,
    }
    properties.update(copy.deepcopy(filters))
    return {'type': 'object', 'properties': properties,
            'additionalProperties': False}


@functools.lru_cache(maxsize=None)
def resource_query(fields):
    """The query string schema of one resource (``fields`` only). One
    object per ``fields`` tuple: validators are cached per schema."""
    return {'type': 'object',
            'properties': {'fields': collection_query(
                fields, ('id',), {})['properties']['fields']},
            'additionalProperties': False}


_status = {'type': 'string', 'maxLength': 32, 'pattern': '^[A-Z_]+$'}

template_list_query = collection_query(
    TEMPLATE_FIELDS, ('created_at', 'updated_at', 'name', 'id',
                      'device_driver'),
    {'name': name, 'device_driver': driver_name})
device_list_query = collection_query(
    DEVICE_FIELDS, ('created_at', 'updated_at', 'name', 'id', 'status'),
    {'name': name, 'status': _status, 'template_id': uuid})
service_instance_list_query = collection_query(
    SERVICE_FIELDS, ('created_at', 'updated_at', 'name', 'id', 'status',
                     'service_type'),
    {'name': name, 'status': _status, 'service_type': service_type,
     'device_id': uuid})
operation_list_query = collection_query(
    OPERATION_FIELDS, ('created_at', 'updated_at', 'id', 'state', 'kind'),
    {'resource_id': uuid, 'state': _status,
     'kind': {'type': 'string', 'maxLength': 64}})
device_delete_query = {
    'type': 'object',
    'properties': {'force': _flag, 'cascade': _flag,
                   'on_failure': on_failure},
    'additionalProperties': False,
}

event_list_query = {
    'type': 'object',
    'properties': {
        'limit': _limit,
        'marker': {'type': 'string', 'pattern': '^[0-9]{1,18}$'},
        'sort_dir': _sort_dir,
    },
    'additionalProperties': False,
}

_event_marker = {'type': 'string', 'pattern': '^[0-9]{1,18}$'}
alarm_list_query = {
    'type': 'object',
    'properties': {
        'limit': _limit, 'marker': _event_marker, 'sort_dir': _sort_dir,
        'all_projects': _flag, 'project_id': project_id,
        'resource_id': uuid, 'acknowledged': _flag,
        'event_type': {'type': 'string', 'maxLength': 255},
    },
    'additionalProperties': False,
}

alarm_action = {
    'type': 'object',
    'properties': {
        'action': {'type': 'string', 'enum': ['acknowledge']},
    },
    'required': ['action'],
    'additionalProperties': False,
}

# A request that takes no query parameter.
no_query = {'type': 'object', 'properties': {},
            'additionalProperties': False}
