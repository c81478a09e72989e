"""openstack servicevm device ..., with a fake client."""

import fixtures
from osc_lib import exceptions

from servicevm.tests.unit.client import base
from servicevm.tests.unit.client import fakes
from servicevmclient import client as svm_client
from servicevmclient.osc.v1 import common
from servicevmclient.osc.v1 import device_actions
from servicevmclient.osc.v1 import devices

OP = fakes.operation


class TestDeviceCreate(base.CommandTestCase):

    def test_no_wait(self):
        shown = self.as_dict(self.take(devices.CreateDevice, [
            'fw1', '--template', 'fw', '--kwarg', 'mgmt_address=192.0.2.1',
            '--kwarg', 'port=22', '--on-failure', 'rollback']))
        (_, _, values), = self.svm.called('create_device')
        self.assertEqual({'name': 'fw1', 'template_id': fakes.TEMPLATE_ID,
                          'kwargs': {'mgmt_address': '192.0.2.1',
                                     'port': 22},
                          'on_failure': 'rollback'}, values)
        self.assertEqual('PENDING_CREATE', shown['status'])
        self.assertEqual(fakes.OP_ID, shown['operation_id'])
        self.assertEqual([], self.svm.called('get_operation'))
        self.assertEqual('', self.stderr())

    def test_template_is_required(self):
        self.assertRaises(SystemExit, self.parse, devices.CreateDevice,
                          ['fw1'])

    def test_unknown_template(self):
        err = self.assertRaises(Exception, self.take, devices.CreateDevice,
                                ['fw1', '--template', 'nope'])
        self.assertIn('Template could not be found', str(err))
        self.assertEqual([], self.svm.called('create_device'))

    def test_wait_shows_progress_and_the_device_after(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('PROCESSING'),
            OP('PROCESSING', [('create_vm', 'RUNNING'),
                              ('wait_active', 'PENDING')]),
            OP('PROCESSING', [('create_vm', 'RUNNING'),
                              ('wait_active', 'PENDING')]),
            OP('PROCESSING', [('create_vm', 'COMPLETED'),
                              ('wait_active', 'RUNNING')]),
            OP('COMPLETED', [('create_vm', 'COMPLETED'),
                             ('wait_active', 'COMPLETED')])]
        shown = self.as_dict(self.take(devices.CreateDevice, [
            'fw1', '--template', 'fw', '--wait']))
        self.assertEqual('ACTIVE', shown['status'])
        self.assertEqual(fakes.OP_ID, shown['operation_id'])
        lines = self.stderr().splitlines()
        self.assertEqual(4, len(lines), lines)  # one per change
        self.assertIn('PROCESSING, step create_vm RUNNING', lines[1])
        self.assertIn('step wait_active RUNNING', lines[2])
        self.assertIn('COMPLETED, step wait_active COMPLETED', lines[3])
        self.assertIn('create of device %s' % fakes.DEVICE_ID, lines[0])
        self.assertEqual(4, len(self.sleeps))

    def test_wait_failure(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('PROCESSING', [('create_vm', 'RUNNING')]),
            OP('FAILED_TEMP', [('create_vm', 'FAILED', 'quota exceeded')],
               error='create failed at step create_vm: quota exceeded')]
        cmd, parsed = self.parse(devices.CreateDevice,
                                 ['fw1', '--template', 'fw', '--wait'])
        err = self.assertRaises(exceptions.CommandError, cmd.run, parsed)
        message = str(err)
        self.assertIn('ended FAILED_TEMP: create failed at step create_vm: '
                      'quota exceeded', message)
        self.assertIn('operation retry %s' % fakes.OP_ID, message)
        self.assertIn('step create_vm FAILED', self.stderr())
        self.assertEqual('', self.app.stdout.getvalue())

    def test_wait_final_failures(self):
        for state in ('FAILED', 'ROLLED_BACK', 'CANCELLED'):
            self.svm.operations[fakes.OP_ID] = [
                OP(state, [('create_vm', 'ROLLED_BACK')], error='gone')]
            err = self.assertRaises(
                exceptions.CommandError, self.take, devices.CreateDevice,
                ['fw1', '--template', 'fw', '--wait'])
            self.assertIn('ended %s: gone' % state, str(err))
            self.assertNotIn('retry', str(err))

    def test_wait_through_a_pause(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('PAUSED', [('create_vm', 'COMPLETED'),
                          ('wait_active', 'PENDING')]),
            OP('PROCESSING', [('create_vm', 'COMPLETED'),
                              ('wait_active', 'RUNNING')]),
            OP('COMPLETED', [('create_vm', 'COMPLETED'),
                             ('wait_active', 'COMPLETED')])]
        self.take(devices.CreateDevice, ['fw1', '--template', 'fw',
                                         '--wait'])
        self.assertIn('PAUSED, step create_vm COMPLETED', self.stderr())

    def test_wait_timeout(self):
        self.svm.operations[fakes.OP_ID] = [OP('PROCESSING')]
        now = [0.0]

        def sleep(seconds):
            now[0] += 10

        self.useFixture(fixtures.MockPatchObject(
            common, 'sleep', sleep))
        self.useFixture(fixtures.MockPatchObject(
            common, 'clock', lambda: now[0]))
        err = self.assertRaises(
            exceptions.CommandError, self.take, devices.CreateDevice,
            ['fw1', '--template', 'fw', '--wait', '--wait-timeout', '25'])
        self.assertIn('Gave up waiting after 25.0 s', str(err))
        self.assertIn('PROCESSING', str(err))


