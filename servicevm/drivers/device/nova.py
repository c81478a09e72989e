"""The Nova device driver: one server per device, through
python-novaclient on a keystoneauth session.

Template attributes (a device's ``kwargs`` overrides those marked *)::

    image*            image name or id (Glance)
    flavor*           flavor name or id
    key_name*         key pair name
    user_data*        text passed to cloud-init
    config_drive*     true to attach a config drive
    metadata*         mapping of server metadata
    availability_zone*
    networks          network ids, or "none"; the device's service
                      contexts add their network_id / port_id
    mgmt_network      network (id or name) whose address is the device's
                      management address (default: the first address)

Every server carries the tags ``servicevm``, ``svm-dev-<device id>`` and
``svm-op-<operation id>``: a create repeated after a crash finds the
server an earlier run made, and one ``servers/detail`` query filtered by
the ``servicevm`` tag answers the poll of every device waited on (per
project). A server in ERROR found by a repeated create is deleted and a
new one built (a retry after fixing the cause).
"""

import threading
import time

from keystoneauth1 import adapter as ks_adapter
from novaclient import client as nova_client
from novaclient import exceptions as nova_exc
from oslo_log import log as logging
from oslo_utils import strutils
from oslo_utils import uuidutils

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.drivers.device import base
from servicevm.drivers.device import nova_events
from servicevm.drivers.device import nova_listing
from servicevm.drivers.device import openstack

LOG = logging.getLogger(__name__)

TAG = 'servicevm'
OVERRIDABLE = ('image', 'flavor', 'key_name', 'user_data', 'config_drive',
               'metadata', 'availability_zone')
# Nova status -> poll state (a task under way makes any status busy).
STATES = {'ACTIVE': 'active', 'BUILD': 'building', 'ERROR': 'error',
          'SHUTOFF': 'stopped', 'PAUSED': 'paused', 'SUSPENDED': 'paused',
          'DELETED': 'gone', 'SOFT_DELETED': 'gone'}
POWER = {1: states.POWER_RUNNING, 3: states.POWER_PAUSED,
         4: states.POWER_SHUTOFF, 7: states.POWER_PAUSED}


def device_tag(device_id):
    return 'svm-dev-%s' % device_id


