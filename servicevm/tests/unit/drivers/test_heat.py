"""The Heat device driver against a fake heatclient: the HOT it makes of
``vdus``, idempotent create, the states it reads from stack statuses with
one list query per poll, delete, update and the ``scale`` action."""

import copy
import types

import fixtures
from heatclient import exc as heat_exc
from keystoneauth1 import session as ks_session
from oslo_config import cfg
import yaml

from servicevm.common import exceptions
from servicevm.drivers.device import heat
from servicevm.tests import base

CONF = cfg.CONF

VDUS = {'fw': {'image': 'cirros', 'flavor': 'm1.tiny',
               'networks': ['mgmt-net', 'data-net'],
               'user_data': '#!/bin/sh\necho hi\n'}}
SCALED = {'vdus': {'lb': {'image': 'cirros', 'flavor': 'm1.tiny',
                          'networks': ['data-net']},
                   'ctl': {'image': 'cirros', 'flavor': 'm1.small',
                           'networks': ['mgmt-net'], 'mgmt': True}},
          'scaling': {'min': 1, 'max': 3, 'desired': 2}}


class FakeStacks:
    """The part of heatclient's StackManager the driver uses, over a
    dict of stacks; ``calls`` records every request."""

    def __init__(self):
        self.stacks = {}
        self.calls = []
        self.serial = 0

    def add(self, name, status='CREATE_COMPLETE', outputs=None,
            updated=None, reason='', tags=('servicevm',)):
        self.serial += 1
        stack = types.SimpleNamespace(
            id='stack-%d' % self.serial, stack_name=name,
            stack_status=status, stack_status_reason=reason,
            updated_time=updated, tags=list(tags),
            outputs=[{'output_key': k, 'output_value': v}
                     for k, v in (outputs or {}).items()])
        self.stacks[stack.id] = stack
        return stack

    def _lookup(self, ref):
        if ref in self.stacks:
            return self.stacks[ref]
        for stack in self.stacks.values():
            if stack.stack_name == ref and \
                    stack.stack_status != 'DELETE_COMPLETE':
                return stack
        raise heat_exc.HTTPNotFound()

    def names(self, method):
        return [c for c in self.calls if c[0] == method]

    def list(self, **kwargs):
        # As heatclient's: the request is made when the list is read.
        def read():
            self.calls.append(('list', kwargs))
            for stack in list(self.stacks.values()):
                if stack.stack_status != 'DELETE_COMPLETE' and \
                        kwargs.get('tags') in stack.tags:
                    yield types.SimpleNamespace(
                        **{k: v for k, v in vars(stack).items()
                           if k != 'outputs'})
        return read()

    def get(self, ref, resolve_outputs=True):
        self.calls.append(('get', ref, resolve_outputs))
        stack = copy.deepcopy(self._lookup(ref))
        if not resolve_outputs:
            del stack.outputs
        return stack

    def create(self, **fields):
        self.calls.append(('create', fields))
        try:
            self._lookup(fields['stack_name'])
        except heat_exc.HTTPNotFound:
            stack = self.add(fields['stack_name'], 'CREATE_IN_PROGRESS',
                             tags=fields['tags'].split(','))
            return {'stack': {'id': stack.id, 'links': []}}
        raise heat_exc.HTTPConflict()

    def update(self, ref, **fields):
        self.calls.append(('update', ref, fields))
        self._lookup(ref)

    def delete(self, ref):
        self.calls.append(('delete', ref))
        self._lookup(ref).stack_status = 'DELETE_IN_PROGRESS'


def device(device_id='d1', instance_id=None, attributes=None, kwargs=None):
    return {'id': device_id, 'instance_id': instance_id,
            'kwargs': kwargs or {}, 'template': {
                'attributes': attributes or {'vdus': VDUS}}}


