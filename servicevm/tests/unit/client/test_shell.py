"""The commands through the real ``openstack`` shell, in-process, with the
plugin's client replaced by the fake one: entry points, exit codes and
what goes to stdout and stderr."""

import inspect
import io
import json
import logging
import os
from unittest import mock

import fixtures
from oslotest import base

from servicevm.tests.unit.client import fakes
from servicevmclient import client as svm_client
from servicevmclient.osc.v1 import common

try:
    from osc_lib import clientmanager
    from openstackclient import shell
except ImportError:  # the cli extra is not installed
    shell = None

OP = fakes.operation
AUTH = ['--os-auth-type', 'none', '--os-endpoint', 'http://127.0.0.1:1']


class TestShell(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        if shell is None:
            self.skipTest('python-openstackclient is not installed')
        self.svm = fakes.FakeClient()
        made = []

        def make(**kwargs):
            made.append(kwargs)
            return self.svm

        self.made = made
        self.useFixture(fixtures.MockPatchObject(svm_client, 'Client', make))
        self.useFixture(fixtures.MockPatchObject(common, 'sleep',
                                                 lambda s: None))
        self._forget_client()
        self.addCleanup(self._forget_client)
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level

        def restore():
            root.handlers[:] = handlers
            root.setLevel(level)
        self.addCleanup(restore)
        for name in list(os.environ):
            if name.startswith('OS_'):
                self.useFixture(fixtures.EnvironmentVariable(name))

    @staticmethod
    def _forget_client():
        # OSC caches the plugin's client in a descriptor of the class.
        cache = inspect.getattr_static(clientmanager.ClientManager,
                                       'servicevm', None)
        if cache is not None:
            cache._handle = None

    def openstack(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with mock.patch('sys.stdout', out), mock.patch('sys.stderr', err):
            code = shell.main(AUTH + list(args))
        return code, out.getvalue(), err.getvalue()

    def test_create_wait_success(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('PROCESSING', [('create_vm', 'RUNNING')]),
            OP('COMPLETED', [('create_vm', 'COMPLETED')])]
        code, out, err = self.openstack(
            'servicevm', 'device', 'create', 'fw1', '--template', 'fw',
            '--wait', '-f', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual('ACTIVE', json.loads(out)['status'])
        self.assertIn('PROCESSING, step create_vm RUNNING', err)
        self.assertIn('COMPLETED, step create_vm COMPLETED', err)
        self.assertEqual('http://127.0.0.1:1', self.made[0]['endpoint'])

    def test_create_wait_failure_exits_non_zero(self):
        self.svm.operations[fakes.OP_ID] = [
            OP('FAILED', [('create_vm', 'FAILED', 'no host')],
               error='create failed at step create_vm: no host')]
        code, out, err = self.openstack(
            'servicevm', 'device', 'create', 'fw1', '--template', 'fw',
            '--wait')
        self.assertNotEqual(0, code)
        self.assertEqual('', out)
        self.assertIn('ended FAILED: create failed at step create_vm: no '
                      'host', err)

    def test_api_error_exits_non_zero_with_its_detail(self):
        code, out, err = self.openstack('servicevm', 'device', 'show',
                                        'nope')
        self.assertNotEqual(0, code)
        self.assertIn('Device could not be found. (HTTP 404, request '
                      'req-1)', err)

    def test_value_format(self):
        code, out, err = self.openstack('servicevm', 'device', 'list',
                                        '-f', 'value', '-c', 'ID')
        self.assertEqual(0, code, err)
        self.assertEqual(fakes.DEVICE_ID + '\n', out)
