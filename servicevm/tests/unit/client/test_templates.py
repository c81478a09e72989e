"""openstack servicevm template ..., with a fake client."""

import contextlib
import io
import os

import fixtures
from osc_lib import exceptions

from servicevm.tests.unit.client import base
from servicevm.tests.unit.client import fakes
from servicevmclient.osc.v1 import templates

KEY = ('-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA'
       'secretmaterial\n-----END OPENSSH PRIVATE KEY-----\n')


class TestTemplateCreate(base.CommandTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_body(self):
        result = self.take(templates.CreateTemplate, [
            'fw', '--device-driver', 'noop', '--mgmt-driver', 'ssh',
            '--service-type', 'firewall', '--service-type', 'router',
            '--attribute', 'image=fw-9.1', '--attribute', 'max=3',
            '--attribute', 'fault={"create": {"sleep": 1}}',
            '--description', 'a firewall'])
        (_, _, values), = self.svm.called('create_template')
        self.assertEqual({
            'name': 'fw', 'device_driver': 'noop', 'mgmt_driver': 'ssh',
            'description': 'a firewall',
            'service_types': ['firewall', 'router'],
            'attributes': {'image': 'fw-9.1', 'max': 3,
                           'fault': {'create': {'sleep': 1}}}}, values)
        shown = self.as_dict(result)
        self.assertEqual(fakes.TEMPLATE_ID, shown['id'])
        self.assertEqual(('id', 'name'), result[0][:2])

    def test_minimal_body(self):
        self.take(templates.CreateTemplate, ['fw', '--device-driver',
                                             'noop'])
        (_, _, values), = self.svm.called('create_template')
        self.assertEqual({'name': 'fw', 'device_driver': 'noop'}, values)

    def test_device_driver_is_required(self):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertRaises(SystemExit, self.parse,
                              templates.CreateTemplate, ['fw'])
        self.assertIn('--device-driver', err.getvalue())

    def test_ssh_key_read_from_file_and_never_shown(self):
        key = self.write('id_ed25519', KEY)
        password = self.write('pw', 's3cret\n')
        code, out = self.run_cmd(templates.CreateTemplate, [
            'fw', '--device-driver', 'noop', '--mgmt-driver', 'ssh',
            '--mgmt-username', 'admin', '--ssh-key-file', key,
            '--mgmt-password-file', password, '--mgmt-port', '2222',
            '--attribute', 'mgmt_auth={"username": "x", "port": 22}',
            '-f', 'json'])
        self.assertEqual(0, code)
        (_, _, values), = self.svm.called('create_template')
        self.assertEqual({'username': 'admin', 'private_key': KEY,
                          'password': 's3cret', 'port': 2222},
                         values['attributes']['mgmt_auth'])
        self.assertNotIn('secretmaterial', out)
        self.assertNotIn('s3cret', out)
        self.assertNotIn('secretmaterial', self.stderr())
        self.assertIn('"private_key": "***"', out)

    def test_shown_secrets_are_masked_even_if_the_api_forgot(self):
        self.svm.create_template = lambda **v: dict(
            fakes.TEMPLATE, attributes={'mgmt_auth': {
                'private_key': KEY}})
        code, out = self.run_cmd(templates.CreateTemplate, [
            'fw', '--device-driver', 'noop'])
        self.assertEqual(0, code)
        self.assertNotIn('secretmaterial', out)
        self.assertIn('***', out)

    def test_missing_key_file(self):
        err = self.assertRaises(
            exceptions.CommandError, self.take, templates.CreateTemplate,
            ['fw', '--device-driver', 'noop', '--ssh-key-file',
             os.path.join(self.dir, 'nope')])
        self.assertIn('Cannot read the SSH private key', str(err))
        self.assertIn('nope', str(err))
        self.assertEqual([], self.svm.called('create_template'))

    def test_scripts_and_events_file(self):
        script = self.write('dns.sh', 'echo nameserver $X\n')
        events = self.write('events.yaml',
                            'TERMINATE:\n- {name: bye, script: logger}\n')
        self.take(templates.CreateTemplate, [
            'fw', '--device-driver', 'noop', '--lifecycle-events-file',
            events, '--script', 'instantiate:dns=' + script])
        (_, _, values), = self.svm.called('create_template')
        self.assertEqual(
            {'TERMINATE': [{'name': 'bye', 'script': 'logger'}],
             'INSTANTIATE': [{'name': 'dns',
                              'script': 'echo nameserver $X\n'}]},
            values['lifecycle_events'])

    def test_bad_script_options(self):
        for spec in ('INSTANTIATE=x', 'NOPE:dns=x', 'INSTANTIATE:dns'):
            self.assertRaises(
                exceptions.CommandError, self.take,
                templates.CreateTemplate,
                ['fw', '--device-driver', 'noop', '--script', spec])

    def test_bad_attribute(self):
        err = self.assertRaises(
            exceptions.CommandError, self.take, templates.CreateTemplate,
            ['fw', '--device-driver', 'noop', '--attribute', 'novalue'])
        self.assertIn('KEY=VALUE', str(err))


class TestTemplateOthers(base.CommandTestCase):

    def test_list(self):
        headers, rows = self.rows(self.take(templates.ListTemplates, [
            '--name', 'fw', '--sort', 'name:desc', '--limit', '5']))
        self.assertEqual(('ID', 'Name', 'Device Driver', 'Mgmt Driver',
                          'Service Types'), headers)
        self.assertEqual([(fakes.TEMPLATE_ID, 'fw', 'noop', 'ssh',
                           ['firewall'])], rows)
        (_, _, filters), = self.svm.called('list_templates')
        self.assertEqual({'limit': 5, 'name': 'fw', 'device_driver': None,
                          'marker': None, 'sort_key': 'name',
                          'sort_dir': 'desc'}, filters)

    def test_list_long_table(self):
        code, out = self.run_cmd(templates.ListTemplates, ['--long'])
        self.assertEqual(0, code)
        self.assertIn('Description', out)
        self.assertIn('| firewall ', out)

    def test_list_value(self):
        code, out = self.run_cmd(templates.ListTemplates,
                                 ['-f', 'value', '-c', 'Name'])
        self.assertEqual('fw\n', out)

    def test_show_json(self):
        shown = self.run_json(templates.ShowTemplate, ['fw'])
        self.assertEqual(['firewall'], shown['service_types'])
        self.assertEqual('***',
                         shown['attributes']['mgmt_auth']['private_key'])

    def test_show_missing(self):
        err = self.assertRaises(Exception, self.take,
                                templates.ShowTemplate, ['nope'])
        self.assertIn('could not be found', str(err))

    def test_set_merges_scripts(self):
        path = self.useFixture(fixtures.TempDir()).path + '/s'
        with open(path, 'w') as f:
            f.write('true')
        self.take(templates.SetTemplate, [
            'fw', '--name', 'fw2', '--script', 'TERMINATE:bye=' + path,
            '--script', 'INSTANTIATE:dns=' + path])
        (_, args, values), = self.svm.called('update_template')
        self.assertEqual((fakes.TEMPLATE_ID,), args)
        self.assertEqual({'name': 'fw2', 'lifecycle_events': {
            'INSTANTIATE': [{'name': 'dns', 'script': 'true'}],
            'TERMINATE': [{'name': 'bye', 'script': 'true'}]}}, values)

    def test_set_remove_script(self):
        self.take(templates.SetTemplate,
                  ['fw', '--remove-script', 'INSTANTIATE:dns'])
        (_, _, values), = self.svm.called('update_template')
        self.assertEqual({'lifecycle_events': {}}, values)

    def test_set_nothing(self):
        self.assertRaises(exceptions.CommandError, self.take,
                          templates.SetTemplate, ['fw'])

    def test_delete_several_one_missing(self):
        err = self.assertRaises(exceptions.CommandError, self.take,
                                templates.DeleteTemplate, ['fw', 'nope'])
        self.assertIn('1 of 2', str(err))
        self.assertEqual([('delete_template', (fakes.TEMPLATE_ID,), {})],
                         self.svm.called('delete_template'))