class TestHotFromVdus(base.TestCase):

    def test_one_server_per_vdu(self):
        hot = heat.vdus_template(VDUS, prefix='svm-d1')
        server = hot['resources']['fw']
        self.assertEqual('OS::Nova::Server', server['type'])
        props = server['properties']
        self.assertEqual(('cirros', 'm1.tiny', 'RAW', '#!/bin/sh\necho hi\n'),
                         (props['image'], props['flavor'],
                          props['user_data_format'], props['user_data']))
        self.assertEqual([{'network': 'mgmt-net'}, {'network': 'data-net'}],
                         props['networks'])
        self.assertEqual('svm-d1-fw', props['name'])
        self.assertEqual({'get_attr': ['fw', 'networks', 'mgmt-net', 0]},
                         hot['outputs']['mgmt_address']['value'])
        self.assertEqual([{'get_resource': 'fw'}],
                         hot['outputs']['instance_ids']['value'])
        self.assertNotIn('parameters', hot)
        # Plain data: it goes to Heat as JSON, or as YAML when shown.
        self.assertEqual(hot, yaml.safe_load(yaml.safe_dump(hot)))

    def test_no_networks(self):
        hot = heat.vdus_template({'x': {'image': 'i', 'flavor': 'f'}})
        props = hot['resources']['x']['properties']
        self.assertEqual([{'allocate_network': 'none'}], props['networks'])
        self.assertNotIn('mgmt_address', hot['outputs'])
        self.assertNotIn('user_data', props)

    def test_scaling_makes_groups_sized_by_the_count_parameter(self):
        scaling = heat.check_scaling(SCALED['scaling'])
        hot = heat.vdus_template(SCALED['vdus'], scaling, 'svm-d1')
        self.assertEqual({'type': 'number', 'default': 2,
                          'description': 'Servers of each VDU',
                          'constraints': [{'range': {'min': 1, 'max': 3}}]},
                         hot['parameters']['count'])
        for name in ('lb', 'ctl'):
            group = hot['resources'][name]
            self.assertEqual('OS::Heat::ResourceGroup', group['type'])
            self.assertEqual({'get_param': 'count'},
                             group['properties']['count'])
            member = group['properties']['resource_def']
            self.assertEqual('OS::Nova::Server', member['type'])
            self.assertEqual('svm-d1-%s-%%index%%' % name,
                             member['properties']['name'])
        self.assertEqual({'list_concat': [{'get_attr': ['lb', 'refs']},
                                          {'get_attr': ['ctl', 'refs']}]},
                         hot['outputs']['instance_ids']['value'])
        # The first member of the mgmt VDU.
        self.assertEqual(
            {'get_attr': ['ctl', 'resource.0.networks', 'mgmt-net', 0]},
            hot['outputs']['mgmt_address']['value'])

    def test_bad_descriptions(self):
        for vdus, scaling, words in (
                ({}, None, 'vdus must map'),
                ({'x': {'image': 'i'}}, None, 'VDU x needs'),
                ({'a': {'image': 'i', 'flavor': 'f', 'mgmt': True},
                  'b': {'image': 'i', 'flavor': 'f', 'mgmt': True}}, None,
                 'only one VDU'),
                ({'x': {'image': 'i', 'flavor': 'f', 'networks': 'n'}},
                 None, 'must be a list')):
            with self.subTest(words=words):
                e = self.assertRaises(exceptions.DriverError,
                                      heat.vdus_template, vdus, scaling)
                self.assertIn(words, str(e))
        for scaling in ({'min': 2, 'max': 1}, {'min': 1},
                        {'min': 1, 'max': 3, 'desired': 5},
                        {'min': True, 'max': 2}):
            self.assertRaises(exceptions.DriverError, heat.check_scaling,
                              scaling)
        self.assertEqual({'min': 1, 'max': 2, 'desired': 1},
                         heat.check_scaling({'min': 1, 'max': 2}))


class TestClient(base.TestCase):

    def test_client_on_the_group_session(self):
        self.config(region_name='R1', endpoint_override='http://heat:8004',
                    group='heat')
        driver = heat.HeatDeviceDriver(CONF)
        session = ks_session.Session()
        sessions = self.useFixture(fixtures.MockPatchObject(
            driver.credentials, 'session', return_value=session)).mock
        http = driver._client('trust-1').http_client
        sessions.assert_called_once_with('trust-1')
        self.assertIs(session, http.session)
        self.assertEqual(('orchestration', 'public', 'R1',
                          'http://heat:8004'),
                         (http.service_type, http.interface,
                          http.region_name, http.endpoint_override))


class HeatTestCase(base.TestCase):

    def setUp(self):
        super().setUp()
        self.config(retry_backoff=0, call_retries=1, poll_interval=0.05,
                    group='heat')
        self.stacks = FakeStacks()
        self.driver = heat.HeatDeviceDriver(CONF)
        self.make_client = self.useFixture(fixtures.MockPatchObject(
            self.driver, '_client',
            return_value=types.SimpleNamespace(stacks=self.stacks))).mock


