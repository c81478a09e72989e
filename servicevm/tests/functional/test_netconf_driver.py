"""The netconf management driver against a real NETCONF server on
loopback: Debian's netconfd (yuma123) behind a private OpenSSH sshd, from
tools/netconfd.sh (which installs netconfd with apt when it is missing).
The class starts it unless it runs already, and stops it at the end if it
started it. Its model is tools/netconf/svm-test-firewall.yang."""

import os
import subprocess
import sys
import types
import uuid

import fixtures
from oslo_config import cfg

from servicevm.common import exceptions
from servicevm.conf import mgmt as mgmt_conf
from servicevm.drivers import loader
from servicevm.drivers.mgmt import netconf
from servicevm.tests import base
from servicevm.tests.functional import base as functional_base
from servicevm.tests.unit.conductor import base as op_base

CONF = cfg.CONF
NETCONFD_SH = os.path.join(functional_base.REPO_ROOT, 'tools',
                           'netconfd.sh')
NS = 'urn:servicevm:test:firewall'


def _netconfd_sh(command, timeout=60):
    return subprocess.run(['bash', NETCONFD_SH, command], capture_output=True,
                          text=True, timeout=timeout)


def rule(name, port):
    return ('<firewall xmlns="%s"><rule><name>%s</name><port>%s</port>'
            '</rule></firewall>' % (NS, name, port))


def delete_rule(name):
    return ('<firewall xmlns="%s"><rule xmlns:nc="urn:ietf:params:xml:ns:'
            'netconf:base:1.0" nc:operation="delete"><name>%s</name></rule>'
            '</firewall>' % (NS, name))


class NetconfServerMixin:
    """The private NETCONF server, for the class."""

    _setup_error = None
    _started = False
    server = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_error, cls._started = None, False
        try:
            if _netconfd_sh('status').returncode != 0:
                result = _netconfd_sh('start', timeout=1500)
                if result.returncode != 0:
                    raise RuntimeError('tools/netconfd.sh start failed:\n%s'
                                       % result.stderr)
                cls._started = True
            values = dict(line.split('=', 1) for line in _netconfd_sh(
                'env').stdout.splitlines() if '=' in line)
            cls.server = types.SimpleNamespace(
                address='%s:%s' % (values['SERVICEVM_NETCONF_HOST'],
                                   values['SERVICEVM_NETCONF_PORT']),
                user=values['SERVICEVM_NETCONF_USER'],
                password=values['SERVICEVM_NETCONF_PASSWORD'])
            with open(values['SERVICEVM_NETCONF_KEY']) as f:
                cls.server.private_key = f.read()
        except Exception as e:
            cls._setup_error = '%s: %s' % (type(e).__name__, e)

    @classmethod
    def tearDownClass(cls):
        if cls._started:
            cls._started = False
            result = _netconfd_sh('stop')
            if result.returncode != 0:
                print('tools/netconfd.sh stop failed: %s' % result.stderr,
                      file=sys.stderr)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self._setup_error:
            self.fail('the NETCONF server did not start: %s'
                      % self._setup_error)
        # Each test its own rule names; the datastore is shared.
        self.tag = uuid.uuid4().hex[:8]

    def checker(self):
        """A netconf driver of the test's own and a device on the
        server, to change or read the server's configuration behind
        servicevm's back: (driver, context, device)."""
        driver = netconf.NetconfMgmtDriver(CONF)
        self.addCleanup(driver.close_all)
        ctx = types.SimpleNamespace(operation_id='check', interrupt=None)
        box = {'id': 'check-' + self.tag, 'kwargs': {},
               'mgmt_address': self.server.address,
               'template': {'attributes': {'mgmt_auth': self.auth()}}}
        return driver, ctx, box

    def auth(self, **overrides):
        auth = {'username': self.server.user,
                'private_key': self.server.private_key}
        auth.update(overrides)
        return auth


