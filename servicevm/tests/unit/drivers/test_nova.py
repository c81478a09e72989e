"""Tests of the Nova device driver and of what it shares with the Heat
driver (servicevm.drivers.device.openstack): a fake novaclient stands in
for Nova, so no test talks to a cloud."""

import itertools
import threading
import time
from unittest import mock

from keystoneauth1 import exceptions as ks_exc
from novaclient import exceptions as nova_exc
from oslo_config import cfg
from oslo_utils import uuidutils

from servicevm.common import context
from servicevm.common import exceptions
from servicevm.common import states
from servicevm.drivers.device import base as driver_base
from servicevm.drivers.device import nova
from servicevm.drivers.device import openstack
from servicevm.tests import base

CONF = cfg.CONF

TASK = 'OS-EXT-STS:task_state'
POWER = 'OS-EXT-STS:power_state'


# ---- a fake novaclient -----------------------------------------------------

class FakeServer:

    def __init__(self, server_id, status='BUILD', metadata=None, tags=(),
                 addresses=None, fault=None, flavor=None, task_state=None,
                 power_state=0, updated='2026-11-22T08:00:00Z', **kwargs):
        self.id = server_id
        self.updated = updated
        self.status = status
        self.metadata = dict(metadata or {})
        self.tags = list(tags)
        self.addresses = addresses or {}
        self.fault = fault
        self.flavor = flavor
        self.kwargs = kwargs
        setattr(self, TASK, task_state)
        setattr(self, POWER, power_state)


class FakeServers:
    """The servers manager: a store of FakeServer, and every call made."""

    def __init__(self):
        self.store = {}
        self.calls = []
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        # Failures to raise, by method name, first in first out.
        self.failures = {}
        # Nova's [api] max_limit: a list without limit=-1 returns at most
        # this many servers (None: no paging).
        self.page_size = None
        # A hook run by get (e.g. to move a resize along).
        self.on_get = None
        # An Event list waits for (None: list answers at once).
        self.list_gate = None

    def _record(self, method, *args, **kwargs):
        with self.lock:
            self.calls.append((method, args, kwargs))
            pending = self.failures.get(method)
            if pending:
                raise pending.pop(0)

    def called(self, name):
        return [c for c in self.calls if c[0] == name]

    def add(self, device_id=None, status='ACTIVE', tags=None, **kwargs):
        server_id = 'srv-%d' % next(self.ids)
        metadata = kwargs.pop('metadata', {})
        if device_id is not None:
            metadata.setdefault('servicevm_device_id', device_id)
            if tags is None:
                tags = [nova.TAG, nova.device_tag(device_id)]
        server = FakeServer(server_id, status=status, metadata=metadata,
                            tags=tags or [], **kwargs)
        self.store[server_id] = server
        return server

    def list(self, detailed=True, search_opts=None, limit=None, **kwargs):
        self._record('list', search_opts=search_opts, limit=limit, **kwargs)
        if self.list_gate is not None:
            self.list_gate.wait(5)
        tag = (search_opts or {}).get('tags')
        since = (search_opts or {}).get('changes-since')
        found = [s for s in list(self.store.values())
                 if (tag is None or tag in s.tags) and
                 (since is None or s.updated >= since)]
        marker = kwargs.get('marker')
        if marker is not None:
            ids = [s.id for s in found]
            found = found[ids.index(marker) + 1:]
        size = min(x for x in (limit, self.page_size, len(found))
                   if x is not None and x >= 0)
        return found[:size]

    def create(self, **kwargs):
        self._record('create', **kwargs)
        server_id = 'srv-%d' % next(self.ids)
        server = FakeServer(server_id, metadata=kwargs.get('meta'),
                            tags=kwargs.get('tags') or [])
        self.store[server_id] = server
        return server

    def delete(self, server_id):
        self._record('delete', server_id)
        if server_id not in self.store:
            raise nova_exc.NotFound(404)
        del self.store[server_id]

    def get(self, server_id):
        self._record('get', server_id)
        if self.on_get is not None:
            self.on_get(self.store.get(server_id))
        if server_id not in self.store:
            raise nova_exc.NotFound(404)
        return self.store[server_id]

    def reboot(self, server_id, reboot_type='SOFT'):
        self._record('reboot', server_id, reboot_type)

    def stop(self, server_id):
        self._record('stop', server_id)

    def start(self, server_id):
        self._record('start', server_id)

    def resize(self, server_id, flavor):
        self._record('resize', server_id, flavor)
        server = self.store[server_id]
        if server.status != 'ACTIVE' and server.status != 'SHUTOFF':
            # As Nova does: one resize at a time.
            raise nova_exc.ClientException(
                409, 'Cannot resize instance while it is in task_state '
                     'resize_migrating')
        server.status = 'RESIZE'

    def confirm_resize(self, server_id):
        self._record('confirm_resize', server_id)
        self.store[server_id].status = 'ACTIVE'

    def create_image(self, server_id, name):
        self._record('create_image', server_id, name)
        return 'img-snap'

    def rebuild(self, server_id, image):
        self._record('rebuild', server_id, image)

    def interface_attach(self, server_id, port_id, net_id, fixed_ip):
        self._record('interface_attach', server_id, port_id, net_id,
                     fixed_ip)
        return mock.Mock(port_id=port_id or 'port-new')

    def interface_detach(self, server_id, port_id):
        self._record('interface_detach', server_id, port_id)


class FakeFlavor:

    def __init__(self, flavor_id, name):
        self.id = flavor_id
        self.name = name


class FakeFlavors:

    def __init__(self):
        self.flavors = [FakeFlavor('f-1', 'm1.tiny'),
                        FakeFlavor('f-2', 'm1.small')]
        self.calls = []
        self.get_error = None

    def get(self, flavor_id):
        self.calls.append(('get', flavor_id))
        if self.get_error is not None:
            raise self.get_error
        for flavor in self.flavors:
            if flavor.id == flavor_id:
                return flavor
        raise nova_exc.NotFound(404)

    def list(self):
        self.calls.append(('list',))
        return list(self.flavors)


CIRROS = '0b7b3f0e-7c1a-4a57-9d2e-8f1f4c2b6a01'
UBUNTU = '5d2c9e47-3b8f-4e6a-a1c0-7f9e2d4b8c02'


class FakeGlance:
    """Glance's image API through a keystoneauth Adapter."""

    def __init__(self):
        self.images = {'cirros': CIRROS, 'ubuntu': UBUNTU}   # name -> id
        self.calls = []

    def get(self, url, raise_exc=True, params=None):
        self.calls.append((url, params))
        if url == '/v2/images':
            return FakeReply(200, {'images': [
                {'id': i} for n, i in self.images.items()
                if n == params.get('name')]})
        image_id = url.rsplit('/', 1)[-1]
        if image_id in self.images.values():
            return FakeReply(200, {'id': image_id})
        return FakeReply(404, text='no image %s' % image_id)