class TestCreate(HeatTestCase):

    def test_create(self):
        attrs = {'vdus': VDUS, 'parameters': {'a': 1, 'b': 2}}
        stack_id = self.driver.create(None, device(
            attributes=attrs, kwargs={'parameters': {'b': 3}}))
        (_, fields), = self.stacks.names('create')
        self.assertEqual(self.stacks._lookup('svm-d1').id, stack_id)
        self.assertEqual('svm-d1', fields['stack_name'])
        self.assertEqual('servicevm,svm-dev-d1', fields['tags'])
        self.assertTrue(fields['disable_rollback'])
        self.assertEqual({'a': 1, 'b': 3}, fields['parameters'])
        self.assertEqual(heat.vdus_template(VDUS, prefix='svm-d1'),
                         fields['template'])
        self.make_client.assert_called_with(None)

    def test_create_from_hot_with_scaling_and_count(self):
        hot = 'heat_template_version: 2017-09-01\nresources: {}\n'
        attrs = {'hot': hot, 'files': {'x.sh': 'echo'},
                 'scaling': {'min': 1, 'max': 4, 'desired': 2}}
        self.driver.create(None, device(attributes=attrs))
        self.driver.create(None, device('d2', attributes=attrs,
                                        kwargs={'count': 4}))
        first, second = [f for _, f in self.stacks.names('create')]
        self.assertEqual(hot, first['template'])
        self.assertEqual({'x.sh': 'echo'}, first['files'])
        self.assertEqual({'count': 2}, first['parameters'])
        self.assertEqual({'count': 4}, second['parameters'])
        e = self.assertRaises(
            exceptions.DriverError, self.driver.create, None,
            device('d3', attributes=attrs, kwargs={'count': 5}))
        self.assertIn('not within the scaling bounds 1..4', str(e))
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              None, device(attributes={'image': 'x'}))
        self.assertIn('needs the attribute hot', str(e))

    def test_create_is_idempotent(self):
        existing = self.stacks.add('svm-d1', 'CREATE_IN_PROGRESS')
        self.assertEqual(existing.id, self.driver.create(None, device()))
        self.assertEqual([], self.stacks.names('create'))
        # A stack deleted earlier does not count.
        existing.stack_status = 'DELETE_COMPLETE'
        stack_id = self.driver.create(None, device())
        self.assertNotEqual(existing.id, stack_id)
        self.assertEqual(1, len(self.stacks.names('create')))

    def test_create_whose_answer_was_lost(self):
        # The lookup misses a stack an earlier try made (its answer was
        # lost): Heat's 409 on the create leads to it.
        existing = self.stacks.add('svm-d1')
        real_get, looked = self.stacks.get, []

        def get(ref, resolve_outputs=True):
            if not looked:
                looked.append(ref)
                raise heat_exc.HTTPNotFound()
            return real_get(ref, resolve_outputs)
        self.stacks.get = get
        self.assertEqual(existing.id, self.driver.create(None, device()))
        self.assertEqual(1, len(self.stacks.names('create')))

    def test_create_while_the_old_stack_is_deleted(self):
        self.stacks.add('svm-d1', 'DELETE_IN_PROGRESS')
        e = self.assertRaises(exceptions.DriverTransientError,
                              self.driver.create, None, device())
        self.assertIn('svm-d1 of an earlier create is DELETE_IN_PROGRESS',
                      str(e))
        self.assertEqual([], self.stacks.names('create'))

    def test_heat_message_reaches_the_user(self):
        body = ('{"code": 400, "title": "Bad Request", "error": {"message": '
                '"Property error: resources.fw.properties.flavor: Error '
                'validating value \'m1.huge\'", "type": "StackValidation'
                'Failed"}}')

        def create(**fields):
            raise heat_exc.HTTPBadRequest(body)
        self.stacks.create = create
        e = self.assertRaises(exceptions.DriverError, self.driver.create,
                              None, device())
        self.assertEqual("Driver heat failed to create stack: Property "
                         "error: resources.fw.properties.flavor: Error "
                         "validating value 'm1.huge' (HTTP 400)", str(e))