class TestNetconfDriver(NetconfServerMixin, base.TestCase):

    def setUp(self):
        super().setUp()
        mgmt_conf.register_opts(CONF)
        self.config(known_hosts_dir=self.useFixture(
            fixtures.TempDir()).path, ssh_connect_retries=0, group='mgmt')
        self.driver = netconf.NetconfMgmtDriver(CONF)
        self.addCleanup(self.driver.close_all)
        self.ctx = types.SimpleNamespace(operation_id=str(uuid.uuid4()),
                                         interrupt=None)

    def device(self, **auth):
        return {'id': 'dev-' + self.tag, 'mgmt_address': self.server.address,
                'kwargs': {}, 'template': {'attributes': {
                    'mgmt_auth': self.auth(**auth)}}}

    def test_edit_commit_read_back_and_clear_errors(self):
        device = self.device()
        self.assertTrue(self.driver.check_ready(self.ctx, device))
        code, out, err = self.driver.run_script(
            self.ctx, device, rule('web-$TAG', '${PORT}'),
            {'TAG': self.tag, 'PORT': '443'})
        # The server offers a candidate datastore and confirmed commit.
        self.assertEqual((0, 'confirmed commit on device %s' % device['id'],
                          ''), (code, out, err))
        config = self.driver.get_config(self.ctx, device)
        self.assertIn('<name>web-%s</name>' % self.tag, config)
        self.assertIn('<port>443</port>', config)

        # The device refuses: its rpc-error, with the path, is the error;
        # the candidate is discarded, running unchanged.
        code, out, err = self.driver.run_script(
            self.ctx, device, rule('bad-' + self.tag, 'not-a-port'), {})
        self.assertEqual(1, code)
        self.assertIn('rpc-error', err)
        self.assertIn('fw:port', err)
        self.assertIn('invalid number', err)
        self.assertNotIn('bad-' + self.tag,
                         self.driver.get_config(self.ctx, device))
        # Values are escaped, never markup.
        code, _, _ = self.driver.run_script(
            self.ctx, device, rule('esc-' + self.tag, '1') .replace(
                '</rule>', '</rule><zone>$ZONE</zone>'),
            {'ZONE': '<b>&"'})
        self.assertEqual(0, code)
        self.assertIn('<zone>&lt;b&gt;&amp;"</zone>',
                      self.driver.get_config(self.ctx, device))

        # Service config: pushed, then removed.
        config = {'config': rule('svc-' + self.tag, '$P'),
                  'remove_config': delete_rule('svc-' + self.tag),
                  'env': {'P': 8443}}
        self.driver.push_config(self.ctx, device, config)
        self.assertIn('svc-' + self.tag,
                      self.driver.get_config(self.ctx, device))
        self.driver.remove_config(self.ctx, device, config)
        self.assertNotIn('svc-' + self.tag,
                         self.driver.get_config(self.ctx, device))
        # All of it on one connection (one per device and operation).
        self.assertEqual(1, self.driver.connections_opened)
        for name in ('web', 'esc'):
            self.driver.run_script(self.ctx, device,
                                   delete_rule('%s-%s' % (name, self.tag)),
                                   {})

    def test_refused_login_and_host_key(self):
        device = self.device(private_key=None, password='wrong')
        error = self.assertRaises(exceptions.DriverError,
                                  self.driver.run_script, self.ctx, device,
                                  rule('x', 1), {})
        self.assertIn('authentication as %s' % self.server.user, str(error))
        self.assertNotIn('wrong', str(error))
        # A host key other than the one given is refused.
        other = ('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKL'
                 'sabgH5C9okWi0dh2l9GKJl')
        error = self.assertRaises(exceptions.DriverError,
                                  self.driver.run_script, self.ctx,
                                  self.device(host_key=other), rule('x', 1),
                                  {})
        self.assertIn('host key', str(error))


