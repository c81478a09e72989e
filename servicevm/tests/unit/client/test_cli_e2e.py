"""The ``openstack servicevm`` commands end to end: the real ``openstack``
command (a subprocess) against a real all-in-one server (another
subprocess, on a free port, with its own SQLite file, noauth, the noop
and fault drivers), over HTTP."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from urllib import request

from oslotest import base

BIN = os.path.dirname(os.path.abspath(sys.executable))
OPENSTACK = os.path.join(BIN, 'openstack')
ALL_IN_ONE = os.path.join(BIN, 'servicevm-all-in-one')
KEY = ('-----BEGIN OPENSSH PRIVATE KEY-----\nE2Ekeymaterial0123456789\n'
       '-----END OPENSSH PRIVATE KEY-----\n')

CONFIG = """[DEFAULT]
auth_strategy = noauth
transport_url = fake://
enabled_device_drivers = noop,fault
enabled_mgmt_drivers = noop
host = cli-e2e

[api]
host = 127.0.0.1
port = {port}

[database]
connection = sqlite:///{dir}/servicevm.sqlite

[fault_driver]
state_dir = {dir}/fault-vim
"""


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env(tmp):
    """The environment without OS_* variables, with a HOME of its own
    (no clouds.yaml of the user's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env.update(HOME=tmp, XDG_DATA_HOME=os.path.join(tmp, 'data'),
               XDG_CONFIG_HOME=os.path.join(tmp, 'config'))
    return env


