"""Service instances bound to devices: a configure operation per device
binds them (the management driver applies their config, the template's
CONFIGURE scripts run with the services as their environment); the
scheduler picks a device when none is named; a service may own a device
made for it; deleting one is staged (configuration off each device, then
the devices it owns are deleted); a device with services is deleted only
with ?cascade=true."""

import json

import fixtures

from servicevm.drivers.mgmt import noop
from servicevm.tests import base
from servicevm.tests.unit.conductor import base as op_base
from servicevm.tests.unit.conductor import test_scripts

D = op_base.D
S = '/v1/service_instances'
T = '/v1/device_templates'


script = test_scripts.script


class ServiceTestCase(test_scripts.ScriptTestCase):

    def setUp(self):
        super().setUp()
        # The noop management driver records the configs it is asked to
        # apply or remove too.
        self.configs = []

        def push_config(driver, context, device, config):
            self.configs.append(('push', device['id'], config))

        def remove_config(driver, context, device, config):
            self.configs.append(('remove', device['id'], config))
        for name, fake in (('push_config', push_config),
                           ('remove_config', remove_config)):
            self.useFixture(fixtures.MockPatchObject(
                noop.NoopMgmtDriver, name, fake))

    def template(self, events=None, service_types=('firewall',), **attrs):
        attributes = dict({'image': 'cirros'}, **attrs)
        return self.create_template(
            device_driver='fault', attributes=attributes,
            service_types=list(service_types),
            lifecycle_events=events or {})['id']

    def active_device(self, template_id, name='dev'):
        response = self.post(D, {'device': {
            'name': name, 'template_id': template_id,
            'kwargs': {'mgmt_address': '192.0.2.7'}}}, status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED')
        return response.json['device']['id']

    def create_service(self, status=202, **values):
        body = dict({'service_type': 'firewall', 'name': 'fw'}, **values)
        return self.post(S, {'service_instance': body}, status=status)

    def service(self, service_id, status=200):
        response = self.get('%s/%s' % (S, service_id), status=status)
        return response.json.get('service_instance')

    def wait_service(self, service_id, status):
        return self.wait_until(
            lambda: (self.service(service_id) or {}).get(
                'status') == status and self.service(service_id),
            'service %s to be %s' % (service_id, status))

    def wait_gone(self, url):
        self.wait_until(lambda: self.get(url, status='*').status_int == 404,
                        '%s to be gone' % url)


class TestBindAndConfigure(ServiceTestCase):

    def test_bind_configure_unbind(self):
        template_id = self.template(
            {'CONFIGURE': [script('rules', 'echo rules')]})
        device_id = self.active_device(template_id)
        response = self.create_service(
            devices=[device_id], kwargs={'config': {'rules': ['allow']},
                                         'zone': 'dmz'})
        self.assertIn('/v1/operations/', response.headers['Location'])
        service = response.json['service_instance']
        self.assertEqual('PENDING_CREATE', service['status'])
        self.assertEqual([{'device_id': device_id, 'status': 'PENDING',
                           'owner': False}], service['bindings'])
        op_id = response.json['operation_id']
        operation = self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual(('device', device_id, 'configure'), (
            operation['resource_type'], operation['resource_id'],
            operation['kind']))
        self.assertEqual(['configure_services', 'script.CONFIGURE.rules'],
                         [s['name'] for s in operation['steps']])
        service = self.wait_service(service['id'], 'ACTIVE')
        self.assertEqual('ACTIVE', service['bindings'][0]['status'])
        device = self.device(device_id)
        self.assertEqual(('ACTIVE', [service['id']]),
                         (device['status'], device['services']))
        self.assertEqual([('push', device_id, {'rules': ['allow']})],
                         self.configs)
        # The script learns of the change and of every hosted service.
        env = self.ran[-1][1]
        self.assertEqual(('CONFIGURE', 'bind', service['id'], 'dmz'),
                         (env['SVM_EVENT'], env['SVM_SERVICE_CHANGE'],
                          env['SVM_SERVICE_ID'],
                          env['SVM_SERVICE_CONF_ZONE']))
        hosted = json.loads(env['SVM_SERVICES'])
        self.assertEqual([service['id']], [s['id'] for s in hosted])
        self.assertIn('device.service.bind', self.events(device_id))

        # A second service on the same device: both are hosted.
        second = self.create_service(devices=[device_id], name='fw2')
        self.wait_rest(second.json['operation_id'], 'COMPLETED')
        second_id = second.json['service_instance']['id']
        self.assertEqual(
            sorted([service['id'], second_id]),
            sorted(s['id'] for s in json.loads(
                self.ran[-1][1]['SVM_SERVICES'])))

        # Staged delete: the configuration leaves the device, the device
        # stays (the service does not own it).
        self.ran[:], self.configs[:] = [], []
        response = self.delete('%s/%s' % (S, service['id']), status=202)
        self.assertEqual('PENDING_DELETE',
                         response.json['service_instance']['status'])
        unbind = self.wait_rest(response.json['operation_id'], 'COMPLETED')
        self.assertEqual('configure', unbind['kind'])
        self.wait_gone('%s/%s' % (S, service['id']))
        self.assertEqual([('remove', device_id, {'rules': ['allow']})],
                         self.configs)
        env = self.ran[-1][1]
        self.assertEqual('unbind', env['SVM_SERVICE_CHANGE'])
        self.assertEqual([second_id], [s['id'] for s in json.loads(
            env['SVM_SERVICES'])])
        device = self.device(device_id)
        self.assertEqual(('ACTIVE', [second_id]),
                         (device['status'], device['services']))

    def test_busy_or_unfit_device_is_refused_and_nothing_written(self):
        template_id = self.template()
        device_id = self.active_device(template_id)
        other = self.active_device(self.template(service_types=['lb']))
        first = self.create_service(devices=[device_id])
        # Its configure operation done first: its steps write rows.
        self.wait_rest(first.json['operation_id'], 'COMPLETED')
        for devices, status, code in (
                ([other], 409, 'servicevm.conflict'),
                (['00000000-0000-4000-8000-000000000000'], 400,
                 'servicevm.invalid_parameter')):
            with self.assertNoNewRows():
                error = self.assertError(
                    self.create_service(devices=devices, status='*'),
                    status)
            self.assertEqual(code, error['code'])
        # While its device is being configured, a service cannot go.
        self.set_holder(device_id)
        with self.assertNoNewRows():
            error = self.assertError(self.delete('%s/%s' % (
                S, first.json['service_instance']['id'])), 409)
        self.assertEqual('servicevm.device_busy', error['code'])

    def set_holder(self, device_id):
        import sqlalchemy as sa
        with self.engine.begin() as conn:
            op_id = conn.execute(sa.text(
                'SELECT id FROM operations WHERE resource_id = :d'),
                {'d': device_id}).first()[0]
            conn.execute(sa.text('UPDATE devices SET operation_id = :o '
                                 'WHERE id = :d'),
                         {'o': op_id, 'd': device_id})

    def test_failed_configure_script_fixed_then_retried(self):
        events = {'CONFIGURE': [script('a', 'echo a'), script('b', 'exit 2')]}
        template_id = self.template(events)
        device_id = self.active_device(template_id)
        response = self.create_service(devices=[device_id])
        service_id = response.json['service_instance']['id']
        op_id = response.json['operation_id']
        self.wait_rest(op_id, 'FAILED_TEMP')
        service = self.wait_service(service_id, 'ERROR')
        self.assertIn("CONFIGURE script 'b' failed", service['status_reason'])
        self.assertIn('retry operation %s' % op_id, service['status_reason'])
        self.assertEqual('ERROR', service['bindings'][0]['status'])

        events['CONFIGURE'][1] = script('b', 'echo fixed')
        self.patch('%s/%s' % (T, template_id), {'device_template': {
            'lifecycle_events': events}}, status=200)
        self.ran[:] = []
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual(['echo fixed'], [t for t, _ in self.ran])
        service = self.wait_service(service_id, 'ACTIVE')
        self.assertEqual('ACTIVE', service['bindings'][0]['status'])
        self.assertIsNone(service['status_reason'])

    def test_managed_by_another_service(self):
        response = self.create_service(devices=[], managed_by_user=False,
                                       status=201)
        url = '%s/%s' % (S, response.json['service_instance']['id'])
        self.assertError(self.patch(url, {'service_instance': {
            'name': 'x'}}), 403)
        self.assertError(self.delete(url), 403)
        self.patch(url, {'service_instance': {'name': 'x'}}, base.ADMIN,
                   status=200)
        self.delete(url, base.ADMIN, status=204)


class TestScheduling(ServiceTestCase):

    def test_least_loaded_device_with_room(self):
        template_id = self.template(max_service_instances=1)
        first = self.active_device(template_id, 'a')
        second = self.active_device(template_id, 'b')
        chosen = []
        for _ in range(2):
            response = self.create_service()
            self.wait_rest(response.json['operation_id'], 'COMPLETED')
            chosen.extend(response.json['service_instance']['devices'])
        self.assertEqual(sorted([first, second]), sorted(chosen))
        with self.assertNoNewRows():
            error = self.assertError(self.create_service(status='*'), 409)
        self.assertIn('with room for another service instance',
                      error['detail'])
        self.assertEqual('service_instance.devices', error['field'])


class TestOwnedDevice(ServiceTestCase):

    def test_device_made_for_the_service_is_released_with_it(self):
        template_id = self.template(
            {'START': [script('up', 'echo up')],
             'CONFIGURE': [script('rules', 'echo rules')],
             'TERMINATE': [script('bye', 'echo bye')]})
        response = self.create_service(
            template_id=template_id,
            device_kwargs={'mgmt_address': '192.0.2.9'})
        service = response.json['service_instance']
        device_id = service['devices'][0]
        self.assertTrue(service['bindings'][0]['owner'])
        operation = self.wait_rest(response.json['operation_id'],
                                   'COMPLETED')
        self.assertEqual(('create', device_id),
                         (operation['kind'], operation['resource_id']))
        self.assertEqual(['create_vm', 'wait_active', 'script.START.up',
                          'configure_services', 'script.CONFIGURE.rules'],
                         [s['name'] for s in operation['steps']])
        self.wait_service(service['id'], 'ACTIVE')

        self.ran[:] = []
        response = self.delete('%s/%s' % (S, service['id']), status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED')
        self.wait_gone('%s/%s' % (D, device_id))
        self.wait_gone('%s/%s' % (S, service['id']))
        # Its configuration first, then the device's own end.
        self.assertEqual(['echo rules', 'echo bye'],
                         [t for t, _ in self.ran])
        self.assertNoLeftovers(device_id)

    def test_template_that_does_not_offer_the_service(self):
        template_id = self.template(service_types=['lb'])
        with self.assertNoNewRows():
            error = self.assertError(self.create_service(
                template_id=template_id, status='*'), 409)
        self.assertEqual('service_instance.template_id', error['field'])


class TestCascade(ServiceTestCase):

    def test_device_with_services_goes_with_cascade(self):
        template_id = self.template(
            {'CONFIGURE': [script('rules', 'echo rules')]})
        device_id = self.active_device(template_id)
        services = []
        for name in ('a', 'b'):
            response = self.create_service(devices=[device_id], name=name)
            self.wait_rest(response.json['operation_id'], 'COMPLETED')
            services.append(response.json['service_instance']['id'])
        url = '%s/%s' % (D, device_id)
        with self.assertNoNewRows():
            error = self.assertError(self.delete(url), 409)
        self.assertIn('cascade=true', error['detail'])
        response = self.delete(url + '?cascade=true', status=202)
        # One operation takes both services off the device.
        self.assertEqual(1, len(response.json['operation_ids']))
        self.wait_rest(response.json['operation_id'], 'COMPLETED')
        for service_id in services:
            self.wait_gone('%s/%s' % (S, service_id))
        self.wait_gone(url)
        self.assertEqual('unbind', self.ran[-1][1]['SVM_SERVICE_CHANGE'])
        self.assertEqual([], json.loads(self.ran[-1][1]['SVM_SERVICES']))
        self.assertNoLeftovers(device_id)


class TestReconfigure(ServiceTestCase):

    def test_reinitialised_device_gets_its_services_back(self):
        events = {'CONFIGURE': [script('rules', 'echo rules')]}
        template_id = self.template(events)
        device_id = self.active_device(template_id)
        services = []
        for name in ('a', 'b'):
            response = self.create_service(
                devices=[device_id], name=name,
                kwargs={'config': {'rule': name}})
            self.wait_rest(response.json['operation_id'], 'COMPLETED')
            services.append(response.json['service_instance']['id'])
        url = '%s/%s/action' % (D, device_id)
        # The device came back without its configuration: apply it again.
        self.ran[:], self.configs[:] = [], []
        response = self.post(url, {'action': 'reconfigure'}, status=202)
        operation = self.wait_rest(response.json['operation_id'],
                                   'COMPLETED')
        self.assertEqual('configure', operation['kind'])
        self.assertEqual([('push', device_id, {'rule': 'a'}),
                          ('push', device_id, {'rule': 'b'})], self.configs)
        env = self.ran[-1][1]
        self.assertEqual('reapply', env['SVM_SERVICE_CHANGE'])
        self.assertEqual(sorted(services), sorted(json.loads(
            env['SVM_SERVICES'])[i]['id'] for i in range(2)))
        self.assertIn('device.service.reconfigure', self.events(device_id))

        # It cannot: the services say why.
        events['CONFIGURE'] = [script('rules', 'exit 4')]
        self.patch('%s/%s' % (T, template_id), {'device_template': {
            'lifecycle_events': events}}, status=200)
        response = self.post(url, {'action': 'reconfigure'}, status=202)
        self.wait_rest(response.json['operation_id'], 'FAILED_TEMP')
        for service_id in services:
            service = self.wait_service(service_id, 'ERROR')
            self.assertIn('applying its configuration again on device %s '
                          'failed' % device_id, service['status_reason'])

    def test_restart_applies_the_services_again(self):
        template_id = self.template(
            {'CONFIGURE': [script('rules', 'echo rules')]})
        device_id = self.active_device(template_id)
        response = self.create_service(devices=[device_id],
                                       kwargs={'config': {'rule': 'a'}})
        self.wait_rest(response.json['operation_id'], 'COMPLETED')
        self.configs[:] = []
        response = self.post('%s/%s/action' % (D, device_id),
                             {'action': 'reboot'}, status=202)
        operation = self.wait_rest(response.json['operation_id'],
                                   'COMPLETED')
        self.assertEqual(['run_action', 'wait_action', 'configure_services',
                          'script.CONFIGURE.rules'],
                         [s['name'] for s in operation['steps']])
        self.assertEqual([('push', device_id, {'rule': 'a'})], self.configs)
        self.assertEqual('reapply', self.ran[-1][1]['SVM_SERVICE_CHANGE'])
        self.assertEqual('ACTIVE', self.service(
            response.json['device']['services'][0])['status'])

    def test_nothing_to_reconfigure(self):
        device_id = self.active_device(self.template())
        url = '%s/%s/action' % (D, device_id)
        with self.assertNoNewRows():
            error = self.assertError(self.post(url, {
                'action': 'reconfigure'}), 409)
        self.assertIn('hosts no service instance', error['detail'])
        self.assertError(self.post(url, {'action': 'reconfigure',
                                         'params': {'x': 1}}), 400,
                         field='params.x')