class TestPoll(HeatTestCase):

    def poll(self, *devices):
        return self.driver.poll_batch(None, list(devices))

    def test_status_mapping(self):
        cases = {
            'CREATE_IN_PROGRESS': ('building', 'unknown'),
            'UPDATE_IN_PROGRESS': ('building', 'unknown'),
            'ROLLBACK_IN_PROGRESS': ('building', 'unknown'),
            'DELETE_IN_PROGRESS': ('building', 'unknown'),
            'CREATE_COMPLETE': ('active', 'running'),
            'UPDATE_COMPLETE': ('active', 'running'),
            'RESUME_COMPLETE': ('active', 'running'),
            'CHECK_COMPLETE': ('active', 'running'),
            'SUSPEND_COMPLETE': ('paused', 'paused'),
            'CREATE_FAILED': ('error', 'unknown'),
            'UPDATE_FAILED': ('error', 'unknown'),
            'DELETE_FAILED': ('error', 'unknown'),
            'ROLLBACK_COMPLETE': ('error', 'unknown'),
            'DELETE_COMPLETE': ('gone', 'unknown'),
        }
        devices = []
        for i, status in enumerate(cases):
            stack = self.stacks.add('svm-d%d' % i, status, reason='why %d' % i)
            devices.append(device('d%d' % i, stack.id))
        devices.append(device('missing', 'no-such-stack'))
        result = self.poll(*devices)
        for i, (status, (state, power)) in enumerate(cases.items()):
            with self.subTest(status=status):
                got = result['d%d' % i]
                self.assertEqual(state, got.state)
                if state != 'gone':
                    self.assertEqual(power, got.power_state)
                if state == 'error':
                    self.assertIn('why %d' % i, got.error)
                    self.assertIn(status, got.error)
                else:
                    self.assertIsNone(got.error)
        self.assertEqual('gone', result['missing'].state)
        self.assertEqual(1, len(self.stacks.names('list')))

    def test_one_list_for_many_devices_and_outputs_cached(self):
        devices = []
        for i in range(5):
            stack = self.stacks.add('svm-d%d' % i, outputs={
                'mgmt_address': '10.0.0.%d' % i,
                'instance_ids': [['vm-%d-a' % i], ['vm-%d-b' % i]]})
            devices.append(device('d%d' % i, stack.id))
        # Another service's stack is not servicevm's.
        self.stacks.add('other', tags=('web',))
        result = self.poll(*devices)
        self.assertEqual(['10.0.0.%d' % i for i in range(5)],
                         [result['d%d' % i].mgmt_address for i in range(5)])
        self.assertEqual(['vm-3-a', 'vm-3-b'],
                         result['d3'].details['instance_ids'])
        self.assertEqual([('list', {'tags': 'servicevm',
                                    'filters': {'show_hidden': False}})],
                         self.stacks.names('list'))
        self.assertEqual(5, len(self.stacks.names('get')))
        # Steady state: one list a cycle, outputs from the cache.
        for _ in range(3):
            again = self.poll(*devices)
        self.assertEqual(4, len(self.stacks.names('list')))
        self.assertEqual(5, len(self.stacks.names('get')))
        self.assertEqual('10.0.0.3', again['d3'].mgmt_address)
        # An update of one stack: its outputs are read again, once.
        stack = self.stacks.stacks[devices[3]['instance_id']]
        stack.updated_time = '2030-01-01T00:00:00Z'
        stack.outputs = [{'output_key': 'mgmt_address',
                          'output_value': '10.9.9.9'},
                         {'output_key': 'instance_ids',
                          'output_value': None,
                          'output_error': 'resource.0 not found'}]
        self.poll(*devices)
        result = self.poll(*devices)
        self.assertEqual(6, len(self.stacks.names('get')))
        self.assertEqual('10.9.9.9', result['d3'].mgmt_address)
        self.assertEqual([], result['d3'].details['instance_ids'])

    def test_poll_through_the_batch_poller(self):
        devices = []
        for i in range(4):
            stack = self.stacks.add('svm-d%d' % i, outputs={
                'mgmt_address': '10.0.0.%d' % i})
            devices.append(device('d%d' % i, stack.id))
        result = self.driver.poll(None, devices)
        self.assertEqual({'d%d' % i: 'active' for i in range(4)},
                         {k: v.state for k, v in result.items()})
        self.assertEqual(1, len(self.stacks.names('list')))

    def test_a_device_without_instance_id_is_found_by_name(self):
        # A rollback forgot the instance id; the stack is still deleting.
        self.stacks.add('svm-d1', 'DELETE_IN_PROGRESS')
        self.assertEqual('building', self.poll(device()).get('d1').state)
        self.stacks._lookup('svm-d1').stack_status = 'DELETE_COMPLETE'
        self.assertEqual('gone', self.poll(device())['d1'].state)

    def test_outputs_unreadable_is_building(self):
        stack = self.stacks.add('svm-d1')

        def get(ref, resolve_outputs=True):
            raise heat_exc.HTTPForbidden()
        self.stacks.get = get
        self.assertEqual('building',
                         self.poll(device('d1', stack.id))['d1'].state)


