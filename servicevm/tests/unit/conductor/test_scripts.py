"""Lifecycle scripts: a template's scripts run as steps of the operations
(INSTANTIATE and START after a create, TERMINATE before a delete, STOP
before a shutdown), with the device's facts and the configuration values
as their environment; a failed script stops the operation there, and a
retry after the template was fixed runs from that script."""

import fixtures

from servicevm.drivers.mgmt import noop
from servicevm.tests.unit.conductor import base as op_base

D = op_base.D
T = '/v1/device_templates'


def script(name, text):
    return {'name': name, 'script': text}


class ScriptTestCase(op_base.OperationTestCase):

    def setUp(self):
        super().setUp()
        # The noop management driver, recording what it is asked to run:
        # a script "exit N" exits N (and says so on stderr).
        self.ran = []

        def run_script(driver, context, device, text, env):
            self.ran.append((text, env))
            code = int(text.split()[1]) if text.startswith('exit ') else 0
            return code, 'out of %s' % text, 'err %d' % code if code else ''
        self.useFixture(fixtures.MockPatchObject(
            noop.NoopMgmtDriver, 'run_script', run_script))

    def scripted_template(self, events, configurations=None):
        attributes = {'image': 'cirros'}
        if configurations is not None:
            attributes['configurations'] = configurations
        return self.create_template(device_driver='fault',
                                    attributes=attributes,
                                    lifecycle_events=events)['id']

    def create(self, template_id, **kwargs):
        kwargs.setdefault('mgmt_address', '192.0.2.7')
        response = self.post(D, {'device': {
            'name': 'fw 1', 'template_id': template_id, 'kwargs': kwargs}},
            status=202)
        return response.json['device']['id'], response.json['operation_id']

    def step_names(self, op_id):
        return [s['name'] for s in self.operation(op_id)['steps']]


class TestCreateAndDelete(ScriptTestCase):

    def test_scripts_run_in_order_with_their_environment(self):
        template_id = self.scripted_template(
            {'INSTANTIATE': [script('pkgs', 'echo pkgs'),
                             script('conf', 'echo conf')],
             'START': [script('up', 'echo up')],
             'TERMINATE': [script('bye', 'echo bye')]},
            configurations={'dns-server': '192.0.2.53', 'mtu': 1400})
        device_id, op_id = self.create(
            template_id, configurations={'mtu': 9000, '1st': 'x'},
            addresses={'data-net': ['10.0.0.5', '10.0.0.6']})
        self.wait_rest(op_id, 'COMPLETED')
        self.assertEqual(
            ['create_vm', 'wait_active', 'script.INSTANTIATE.pkgs',
             'script.INSTANTIATE.conf', 'script.START.up'],
            self.step_names(op_id))
        self.assertEqual(['echo pkgs', 'echo conf', 'echo up'],
                         [text for text, _ in self.ran])
        env = self.ran[0][1]
        self.assertEqual('INSTANTIATE', env['SVM_EVENT'])
        self.assertEqual(device_id, env['SVM_DEVICE_ID'])
        self.assertEqual('fw-1', env['SVM_HOSTNAME'])
        self.assertEqual('192.0.2.7', env['SVM_MGMT_ADDRESS'])
        self.assertEqual(op_id, env['SVM_OPERATION_ID'])
        # The template's values, the request's over them; names made
        # fit for the environment.
        self.assertEqual('192.0.2.53', env['SVM_CONF_DNS_SERVER'])
        self.assertEqual('9000', env['SVM_CONF_MTU'])
        self.assertEqual('x', env['SVM_CONF__1ST'])
        # Each network's addresses, as the VIM reports them.
        self.assertEqual(('10.0.0.5', '10.0.0.5 10.0.0.6'),
                         (env['SVM_NET_DATA_NET_IP'],
                          env['SVM_NET_DATA_NET_IPS']))
        steps = self.steps(op_id)
        self.assertEqual('exit 0; stdout: out of echo conf; stderr: ',
                         steps['script.INSTANTIATE.conf']['output'])
        device = self.device(device_id)
        self.assertEqual('ACTIVE', device['status'])
        self.assertTrue(device['ready'])

        self.ran[:] = []
        response = self.delete('%s/%s' % (D, device_id), status=202)
        delete_op = response.json['operation_id']
        self.wait_rest(delete_op, 'COMPLETED')
        self.assertEqual(['script.TERMINATE.bye', 'delete_vm', 'wait_gone'],
                         self.step_names(delete_op))
        self.assertEqual(['echo bye'], [text for text, _ in self.ran])
        self.assertEqual('TERMINATE', self.ran[0][1]['SVM_EVENT'])
        self.assertNoLeftovers(device_id)

    def test_failed_script_fixed_then_retried_from_it(self):
        events = {'INSTANTIATE': [script('a', 'echo a'),
                                  script('b', 'exit 3'),
                                  script('c', 'echo c')]}
        template_id = self.scripted_template(events)
        device_id, op_id = self.create(template_id)
        operation = self.wait_rest(op_id, 'FAILED_TEMP')
        self.assertIn("INSTANTIATE script 'b' failed: exit 3", operation[
            'error'])
        self.assertIn('err 3', operation['error'])
        step = self.steps(op_id)['script.INSTANTIATE.b']
        self.assertEqual('FAILED', step['state'])
        self.assertIn('exit 3', step['error'])
        self.assertEqual('PENDING', self.steps(op_id)[
            'script.INSTANTIATE.c']['state'])
        self.assertEqual('ERROR', self.device(device_id)['status'])

        events['INSTANTIATE'][1] = script('b', 'echo b fixed')
        self.patch('%s/%s' % (T, template_id), {'device_template': {
            'lifecycle_events': events}}, status=200)
        self.ran[:] = []
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED')
        # From the failed script on, with its fixed text.
        self.assertEqual(['echo b fixed', 'echo c'],
                         [text for text, _ in self.ran])
        self.assertEqual(1, self.steps(op_id)['script.INSTANTIATE.a'][
            'attempts'])
        self.assertEqual(2, self.steps(op_id)['script.INSTANTIATE.b'][
            'attempts'])
        self.assertEqual('ACTIVE', self.device(device_id)['status'])
        self.assertOneInstance(device_id)

    def test_terminate_skipped_without_a_management_address(self):
        template_id = self.scripted_template(
            {'TERMINATE': [script('bye', 'echo bye')]})
        device_id, op_id = self.create(template_id, mgmt_address=None)
        self.wait_rest(op_id, 'COMPLETED')
        response = self.delete('%s/%s' % (D, device_id), status=202)
        delete_op = response.json['operation_id']
        self.wait_rest(delete_op, 'COMPLETED')
        self.assertEqual([], self.ran)
        self.assertIn('skipped', self.steps(delete_op)[
            'script.TERMINATE.bye']['output'])

    def test_scripts_on_a_device_without_address_fail_clearly(self):
        template_id = self.scripted_template(
            {'INSTANTIATE': [script('a', 'echo a')]})
        _, op_id = self.create(template_id, mgmt_address=None)
        operation = self.wait_rest(op_id, 'FAILED_TEMP')
        self.assertIn('no management address', operation['error'])


