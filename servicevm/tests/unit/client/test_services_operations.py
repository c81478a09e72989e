"""openstack servicevm service ... and operation ..., with a fake
client."""

from osc_lib import exceptions

from servicevm.tests.unit.client import base
from servicevm.tests.unit.client import fakes
from servicevmclient.osc.v1 import operations
from servicevmclient.osc.v1 import services

OP = fakes.operation


class TestServices(base.CommandTestCase):

    def test_create_on_devices_waits_for_every_operation(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('COMPLETED', [('configure_services', 'COMPLETED')],
               kind='configure')]
        self.svm.operations[fakes.OP2_ID] = [
            OP('PROCESSING', [('configure_services', 'RUNNING')],
               op_id=fakes.OP2_ID, kind='configure'),
            OP('COMPLETED', [('configure_services', 'COMPLETED')],
               op_id=fakes.OP2_ID, kind='configure')]
        shown = self.as_dict(self.take(services.CreateService, [
            'edge', '--service-type', 'firewall', '--device', 'fw1',
            '--device', fakes.DEVICE_ID, '--kwarg', 'zone=dmz', '--wait']))
        (_, _, values), = self.svm.called('create_service')
        self.assertEqual({'name': 'edge', 'service_type': 'firewall',
                          'devices': [fakes.DEVICE_ID, fakes.DEVICE_ID],
                          'kwargs': {'zone': 'dmz'}}, values)
        self.assertEqual('ACTIVE', shown['status'])
        self.assertEqual([fakes.OP_ID, fakes.OP2_ID],
                         shown['operation_ids'])
        polled = [c[1][0] for c in self.svm.called('get_operation')]
        self.assertEqual([fakes.OP_ID, fakes.OP2_ID, fakes.OP2_ID], polled)
        self.assertIn(fakes.OP2_ID, self.stderr())

    def test_create_wait_failure(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('FAILED_TEMP', [('script.CONFIGURE.fw', 'FAILED', 'exit 3')],
               error='script failed', kind='configure')]
        err = self.assertRaises(exceptions.CommandError, self.take,
                                services.CreateService,
                                ['edge', '--service-type', 'firewall',
                                 '--wait'])
        self.assertIn('ended FAILED_TEMP: script failed', str(err))
        self.assertIn('step script.CONFIGURE.fw FAILED: exit 3', str(err))

    def test_create_with_template_and_scheduler_and_none(self):
        self.take(services.CreateService, [
            'edge', '--service-type', 'firewall', '--template', 'fw',
            '--device-kwarg', 'mgmt_address=192.0.2.1',
            '--managed-by-service', '--mgmt-driver', 'ssh'])
        self.take(services.CreateService,
                  ['edge', '--service-type', 'firewall'])
        shown = self.as_dict(self.take(services.CreateService, [
            'edge', '--service-type', 'firewall', '--no-devices']))
        first, second, third = [c[2] for c in
                                self.svm.called('create_service')]
        self.assertEqual({'name': 'edge', 'service_type': 'firewall',
                          'template_id': fakes.TEMPLATE_ID,
                          'device_kwargs': {'mgmt_address': '192.0.2.1'},
                          'managed_by_user': False, 'mgmt_driver': 'ssh'},
                         first)
        self.assertEqual({'name': 'edge', 'service_type': 'firewall'},
                         second)
        self.assertEqual([], third['devices'])
        self.assertNotIn('operation_ids', shown)

    def test_create_bad_combinations(self):
        self.assertRaises(SystemExit, self.parse, services.CreateService,
                          ['edge', '--service-type', 'fw', '--device', 'a',
                           '--template', 'fw'])
        self.assertRaises(exceptions.CommandError, self.take,
                          services.CreateService,
                          ['edge', '--service-type', 'fw',
                           '--device-kwarg', 'a=1'])

    def test_list_and_show(self):
        headers, rows = self.rows(self.take(services.ListServices, [
            '--device', 'fw1', '--service-type', 'firewall']))
        self.assertEqual(('ID', 'Name', 'Service Type', 'Status',
                          'Devices'), headers)
        self.assertEqual([(fakes.SERVICE_ID, 'edge', 'firewall', 'ACTIVE',
                           [fakes.DEVICE_ID])], rows)
        (_, _, filters), = self.svm.called('list_services')
        self.assertEqual(fakes.DEVICE_ID, filters['device_id'])
        code, out = self.run_cmd(services.ShowService, ['edge'])
        self.assertIn('"status": "ACTIVE"', out)  # bindings, as JSON

    def test_set(self):
        self.take(services.SetService, ['edge', '--kwarg', 'zone=lan',
                                        '--description', 'x'])
        (_, args, values), = self.svm.called('update_service')
        self.assertEqual({'kwargs': {'zone': 'lan'}, 'description': 'x'},
                         values)

    def test_delete_wait_until_gone(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('COMPLETED', [('configure_services', 'COMPLETED')],
               kind='configure')]
        self.svm.gone.add(fakes.SERVICE_ID)
        self.take(services.DeleteService, ['edge', '--wait'])
        out = self.app.stdout.getvalue()
        self.assertIn('Deleting service instance %s: operation %s' % (
            fakes.SERVICE_ID, fakes.OP_ID), out)
        self.assertIn('Deleted service instance %s' % fakes.SERVICE_ID, out)

    def test_delete_service_in_error(self):
        self.svm.operations[fakes.OP_ID] = [OP('COMPLETED')]
        self.svm.services[0].update(status='ERROR', status_reason='boom')
        err = self.assertRaises(exceptions.CommandError, self.take,
                                services.DeleteService, ['edge', '--wait'])
        self.assertIn('not deleted', str(err))

    def test_delete_at_once(self):
        self.svm.delete_service = lambda service_id: None
        self.take(services.DeleteService, ['edge', '--wait'])
        self.assertEqual('Deleted service instance %s\n' % fakes.SERVICE_ID,
                         self.app.stdout.getvalue())