class NovaDeviceDriver(openstack.OpenStackDriver):

    group = 'nova'
    supported_actions = frozenset([
        'reboot', 'reset', 'shutdown', 'start', 'resize',
        'snapshot_create', 'snapshot_delete', 'snapshot_revert',
        'attach_nic', 'detach_nic'])
    action_params = {
        'resize': ({'flavor': str}, {}),
        'snapshot_create': ({}, {'name': str}),
        'snapshot_delete': ({'image_id': str}, {}),
        'snapshot_revert': ({'image_id': str}, {}),
        'attach_nic': ({}, {'network_id': str, 'port_id': str,
                            'fixed_ip': str}),
        'detach_nic': ({'port_id': str}, {}),
    }

    def __init__(self, conf):
        super().__init__(conf)
        self._clients = {}
        self._names = {}
        self._cache_lock = threading.Lock()
        # poll scope -> what the polls know of its servers.
        self._listings = {}
        # device id -> when this driver's create of it returned.
        self._created = {}
        self._listener = None
        #: Nova notifications heard, and those that answered a poll.
        self.heard_counts = {'heard': 0, 'answered': 0}

    # ---- Nova's notifications ----------------------------------------------

    def start(self, host):
        if self.options.notifications_url and self._listener is None:
            self._listener = nova_events.listen(self.conf, self, host)

    def stop(self):
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
            listener.wait()

    def heard(self, event_type, payload):
        """A Nova notification (nova_events.Endpoint): an action's end
        that left a servicevm server resting answers the polls waiting on
        its device now, as the next list would."""
        server_id, device_id = nova_events.device_of(payload)
        if not device_id:
            return
        heard_at = time.monotonic()
        with self._lock:
            self.heard_counts['heard'] += 1
        server = nova_events.resting_server(event_type, payload)
        # Nothing older than the last change asked of the device (a
        # reboot just asked must not end with the news of the build).
        if server is None or self.changed_at(device_id) > heard_at:
            return

        def answer(device):
            if device.get('instance_id') != server_id:
                return None
            result = self._poll_one(self.credentials.key(device), device,
                                    [server])
            result.details['heard'] = event_type
            return result
        if self.push(device_id, answer):
            with self._lock:
                self.heard_counts['answered'] += 1
            LOG.debug('Device %s: %s answered its poll', device_id,
                      event_type)

    # ---- clients -----------------------------------------------------------

    def _nova(self, key):
        with self._cache_lock:
            client = self._clients.get(key)
            if client is None:
                kw = self.credentials.adapter_kwargs()
                client = nova_client.Client(
                    self.options.api_microversion,
                    session=self.credentials.session(key),
                    region_name=kw['region_name'],
                    endpoint_type=kw['interface'],
                    service_type=kw['service_type'],
                    endpoint_override=kw['endpoint_override'])
                if len(self._clients) > 500:
                    self._clients.clear()
                self._clients[key] = client
            return client

    def _service(self, key, service_type):
        kw = self.credentials.adapter_kwargs()
        return ks_adapter.Adapter(
            self.credentials.session(key), service_type=service_type,
            interface=kw['interface'], region_name=kw['region_name'])

    @staticmethod
    def _attrs(device):
        attrs = dict((device.get('template') or {}).get('attributes') or {})
        kwargs = device.get('kwargs') or {}
        attrs.update({k: kwargs[k] for k in OVERRIDABLE if k in kwargs})
        return attrs

    def _servers(self, context, key, tag, since=None):
        """Every server with ``tag`` (changed since ``since``, if given):
        one query, unless there are more than a page ([nova]
        list_page_size, Nova's [api] max_limit)."""
        size = self.options.list_page_size
        servers, marker = [], None
        search = {'tags': tag}
        if since:
            search['changes-since'] = since
        while True:
            page = self.vim_call(context, 'servers.list',
                                 self._nova(key).servers.list,
                                 search_opts=search, limit=size,
                                 marker=marker)
            servers.extend(page)
            if len(page) < size:
                return servers
            marker = page[-1].id

    # ---- names -------------------------------------------------------------

    def _resolve(self, context, scope, kind, value, lookup):
        # By project (``scope``), not by credentials: each device has a
        # trust of its own, and a project's names mean the same to all.
        cache_key = (scope, kind, value)
        with self._cache_lock:
            if cache_key in self._names:
                return self._names[cache_key]
        result = lookup(value)
        with self._cache_lock:
            self._names[cache_key] = result
        return result

    def _image(self, context, key, image, scope):
        # From Glance itself (not through Nova's image proxy, which an
        # endpoint_override of [nova] would misdirect): an id, or a name.
        glance = self._service(key, 'image')

        def lookup(value):
            if uuidutils.is_uuid_like(value):
                reply = self.vim_call(context, 'images.get', glance.get,
                                      '/v2/images/%s' % value,
                                      raise_exc=False)
                if reply.status_code == 200:
                    return reply.json()['id']
            reply = self.vim_call(context, 'images.list', glance.get,
                                  '/v2/images', raise_exc=False,
                                  params={'name': value})
            found = (reply.json().get('images') or []
                     if reply.status_code == 200 else [])
            if len(found) != 1:
                raise exceptions.DriverError(
                    driver='nova', action='create',
                    reason='image %r: %s' % (value, (
                        'Glance answered %s' % reply.status_code
                        if reply.status_code != 200 else
                        'no image has that name or id' if not found else
                        '%d images have that name' % len(found))))
            return found[0]['id']
        return self._resolve(context, scope, 'image', image, lookup)

    def _flavor(self, context, key, flavor, scope):
        nova = self._nova(key)

        def lookup(value):
            try:
                return self.vim_call(context, 'flavors.get',
                                     nova.flavors.get, value).id
            except exceptions.DriverError as e:
                if not isinstance(e.__cause__, nova_exc.NotFound):
                    raise
            found = [f for f in self.vim_call(context, 'flavors.list',
                                              nova.flavors.list)
                     if f.name == value]
            if not found:
                raise exceptions.DriverError(
                    driver='nova', action='create',
                    reason='no flavor named or with id %r' % value)
            return found[0].id
        return self._resolve(context, scope, 'flavor', flavor, lookup)

    def _network_name(self, key, network):
        """The name Nova keys a server's addresses with."""
        if not uuidutils.is_uuid_like(network):
            return network

        def lookup(value):
            reply = self._service(key, 'network').get(
                '/v2.0/networks/%s' % value, raise_exc=False)
            if reply.status_code != 200:
                raise _Unknown()
            return reply.json()['network']['name']
        try:
            return self._resolve(None, 'networks', 'network', network,
                                 lookup)
        except Exception as e:
            # Not cached: the next poll asks Neutron again.
            LOG.warning('Name of network %s unknown for now: %s', network,
                        type(e).__name__)
            return network

    # ---- the contract ------------------------------------------------------

    def create(self, context, device, new=False):
        key = self.credentials.key(device)
        nova = self._nova(key)
        earlier = [] if new else self._servers(context, key,
                                               device_tag(device['id']))
        for server in earlier:
            if server.status == 'ERROR' or _task(server) == 'deleting':
                # A failed build: make room for a new one.
                self._delete_server(context, nova, server.id)
                continue
            return server.id
        attrs = self._attrs(device)
        for name in ('image', 'flavor'):
            if not attrs.get(name):
                raise exceptions.DriverError(
                    driver='nova', action='create',
                    reason='the template has no %s attribute' % name)
        metadata = {str(k): str(v) for k, v in
                    (attrs.get('metadata') or {}).items()}
        metadata['servicevm_device_id'] = device['id']
        operation_id = getattr(context, 'operation_id', None)
        tags = [TAG, device_tag(device['id'])]
        if operation_id:
            tags.append('svm-op-%s' % operation_id)
        server = self.vim_call(
            context, 'servers.create', nova.servers.create,
            name=device.get('name') or 'svm-%s' % device['id'],
            image=self._image(context, key, attrs['image'],
                              device.get('project_id')),
            flavor=self._flavor(context, key, attrs['flavor'],
                                device.get('project_id')),
            key_name=attrs.get('key_name'),
            userdata=attrs.get('user_data'),
            config_drive=strutils.bool_from_string(
                attrs.get('config_drive')) or None,
            meta=metadata,
            availability_zone=attrs.get('availability_zone'),
            nics=self._nics(device, attrs), tags=tags)
        self.changed(device['id'])
        with self._cache_lock:
            if len(self._created) > 10000:
                self._created.clear()
            self._created[device['id']] = time.monotonic()
        LOG.info('Device %s: server %s requested', device['id'], server.id)
        return server.id

    @staticmethod
    def _nics(device, attrs):
        networks = attrs.get('networks')
        nics = []
        if isinstance(networks, list):
            nics = [{'net-id': n} for n in networks]
        for ctx in device.get('service_contexts') or []:
            if ctx.get('port_id'):
                nics.append({'port-id': ctx['port_id']})
            elif ctx.get('network_id'):
                nics.append({'net-id': ctx['network_id']})
        mgmt = attrs.get('mgmt_network')
        if mgmt and uuidutils.is_uuid_like(mgmt) and not any(
                n.get('net-id') == mgmt for n in nics):
            nics.insert(0, {'net-id': mgmt})
        return nics or 'none'

    def poll_batch(self, key, devices, fresh=False):
        # What is known is kept by poll scope (``key`` is the credentials
        # of one of its devices: any of them sees the whole scope).
        scope = self.poll_scope(devices[0])
        listing = self._listings.get(scope)
        interval = self.options.full_list_interval
        full = (fresh or listing is None or interval <= 0 or
                time.monotonic() - listing.full_at > interval or
                not listing.since())
        if not full:
            listing.merge(self._servers(None, key, TAG, listing.since()))
            full = any(self._unsure(listing, d) for d in devices)
        if full:
            listing = self._list_all(key, scope)
        servers = {}
        for server in list(listing.servers.values()):
            device_id = (server.metadata or {}).get('servicevm_device_id')
            servers.setdefault(device_id, []).append(server)
        return {d['id']: self._poll_one(key, d, servers.get(d['id'], []),
                                        full)
                for d in devices}

    def _list_all(self, key, scope):
        listing = nova_listing.Listing(self._servers(None, key, TAG))
        with self._cache_lock:
            if len(self._listings) > 1000:
                self._listings.clear()
            self._listings[scope] = listing
        return listing

    def _unsure(self, listing, device):
        """Whether a list of the changed servers cannot tell how
        ``device`` is: none of its servers is known (unless it was just
        asked for: Nova shows a server among the changed ones only once
        it first updates it), or one is being deleted (a deleted server
        loses its tags, so only a full list shows it gone)."""
        mine = listing.of_device(device['id'])
        if not mine:
            with self._cache_lock:
                created = self._created.get(device['id'])
            return not (created and time.monotonic() - created <
                        self.options.full_list_interval)
        return any(_task(s) == 'deleting' for s in mine)

    def _poll_one(self, key, device, servers, full=True):
        if not servers:
            if not full:
                # Just asked for (see _unsure): not shown among the
                # changed servers yet.
                return base.PollResult(state='building')
            return base.PollResult(state='gone')
        chosen = [s for s in servers if s.id == device.get('instance_id')]
        server = (chosen or servers)[0]
        state = STATES.get(server.status, 'building')
        if _task(server) and state != 'error':
            state = 'building'
        fault = getattr(server, 'fault', None) or {}
        flavor = getattr(server, 'flavor', None) or {}
        return base.PollResult(
            state=state,
            power_state=POWER.get(getattr(server, 'OS-EXT-STS:power_state',
                                          None), states.POWER_UNKNOWN),
            mgmt_address=self._mgmt_address(key, device, server),
            error=(fault.get('message') or 'the server is in ERROR'
                   if state == 'error' else None),
            usage={'vcpus': flavor.get('vcpus'),
                   'memory_mb': flavor.get('ram'),
                   'disk_gb': flavor.get('disk')} if flavor else {},
            deleting=(_task(server) == 'deleting' or
                      server.status in ('DELETED', 'SOFT_DELETED')),
            details={'server_id': server.id, 'status': server.status,
                     'task_state': _task(server)},
            addresses={name: [e.get('addr') for e in entries
                              if e.get('addr')]
                       for name, entries in (getattr(
                           server, 'addresses', None) or {}).items()})

    def _mgmt_address(self, key, device, server):
        addresses = getattr(server, 'addresses', None) or {}
        mgmt = self._attrs(device).get('mgmt_network')
        if mgmt:
            entries = addresses.get(self._network_name(key, mgmt)) or []
        else:
            entries = next(iter(addresses.values()), [])
        for entry in entries:
            if entry.get('version', 4) == 4:
                return entry.get('addr')
        return entries[0].get('addr') if entries else None

    def delete(self, context, device):
        key = self.credentials.key(device)
        nova = self._nova(key)
        # The device's server, and any other the polls know of; looked
        # up by tag only when neither is known. Then forgotten: the next
        # polls list all (see _unsure), the only lists that show a
        # deleted server gone.
        with self._cache_lock:
            self._created.pop(device['id'], None)
            listing = self._listings.get(self.poll_scope(device))
            ids = set(listing.forget(device['id']) if listing else ())
        if device.get('instance_id'):
            ids.add(device['instance_id'])
        if not ids:
            ids = {s.id for s in self._servers(context, key,
                                               device_tag(device['id']))}
        for server_id in ids:
            self._delete_server(context, nova, server_id)
        self.changed(device['id'])

    def _delete_server(self, context, nova, server_id):
        try:
            self.vim_call(context, 'servers.delete', nova.servers.delete,
                          server_id)
        except exceptions.DriverError as e:
            if isinstance(e.__cause__, nova_exc.NotFound):
                return
            raise

    # ---- actions -----------------------------------------------------------

    def action(self, context, device, action, params):
        try:
            return self._action(context, device, action, params)
        finally:
            self.changed(device['id'])

    def _action(self, context, device, action, params):
        key = self.credentials.key(device)
        nova = self._nova(key)
        server_id = device.get('instance_id')
        server = self.vim_call(context, 'servers.get', nova.servers.get,
                               server_id)
        status = server.status
        if action in ('reboot', 'reset'):
            self.vim_call(context, 'servers.reboot', nova.servers.reboot,
                          server_id, 'HARD' if action == 'reset' else 'SOFT')
        elif action == 'shutdown':
            if status == 'SHUTOFF':
                return 'already shut off'
            self.vim_call(context, 'servers.stop', nova.servers.stop,
                          server_id)
        elif action == 'start':
            if status == 'ACTIVE':
                return 'already running'
            self.vim_call(context, 'servers.start', nova.servers.start,
                          server_id)
        elif action == 'resize':
            return self._resize(context, key, nova, server, params['flavor'])
        elif action == 'snapshot_create':
            name = params.get('name') or 'svm-%s-snapshot' % device['id']
            image_id = self.vim_call(context, 'servers.create_image',
                                     nova.servers.create_image, server_id,
                                     name)
            # Done once Glance has it all (usable to revert to).
            self._wait_image(context, key, image_id)
            return 'snapshot %s (image %s)' % (name, image_id)
        elif action == 'snapshot_delete':
            reply = self.vim_call(
                context, 'images.delete',
                self._service(key, 'image').delete,
                '/v2/images/%s' % params['image_id'], raise_exc=False)
            if reply.status_code not in (204, 404):
                raise exceptions.DriverError(
                    driver='nova', action=action, reason='Glance answered '
                    '%s: %s' % (reply.status_code, reply.text[:200]))
            return 'image %s deleted' % params['image_id']
        elif action == 'snapshot_revert':
            self.vim_call(context, 'servers.rebuild', nova.servers.rebuild,
                          server_id, params['image_id'])
        elif action == 'attach_nic':
            if not (params.get('network_id') or params.get('port_id')):
                raise exceptions.InvalidParameter(
                    field='params.network_id',
                    reason='attach_nic needs params.network_id or '
                           'params.port_id')
            iface = self.vim_call(
                context, 'servers.interface_attach',
                nova.servers.interface_attach, server_id,
                params.get('port_id'), params.get('network_id'),
                params.get('fixed_ip'))
            return 'port %s attached' % getattr(iface, 'port_id', '?')
        elif action == 'detach_nic':
            self.vim_call(context, 'servers.interface_detach',
                          nova.servers.interface_detach, server_id,
                          params['port_id'])
            return 'port %s detached' % params['port_id']
        else:
            return super().action(context, device, action, params)
        return '%s of server %s requested' % (action, server_id)

    def _wait(self, context, action, check, what):
        """``check()`` every poll_interval until it returns something
        (not None), for at most [conductor] device_timeout seconds."""
        deadline = self.conf.conductor.device_timeout
        waited = 0.0
        while True:
            result = check()
            if result is not None:
                return result
            if waited > deadline:
                raise exceptions.DriverError(
                    driver='nova', action=action,
                    reason='%s after %d s' % (what, deadline))
            self.sleep(context, self.options.poll_interval)
            waited += self.options.poll_interval

    def _wait_image(self, context, key, image_id):
        glance = self._service(key, 'image')

        def active():
            reply = self.vim_call(context, 'images.get', glance.get,
                                  '/v2/images/%s' % image_id,
                                  raise_exc=False)
            status = (reply.json().get('status')
                      if reply.status_code == 200 else None)
            if status in ('killed', 'deleted', None):
                raise exceptions.DriverError(
                    driver='nova', action='snapshot_create',
                    reason='image %s is %s' % (image_id, status or 'gone'))
            return True if status == 'active' else None
        self._wait(context, 'snapshot_create', active,
                   'image %s is not active' % image_id)

    def _resize(self, context, key, nova, server, flavor):
        """Resize, then confirm it once Nova waits for the confirmation."""
        flavor_id = self._flavor(context, key, flavor,
                                 (getattr(server, 'tenant_id', None)))
        if (getattr(server, 'flavor', None) or {}).get(
                'original_name') == flavor and server.status == 'ACTIVE':
            return 'already of flavor %s' % flavor
        # Repeated after a crash: a resize under way is waited for.
        busy = (server.status in ('RESIZE', 'VERIFY_RESIZE') or
                (_task(server) or '').startswith('resize'))
        if not busy:
            self.vim_call(context, 'servers.resize', nova.servers.resize,
                          server.id, flavor_id)

        def confirmed():
            current = self.vim_call(context, 'servers.get',
                                    nova.servers.get, server.id)
            if current.status == 'VERIFY_RESIZE':
                self.vim_call(context, 'servers.confirm_resize',
                              nova.servers.confirm_resize, server.id)
                return 'resized to flavor %s' % flavor
            if current.status == 'ERROR':
                fault = getattr(current, 'fault', None) or {}
                raise exceptions.DriverError(
                    driver='nova', action='resize',
                    reason=fault.get('message') or 'the server is in ERROR')
            return None
        return self._wait(context, 'resize', confirmed, 'no VERIFY_RESIZE')


class _Unknown(Exception):
    pass


def _task(server):
    return getattr(server, 'OS-EXT-STS:task_state', None)