class FakeNova:

    def __init__(self):
        self.servers = FakeServers()
        self.flavors = FakeFlavors()


class FakeReply:

    def __init__(self, status_code, body=None, text=''):
        self.status_code = status_code
        self._body = body
        self.text = text

    def json(self):
        return self._body


class FakeAdapter:
    """A keystoneauth Adapter of Neutron or Glance: answers from a list
    of replies (the last one repeats)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def _answer(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        if len(self.replies) > 1:
            return self.replies.pop(0)
        return self.replies[0]

    def get(self, url, **kwargs):
        return self._answer('GET', url, **kwargs)

    def delete(self, url, **kwargs):
        return self._answer('DELETE', url, **kwargs)


# ---- the tests -------------------------------------------------------------

class NovaTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(poll_interval=0.05, retry_backoff=0.01, call_retries=3,
                    full_list_interval=0, group='nova')
        self.driver = nova.NovaDeviceDriver(CONF)
        self.nova = FakeNova()
        self.servers = self.nova.servers
        # Not undone: the driver's poll thread outlives the test (it
        # idles for a minute) and must not reach for real credentials.
        self.nova_factory = self.driver._nova = mock.Mock(
            return_value=self.nova)
        self.glance = FakeGlance()
        self.driver._service = self.service
        self.ctx = context.get_admin_context()
        self.ctx.operation_id = 'op-1'

    def service(self, key, service_type):
        """Adapters of the other services: Glance here, others by the
        tests that need them."""
        self.assertEqual('image', service_type)
        return self.glance

    def device(self, attributes=None, **values):
        device = {'id': uuidutils.generate_uuid(), 'name': 'd',
                  'project_id': 'project-a', 'instance_id': None,
                  'kwargs': {}, 'service_contexts': [],
                  'template': {'attributes': dict(
                      {'image': 'cirros', 'flavor': 'm1.tiny'}
                      if attributes is None else attributes)}}
        device.update(values)
        return device


class TestCreate(NovaTestCase):

    def test_create_builds_the_server(self):
        net_a, net_b, mgmt = (uuidutils.generate_uuid() for _ in range(3))
        device = self.device(
            attributes={'image': 'cirros', 'flavor': 'm1.small',
                        'key_name': 'kp', 'user_data': '#cloud-config',
                        'config_drive': True,
                        'metadata': {'role': 'fw', 'n': 1},
                        'availability_zone': 'az1',
                        'networks': [net_a], 'mgmt_network': mgmt},
            service_contexts=[{'network_id': net_b},
                              {'port_id': 'port-1', 'network_id': net_b}])

        server_id = self.driver.create(self.ctx, device)

        creates = self.servers.called('create')
        self.assertEqual(1, len(creates))
        kwargs = creates[0][2]
        self.assertEqual(self.servers.store[server_id].id, server_id)
        self.assertEqual('d', kwargs['name'])
        self.assertEqual(CIRROS, kwargs['image'])
        # Resolved by name: the id lookup failed, the list had it.
        self.assertEqual('f-2', kwargs['flavor'])
        self.assertEqual([('get', 'm1.small'), ('list',)],
                         self.nova.flavors.calls)
        self.assertEqual('kp', kwargs['key_name'])
        self.assertEqual('#cloud-config', kwargs['userdata'])
        self.assertIs(True, kwargs['config_drive'])
        self.assertEqual('az1', kwargs['availability_zone'])
        self.assertEqual({'role': 'fw', 'n': '1',
                          'servicevm_device_id': device['id']},
                         kwargs['meta'])
        self.assertEqual(['servicevm', 'svm-dev-%s' % device['id'],
                          'svm-op-op-1'], kwargs['tags'])
        self.assertEqual([{'net-id': mgmt}, {'net-id': net_a},
                          {'net-id': net_b}, {'port-id': 'port-1'}],
                         kwargs['nics'])
        # The first thing create does is look for an earlier server.
        self.assertEqual({'tags': 'svm-dev-%s' % device['id']},
                         self.servers.called('list')[0][2]['search_opts'])

    def test_create_defaults(self):
        device = self.device(name=None)
        del self.ctx.operation_id

        self.driver.create(self.ctx, device)

        kwargs = self.servers.called('create')[0][2]
        self.assertEqual('svm-%s' % device['id'], kwargs['name'])
        self.assertEqual('f-1', kwargs['flavor'])
        self.assertEqual('none', kwargs['nics'])
        self.assertIsNone(kwargs['key_name'])
        self.assertIsNone(kwargs['userdata'])
        self.assertIsNone(kwargs['config_drive'])
        self.assertEqual({'servicevm_device_id': device['id']},
                         kwargs['meta'])
        self.assertEqual(['servicevm', 'svm-dev-%s' % device['id']],
                         kwargs['tags'])

    def test_flavor_and_image_by_id(self):
        device = self.device(attributes={'image': UBUNTU,
                                         'flavor': 'f-2'})
        self.driver.create(self.ctx, device)
        kwargs = self.servers.called('create')[0][2]
        self.assertEqual(UBUNTU, kwargs['image'])
        self.assertEqual('f-2', kwargs['flavor'])
        # Found by id: no list of every flavor.
        self.assertEqual([('get', 'f-2')], self.nova.flavors.calls)

    def test_unknown_image_is_a_clear_error(self):
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, self.device({'image': 'nope',
                                                     'flavor': 'm1.tiny'}))
        self.assertIn("image 'nope': no image has that name or id", str(e))
        self.assertEqual([], self.servers.called('create'))

    def test_image_id_of_no_image_is_looked_up_as_a_name(self):
        missing = uuidutils.generate_uuid()
        self.assertRaises(exceptions.DriverError, self.driver.create,
                          self.ctx, self.device({'image': missing,
                                                 'flavor': 'm1.tiny'}))
        self.assertEqual([('/v2/images/%s' % missing, None),
                          ('/v2/images', {'name': missing})],
                         self.glance.calls)

    def test_names_are_resolved_once(self):
        self.driver.create(self.ctx, self.device())
        self.driver.create(self.ctx, self.device())
        self.assertEqual([('/v2/images', {'name': 'cirros'})],
                         self.glance.calls)
        self.assertEqual([('get', 'm1.tiny'), ('list',)],
                         self.nova.flavors.calls)
        self.assertEqual(2, len(self.servers.called('create')))

    def test_none_networks_with_service_contexts(self):
        net = uuidutils.generate_uuid()
        device = self.device(
            attributes={'image': 'cirros', 'flavor': 'm1.tiny',
                        'networks': 'none'},
            service_contexts=[{'network_id': net}])
        self.driver.create(self.ctx, device)
        self.assertEqual([{'net-id': net}],
                         self.servers.called('create')[0][2]['nics'])

    def test_mgmt_network_not_repeated(self):
        mgmt = uuidutils.generate_uuid()
        device = self.device(attributes={
            'image': 'cirros', 'flavor': 'm1.tiny', 'networks': [mgmt],
            'mgmt_network': mgmt})
        self.driver.create(self.ctx, device)
        self.assertEqual([{'net-id': mgmt}],
                         self.servers.called('create')[0][2]['nics'])

    def test_mgmt_network_by_name_is_not_added(self):
        device = self.device(attributes={
            'image': 'cirros', 'flavor': 'm1.tiny', 'mgmt_network': 'mgmt'})
        self.driver.create(self.ctx, device)
        self.assertEqual('none',
                         self.servers.called('create')[0][2]['nics'])

    def test_kwargs_override_the_template(self):
        device = self.device(kwargs={'image': 'ubuntu', 'flavor': 'm1.small',
                                     'key_name': 'mine',
                                     'networks': ['ignored']})
        self.driver.create(self.ctx, device)
        kwargs = self.servers.called('create')[0][2]
        self.assertEqual(UBUNTU, kwargs['image'])
        self.assertEqual('f-2', kwargs['flavor'])
        self.assertEqual('mine', kwargs['key_name'])
        # networks is not one of the attributes kwargs may override.
        self.assertEqual('none', kwargs['nics'])

    def test_create_is_idempotent(self):
        device = self.device()
        first = self.driver.create(self.ctx, device)
        second = self.driver.create(self.ctx, device)
        self.assertEqual(first, second)
        self.assertEqual(1, len(self.servers.called('create')))

    def test_new_device_is_not_looked_up(self):
        device = self.device()
        self.driver.create(self.ctx, device, new=True)
        self.assertEqual([], self.servers.called('list'))
        self.assertEqual(1, len(self.servers.called('create')))

    def test_existing_server_is_returned(self):
        device = self.device()
        server = self.servers.add(device['id'], status='BUILD')
        self.assertEqual(server.id, self.driver.create(self.ctx, device))
        self.assertEqual([], self.servers.called('create'))
        self.assertEqual([], self.servers.called('delete'))

    def test_server_in_error_is_replaced(self):
        device = self.device()
        failed = self.servers.add(device['id'], status='ERROR')
        server_id = self.driver.create(self.ctx, device)
        self.assertNotEqual(failed.id, server_id)
        self.assertEqual([('delete', (failed.id,), {})],
                         self.servers.called('delete'))
        self.assertEqual(1, len(self.servers.called('create')))
        self.assertNotIn(failed.id, self.servers.store)

    def test_server_being_deleted_is_replaced(self):
        device = self.device()
        dying = self.servers.add(device['id'], status='ACTIVE',
                                 task_state='deleting')
        self.servers.failures['delete'] = [nova_exc.NotFound(404)]
        server_id = self.driver.create(self.ctx, device)
        self.assertNotEqual(dying.id, server_id)
        self.assertEqual(1, len(self.servers.called('create')))

    def test_missing_image(self):
        device = self.device(attributes={'flavor': 'm1.tiny'})
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, device)
        self.assertIn('no image attribute', str(e))
        self.assertEqual([], self.servers.called('create'))

    def test_missing_flavor(self):
        device = self.device(attributes={'image': 'cirros'})
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, device)
        self.assertIn('no flavor attribute', str(e))

    def test_unknown_image(self):
        device = self.device(attributes={'image': 'nope',
                                         'flavor': 'm1.tiny'})
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, device)
        self.assertIn("image 'nope'", str(e))
        self.assertEqual([], self.servers.called('create'))

    def test_unknown_flavor(self):
        device = self.device(attributes={'image': 'cirros',
                                         'flavor': 'm9.huge'})
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, device)
        self.assertIn("no flavor named or with id 'm9.huge'", str(e))

    def test_flavor_lookup_error_is_a_driver_error(self):
        # A 503 of flavors.get is retried like any VIM call...
        calls = []

        def get(flavor_id):
            calls.append(flavor_id)
            if len(calls) == 1:
                raise nova_exc.ClientException(503)
            return FakeFlavor('f-1', 'm1.tiny')
        self.nova.flavors.get = get
        self.driver.create(self.ctx, self.device(attributes={
            'image': 'cirros', 'flavor': 'f-1'}))
        self.assertEqual(['f-1', 'f-1'], calls)
        # ...and a 403 comes out as a DriverError with the VIM's message.
        self.nova.flavors.get = mock.Mock(
            side_effect=nova_exc.Forbidden(403, 'Policy forbids it'))
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, self.device(attributes={
                                  'image': 'cirros', 'flavor': 'f-9'}))
        self.assertIn('Policy forbids it', str(e))


class TestRetries(NovaTestCase):

    def test_transient_error_is_retried(self):
        self.servers.failures['create'] = [
            nova_exc.ClientException(503), nova_exc.ClientException(503)]
        server_id = self.driver.create(self.ctx, self.device())
        self.assertIn(server_id, self.servers.store)
        self.assertEqual(3, len(self.servers.called('create')))
        self.assertEqual(3, self.driver.calls['servers.create'])

    def test_connection_error_is_retried(self):
        self.servers.failures['create'] = [ks_exc.ConnectFailure('down')]
        self.driver.create(self.ctx, self.device())
        self.assertEqual(2, len(self.servers.called('create')))

    def test_retries_are_bounded(self):
        self.servers.failures['create'] = [
            nova_exc.ClientException(503, 'busy') for _ in range(10)]
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, self.device())
        # call_retries = 3: four tries in all.
        self.assertEqual(4, len(self.servers.called('create')))
        self.assertIn('busy (HTTP 503)', str(e))

    def test_no_retries(self):
        self.config(call_retries=0, group='nova')
        driver = nova.NovaDeviceDriver(CONF)
        driver._nova = mock.Mock(return_value=self.nova)
        driver._service = self.service
        self.servers.failures['create'] = [nova_exc.ClientException(503)]
        self.assertRaises(exceptions.DriverError, driver.create, self.ctx,
                          self.device())
        self.assertEqual(1, len(self.servers.called('create')))

    def test_client_error_is_not_retried(self):
        self.servers.failures['create'] = [
            nova_exc.ClientException(400, 'Invalid key_name provided.')]
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              self.ctx, self.device())
        self.assertEqual(1, len(self.servers.called('create')))
        self.assertEqual('Driver nova failed to servers.create: Invalid '
                         'key_name provided. (HTTP 400)', str(e))
        self.assertFalse(e.retryable)
        self.assertIsInstance(e.__cause__, nova_exc.ClientException)

    def test_retry_wait_is_interrupted(self):
        self.config(retry_backoff=30, group='nova')
        driver = nova.NovaDeviceDriver(CONF)
        driver._nova = mock.Mock(return_value=self.nova)
        driver._service = self.service
        self.servers.failures['create'] = [nova_exc.ClientException(503)]
        self.ctx.interrupt = threading.Event()
        self.ctx.interrupt.set()
        self.ctx.interrupt_reason = 'cancelled'
        e = self.assertRaises(exceptions.Interrupted, driver.create,
                              self.ctx, self.device())
        self.assertIn('cancelled', str(e))
        self.assertEqual(1, len(self.servers.called('create')))

    def test_servicevm_errors_pass_through(self):
        error = exceptions.Interrupted(reason='x')
        fn = mock.Mock(side_effect=error)
        self.assertRaises(exceptions.Interrupted, self.driver.vim_call,
                          self.ctx, 'x', fn)
        self.assertEqual(1, fn.call_count)

    def test_http_status(self):
        self.assertEqual(404, openstack.http_status(nova_exc.NotFound(404)))
        self.assertEqual(503, openstack.http_status(
            nova_exc.ClientException(503)))
        self.assertEqual(502, openstack.http_status(
            mock.Mock(spec=['response'], response=mock.Mock(
                status_code=502))))
        self.assertIsNone(openstack.http_status(ValueError('x')))

    def test_vim_message(self):
        self.assertEqual('boom', openstack.OpenStackDriver.vim_message(
            ValueError('boom')))
        self.assertEqual('Not found (HTTP 404)',
                         openstack.OpenStackDriver.vim_message(
                             nova_exc.NotFound(404)))


class TestPoll(NovaTestCase):

    def poll_one(self, device):
        return self.driver.poll(self.ctx, [device])[device['id']]

    def test_active(self):
        device = self.device(attributes={'image': 'cirros',
                                         'flavor': 'm1.tiny',
                                         'mgmt_network': 'mgmt'})
        server = self.servers.add(
            device['id'], status='ACTIVE', power_state=1,
            addresses={'data': [{'addr': '10.0.0.5', 'version': 4}],
                       'mgmt': [{'addr': 'fd00::5', 'version': 6},
                                {'addr': '192.168.1.5', 'version': 4}]},
            flavor={'vcpus': 2, 'ram': 2048, 'disk': 20})
        result = self.poll_one(device)
        self.assertEqual('active', result.state)
        self.assertEqual(states.POWER_RUNNING, result.power_state)
        self.assertEqual('192.168.1.5', result.mgmt_address)
        self.assertIsNone(result.error)
        self.assertEqual({'vcpus': 2, 'memory_mb': 2048, 'disk_gb': 20},
                         result.usage)
        self.assertEqual({'server_id': server.id, 'status': 'ACTIVE',
                          'task_state': None}, result.details)
        # One query, for every server of servicevm.
        self.assertEqual([{'tags': 'servicevm'}],
                         [c[2]['search_opts']
                          for c in self.servers.called('list')])

    def test_mgmt_address_defaults_to_the_first_network(self):
        device = self.device()
        self.servers.add(device['id'], addresses={
            'data': [{'addr': '10.0.0.5', 'version': 4}]})
        self.assertEqual('10.0.0.5', self.poll_one(device).mgmt_address)

    def test_mgmt_address_ipv6_only(self):
        device = self.device()
        self.servers.add(device['id'], addresses={
            'data': [{'addr': 'fd00::5', 'version': 6}]})
        self.assertEqual('fd00::5', self.poll_one(device).mgmt_address)

    def test_mgmt_network_by_id(self):
        mgmt = uuidutils.generate_uuid()
        device = self.device(attributes={'image': 'cirros',
                                         'flavor': 'm1.tiny',
                                         'mgmt_network': mgmt})
        self.servers.add(device['id'], addresses={
            'data': [{'addr': '10.0.0.5', 'version': 4}],
            'mgmt-net': [{'addr': '192.168.1.5', 'version': 4}]})
        neutron = FakeAdapter([FakeReply(200, {'network': {
            'name': 'mgmt-net'}})])
        with mock.patch.object(self.driver, '_service',
                               return_value=neutron) as service:
            self.assertEqual('192.168.1.5',
                             self.poll_one(device).mgmt_address)
            self.assertEqual('192.168.1.5',
                             self.poll_one(device).mgmt_address)
        service.assert_called_with(None, 'network')
        # The name is looked up once.
        self.assertEqual([('GET', '/v2.0/networks/%s' % mgmt,
                           {'raise_exc': False})], neutron.calls)

    def test_mgmt_network_lookup_failure_is_not_cached(self):
        mgmt = uuidutils.generate_uuid()
        device = self.device(attributes={'image': 'cirros',
                                         'flavor': 'm1.tiny',
                                         'mgmt_network': mgmt})
        self.servers.add(device['id'], addresses={
            'mgmt-net': [{'addr': '192.168.1.5', 'version': 4}]})
        neutron = FakeAdapter([
            FakeReply(503, text='busy'),
            FakeReply(200, {'network': {'name': 'mgmt-net'}})])
        with mock.patch.object(self.driver, '_service',
                               return_value=neutron):
            self.poll_one(device)
            self.assertEqual('192.168.1.5',
                             self.poll_one(device).mgmt_address)

    def test_building(self):
        device = self.device()
        self.servers.add(device['id'], status='BUILD', task_state='spawning')
        result = self.poll_one(device)
        self.assertEqual('building', result.state)
        self.assertEqual(states.POWER_UNKNOWN, result.power_state)
        self.assertIsNone(result.mgmt_address)
        self.assertEqual({}, result.usage)

    def test_active_with_a_task_is_building(self):
        device = self.device()
        self.servers.add(device['id'], status='ACTIVE', power_state=1,
                         task_state='rebooting')
        result = self.poll_one(device)
        self.assertEqual('building', result.state)
        self.assertEqual('rebooting', result.details['task_state'])

    def test_stopped(self):
        device = self.device()
        self.servers.add(device['id'], status='SHUTOFF', power_state=4)
        result = self.poll_one(device)
        self.assertEqual('stopped', result.state)
        self.assertEqual(states.POWER_SHUTOFF, result.power_state)

    def test_paused(self):
        device = self.device()
        self.servers.add(device['id'], status='PAUSED', power_state=3)
        result = self.poll_one(device)
        self.assertEqual('paused', result.state)
        self.assertEqual(states.POWER_PAUSED, result.power_state)

    def test_unknown_status_is_building(self):
        device = self.device()
        self.servers.add(device['id'], status='MIGRATING')
        self.assertEqual('building', self.poll_one(device).state)

    def test_error(self):
        device = self.device()
        self.servers.add(device['id'], status='ERROR',
                         task_state='spawning',
                         fault={'message': 'No valid host was found.',
                                'code': 500})
        result = self.poll_one(device)
        # A task under way does not hide the error.
        self.assertEqual('error', result.state)
        self.assertEqual('No valid host was found.', result.error)

    def test_error_without_fault(self):
        device = self.device()
        self.servers.add(device['id'], status='ERROR')
        result = self.poll_one(device)
        self.assertEqual('error', result.state)
        self.assertEqual('the server is in ERROR', result.error)

    def test_gone(self):
        device = self.device()
        self.servers.add(uuidutils.generate_uuid())
        result = self.poll_one(device)
        self.assertEqual('gone', result.state)

    def test_instance_id_chooses_the_server(self):
        device = self.device()
        self.servers.add(device['id'], status='ERROR')
        chosen = self.servers.add(device['id'], status='ACTIVE')
        device['instance_id'] = chosen.id
        result = self.poll_one(device)
        self.assertEqual('active', result.state)
        self.assertEqual(chosen.id, result.details['server_id'])

    def test_many_devices_one_query(self):
        devices = [self.device() for _ in range(5)]
        for device in devices[:4]:
            self.servers.add(device['id'], status='ACTIVE')
        results = self.driver.poll(self.ctx, devices)
        self.assertEqual(['active'] * 4 + ['gone'],
                         [results[d['id']].state for d in devices])
        self.assertEqual(1, len(self.servers.called('list')))

    def test_batching_across_threads(self):
        devices = [self.device() for _ in range(20)]
        for device in devices:
            self.servers.add(device['id'], status='ACTIVE')
        barrier = threading.Barrier(len(devices))
        results, errors = {}, []

        def waiter(device):
            ctx = context.get_admin_context()
            ctx.interrupt = threading.Event()
            try:
                barrier.wait(5)
                # As the conductor's Work.poll does.
                results.update(self.driver.poll(ctx, [device]))
            except Exception as e:
                errors.append(e)

        threads = [threading.Thread(target=waiter, args=(d,))
                   for d in devices]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        self.assertEqual([], errors)
        self.assertEqual({d['id'] for d in devices}, set(results))
        self.assertEqual({'active'}, {r.state for r in results.values()})
        self.assertLessEqual(len(self.servers.called('list')), 3)
        self.assertEqual(len(self.servers.called('list')),
                         self.driver.calls['servers.list'])

    def test_a_poll_sees_a_later_query(self):
        device = self.device()
        server = self.servers.add(device['id'], status='BUILD')
        self.assertEqual('building', self.poll_one(device).state)
        server.status = 'ACTIVE'
        self.assertEqual('active', self.poll_one(device).state)
        self.assertGreaterEqual(len(self.servers.called('list')), 2)

    def test_no_query_without_waiters(self):
        device = self.device()
        self.servers.add(device['id'])
        self.poll_one(device)
        # Several poll intervals with nobody waiting: no query.
        threading.Event().wait(0.2)
        self.assertEqual(1, len(self.servers.called('list')))

    def hold_queries(self):
        """Nova answers no list until the test ends."""
        self.servers.list_gate = threading.Event()
        self.addCleanup(self.servers.list_gate.set)

    def test_poll_interrupted(self):
        device = self.device()
        self.servers.add(device['id'])
        self.hold_queries()
        self.ctx.interrupt = threading.Event()
        self.ctx.interrupt.set()
        self.ctx.interrupt_reason = 'x'
        e = self.assertRaises(exceptions.Interrupted, self.driver.poll,
                              self.ctx, [device])
        self.assertIn('x', str(e))

    def test_poll_interrupted_while_waiting(self):
        device = self.device()
        self.hold_queries()
        self.ctx.interrupt = threading.Event()
        self.ctx.interrupt_reason = 'cancelled'
        timer = threading.Timer(0.05, self.ctx.interrupt.set)
        timer.start()
        self.addCleanup(timer.cancel)
        started = time.monotonic()
        e = self.assertRaises(exceptions.Interrupted, self.driver.poll,
                              self.ctx, [device])
        self.assertIn('cancelled', str(e))
        # The waiter checks the interrupt every 0.1 s.
        self.assertLess(time.monotonic() - started, 2)

    def test_poll_error_reaches_every_waiter(self):
        self.config(call_retries=0, group='nova')
        driver = nova.NovaDeviceDriver(CONF)
        driver._nova = mock.Mock(return_value=self.nova)
        self.servers.failures['list'] = [
            nova_exc.ClientException(500, 'db down')]
        devices = [self.device(), self.device()]
        e = self.assertRaises(exceptions.DriverError, driver.poll,
                              self.ctx, devices)
        self.assertIn('db down', str(e))
        # The next cycle answers again.
        self.assertEqual('gone', driver.poll(
            self.ctx, devices)[devices[0]['id']].state)

    def test_poll_batch_without_answer(self):
        device = self.device()
        with mock.patch.object(self.driver, 'poll_batch', return_value={}):
            e = self.assertRaises(exceptions.DriverError, self.driver.poll,
                                  self.ctx, [device])
        self.assertIn('no answer for device %s' % device['id'], str(e))

    def test_pollers_by_credentials(self):
        self.config(credentials='trust', group='vim')
        mine = self.device(trust_id='trust-1')
        service = self.device()
        self.servers.add(mine['id'])
        self.servers.add(service['id'])
        results = self.driver.poll(self.ctx, [mine, service])
        self.assertEqual({'active'}, {r.state for r in results.values()})
        # One poller per project (whichever trust), one for the service.
        self.assertEqual({'project:%s' % mine['project_id'], None},
                         set(self.driver._pollers))
        self.assertEqual({'trust-1', None},
                         {c.args[0] for c in self.nova_factory.mock_calls})

    def test_all_pages_are_read(self):
        self.servers.page_size = 3
        self.config(list_page_size=3, group='nova')
        devices = [self.device() for _ in range(5)]
        for device in devices:
            self.servers.add(device['id'], status='ACTIVE')
        results = self.driver.poll(self.ctx, devices)
        self.assertEqual(['active'] * 5,
                         [results[d['id']].state for d in devices])


class TestDelete(NovaTestCase):

    def test_without_instance_id_deletes_every_tagged_server(self):
        device = self.device()
        first = self.servers.add(device['id'])
        second = self.servers.add(device['id'], status='ERROR')
        other = self.servers.add(uuidutils.generate_uuid())
        self.driver.delete(self.ctx, device)
        self.assertEqual({first.id, second.id},
                         {c[1][0] for c in self.servers.called('delete')})
        self.assertEqual([other.id], list(self.servers.store))
        self.assertEqual({'tags': 'svm-dev-%s' % device['id']},
                         self.servers.called('list')[0][2]['search_opts'])

    def test_deletes_its_server_and_those_the_last_poll_saw(self):
        device = self.device()
        first = self.servers.add(device['id'])
        second = self.servers.add(device['id'], status='ERROR')
        other = self.servers.add(uuidutils.generate_uuid())
        device['instance_id'] = first.id
        self.driver.poll_batch(None, [device])
        lists = len(self.servers.called('list'))
        self.driver.delete(self.ctx, device)
        self.assertEqual({first.id, second.id},
                         {c[1][0] for c in self.servers.called('delete')})
        self.assertEqual([other.id], list(self.servers.store))
        # No lookup: the instance id and the poll said it all.
        self.assertEqual(lists, len(self.servers.called('list')))

    def test_instance_id_without_tag_is_deleted(self):
        device = self.device()
        untagged = self.servers.add(tags=[])
        device['instance_id'] = untagged.id
        self.driver.delete(self.ctx, device)
        self.assertEqual([('delete', (untagged.id,), {})],
                         self.servers.called('delete'))

    def test_gone_is_not_an_error(self):
        device = self.device(instance_id='srv-gone')
        self.driver.delete(self.ctx, device)
        self.assertEqual([('delete', ('srv-gone',), {})],
                         self.servers.called('delete'))
        # Nothing at all to delete.
        self.driver.delete(self.ctx, self.device())

    def test_not_found_while_deleting(self):
        device = self.device()
        self.servers.add(device['id'])
        self.servers.failures['delete'] = [nova_exc.NotFound(404)]
        self.driver.delete(self.ctx, device)

    def test_other_errors_are_raised(self):
        device = self.device()
        self.servers.add(device['id'])
        self.servers.failures['delete'] = [
            nova_exc.Forbidden(403, 'not yours')]
        e = self.assertRaises(exceptions.DriverError, self.driver.delete,
                              self.ctx, device)
        self.assertIn('not yours', str(e))


class TestActions(NovaTestCase):

    def setUp(self):
        super().setUp()
        self.device_ = self.device()
        self.server = self.servers.add(self.device_['id'], status='ACTIVE')
        self.device_['instance_id'] = self.server.id

    def act(self, action, params=None):
        self.driver.check_action(action, params)
        return self.driver.action(self.ctx, self.device_, action,
                                  params or {})

    def test_reboot(self):
        output = self.act('reboot')
        self.assertEqual([('reboot', (self.server.id, 'SOFT'), {})],
                         self.servers.called('reboot'))
        self.assertEqual('reboot of server %s requested' % self.server.id,
                         output)

    def test_reset(self):
        self.act('reset')
        self.assertEqual([('reboot', (self.server.id, 'HARD'), {})],
                         self.servers.called('reboot'))

    def test_shutdown(self):
        self.act('shutdown')
        self.assertEqual(1, len(self.servers.called('stop')))

    def test_shutdown_when_shut_off(self):
        self.server.status = 'SHUTOFF'
        self.assertEqual('already shut off', self.act('shutdown'))
        self.assertEqual([], self.servers.called('stop'))

    def test_start(self):
        self.server.status = 'SHUTOFF'
        self.act('start')
        self.assertEqual([('start', (self.server.id,), {})],
                         self.servers.called('start'))

    def test_start_when_active(self):
        self.assertEqual('already running', self.act('start'))
        self.assertEqual([], self.servers.called('start'))

    def test_resize(self):
        def on_get(server):
            # Nova's resize runs, then waits for its confirmation.
            if server.status == 'RESIZE':
                server.status = 'VERIFY_RESIZE'
        self.servers.on_get = on_get
        output = self.act('resize', {'flavor': 'm1.small'})
        self.assertEqual('resized to flavor m1.small', output)
        self.assertEqual([('resize', (self.server.id, 'f-2'), {})],
                         self.servers.called('resize'))
        self.assertEqual([('confirm_resize', (self.server.id,), {})],
                         self.servers.called('confirm_resize'))
        self.assertEqual('ACTIVE', self.server.status)

    def test_resize_waits(self):
        gets = []

        def on_get(server):
            gets.append(server.status)
            if len(gets) == 3:
                server.status = 'VERIFY_RESIZE'
        self.servers.on_get = on_get
        self.act('resize', {'flavor': 'f-2'})
        self.assertEqual(1, len(self.servers.called('confirm_resize')))
        # The action's own get, then the resize's until VERIFY_RESIZE.
        self.assertEqual(['ACTIVE', 'RESIZE', 'RESIZE'], gets)

    def test_resize_already_waiting_for_confirmation(self):
        self.server.status = 'VERIFY_RESIZE'
        self.act('resize', {'flavor': 'm1.small'})
        self.assertEqual([], self.servers.called('resize'))
        self.assertEqual(1, len(self.servers.called('confirm_resize')))

    def test_resize_repeated_while_resizing(self):

        def on_get(server):
            if len(self.servers.called('get')) >= 3:
                server.status = 'VERIFY_RESIZE'
        self.server.status = 'RESIZE'
        self.servers.on_get = on_get
        self.assertEqual('resized to flavor m1.small',
                         self.act('resize', {'flavor': 'm1.small'}))
        self.assertEqual([], self.servers.called('resize'))
        self.assertEqual(1, len(self.servers.called('confirm_resize')))

    def test_resize_error(self):
        def on_get(server):
            if server.status == 'RESIZE':
                server.status = 'ERROR'
                server.fault = {'message': 'No valid host was found.'}
        self.servers.on_get = on_get
        e = self.assertRaises(exceptions.DriverError, self.act, 'resize',
                              {'flavor': 'm1.small'})
        self.assertIn('No valid host was found.', str(e))
        self.assertEqual([], self.servers.called('confirm_resize'))

    def test_resize_timeout(self):
        self.config(device_timeout=1, group='conductor')
        with mock.patch.object(self.driver, 'sleep') as sleep:
            e = self.assertRaises(exceptions.DriverError, self.act,
                                  'resize', {'flavor': 'm1.small'})
        self.assertIn('no VERIFY_RESIZE after 1 s', str(e))
        # Waited poll_interval at a time until past the timeout.
        self.assertGreaterEqual(sleep.call_count, 20)
        sleep.assert_called_with(self.ctx, 0.05)

    def test_resize_interrupted(self):
        self.ctx.interrupt = threading.Event()
        self.ctx.interrupt.set()
        self.ctx.interrupt_reason = 'cancelled'
        self.assertRaises(exceptions.Interrupted, self.act, 'resize',
                          {'flavor': 'm1.small'})

    def _glance(self, *statuses):
        glance = FakeAdapter([FakeReply(200, {'status': s})
                              for s in statuses])
        patcher = mock.patch.object(self.driver, '_service',
                                    return_value=glance)
        patcher.start()
        self.addCleanup(patcher.stop)
        return glance

    def test_snapshot_create(self):
        glance = self._glance('queued', 'saving', 'active')
        output = self.act('snapshot_create', {'name': 'snap'})
        self.assertEqual([('create_image', (self.server.id, 'snap'), {})],
                         self.servers.called('create_image'))
        self.assertEqual('snapshot snap (image img-snap)', output)
        # Done once Glance has the image active.
        self.assertEqual(3, len(glance.calls))

    def test_snapshot_create_default_name(self):
        self._glance('active')
        self.act('snapshot_create')
        self.assertEqual(
            'svm-%s-snapshot' % self.device_['id'],
            self.servers.called('create_image')[0][1][1])

    def test_snapshot_killed_is_an_error(self):
        self._glance('killed')
        e = self.assertRaises(exceptions.DriverError, self.act,
                              'snapshot_create')
        self.assertIn('killed', str(e))

    def test_snapshot_delete(self):
        for status in (204, 404):
            glance = FakeAdapter([FakeReply(status)])
            with mock.patch.object(self.driver, '_service',
                                   return_value=glance) as service:
                self.assertEqual('image img-1 deleted', self.act(
                    'snapshot_delete', {'image_id': 'img-1'}))
            service.assert_called_once_with(None, 'image')
            self.assertEqual([('DELETE', '/v2/images/img-1',
                               {'raise_exc': False})], glance.calls)

    def test_snapshot_delete_refused(self):
        glance = FakeAdapter([FakeReply(403, text='not allowed')])
        with mock.patch.object(self.driver, '_service',
                               return_value=glance):
            e = self.assertRaises(exceptions.DriverError, self.act,
                                  'snapshot_delete', {'image_id': 'img-1'})
        self.assertIn('Glance answered 403: not allowed', str(e))

    def test_snapshot_revert(self):
        self.act('snapshot_revert', {'image_id': 'img-1'})
        self.assertEqual([('rebuild', (self.server.id, 'img-1'), {})],
                         self.servers.called('rebuild'))

    def test_attach_nic(self):
        output = self.act('attach_nic', {'network_id': 'net-1',
                                         'fixed_ip': '10.0.0.9'})
        self.assertEqual([('interface_attach',
                           (self.server.id, None, 'net-1', '10.0.0.9'), {})],
                         self.servers.called('interface_attach'))
        self.assertEqual('port port-new attached', output)

    def test_attach_nic_needs_a_network_or_port(self):
        e = self.assertRaises(exceptions.InvalidParameter, self.act,
                              'attach_nic', {})
        self.assertEqual('params.network_id', e.field)
        self.assertEqual([], self.servers.called('interface_attach'))

    def test_detach_nic(self):
        self.assertEqual('port port-1 detached',
                         self.act('detach_nic', {'port_id': 'port-1'}))
        self.assertEqual([('interface_detach', (self.server.id, 'port-1'),
                           {})], self.servers.called('interface_detach'))

    def test_unsupported_action_in_the_driver(self):
        e = self.assertRaises(exceptions.DriverError, self.driver.action,
                              self.ctx, self.device_, 'migrate', {})
        self.assertIn('not supported', str(e))

    def test_check_action_rejects_migrate(self):
        e = self.assertRaises(exceptions.InvalidParameter,
                              nova.NovaDeviceDriver.check_action,
                              'migrate', {})
        self.assertEqual('action', e.field)
        self.assertIn('reboot', str(e))

    def test_check_action_resize_needs_a_flavor(self):
        e = self.assertRaises(exceptions.InvalidParameter,
                              nova.NovaDeviceDriver.check_action,
                              'resize', {})
        self.assertEqual('params.flavor', e.field)
        e = self.assertRaises(exceptions.InvalidParameter,
                              nova.NovaDeviceDriver.check_action,
                              'resize', None)
        self.assertEqual('params.flavor', e.field)

    def test_check_action_parameters(self):
        nova.NovaDeviceDriver.check_action('resize', {'flavor': 'm1.small'})
        nova.NovaDeviceDriver.check_action('reboot', None)
        e = self.assertRaises(exceptions.InvalidParameter,
                              nova.NovaDeviceDriver.check_action,
                              'resize', {'flavor': 2})
        self.assertEqual('params.flavor', e.field)
        e = self.assertRaises(exceptions.InvalidParameter,
                              nova.NovaDeviceDriver.check_action,
                              'reboot', {'force': True})
        self.assertEqual('params.force', e.field)

    def test_supported_actions_are_known(self):
        self.assertLessEqual(nova.NovaDeviceDriver.supported_actions,
                             set(driver_base.ACTIONS))
        self.assertLessEqual(set(nova.NovaDeviceDriver.action_params),
                             nova.NovaDeviceDriver.supported_actions)


class TestCredentials(base.TestCase):

    def test_key(self):
        credentials = openstack.Credentials(CONF, 'nova')
        self.config(credentials='trust', group='vim')
        self.assertEqual('t-1', credentials.key({'trust_id': 't-1'}))
        self.assertIsNone(credentials.key({'trust_id': None}))
        self.assertIsNone(credentials.key({}))
        self.config(credentials='service', group='vim')
        self.assertIsNone(credentials.key({'trust_id': 't-1'}))

    def test_no_credentials(self):
        credentials = openstack.Credentials(CONF, 'nova')
        e = self.assertRaises(exceptions.DriverError, credentials.session,
                              None)
        self.assertIn('[nova]', str(e))
        e = self.assertRaises(exceptions.DriverError, credentials.session,
                              't-1')
        self.assertIn('[trustee]', str(e))

    def test_sessions_are_cached(self):
        credentials = openstack.Credentials(CONF, 'nova')
        loading = openstack.ks_loading
        with mock.patch.object(loading, 'load_auth_from_conf_options',
                               side_effect=lambda *a, **kw: mock.Mock()
                               ) as auth, \
                mock.patch.object(loading, 'load_session_from_conf_options',
                                  side_effect=lambda *a, **kw: mock.Mock()
                                  ) as session:
            service = credentials.session(None)
            self.assertIs(service, credentials.session(None))
            trust = credentials.session('t-1')
            self.assertIsNot(service, trust)
            self.assertIs(trust, credentials.session('t-1'))
        self.assertEqual([mock.call(CONF, 'nova'),
                          mock.call(CONF, 'trustee', trust_id='t-1')],
                         auth.mock_calls)
        # Both sessions take the [nova] session options (TLS, timeout).
        self.assertEqual(['nova', 'nova'],
                         [c.args[1] for c in session.mock_calls])

    def test_sessions_keep_a_connection_per_parallel_call(self):
        self.config(max_parallel_calls=40, group='heat')
        with mock.patch.object(openstack.ks_loading,
                               'load_auth_from_conf_options'):
            session = openstack.Credentials(CONF, 'heat').session(None)
        for scheme in ('http://', 'https://'):
            adapter = session.session.get_adapter(scheme + '127.0.0.1')
            self.assertIsInstance(adapter,
                                  openstack.ks_session.TCPKeepAliveAdapter)
            self.assertEqual(42, adapter._pool_maxsize)

    def test_adapter_kwargs(self):
        self.config(region_name='r1', valid_interfaces=['internal'],
                    endpoint_override='http://nova:8774/v2.1',
                    service_type='compute', group='nova')
        self.assertEqual(
            {'region_name': 'r1', 'interface': 'internal',
             'endpoint_override': 'http://nova:8774/v2.1',
             'service_type': 'compute'},
            openstack.Credentials(CONF, 'nova').adapter_kwargs())

    def test_nova_clients_are_cached(self):
        driver = nova.NovaDeviceDriver(CONF)
        with mock.patch.object(driver.credentials, 'session',
                               return_value=mock.Mock()) as session, \
                mock.patch.object(nova.nova_client, 'Client') as client:
            first = driver._nova(None)
            self.assertIs(first, driver._nova(None))
            driver._nova('t-1')
        self.assertEqual([mock.call(None), mock.call('t-1')],
                         session.mock_calls)
        self.assertEqual(2, client.call_count)
        self.assertEqual(CONF.nova.api_microversion, client.call_args[0][0])


class TestChangedServersPoll(NovaTestCase):
    """With [nova] full_list_interval, the polls between two full lists
    ask only for the servers changed since the newest change seen."""

    def setUp(self):
        super().setUp()
        self.config(full_list_interval=30, group='nova')

    def lists(self):
        return [c[2]['search_opts'] for c in self.servers.called('list')]

    def test_changed_servers_only_between_full_lists(self):
        a, b = self.device(), self.device()
        sa = self.servers.add(a['id'], status='BUILD',
                              updated='2026-11-22T08:00:00Z')
        self.servers.add(b['id'], status='BUILD',
                         updated='2026-11-22T08:00:10Z')
        first = self.driver.poll_batch(None, [a, b])
        self.assertEqual(['building', 'building'],
                         [first[d['id']].state for d in (a, b)])
        sa.status, sa.updated = 'ACTIVE', '2026-11-22T08:00:20Z'
        second = self.driver.poll_batch(None, [a, b])
        self.assertEqual('active', second[a['id']].state)
        self.assertEqual('building', second[b['id']].state)
        # The newest change seen (08:00:10) less 2 s.
        self.assertEqual([{'tags': 'servicevm'},
                          {'tags': 'servicevm',
                           'changes-since': '2026-11-22T08:00:08Z'}],
                         self.lists())
        self.driver.poll_batch(None, [a, b])
        self.assertEqual('2026-11-22T08:00:18Z',
                         self.lists()[-1]['changes-since'])

    def test_a_server_just_asked_for_is_building(self):
        known = self.device()
        self.servers.add(known['id'], status='BUILD')
        self.driver.poll_batch(None, [known])
        new = self.device()
        new['instance_id'] = self.driver.create(self.ctx, new, new=True)
        # Not yet among the changed servers (Nova had not updated it).
        self.servers.store[new['instance_id']].updated = '2026-11-22T07:00Z'
        result = self.driver.poll_batch(None, [known, new])
        self.assertEqual('building', result[new['id']].state)
        self.assertEqual(2, len(self.lists()))

    def test_unknown_or_deleting_devices_need_a_full_list(self):
        known = self.device()
        server = self.servers.add(known['id'], status='ACTIVE')
        self.driver.poll_batch(None, [known])
        # A device with no known server, not just asked for: gone?
        stranger = self.device()
        result = self.driver.poll_batch(None, [known, stranger])
        self.assertEqual('gone', result[stranger['id']].state)
        self.assertNotIn('changes-since', self.lists()[-1])
        # Deleting: only a full list shows it gone (Nova drops a deleted
        # server's tags).
        setattr(server, TASK, 'deleting')
        server.updated = '2026-11-22T08:01:00Z'
        self.assertTrue(self.driver.poll_batch(None, [known])[
            known['id']].deleting)
        del self.servers.store[server.id]
        self.assertEqual('gone', self.driver.poll_batch(None, [known])[
            known['id']].state)
        self.assertNotIn('changes-since', self.lists()[-1])

    def test_full_list_once_the_interval_passed(self):
        device = self.device()
        self.servers.add(device['id'])
        self.driver.poll_batch(None, [device])
        self.driver.poll_batch(None, [device])
        self.assertIn('changes-since', self.lists()[-1])
        self.driver._listings[None].full_at -= 31
        self.driver.poll_batch(None, [device])
        self.assertNotIn('changes-since', self.lists()[-1])

    def test_a_deleted_device_stays_gone(self):
        device = self.device()
        device['instance_id'] = self.driver.create(self.ctx, device,
                                                   new=True)
        self.assertEqual('building', self.driver.poll_batch(None, [device])[
            device['id']].state)
        self.driver.delete(self.ctx, device)
        for _ in range(2):
            self.assertEqual('gone', self.driver.poll_batch(
                None, [device])[device['id']].state)

    def test_known_servers_are_kept_by_scope_not_by_credentials(self):
        # Each device has a trust of its own: the poll's credentials
        # change from cycle to cycle, its scope (the project) does not.
        device = self.device()
        self.servers.add(device['id'])
        self.driver.poll_batch('trust-1', [device])
        self.driver.poll_batch('trust-2', [device])
        self.assertIn('changes-since', self.lists()[-1])