class TestDeviceOthers(base.CommandTestCase):

    def test_list(self):
        headers, rows = self.rows(self.take(devices.ListDevices, [
            '--status', 'active', '--template', 'fw']))
        self.assertEqual(('ID', 'Name', 'Status', 'Mgmt Address',
                          'Template ID'), headers)
        self.assertEqual([(fakes.DEVICE_ID, 'fw1', 'ACTIVE', '192.0.2.10',
                           fakes.TEMPLATE_ID)], rows)
        (_, _, filters), = self.svm.called('list_devices')
        self.assertEqual('ACTIVE', filters['status'])
        self.assertEqual(fakes.TEMPLATE_ID, filters['template_id'])

    def test_list_long_json(self):
        listed = self.run_json(devices.ListDevices, ['--long'])
        self.assertEqual([], listed[0]['Services'])
        self.assertIs(True, listed[0]['Ready'])
        self.assertEqual('running', listed[0]['Power State'])

    def test_show_by_name(self):
        shown = self.run_json(devices.ShowDevice, ['fw1'])
        self.assertEqual(fakes.DEVICE_ID, shown['id'])
        self.assertEqual({'mgmt_address': '192.0.2.10'}, shown['kwargs'])

    def test_set_name_only(self):
        self.take(devices.SetDevice, ['fw1', '--name', 'fw9'])
        (_, args, values), = self.svm.called('update_device')
        self.assertEqual({'name': 'fw9'}, values)

    def test_set_kwargs_merged_and_waited_for(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('COMPLETED', [('update_vm', 'COMPLETED')], kind='update')]
        self.take(devices.SetDevice, ['fw1', '--kwarg', 'flavor=m1.big',
                                      '--remove-kwarg', 'nope', '--wait'])
        (_, _, values), = self.svm.called('update_device')
        self.assertEqual({'kwargs': {'mgmt_address': '192.0.2.10',
                                     'flavor': 'm1.big'}}, values)
        self.assertIn('COMPLETED', self.stderr())

    def test_set_refuses_to_send_back_a_masked_secret(self):
        self.svm.devices[0]['kwargs'] = {'mgmt_auth': {'password': '***'}}
        err = self.assertRaises(exceptions.CommandError, self.take,
                                devices.SetDevice,
                                ['fw1', '--kwarg', 'a=1'])
        self.assertIn('--replace-kwargs', str(err))
        self.take(devices.SetDevice,
                  ['fw1', '--kwarg', 'a=1', '--replace-kwargs'])
        (_, _, values), = self.svm.called('update_device')
        self.assertEqual({'kwargs': {'a': 1}}, values)

    def test_delete_wait(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('PROCESSING', [('delete_vm', 'RUNNING')], kind='delete'),
            OP('COMPLETED', [('delete_vm', 'COMPLETED')], kind='delete')]
        self.take(devices.DeleteDevice, ['fw1', '--force', '--wait'])
        (_, args, kwargs), = self.svm.called('delete_device')
        self.assertEqual({'force': True, 'cascade': False,
                          'on_failure': None}, kwargs)
        self.assertIn('Deleted device %s' % fakes.DEVICE_ID,
                      self.app.stdout.getvalue())

    def test_delete_wait_failure(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('FAILED_TEMP', [('delete_vm', 'FAILED', 'busy')],
               error='busy', kind='delete')]
        err = self.assertRaises(exceptions.CommandError, self.take,
                                devices.DeleteDevice, ['fw1', '--wait'])
        self.assertIn('1 of 1 devices not deleted', str(err))

    def test_delete_cascade_waits_until_gone(self):
        self.svm.operations[fakes.OP_ID] = [OP('COMPLETED')]
        self.svm.gone.add(fakes.DEVICE_ID)
        self.take(devices.DeleteDevice, ['fw1', '--cascade', '--wait'])
        self.assertEqual(1, len(self.svm.called('get_device')))

    def test_events(self):
        self.svm.events = [{'id': 1, 'created_at': 't',
                            'event_type': 'device.create.requested',
                            'result': 'ok', 'message': None}]
        headers, rows = self.rows(self.take(
            devices.ListDeviceEvents, ['fw1', '--reverse']))
        self.assertEqual([(1, 't', 'device.create.requested', 'ok',
                           None)], rows)
        (_, args, kwargs), = self.svm.called('list_device_events')
        self.assertEqual((fakes.DEVICE_ID,), args)
        self.assertEqual('desc', kwargs['sort_dir'])

    def test_events_of_a_deleted_device(self):
        gone = '99999999-9999-9999-9999-999999999999'
        self.take(devices.ListDeviceEvents, [gone])
        (_, args, _), = self.svm.called('list_device_events')
        self.assertEqual((gone,), args)
        self.assertRaises(Exception, self.take, devices.ListDeviceEvents,
                          ['not-a-uuid'])


