"""Nova's versioned notifications, as the conductor hears them ([nova]
notifications_url).

Nova tells its notification bus of each server's changes (a build that
ended, a reboot, a stop...) the moment they happen; the batched poll
finds them only at its next cycle, one list later. So a conductor that
can hear the bus listens: the end of an action that leaves a servicevm
server resting (ACTIVE, SHUTOFF, PAUSED, SUSPENDED) answers the
operations waiting on it at once, as the next list would have. Anything
else is left to the poll. Notifications are a shortcut, never the only
way: the poll goes on, and finds what a lost notification did not say.
"""

import types

from oslo_log import log as logging
import oslo_messaging as messaging

LOG = logging.getLogger(__name__)

# A server's state in a notification (its vm_state), once an action left
# it resting, and its status in the compute API.
RESTING = {'active': 'ACTIVE', 'stopped': 'SHUTOFF', 'paused': 'PAUSED',
           'suspended': 'SUSPENDED'}
# power_state in a notification, and its code in the compute API.
POWER_CODES = {'pending': 0, 'running': 1, 'paused': 3, 'shutdown': 4,
               'crashed': 6, 'suspended': 7}


def _data(obj):
    """The fields of a serialized versioned object (or the dict itself)."""
    if isinstance(obj, dict):
        return obj.get('nova_object.data', obj)
    return {}


def device_of(payload):
    """(server id, servicevm device id) an instance notification is
    about; the device id is None for a server that is not servicevm's."""
    data = _data(payload)
    metadata = data.get('metadata') or {}
    return data.get('uuid'), metadata.get('servicevm_device_id')


def resting_server(event_type, payload):
    """The server as a list would show it (the attributes the Nova
    driver reads), when ``event_type`` ended an action and left it
    resting; else None."""
    data = _data(payload)
    status = RESTING.get(data.get('state'))
    if (not event_type.endswith('.end') or status is None or
            data.get('task_state') or not data.get('uuid')):
        return None
    flavor = _data(data.get('flavor'))
    addresses = {}
    for ip in data.get('ip_addresses') or ():
        ip = _data(ip)
        addresses.setdefault(ip.get('label'), []).append({
            'addr': ip.get('address'), 'version': ip.get('version'),
            'OS-EXT-IPS-MAC:mac_addr': ip.get('mac')})
    server = types.SimpleNamespace(
        id=data['uuid'], status=status, addresses=addresses,
        metadata=dict(data.get('metadata') or {}),
        flavor={'vcpus': flavor.get('vcpus'),
                'ram': flavor.get('memory_mb'),
                'disk': flavor.get('root_gb')} if flavor else {},
        updated=data.get('updated_at'), fault=None)
    setattr(server, 'OS-EXT-STS:task_state', None)
    setattr(server, 'OS-EXT-STS:power_state',
            POWER_CODES.get(data.get('power_state')))
    return server


class Endpoint:
    """The listener's endpoint: instance notifications to the driver."""

    filter_rule = messaging.NotificationFilter(event_type=r'^instance\.')

    def __init__(self, driver):
        self.driver = driver

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        try:
            self.driver.heard(event_type, payload)
        except Exception:
            # A notification is a shortcut: the poll still finds it out.
            LOG.exception('Nova notification %s not used', event_type)

    # instance.create.error and the other failures come as ERROR.
    error = warn = info


def listen(conf, driver, host):
    """Start listening to Nova's notifications for ``driver``; returns
    the listener (stop() and wait() it)."""
    options = conf.nova
    transport = messaging.get_notification_transport(
        conf, url=options.notifications_url)
    listener = messaging.get_notification_listener(
        transport, [messaging.Target(
            topic=options.notifications_topic,
            exchange=options.notifications_exchange)],
        [Endpoint(driver)], executor='threading',
        pool=options.notifications_pool or 'servicevm-%s' % host)
    listener.start()
    LOG.info('Listening to Nova\'s notifications on topic %s of exchange '
             '%s', options.notifications_topic,
             options.notifications_exchange)
    return listener