class NetconfLifecycleTestCase(NetconfServerMixin,
                               op_base.OperationTestCase):
    """A service instance's whole life through the conductor, configured
    over NETCONF: an owned device (the noop device driver adopting the
    server) with a CONFIGURE snippet, the service's own config pushed and
    removed, the running configuration kept on the device record."""

    def setUp(self):
        super().setUp()
        self.config(enabled_mgmt_drivers=['noop', 'netconf'])
        self.config(known_hosts_dir=self.useFixture(
            fixtures.TempDir()).path, group='mgmt')
        loader._CACHE.clear()

    def test_service_whole_life_and_a_fixed_snippet(self):
        events = {'CONFIGURE': [
            {'name': 'zone', 'script': rule('$SVM_SERVICE_CONF_ZONE', 1)},
            {'name': 'probe', 'script': rule('probe-' + self.tag, 'x')}]}
        template = self.create_template(
            device_driver='noop', mgmt_driver='netconf',
            service_types=['firewall'], lifecycle_events=events,
            attributes={'mgmt_auth': self.auth()})
        response = self.post('/v1/service_instances', {'service_instance': {
            'name': 'edge', 'service_type': 'firewall',
            'template_id': template['id'],
            'device_kwargs': {'mgmt_address': self.server.address},
            'kwargs': {'zone': 'dmz-' + self.tag, 'config': {
                'config': rule('svc-' + self.tag, '443'),
                'remove_config': delete_rule('svc-' + self.tag)}}}},
            status=202)
        service_id = response.json['service_instance']['id']
        device_id = response.json['service_instance']['devices'][0]
        op_id = response.json['operation_id']
        # The second snippet is refused by the device: stopped there.
        operation = self.wait_rest(op_id, 'FAILED_TEMP', timeout=60)
        self.assertIn('invalid number', operation['error'])
        self.assertEqual('COMPLETED',
                         self.steps(op_id)['script.CONFIGURE.zone']['state'])

        events['CONFIGURE'][1]['script'] = rule('probe-' + self.tag, '7')
        self.patch('/v1/device_templates/' + template['id'],
                   {'device_template': {'lifecycle_events': events}},
                   status=200)
        self.action(op_id, 'retry', 202)
        self.wait_rest(op_id, 'COMPLETED', timeout=60)
        service = self.get('/v1/service_instances/' + service_id).json[
            'service_instance']
        self.assertEqual('ACTIVE', service['status'])
        device = self.device(device_id)
        for text in ('svc-' + self.tag, 'probe-' + self.tag,
                     'dmz-' + self.tag):
            self.assertIn(text, device['mgmt_config'])

        # The device comes back re-initialised (its configuration gone,
        # here removed behind servicevm's back); reconfigure puts the
        # services' configuration back.
        driver, ctx, box = self.checker()
        for name in ('svc', 'probe', 'dmz'):
            driver.run_script(ctx, box, delete_rule(name + '-' + self.tag),
                              {})
        self.assertNotIn('svc-' + self.tag, driver.get_config(ctx, box))
        response = self.post('%s/%s/action' % (op_base.D, device_id),
                             {'action': 'reconfigure'}, status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED',
                       timeout=60)
        config = driver.get_config(ctx, box)
        for text in ('svc-' + self.tag, 'probe-' + self.tag,
                     'dmz-' + self.tag):
            self.assertIn(text, config)

        response = self.delete('/v1/service_instances/' + service_id,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED',
                       timeout=60)
        self.wait_until(lambda: self.get(
            '%s/%s' % (op_base.D, device_id), status='*').status_int == 404,
            'the device the service owned to be deleted', timeout=60)
        config = driver.get_config(ctx, box)
        self.assertNotIn('svc-' + self.tag, config)
        for name in ('probe', 'dmz'):
            driver.run_script(ctx, box, delete_rule(name + '-' + self.tag),
                              {})


class NetconfMonitorTestCase(NetconfServerMixin, op_base.OperationTestCase):
    """The NETCONF liveness monitor on the real netconfd: a get answered,
    and a device whose running configuration lost the service's rule
    (re-initialised) gets it back."""

    autostart = False

    def setUp(self):
        super().setUp()
        self.config(enabled_mgmt_drivers=['noop', 'netconf'])
        self.config(known_hosts_dir=self.useFixture(
            fixtures.TempDir()).path, group='mgmt')
        self.config(sync_interval=0.2, group='conductor')
        loader._CACHE.clear()
        self.start_conductor_now()

    def test_reinitialised_device_gets_its_rule_back(self):
        name = 'mon-' + self.tag
        selector = ('<firewall xmlns="%s"><rule><name>%s</name></rule>'
                    '</firewall>' % (NS, name))
        template = self.create_template(
            device_driver='noop', mgmt_driver='netconf',
            service_types=['firewall'], attributes={
                'mgmt_auth': self.auth(),
                'monitor': {'type': 'netconf', 'interval': 1, 'timeout': 20,
                            'failures': 3, 'configured': selector}})
        response = self.post('/v1/service_instances', {'service_instance': {
            'name': 'edge', 'service_type': 'firewall',
            'template_id': template['id'],
            'device_kwargs': {'mgmt_address': self.server.address},
            'kwargs': {'config': {'config': rule(name, '22'),
                                  'remove_config': delete_rule(name)}}}},
            status=202)
        service_id = response.json['service_instance']['id']
        device_id = response.json['service_instance']['devices'][0]
        self.wait_rest(response.json['operation_id'], 'COMPLETED', timeout=60)
        self.wait_monitor(device_id)

        driver, ctx, box = self.checker()
        driver.run_script(ctx, box, delete_rule(name), {})
        self.assertNotIn(name, driver.get_config(ctx, box))
        self.wait_reconfigured(device_id)
        self.assertIn(name, driver.get_config(ctx, box))
        self.assertNotEqual('DEAD', self.device(device_id)['status'])

        response = self.delete('/v1/service_instances/' + service_id,
                               status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED',
                       timeout=60)
        self.assertNotIn(name, driver.get_config(ctx, box))