class TestDeviceActions(base.CommandTestCase):

    def action(self, cls, args):
        self.svm.calls = []
        self.take(cls, ['fw1'] + args)
        (_, args, kwargs), = self.svm.called('device_action')
        return args[1:]

    def test_actions(self):
        self.assertEqual(('reboot', {}),
                         self.action(device_actions.RebootDevice, []))
        self.assertEqual(('reconfigure', {}),
                         self.action(device_actions.ReconfigureDevice, []))
        self.assertEqual(('resize', {'flavor': 'm1.small'}), self.action(
            device_actions.ResizeDevice, ['--flavor', 'm1.small']))
        self.assertEqual(('scale', {'count': 3}), self.action(
            device_actions.ScaleDevice, ['--count', '3']))
        self.assertEqual(('snapshot_create', {}), self.action(
            device_actions.CreateDeviceSnapshot, []))
        self.assertEqual(('snapshot_revert', {'image_id': 'img'}),
                         self.action(device_actions.RevertDeviceSnapshot,
                                     ['--image', 'img']))
        self.assertEqual(('attach_nic', {'network_id': 'n', 'fixed_ip':
                                         '10.0.0.5'}), self.action(
            device_actions.AttachDeviceNic,
            ['--network', 'n', '--fixed-ip', '10.0.0.5']))
        self.assertEqual(('detach_nic', {'port_id': 'p'}), self.action(
            device_actions.DetachDeviceNic, ['--port', 'p']))
        self.assertEqual(('reboot', {'hard': True, 'why': 'x'}),
                         self.action(device_actions.RunDeviceAction,
                                     ['reboot', '--param', 'hard=true',
                                      '--param', 'why=x']))

    def test_required_params(self):
        self.assertRaises(SystemExit, self.parse,
                          device_actions.ScaleDevice, ['fw1'])
        self.assertRaises(SystemExit, self.parse,
                          device_actions.ScaleDevice,
                          ['fw1', '--count', 'many'])

    def test_action_wait(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('COMPLETED', [('run_action', 'COMPLETED'),
                             ('wait_action', 'COMPLETED')], kind='action')]
        shown = self.as_dict(self.take(device_actions.RebootDevice,
                                       ['fw1', '--wait']))
        self.assertEqual('ACTIVE', shown['status'])
        self.assertIn('step wait_action COMPLETED', self.stderr())

    def test_unsupported_action_is_the_apis_error(self):
        def refuse(*args, **kwargs):
            raise svm_client.ApiError(400, [{
                'detail': "action 'reboot' is not supported by this "
                          "device's driver; supported: none",
                'field': 'action'}])
        self.svm.device_action = refuse
        err = self.assertRaises(svm_client.ApiError, self.take,
                                device_actions.RebootDevice, ['fw1'])
        self.assertIn('supported: none (field: action) (HTTP 400',
                      str(err))