class TestTemplateScripts(ScriptTestCase):

    def test_bad_lifecycle_events_are_refused(self):
        for events, field in (
                ({'BOOT': []}, 'device_template.lifecycle_events.BOOT'),
                ({'START': [{'name': 'a'}]},
                 'device_template.lifecycle_events.START.0.script'),
                ({'START': [script('a b', 'x')]},
                 'device_template.lifecycle_events.START.0.name'),
                ({'START': [script('a', 'x'), script('a', 'y')]},
                 'device_template.lifecycle_events.START.1.name')):
            response = self.post(T, {'device_template': {
                'device_driver': 'noop', 'lifecycle_events': events}})
            self.assertError(response, 400, field=field)

    def test_patch_replaces_the_scripts(self):
        template_id = self.scripted_template(
            {'START': [script('a', 'echo a')]})
        events = {'STOP': [script('b', 'echo b')]}
        response = self.patch('%s/%s' % (T, template_id), {
            'device_template': {'lifecycle_events': events}}, status=200)
        self.assertEqual(events,
                         response.json['device_template']['lifecycle_events'])
        self.assertEqual(events, self.get('%s/%s' % (T, template_id)).json[
            'device_template']['lifecycle_events'])


class TestActions(ScriptTestCase):

    def test_stop_scripts_run_before_a_shutdown(self):
        template_id = self.scripted_template(
            {'STOP': [script('drain', 'echo drain')],
             'START': [script('up', 'echo up')]})
        device_id, op_id = self.create(template_id)
        self.wait_rest(op_id, 'COMPLETED')
        self.ran[:] = []
        response = self.post('%s/%s/action' % (D, device_id),
                             {'action': 'shutdown'}, status=202)
        action_op = response.json['operation_id']
        self.wait_rest(action_op, 'COMPLETED')
        self.assertEqual(['script.STOP.drain', 'run_action', 'wait_action'],
                         self.step_names(action_op))
        self.assertEqual(['echo drain'], [text for text, _ in self.ran])


class TestScaleScripts(ScriptTestCase):

    def test_scale_out_and_in_run_their_scripts(self):
        template_id = self.scripted_template(
            {'SCALE_OUT': [script('join', 'echo join')],
             'SCALE_IN': [script('drain', 'echo drain')]})
        device_id, op_id = self.create(template_id)
        self.wait_rest(op_id, 'COMPLETED')
        url = '%s/%s/action' % (D, device_id)
        for count, ran, skipped in ((3, 'echo join', 'script.SCALE_IN.drain'),
                                    (2, 'echo drain',
                                     'script.SCALE_OUT.join')):
            self.ran[:] = []
            response = self.post(url, {'action': 'scale',
                                       'params': {'count': count}},
                                 status=202)
            op_id = response.json['operation_id']
            operation = self.wait_rest(op_id, 'COMPLETED')
            self.assertEqual(['script.SCALE_IN.drain', 'run_action',
                              'wait_action', 'script.SCALE_OUT.join'],
                             self.step_names(op_id))
            self.assertEqual([ran], [text for text, _ in self.ran])
            self.assertEqual(str(count), self.ran[0][1]['SVM_SCALE_COUNT'])
            self.assertIn('skipped', self.steps(op_id)[skipped]['output'])
            self.assertIn('members now', operation['steps'][2]['output'])
