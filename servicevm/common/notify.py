"""Notifications of lifecycle changes on the message bus (oslo.messaging).

Off unless ``[oslo_messaging_notifications] driver`` is set (e.g.
``messagingv2``; ``topics`` and ``transport_url`` as for any OpenStack
service). Event types:

* ``servicevm.<resource>.<kind>.start|end|error`` (resource ``device`` or
  ``service_instance``; kind ``create``, ``delete``, ``update``,
  ``action``, ``configure``, ``reconfigure``): a request accepted, its
  work done, its work failed (the operation waits in FAILED_TEMP, failed
  or was rolled back);
* ``servicevm.operation.<state>`` (``processing``, ``paused``,
  ``failed_temp``, ``rolling_back``, ``rolled_back``, ``failed``,
  ``cancelled``, ``completed``): an operation's new state;
* ``servicevm.alarm.raise`` (ERROR priority) and
  ``servicevm.alarm.acknowledge``: a failure that needs a person.

Each payload is versioned, in the shape of Nova's versioned
notifications: ``{"servicevm_object.name": "DevicePayload",
"servicevm_object.namespace": "servicevm", "servicevm_object.version":
"1.0", "servicevm_object.data": {...}}``; the data carries the resource's
id, project and status, and the operation id. Secrets (kwargs) are never
in a payload: only the fields listed here are.
"""

import threading

from oslo_log import log as logging
import oslo_messaging as messaging

LOG = logging.getLogger(__name__)

NAMESPACE = 'servicevm'
VERSION = '1.0'
FIELDS = {
    'DevicePayload': ('id', 'project_id', 'user_id', 'name', 'template_id',
                      'instance_id', 'mgmt_address', 'status',
                      'status_reason', 'power_state', 'ready',
                      'operation_id'),
    'ServiceInstancePayload': ('id', 'project_id', 'user_id', 'name',
                               'service_type', 'status', 'status_reason',
                               'devices', 'operation_id'),
    'OperationPayload': ('id', 'project_id', 'user_id', 'resource_type',
                         'resource_id', 'kind', 'state', 'error',
                         'operation_id'),
    'AlarmPayload': ('id', 'project_id', 'resource_type', 'resource_id',
                     'event_type', 'message', 'operation_id',
                     'acknowledged', 'acknowledged_by'),
}
PAYLOADS = {'device': 'DevicePayload',
            'service_instance': 'ServiceInstancePayload',
            'operation': 'OperationPayload',
            'alarm': 'AlarmPayload'}

_lock = threading.Lock()
_notifiers = {}


def _notifier(conf, publisher):
    with _lock:
        if publisher not in _notifiers:
            transport = messaging.get_notification_transport(conf)
            _notifiers[publisher] = messaging.Notifier(
                transport, publisher_id=publisher)
        return _notifiers[publisher]


def reset():
    """Forget the notifiers (tests, a changed configuration)."""
    with _lock:
        _notifiers.clear()


def payload(resource, values, **extra):
    """The versioned payload of ``resource`` from ``values`` (a dict or
    an object with those attributes)."""
    name = PAYLOADS[resource]
    data = {}
    for field in FIELDS[name]:
        value = (values.get(field) if isinstance(values, dict)
                 else getattr(values, field, None))
        data[field] = value
    data.update((k, v) for k, v in extra.items() if k in FIELDS[name])
    if resource == 'operation':
        data['operation_id'] = data['id']
    return {'servicevm_object.name': name,
            'servicevm_object.namespace': NAMESPACE,
            'servicevm_object.version': VERSION,
            'servicevm_object.data': data}


def notify(conf, context, publisher, event_type, resource, values,
           error=False, **extra):
    """Send ``servicevm.<event_type>`` about ``resource`` (best effort: a
    notification that cannot be sent is logged, never raised)."""
    try:
        notifier = _notifier(conf, publisher)
        if not notifier.is_enabled():
            return
        body = payload(resource, values, **extra)
        method = notifier.error if error else notifier.info
        method(_context_dict(context), 'servicevm.' + event_type, body)
    except Exception as e:
        LOG.warning('Notification servicevm.%s not sent: %s', event_type, e)


def operation_state(conf, context, publisher, operation, state, **extra):
    """``servicevm.operation.<state>`` for ``operation``."""
    notify(conf, context, publisher, 'operation.%s' % state.lower(),
           'operation', operation, error=state in ('FAILED_TEMP', 'FAILED'),
           state=state, **extra)


def _context_dict(context):
    if context is None:
        return {}
    to_dict = getattr(context, 'to_dict', None)
    values = to_dict() if to_dict else {}
    # Never a token on the bus.
    for key in ('auth_token', 'auth_token_info', 'service_token'):
        values.pop(key, None)
    return values


def operation_ended(conf, context, publisher, operation, device, state,
                    outcome, notices=()):
    """An operation of a device rests (``state``): the device's
    ``<kind>.end`` (outcome ``end``) or ``<kind>.error``, the operation's
    new state, and what became of the service instances it configured
    (``notices``: (event type, payload values, error))."""
    if device is not None:
        notify(conf, context, publisher, '%s.%s.%s' % (
            operation.resource_type, operation.kind, outcome), 'device',
            device, error=outcome == 'error', operation_id=operation.id)
    operation_state(conf, context, publisher, operation, state)
    for event_type, values, error in notices or ():
        notify(conf, context, publisher, event_type, 'service_instance',
               values, error=error, operation_id=operation.id)