class TestDeleteAndUpdate(HeatTestCase):

    def test_delete(self):
        stack = self.stacks.add('svm-d1')
        self.driver.delete(None, device(instance_id=stack.id))
        self.assertEqual([('delete', stack.id)], self.stacks.names('delete'))
        self.assertEqual('DELETE_IN_PROGRESS', stack.stack_status)

    def test_delete_of_a_missing_stack(self):
        self.driver.delete(None, device(instance_id='no-such-stack'))
        # Without an instance id: by name.
        self.driver.delete(None, device())
        self.assertEqual([('delete', 'no-such-stack'), ('delete', 'svm-d1')],
                         self.stacks.names('delete'))

    def test_delete_while_it_deletes(self):
        stack = self.stacks.add('svm-d1', 'DELETE_IN_PROGRESS')

        def delete(ref):
            self.stacks.calls.append(('delete', ref))
            raise heat_exc.HTTPConflict()
        self.stacks.delete = delete
        self.driver.delete(None, device(instance_id=stack.id))
        self.assertEqual(1, len(self.stacks.names('delete')))

    def test_update_patches_the_parameters(self):
        stack = self.stacks.add('svm-d1')
        self.driver.update(None, device(instance_id=stack.id))
        self.assertEqual([], self.stacks.names('update'))
        self.driver.update(None, device(instance_id=stack.id,
                                        kwargs={'parameters': {'a': 2}}))
        self.assertEqual([('update', stack.id, {
            'existing': True, 'parameters': {'a': 2}})],
            self.stacks.names('update'))

    def test_update_of_a_missing_stack(self):
        e = self.assertRaises(exceptions.DriverError, self.driver.update,
                              None, device(kwargs={'parameters': {'a': 1}}))
        self.assertIn('stack svm-d1 does not exist', str(e))


class TestScale(HeatTestCase):

    def setUp(self):
        super().setUp()
        self.stack = self.stacks.add('svm-d1', 'UPDATE_COMPLETE',
                                     updated='2030-01-01T00:00:00Z',
                                     outputs={'instance_ids': ['vm-a',
                                                               'vm-b']})
        self.device = device(instance_id=self.stack.id, attributes=SCALED)

    def test_declared(self):
        self.assertEqual({'scale'}, self.driver.supported_actions)
        heat.HeatDeviceDriver.check_action('scale', {'count': 2})
        e = self.assertRaises(exceptions.InvalidParameter,
                              heat.HeatDeviceDriver.check_action, 'scale',
                              {'count': '2'})
        self.assertEqual('params.count', e.field)

    def test_out_of_bounds(self):
        for count in (0, 4):
            e = self.assertRaises(exceptions.InvalidParameter,
                                  self.driver.action, None, self.device,
                                  'scale', {'count': count})
            self.assertEqual('params.count', e.field)
            self.assertIn('between 1 and 3', str(e))
        self.assertEqual([], self.stacks.names('update'))

    def test_without_scaling(self):
        e = self.assertRaises(exceptions.InvalidParameter,
                              self.driver.action, None,
                              device(instance_id=self.stack.id), 'scale',
                              {'count': 2})
        self.assertEqual('action', e.field)
        self.assertIn('scaling', str(e))

    def test_in_bounds(self):
        output = self.driver.action(None, self.device, 'scale', {'count': 3})
        self.assertEqual([('update', self.stack.id, {
            'existing': True, 'parameters': {'count': 3}})],
            self.stacks.names('update'))
        self.assertEqual('scale to 3 requested; members before: vm-a, vm-b',
                         output)
        # Heat may answer before the stack shows the update: until it
        # does (or a while passed), the device is building, not active.
        poll = self.driver.poll_batch
        self.assertEqual('building', poll(None, [self.device])['d1'].state)
        self.stack.stack_status = 'UPDATE_IN_PROGRESS'
        self.stack.updated_time = '2030-01-01T00:01:00Z'
        self.assertEqual('building', poll(None, [self.device])['d1'].state)
        self.stack.stack_status = 'UPDATE_COMPLETE'
        self.assertEqual('active', poll(None, [self.device])['d1'].state)

    def test_pending_update_believed_after_the_grace(self):
        self.useFixture(fixtures.MockPatch(
            'servicevm.drivers.device.heat.UPDATE_GRACE', -1))
        self.driver.action(None, self.device, 'scale', {'count': 2})
        self.assertEqual('active', self.driver.poll_batch(
            None, [self.device])['d1'].state)

    def test_update_refused(self):
        def update(ref, **fields):
            raise heat_exc.HTTPBadRequest(
                '{"error": {"message": "count out of range"}}')
        self.stacks.update = update
        e = self.assertRaises(exceptions.DriverError, self.driver.action,
                              None, self.device, 'scale', {'count': 2})
        self.assertIn('count out of range', str(e))
        # Nothing pending: the stack's state is believed at once.
        self.assertEqual('active', self.driver.poll_batch(
            None, [self.device])['d1'].state)