class TestCliEndToEnd(base.BaseTestCase):

    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not (os.path.exists(OPENSTACK) and os.path.exists(ALL_IN_ONE)):
            return  # each test skips
        cls.tmp = tempfile.mkdtemp(prefix='servicevm-cli-e2e-')
        cls.port = _free_port()
        cls.url = 'http://127.0.0.1:%d' % cls.port
        conf = os.path.join(cls.tmp, 'servicevm.conf')
        with open(conf, 'w') as f:
            f.write(CONFIG.format(port=cls.port, dir=cls.tmp))
        cls.env = _env(cls.tmp)
        cls.log_path = os.path.join(cls.tmp, 'all-in-one.log')
        with open(cls.log_path, 'wb') as log:
            cls.server = subprocess.Popen(
                [ALL_IN_ONE, '--config-file', conf], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=cls.env, cwd=cls.tmp, start_new_session=True)
        try:
            cls._wait_ready()
        except Exception:
            cls._stop()
            raise

    @classmethod
    def _wait_ready(cls):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if cls.server.poll() is not None:
                break
            try:
                with request.urlopen(cls.url + '/', timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        with open(cls.log_path) as f:
            raise RuntimeError('servicevm-all-in-one did not start:\n'
                               + f.read()[-3000:])

    @classmethod
    def _stop(cls):
        if cls.server is not None and cls.server.poll() is None:
            cls.server.send_signal(signal.SIGTERM)
            try:
                cls.server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cls.server.kill()
                cls.server.wait(timeout=5)
        shutil.rmtree(getattr(cls, 'tmp', None) or '/nonexistent', True)

    @classmethod
    def tearDownClass(cls):
        cls._stop()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self.server is None:
            self.skipTest('the openstack command or servicevm-all-in-one '
                          'is not installed (pip install -e .[cli])')

    def openstack(self, *args, ok=True):
        """Run ``openstack --os-auth-type none --os-endpoint URL <args>``;
        with ``ok``, assert that it succeeded."""
        result = subprocess.run(
            [OPENSTACK, '--os-auth-type', 'none', '--os-endpoint',
             self.url] + list(args), capture_output=True, text=True,
            env=self.env, cwd=self.tmp, timeout=120)
        if ok:
            self.assertEqual(0, result.returncode,
                             'openstack %s failed:\n%s%s' % (
                                 ' '.join(args), result.stdout,
                                 result.stderr))
        return result

    def json(self, *args):
        return json.loads(self.openstack(*(args + ('-f', 'json'))).stdout)

    def test_lifecycle(self):
        key_file = os.path.join(self.tmp, 'id_test')
        with open(key_file, 'w') as f:
            f.write(KEY)
        # A template whose SSH key comes from a file and is never shown.
        created = self.openstack(
            'servicevm', 'template', 'create', 'fw', '--device-driver',
            'noop', '--mgmt-driver', 'noop', '--service-type', 'firewall',
            '--attribute', 'image=fw-9.1', '--mgmt-username', 'admin',
            '--ssh-key-file', key_file, '-f', 'json')
        self.assertNotIn('E2Ekeymaterial', created.stdout + created.stderr)
        template = json.loads(created.stdout)
        self.assertEqual({'image': 'fw-9.1', 'mgmt_auth': {
            'username': 'admin', 'private_key': '***'}},
            template['attributes'])
        self.assertEqual(['firewall'], template['service_types'])

        # A device, waited for: ACTIVE, with progress on stderr.
        result = self.openstack(
            'servicevm', 'device', 'create', 'fw1', '--template', 'fw',
            '--kwarg', 'mgmt_address=192.0.2.10', '--wait', '-f', 'json')
        device = json.loads(result.stdout)
        self.assertEqual('ACTIVE', device['status'])
        self.assertEqual('192.0.2.10', device['mgmt_address'])
        self.assertIn('Operation %s (create of device %s)' % (
            device['operation_id'], device['id']), result.stderr)
        self.assertIn('COMPLETED, step wait_active COMPLETED',
                      result.stderr)
        listed = self.json('servicevm', 'device', 'list')
        self.assertEqual([{'ID': device['id'], 'Name': 'fw1',
                           'Status': 'ACTIVE', 'Mgmt Address': '192.0.2.10',
                           'Template ID': template['id']}], listed)

        # The noop driver has no driver actions: the API's 400 says so.
        result = self.openstack('servicevm', 'device', 'reboot', 'fw1',
                                ok=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn("action 'reboot' is not supported by this device's "
                      "driver; supported: none", result.stderr)

        # A service instance bound to the device, then applied again.
        service = self.json(
            'servicevm', 'service', 'create', 'edge', '--service-type',
            'firewall', '--device', 'fw1', '--kwarg', 'zone=dmz', '--wait')
        self.assertEqual('ACTIVE', service['status'])
        self.assertEqual([device['id']], service['devices'])
        self.assertEqual(1, len(service['operation_ids']))
        result = self.openstack('servicevm', 'device', 'reconfigure',
                                'fw1', '--wait', '-f', 'value', '-c',
                                'status')
        self.assertEqual('ACTIVE\n', result.stdout)
        self.assertIn('step configure_services COMPLETED', result.stderr)

        operations = self.json('servicevm', 'operation', 'list',
                               '--device', 'fw1', '--long')
        self.assertEqual(['create', 'configure', 'configure'],
                         [o['Kind'] for o in operations])
        self.assertEqual({'COMPLETED'}, {o['State'] for o in operations})
        shown = self.json('servicevm', 'operation', 'show',
                          device['operation_id'])
        self.assertEqual(['create_vm', 'wait_active'],
                         [s['name'] for s in shown['steps']])
        events = self.openstack('servicevm', 'device', 'event', 'list',
                                'fw1', '-f', 'value', '-c', 'Event Type')
        self.assertIn('device.create.requested', events.stdout.split())
        self.assertIn('device.service.bind', events.stdout.split())

        # A device with a service bound is not deleted (409).
        result = self.openstack('servicevm', 'device', 'delete', 'fw1',
                                ok=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('HTTP 409', result.stderr)

        result = self.openstack('servicevm', 'service', 'delete', 'edge',
                                '--wait')
        self.assertIn('Deleted service instance %s' % service['id'],
                      result.stdout)
        result = self.openstack('servicevm', 'device', 'delete', 'fw1',
                                '--wait')
        self.assertIn('Deleted device %s' % device['id'], result.stdout)
        self.assertIn('step wait_gone COMPLETED', result.stderr)

        # A missing device: non-zero, with the API's message.
        result = self.openstack('servicevm', 'device', 'show',
                                device['id'], ok=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('Device %s could not be found. (HTTP 404'
                      % device['id'], result.stderr)

        self.openstack('servicevm', 'template', 'delete', 'fw')
        result = self.openstack('servicevm', 'template', 'list', '--name',
                                'fw', '-f', 'value')
        self.assertEqual('', result.stdout)

    def test_failed_operation_then_retry(self):
        self.openstack(
            'servicevm', 'template', 'create', 'ft', '--device-driver',
            'fault', '--attribute',
            'fault={"create": {"fail": "disk busy", "times": 1}}')
        # The create fails: --wait exits non-zero with the step's error.
        result = self.openstack('servicevm', 'device', 'create', 'bad',
                                '--template', 'ft', '--wait', ok=False)
        self.assertNotEqual(0, result.returncode)
        self.assertEqual('', result.stdout)
        self.assertIn('ended FAILED_TEMP', result.stderr)
        self.assertIn('disk busy', result.stderr)
        self.assertIn('step create_vm FAILED', result.stderr)
        op_id = self.openstack(
            'servicevm', 'operation', 'list', '--device', 'bad', '--state',
            'FAILED_TEMP', '-f', 'value', '-c', 'ID').stdout.strip()
        self.assertIn('operation retry %s' % op_id, result.stderr)

        # The fault was for one call only: a retry completes it.
        result = self.openstack('servicevm', 'operation', 'retry', op_id,
                                '--wait', '-f', 'value', '-c', 'state')
        self.assertEqual('COMPLETED\n', result.stdout)
        # The fault driver has driver actions.
        device = self.json('servicevm', 'device', 'reboot', 'bad', '--wait')
        self.assertEqual('ACTIVE', device['status'])
        self.assertNotEqual(op_id, device['operation_id'])

        self.openstack('servicevm', 'device', 'delete', 'bad', '--wait')
        self.openstack('servicevm', 'template', 'delete', 'ft')

    def test_alarms_and_metrics(self):
        self.openstack(
            'servicevm', 'template', 'create', 'stuck', '--device-driver',
            'fault', '--attribute',
            'fault={"delete": {"fail": "disk busy", "times": 1}}')
        self.openstack('servicevm', 'device', 'create', 'sticky',
                       '--template', 'stuck', '--wait')
        metrics = self.json('servicevm', 'device', 'metrics', 'show',
                            'sticky')
        self.assertEqual(('ACTIVE', 'running'),
                         (metrics['status'], metrics['power_state']))
        # The delete fails: an alarm.
        self.openstack('servicevm', 'device', 'delete', 'sticky', '--wait',
                       ok=False)
        (alarm,) = self.json('servicevm', 'alarm', 'list', '--device',
                             'sticky', '--unacknowledged', '--long')
        self.assertEqual('device.delete.error', alarm['Event Type'])
        self.assertIn('disk busy', alarm['Message'])
        shown = self.json('servicevm', 'alarm', 'acknowledge',
                          str(alarm['ID']))
        self.assertTrue(shown['acknowledged'])
        self.assertEqual([], self.json('servicevm', 'alarm', 'list',
                                       '--unacknowledged'))
        self.assertEqual(
            [alarm['ID']], [a['ID'] for a in self.json(
                'servicevm', 'alarm', 'list', '--acknowledged')])
        # Again: 409, said plainly.
        result = self.openstack('servicevm', 'alarm', 'acknowledge',
                                str(alarm['ID']), ok=False)
        self.assertNotEqual(0, result.returncode)
        self.assertIn('acknowledged', result.stderr)
        # (The fault was for one call: a retry deletes it.)
        self.openstack('servicevm', 'operation', 'retry',
                       alarm['Operation ID'], '--wait')
        self.openstack('servicevm', 'template', 'delete', 'stuck')