class TestOperations(base.CommandTestCase):

    def test_list(self):
        headers, rows = self.rows(self.take(operations.ListOperations, [
            '--device', 'fw1', '--state', 'failed_temp', '--kind',
            'create', '--long']))
        self.assertIn('Lease Owner', headers)
        (_, _, filters), = self.svm.called('list_operations')
        self.assertEqual(fakes.DEVICE_ID, filters['resource_id'])
        self.assertEqual('FAILED_TEMP', filters['state'])
        self.assertEqual('create', filters['kind'])

    def test_show_steps(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('FAILED_TEMP', [('create_vm', 'COMPLETED'),
                               ('wait_active', 'FAILED', 'timeout')])]
        code, out = self.run_cmd(operations.ShowOperation, [fakes.OP_ID])
        self.assertIn('1. create_vm COMPLETED (attempts: 1)', out)
        self.assertIn('2. wait_active FAILED (attempts: 1) ERROR: timeout',
                      out)
        self.app.stdout.truncate(0)
        self.app.stdout.seek(0)
        shown = self.run_json(operations.ShowOperation, [fakes.OP_ID])
        self.assertEqual('wait_active', shown['steps'][1]['name'])

    def test_show_missing(self):
        err = self.assertRaises(Exception, self.take,
                                operations.ShowOperation, ['nope'])
        self.assertIn('could not be found', str(err))

    def test_actions(self):
        for cls, action in ((operations.PauseOperation, 'pause'),
                            (operations.ResumeOperation, 'resume'),
                            (operations.CancelOperation, 'cancel'),
                            (operations.RetryOperation, 'retry'),
                            (operations.RollbackOperation, 'rollback'),
                            (operations.FailOperation, 'fail')):
            self.svm.calls = []
            shown = self.as_dict(self.take(cls, [fakes.OP_ID]))
            self.assertEqual([('operation_action', (fakes.OP_ID, action),
                               {})], self.svm.calls)
            self.assertEqual('PROCESSING', shown['state'])

    def test_pause_and_fail_have_no_wait(self):
        self.assertRaises(SystemExit, self.parse, operations.PauseOperation,
                          [fakes.OP_ID, '--wait'])
        self.assertRaises(SystemExit, self.parse, operations.FailOperation,
                          [fakes.OP_ID, '--wait'])

    def test_retry_wait(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('COMPLETED', [('create_vm', 'COMPLETED')])]
        shown = self.as_dict(self.take(operations.RetryOperation,
                                       [fakes.OP_ID, '--wait']))
        self.assertEqual('COMPLETED', shown['state'])

    def test_rollback_wait_expects_rolled_back(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('ROLLING_BACK', [('create_vm', 'ROLLING_BACK')]),
            OP('ROLLED_BACK', [('create_vm', 'ROLLED_BACK')])]
        shown = self.as_dict(self.take(operations.RollbackOperation,
                                       [fakes.OP_ID, '--wait']))
        self.assertEqual('ROLLED_BACK', shown['state'])
        self.assertIn('ROLLING_BACK, step create_vm ROLLING_BACK',
                      self.stderr())
        self.assertIn('ROLLED_BACK, step create_vm ROLLED_BACK',
                      self.stderr())

    def test_cancel_wait_that_fails(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('FAILED_TEMP', [('delete_vm', 'FAILED', 'stuck')],
               error='rollback failed')]
        err = self.assertRaises(exceptions.CommandError, self.take,
                                operations.CancelOperation,
                                [fakes.OP_ID, '--wait'])
        self.assertIn('ended FAILED_TEMP: rollback failed', str(err))
