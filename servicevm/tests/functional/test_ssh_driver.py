"""The ssh management driver against a real OpenSSH sshd on loopback.

The class starts the private sshd of tools/sshd.sh (which installs
openssh-server with apt when it is missing) unless it is running already,
and stops it at the end if it started it. Needs no PostgreSQL or RabbitMQ.
A test that needs a device whose host key changed runs a second sshd of
its own, with another host key, on another port.
"""

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
import uuid

import fixtures
from oslo_config import cfg

from servicevm.common import exceptions
from servicevm.conf import mgmt as mgmt_conf
from servicevm.drivers import loader
from servicevm.tests import base
from servicevm.tests.functional import base as functional_base
from servicevm.tests.unit.conductor import base as op_base

try:
    from servicevm.drivers.mgmt import ssh
    from servicevm.drivers.mgmt import ssh_util
except ImportError as e:  # paramiko missing from the venv
    ssh = ssh_util = None
    _IMPORT_ERROR = str(e)

CONF = cfg.CONF

REPO_ROOT = functional_base.REPO_ROOT
SSHD_SH = os.path.join(REPO_ROOT, 'tools', 'sshd.sh')
SSHD_BIN = '/usr/sbin/sshd'
DEFAULT_PORT = 25222
START_TIMEOUT = 1200     # s: tools/sshd.sh may have to apt-get install


def _sshd_sh(command, env, timeout=60):
    return subprocess.run(['bash', SSHD_SH, command], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def _wait_for_banner(port, proc=None, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(('127.0.0.1', port), 1) as s:
                s.settimeout(2)
                if s.recv(4) == b'SSH-':
                    return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class SshServerMixin:
    """The private sshd, started for the class; ``self.driver`` an ssh
    driver of the test's own."""

    _skip_reason = None
    _setup_error = None
    _started = False
    sshd = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._skip_reason = cls._setup_error = None
        cls._started = False
        if ssh is None:
            cls._skip_reason = ('the ssh driver cannot be imported (%s): '
                                'paramiko must be in requirements.txt'
                                % _IMPORT_ERROR)
            return
        if not os.path.exists(SSHD_BIN) and (
                os.geteuid() != 0 or not shutil.which('apt-get')):
            cls._skip_reason = ('%s is missing and tools/sshd.sh cannot '
                                'install openssh-server (needs root and '
                                'apt-get)' % SSHD_BIN)
            return
        try:
            cls._start_sshd()
        except Exception as e:
            cls._setup_error = '%s: %s' % (type(e).__name__, e)

    @classmethod
    def _start_sshd(cls):
        env = cls._sshd_env = dict(os.environ)
        if _sshd_sh('status', env).returncode != 0:
            if 'SERVICEVM_SSHD_PORT' not in env and not _port_free(
                    DEFAULT_PORT):
                for _ in range(100):
                    port = DEFAULT_PORT + 1000 + 10 * random.randrange(300)
                    if _port_free(port):
                        env['SERVICEVM_SSHD_PORT'] = str(port)
                        break
            result = _sshd_sh('start', env, timeout=START_TIMEOUT)
            if result.returncode != 0:
                raise RuntimeError('tools/sshd.sh start failed (%d):\n%s%s'
                                   % (result.returncode, result.stdout,
                                      result.stderr))
            cls._started = True
        result = _sshd_sh('env', env)
        if result.returncode != 0:
            raise RuntimeError('tools/sshd.sh env failed: %s'
                               % result.stderr)
        values = dict(line.split('=', 1)
                      for line in result.stdout.splitlines() if '=' in line)
        cls.sshd = types.SimpleNamespace(
            host=values['SERVICEVM_SSHD_HOST'],
            port=int(values['SERVICEVM_SSHD_PORT']),
            user=values['SERVICEVM_SSHD_USER'],
            password=values['SERVICEVM_SSHD_PASSWORD'],
            key_path=values['SERVICEVM_SSHD_KEY'],
            host_key_path=values['SERVICEVM_SSHD_HOST_KEY'],
            config=values['SERVICEVM_SSHD_CONFIG'],
            log=values['SERVICEVM_SSHD_LOG'])
        with open(cls.sshd.key_path) as f:
            cls.sshd.private_key = f.read()
        with open(cls.sshd.host_key_path) as f:
            cls.sshd.host_key = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        if cls._started:
            cls._started = False
            result = _sshd_sh('stop', cls._sshd_env)
            if result.returncode != 0:
                print('tools/sshd.sh stop failed: %s' % result.stderr,
                      file=sys.stderr)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self._skip_reason:
            self.skipTest(self._skip_reason)
        if self._setup_error:
            self.fail('class set-up failed: %s' % self._setup_error)
        try:
            mgmt_conf.register_opts(CONF)
        except cfg.DuplicateOptError:
            pass
        self.pins = self.useFixture(fixtures.TempDir()).path
        self.config(known_hosts_dir=self.pins, ssh_connect_timeout=5,
                    ssh_command_timeout=30, ssh_connect_retries=2,
                    ssh_retry_backoff=0.05, group='mgmt')
        self.driver = self.make_driver()
        self.context = self.make_context()

    # ---- helpers ----

    def make_driver(self):
        driver = ssh.SshMgmtDriver(CONF)
        self.addCleanup(driver.close_all)
        return driver

    @staticmethod
    def make_context(operation_id=None):
        return types.SimpleNamespace(
            operation_id=operation_id or str(uuid.uuid4()),
            interrupt=threading.Event(),
            interrupt_reason='the operation was stopped')

    def device(self, auth=None, device_auth=None, port=None,
               device_id=None):
        if auth is None:
            auth = {'username': self.sshd.user,
                    'private_key': self.sshd.private_key}
        return {
            'id': device_id or str(uuid.uuid4()),
            'name': 'dev',
            'mgmt_address': '%s:%d' % (self.sshd.host,
                                       port or self.sshd.port),
            'kwargs': {'mgmt_auth': device_auth} if device_auth else {},
            'template': {'attributes': {'mgmt_auth': auth}},
        }

    def run_script(self, script, env=None, device=None, context=None):
        return self.driver.run_script(context or self.context,
                                      device or self.device(), script,
                                      env or {})

    def start_other_sshd(self, port=None, new_host_key=True, wait=True):
        """A second sshd like the first (same users and keys) on another
        port, by default with a new host key; returns (port, its host
        public key line)."""
        directory = self.useFixture(fixtures.TempDir()).path
        host_key = self.sshd.host_key_path[:-len('.pub')]
        if new_host_key:
            host_key = os.path.join(directory, 'host_key')
            subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                            '-C', 'other-host', '-f', host_key], check=True)
        port = port or functional_base.free_port()
        with open(self.sshd.config) as f:
            lines = f.read().splitlines()
        replaced = {'Port': str(port), 'HostKey': host_key,
                    'PidFile': os.path.join(directory, 'sshd.pid')}
        config = os.path.join(directory, 'sshd_config')
        with open(config, 'w') as f:
            for line in lines:
                word = line.split(' ', 1)[0]
                if word in replaced:
                    line = '%s %s' % (word, replaced[word])
                f.write(line + '\n')
        log = os.path.join(directory, 'sshd.log')
        proc = subprocess.Popen([SSHD_BIN, '-D', '-f', config, '-E', log],
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.addCleanup(stop)
        if wait and not _wait_for_banner(port, proc):
            self.fail('the second sshd did not start:\n%s'
                      % functional_base.tail(log))
        with open(host_key + '.pub') as f:
            return port, f.read().strip()

    @staticmethod
    def wait_gone(command, timeout=5):
        """Whether no process runs ``command`` (within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while subprocess.run(['pgrep', '-f', '-x', command],
                             stdout=subprocess.DEVNULL).returncode == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @staticmethod
    def fingerprint_of(pub_line):
        return ssh_util.parse_host_keys(pub_line)[0].fingerprint


class SshDriverTestCase(SshServerMixin, base.TestCase):

    # ---- key auth, output, exit codes ----

    def test_key_auth_runs_a_script(self):
        code, out, err = self.run_script(
            'id -un\necho to-stderr >&2\necho "$0"\n')
        self.assertEqual(0, code)
        self.assertEqual('%s\n/bin/sh\n' % self.sshd.user, out)
        self.assertEqual('to-stderr\n', err)

    def test_failing_script_returns_its_exit_code_and_stderr(self):
        code, out, err = self.run_script(
            'echo before\necho "it broke" >&2\nexit 7\necho never\n')
        self.assertEqual(7, code)
        self.assertEqual('before\n', out)
        self.assertEqual('it broke\n', err)

    def test_script_without_final_newline_and_large_script(self):
        self.assertEqual((0, 'x\n', ''), self.run_script('echo x'))
        # Well over a channel window's first packets: stdin is streamed.
        script = 'N=0\n' + 'N=$((N+1))\n' * 20000 + 'echo "$N"\n'
        code, out, err = self.run_script(script)
        self.assertEqual((0, '20000\n', ''), (code, out, err))

    def test_output_is_bounded(self):
        self.config(ssh_max_output=1024, group='mgmt')
        code, out, err = self.run_script(
            'i=0; while [ $i -lt 500 ]; do echo "line $i"; '
            'echo "err $i" >&2; i=$((i+1)); done')
        self.assertEqual(0, code)
        self.assertIn('bytes of output dropped', out)
        self.assertTrue(out.endswith('line 499\n'), out[-100:])
        self.assertLess(len(out), 1024 + 100)
        self.assertIn('bytes of output dropped', err)
        self.assertTrue(err.endswith('err 499\n'))

    # ---- environment ----

    def test_env_values_arrive_literally(self):
        # In /tmp: the remote user could not write to our temp dir.
        marker = '/tmp/ssh-test-pwned-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        values = {
            'QUOTES': 'it\'s "double" and \'single\'',
            'SPACES': '  two  spaces  and\ttab ',
            'SUBST': '$(touch %s) `touch %s` ${HOME}' % (marker, marker),
            'NEWLINES': 'line 1\nline 2\n\nline 4\n',
            'SEMICOLON': "'; touch %s; echo '" % marker,
            'BACKSLASH': 'a\\b\\\\c\\n',
            'UNICODE': 'caf\u00e9 \u2603',
            'EMPTY': '',
            'GLOB': '*',
        }
        names = sorted(values)
        script = 'printf "%%s\\000" %s\n' % ' '.join(
            '"$%s"' % name for name in names)
        code, out, err = self.run_script(script, env=values)
        self.assertEqual((0, ''), (code, err))
        got = out.split('\0')
        self.assertEqual('', got.pop())
        self.assertEqual([values[name] for name in names], got)
        self.assertFalse(os.path.exists(marker), 'a value was executed')

    def test_env_values_of_other_types(self):
        code, out, _ = self.run_script(
            'echo "$N|$T|$F|$NONE|$D"',
            env={'n': 3, 't': True, 'f': False, 'none': None,
                 'd': {'b': 1, 'a': [1, 2]}})
        self.assertEqual(0, code)
        self.assertEqual('3|true|false||{"a": [1, 2], "b": 1}\n', out)

    def test_env_names_are_sanitised(self):
        marker = '/tmp/ssh-test-name-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        env = {'my-var': 'a', 'lower': 'b', '1abc': 'c', 'x.y z': 'd',
               'ok_NAME': 'e', 'A=1;touch %s #' % marker: 'f'}
        self.assertEqual(
            ['MY_VAR', 'LOWER', '_1ABC', 'X_Y_Z', 'OK_NAME'],
            [ssh_util.sanitize_env_name(n) for n in list(env)[:5]])
        code, out, err = self.run_script(
            'echo "$MY_VAR$LOWER$_1ABC$X_Y_Z$OK_NAME"\n'
            'env | grep -c "^A_1_TOUCH__TMP_SSH_TEST_NAME_" || true\n',
            env=env)
        self.assertEqual((0, 'abcde\n1\n', ''), (code, out, err))
        self.assertFalse(os.path.exists(marker))

    def test_env_value_with_nul_is_refused(self):
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', env={'bad': 'a\0b'})
        self.assertIn('BAD contains a NUL', str(error))
        self.assertEqual(0, self.driver.connections_opened)

    # ---- timeouts ----

    def test_command_timeout(self):
        self.config(ssh_command_timeout=1, group='mgmt')
        device = self.device()
        sleep = 'sleep 30.%d' % random.randrange(10 ** 6)
        started = time.monotonic()
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'echo started\necho warn >&2\n%s\n' % sleep,
                                  device=device)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 5)
        self.assertFalse(error.retryable)
        self.assertIn('did not end within 1s', str(error))
        self.assertIn('started', str(error))
        self.assertEqual('started\n', error.stdout)
        self.assertEqual('warn\n', error.stderr)
        # The script's processes were stopped (SIGTERM through sshd).
        self.assertTrue(self.wait_gone(sleep), 'the script still runs')
        # The connection is still good for the next script.
        self.assertEqual((0, 'ok\n', ''),
                         self.run_script('echo ok', device=device))
        self.assertEqual(1, self.driver.connections_opened)

    def test_running_script_is_interrupted(self):
        context = self.make_context()
        threading.Timer(0.5, context.interrupt.set).start()
        sleep = 'sleep 30.%d' % random.randrange(10 ** 6)
        started = time.monotonic()
        self.assertRaises(exceptions.Interrupted, self.run_script,
                          sleep, context=context)
        self.assertLess(time.monotonic() - started, 3)
        self.assertTrue(self.wait_gone(sleep), 'the script still runs')

    # ---- password auth ----

    def test_password_auth(self):
        device = self.device(auth={'username': self.sshd.user,
                                   'password': self.sshd.password})
        self.assertEqual((0, '%s\n' % self.sshd.user, ''),
                         self.run_script('id -un', device=device))

    def test_device_kwargs_override_the_template_per_key(self):
        # The template's key is wrong; the device gives the password.
        device = self.device(
            auth={'username': self.sshd.user, 'password': 'wrong'},
            device_auth={'password': self.sshd.password})
        self.assertEqual(0, self.run_script('true', device=device)[0])

    def test_wrong_password_is_a_clear_error_without_the_password(self):
        logger = self.useFixture(fixtures.FakeLogger(level='DEBUG'))
        password = 'not-the-password-%s' % uuid.uuid4().hex
        device = self.device(auth={'username': self.sshd.user,
                                   'password': password})
        started = time.monotonic()
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', device=device)
        self.assertLess(time.monotonic() - started, 5)
        self.assertFalse(error.retryable)
        self.assertIn('ssh authentication as %s to %s:%d failed'
                      % (self.sshd.user, self.sshd.host, self.sshd.port),
                      str(error))
        self.assertIn('check mgmt_auth', str(error))
        self.assertNotIn(password, str(error))
        self.assertNotIn(password, repr(error.__dict__))
        self.assertNotIn(password, logger.output)
        self.assertIsNone(error.__cause__)
        # A refused login is no "not ready yet".
        self.assertRaises(exceptions.DriverError, self.driver.check_ready,
                          self.make_context(), device)
        self.assertNotIn(password, logger.output)

    def test_wrong_key_is_not_retried(self):
        other = os.path.join(self.useFixture(fixtures.TempDir()).path, 'k')
        subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '',
                        '-f', other], check=True)
        with open(other) as f:
            key = f.read()
        self.config(ssh_connect_retries=5, ssh_retry_backoff=1,
                    group='mgmt')
        device = self.device(auth={'username': self.sshd.user,
                                   'private_key': key})
        started = time.monotonic()
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', device=device)
        self.assertLess(time.monotonic() - started, 1)
        self.assertIn('ssh authentication as %s' % self.sshd.user,
                      str(error))
        self.assertNotIn('PRIVATE KEY', str(error))
        self.assertRaises(exceptions.DriverError, self.driver.check_ready,
                          self.context, device)

    def test_bad_private_key_text(self):
        device = self.device(auth={'username': self.sshd.user,
                                   'private_key': 'not a key'})
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', device=device)
        self.assertIn('mgmt_auth.private_key cannot be used', str(error))

    # ---- host keys ----

    def test_host_key_is_learned_then_a_changed_key_refused(self):
        device = self.device()
        pin = self.driver.pin_path(device['id'])
        self.assertFalse(os.path.exists(pin))
        self.assertEqual(0, self.run_script('true', device=device)[0])
        with open(pin) as f:
            pinned = f.read()
        self.assertIn(self.sshd.host_key.split()[1], pinned)
        self.assertEqual(0o600, os.stat(pin).st_mode & 0o777)

        # The same device now answers with another host key.
        port, other_key = self.start_other_sshd()
        moved = dict(device, mgmt_address='%s:%d' % (self.sshd.host, port))
        marker = '/tmp/ssh-test-ran-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(marker) and os.unlink(marker))
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'touch %s' % marker, device=moved)
        message = str(error)
        self.assertFalse(error.retryable)
        self.assertIn('host key of device %s' % device['id'], message)
        self.assertIn('changed', message)
        self.assertIn('expected %s' % self.fingerprint_of(
            self.sshd.host_key), message)
        self.assertIn('got %s' % self.fingerprint_of(other_key), message)
        self.assertIn('deleting %s' % pin, message)
        self.assertFalse(os.path.exists(marker), 'the script ran')
        with open(pin) as f:
            self.assertEqual(pinned, f.read())
        # check_ready does not hide it either.
        self.assertRaises(exceptions.DriverError, self.driver.check_ready,
                          self.make_context(), moved)

        # The operator resets the pin: the new key is learned.
        os.unlink(pin)
        self.assertEqual(0, self.run_script('true', device=moved)[0])
        with open(pin) as f:
            self.assertIn(other_key.split()[1], f.read())

    def test_host_key_given_in_mgmt_auth(self):
        auth = {'username': self.sshd.user,
                'private_key': self.sshd.private_key,
                'host_key': self.sshd.host_key}
        device = self.device(auth=auth)
        self.assertEqual(0, self.run_script('true', device=device)[0])
        self.assertFalse(os.path.exists(self.driver.pin_path(device['id'])))

        _port, other_key = self.start_other_sshd()
        device = self.device(auth=dict(auth, host_key=other_key))
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', device=device)
        self.assertIn('does not match mgmt_auth.host_key', str(error))
        self.assertIn('got %s' % self.fingerprint_of(self.sshd.host_key),
                      str(error))
        self.assertFalse(os.path.exists(self.driver.pin_path(device['id'])))

        device = self.device(auth=dict(auth, host_key='garbage'))
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', device=device)
        self.assertIn('mgmt_auth.host_key is not an OpenSSH public key',
                      str(error))

    # ---- connections ----

    def test_connection_reused_within_an_operation(self):
        device = self.device()
        self.assertTrue(self.driver.check_ready(self.context, device))
        for i in range(3):
            self.assertEqual((0, '%d\n' % i, ''), self.run_script(
                'echo %d' % i, device=device))
        self.assertEqual(1, self.driver.connections_opened)
        # Another operation on the same device: a connection of its own.
        other = self.make_context()
        self.run_script('true', device=device, context=other)
        self.run_script('true', device=device, context=other)
        self.assertEqual(2, self.driver.connections_opened)
        # Closed: the next script connects again.
        self.driver.close(self.context, device)
        self.run_script('true', device=device)
        self.assertEqual(3, self.driver.connections_opened)

    def test_idle_connection_is_closed(self):
        self.config(ssh_idle_timeout=0.3, group='mgmt')
        device = self.device()
        self.run_script('true', device=device)
        self.run_script('true', device=device)
        self.assertEqual(1, self.driver.connections_opened)
        time.sleep(0.6)
        self.run_script('true', device=device)
        self.assertEqual(2, self.driver.connections_opened)

    def test_dead_kept_connection_is_replaced(self):
        device = self.device()
        self.run_script('true', device=device)
        # The device rebooted: its end of the connection is gone.
        for entry in list(self.driver._cache.values()):
            entry.client.get_transport().sock.shutdown(socket.SHUT_RDWR)
        time.sleep(0.2)
        self.assertEqual((0, 'again\n', ''),
                         self.run_script('echo again', device=device))
        self.assertEqual(2, self.driver.connections_opened)

    def test_refused_connection_is_retried_then_fails(self):
        port = functional_base.free_port()   # nothing listens there
        self.config(ssh_connect_retries=3, ssh_retry_backoff=0.1,
                    group='mgmt')
        device = self.device(port=port)
        started = time.monotonic()
        error = self.assertRaises(exceptions.DriverError, self.run_script,
                                  'true', device=device)
        elapsed = time.monotonic() - started
        self.assertTrue(error.retryable)
        self.assertIn('cannot reach %s:%d' % (self.sshd.host, port),
                      str(error))
        self.assertIn('Connection refused', str(error))
        self.assertIn('after 4 attempt(s)', str(error))
        # Waited 0.1 + 0.2 + 0.4 s between the attempts.
        self.assertGreaterEqual(elapsed, 0.7)
        self.assertLess(elapsed, 5)
        self.assertEqual(0, self.driver.connections_opened)
        # check_ready tries once and says no.
        started = time.monotonic()
        self.assertFalse(self.driver.check_ready(self.context, device))
        self.assertLess(time.monotonic() - started, 0.5)

    def test_retry_succeeds_once_the_device_listens(self):
        port = functional_base.free_port()
        self.config(ssh_connect_retries=20, ssh_retry_backoff=0.1,
                    ssh_retry_max_backoff=0.2, group='mgmt')
        device = self.device(port=port)
        result = {}

        def run():
            try:
                result['value'] = self.run_script('echo booted',
                                                  device=device)
            except Exception as e:
                result['error'] = e
        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(0.5)
        # The "VM" boots: an sshd comes up on that port.
        self.start_other_sshd(port=port, new_host_key=False, wait=False)
        thread.join(30)
        self.assertEqual({'value': (0, 'booted\n', '')}, result)
        self.assertEqual(1, self.driver.connections_opened)

    def test_retry_wait_is_interruptible(self):
        port = functional_base.free_port()
        self.config(ssh_connect_retries=5, ssh_retry_backoff=30,
                    group='mgmt')
        context = self.make_context()
        threading.Timer(0.3, context.interrupt.set).start()
        started = time.monotonic()
        self.assertRaises(exceptions.Interrupted, self.run_script, 'true',
                          device=self.device(port=port), context=context)
        self.assertLess(time.monotonic() - started, 3)

    def test_parallel_sessions_are_limited(self):
        self.config(ssh_max_sessions=2, group='mgmt')
        driver = self.make_driver()
        results, errors = [], []

        def run():
            try:
                # Each on a device of its own: separate connections.
                results.append(driver.run_script(
                    self.make_context(), self.device(),
                    'date +%s.%N\nsleep 0.5\ndate +%s.%N\n', {}))
            except Exception as e:
                errors.append(e)
        threads = [threading.Thread(target=run) for _ in range(6)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - started
        self.assertEqual([], errors)
        self.assertEqual(6, len(results))
        spans = [tuple(float(t) for t in out.split()) for _, out, _ in
                 results]
        overlap = max(sum(1 for s, e in spans if s <= point < e)
                      for point, _ in spans)
        self.assertEqual(2, overlap, spans)
        self.assertEqual(2, driver.peak_sessions)
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertEqual(6, driver.connections_opened)

    # ---- check_ready, push_config, remove_config ----

    def test_check_ready(self):
        self.assertTrue(self.driver.check_ready(self.context, self.device()))
        device = self.device()
        device['mgmt_address'] = None
        self.assertFalse(self.driver.check_ready(self.context, device))

    def test_push_and_remove_config(self):
        device = self.device()
        path = '/tmp/ssh-test-config-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: os.path.exists(path) and os.unlink(path))
        config = {'script': 'printf "%s" "$RULE" > "$TARGET"\n'
                            'echo pushed "$RULE"',
                  'remove_script': 'rm -f "$TARGET"\necho removed',
                  'env': {'rule': 'allow 22; deny $(all)', 'target': path}}
        line = self.driver.push_config(self.context, device, config)
        self.assertIn('pushed allow 22; deny $(all)', line)
        with open(path) as f:
            self.assertEqual('allow 22; deny $(all)', f.read())
        line = self.driver.remove_config(self.context, device, config)
        self.assertIn('removed', line)
        self.assertFalse(os.path.exists(path))
        self.assertIsNone(self.driver.push_config(self.context, device, {}))
        error = self.assertRaises(
            exceptions.DriverError, self.driver.remove_config,
            self.context, device,
            {'remove_script': 'echo cannot >&2; exit 4'})
        self.assertIn('exited with 4', str(error))
        self.assertIn('cannot', str(error))
        self.assertEqual(1, self.driver.connections_opened)


class SshLifecycleTestCase(SshServerMixin, op_base.OperationTestCase):
    """Lifecycle scripts of a template run by the conductor over ssh on
    the real sshd: an adopted device (the noop device driver, the sshd's
    address in kwargs.mgmt_address) created, scripted, then deleted."""

    def setUp(self):
        super().setUp()
        self.config(enabled_mgmt_drivers=['noop', 'ssh'])
        loader._CACHE.clear()

    def test_scripts_over_ssh_from_create_to_delete(self):
        mark = '/tmp/svm-lifecycle-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: self.run_script('rm -f %s*' % mark))
        events = {
            'INSTANTIATE': [
                {'name': 'write', 'script':
                 'printf "%%s %%s\\n" "$SVM_CONF_GREETING" "$SVM_DEVICE_ID"'
                 ' > %s' % mark},
                {'name': 'check', 'script': 'test -s %s' % mark}],
            'START': [{'name': 'started', 'script':
                       'echo started >> %s; echo hello from $SVM_HOSTNAME'
                       % mark}],
            'TERMINATE': [{'name': 'clean', 'script': 'rm %s' % mark}]}
        template = self.create_template(
            device_driver='noop', mgmt_driver='ssh', lifecycle_events=events,
            attributes={'mgmt_auth': {
                'username': self.sshd.user,
                'private_key': self.sshd.private_key},
                'configurations': {'greeting': "it's $(not run)"}})
        response = self.post(op_base.D, {'device': {
            'name': 'box', 'template_id': template['id'],
            'kwargs': {'mgmt_address': '%s:%d' % (self.sshd.host,
                                                  self.sshd.port)}}},
            status=202)
        device_id = response.json['device']['id']
        op_id = response.json['operation_id']
        self.wait_rest(op_id, 'COMPLETED', timeout=60)
        steps = self.steps(op_id)
        self.assertIn('hello from box',
                      steps['script.START.started']['output'])
        code, out, _ = self.run_script('cat %s' % mark)
        # The value reached the script as it is (never through a shell
        # command line).
        self.assertEqual((0, "it's $(not run) %s\nstarted\n" % device_id),
                         (code, out))
        # One connection for the operation's three scripts, closed at
        # its end.
        driver = loader.get_mgmt_driver(CONF, 'ssh')
        self.assertEqual(1, driver.connections_opened)
        self.assertEqual({}, driver._cache)

        response = self.delete('%s/%s' % (op_base.D, device_id), status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED',
                       timeout=60)
        code, _, _ = self.run_script('test -e %s' % mark)
        self.assertEqual(1, code)

    def test_secrets_echoed_back_are_masked(self):
        """A script that prints a secret it was given: its output, its
        error and the operation's error show ``***`` instead."""
        secret = 'hunter2-' + uuid.uuid4().hex[:8]
        events = {
            'INSTANTIATE': [{'name': 'tell', 'script':
                             'echo "the password is $SVM_CONF_PASSWORD"'}],
            'START': [{'name': 'fail', 'script':
                       'echo "bad password $SVM_CONF_PASSWORD" >&2; '
                       'exit 3'}]}
        template = self.create_template(
            device_driver='noop', mgmt_driver='ssh', lifecycle_events=events,
            attributes={'mgmt_auth': {
                'username': self.sshd.user,
                'private_key': self.sshd.private_key},
                'configurations': {'password': secret}})
        response = self.post(op_base.D, {'device': {
            'name': 'box', 'template_id': template['id'],
            'kwargs': {'mgmt_address': '%s:%d' % (self.sshd.host,
                                                  self.sshd.port)}}},
            status=202)
        op_id = response.json['operation_id']
        operation = self.wait_rest(op_id, 'FAILED_TEMP', timeout=60)
        steps = self.steps(op_id)
        self.assertIn('the password is ***',
                      steps['script.INSTANTIATE.tell']['output'])
        self.assertIn('bad password ***',
                      steps['script.START.fail']['error'])
        self.assertIn('***', operation['error'])
        everything = json.dumps([operation, self.get(
            '%s/%s/events' % (op_base.D, response.json['device']['id'])).json,
            self.get('%s/%s' % (op_base.D, response.json['device']['id'])
                     ).json])
        self.assertNotIn(secret, everything)

    def test_service_instance_whole_life_over_ssh(self):
        """A service instance made with a device of its own: the device is
        created and its START script runs, the service's config is pushed
        and CONFIGURE runs; deleting the service takes its config off
        (remove_script, CONFIGURE with the change unbind), then the device
        it owns is deleted (TERMINATE)."""
        mark = '/tmp/svm-service-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: self.run_script('rm -f %s*' % mark))
        log = '>> %s.log' % mark
        events = {
            'START': [{'name': 'up', 'script': 'echo start ' + log}],
            'CONFIGURE': [{'name': 'rules', 'script':
                           'echo "configure $SVM_SERVICE_CHANGE '
                           '$SVM_SERVICE_NAME $SVM_SERVICE_CONF_ZONE" ' +
                           log}],
            'TERMINATE': [{'name': 'down', 'script': 'echo terminate ' +
                           log}]}
        template = self.create_template(
            device_driver='noop', mgmt_driver='ssh', lifecycle_events=events,
            service_types=['firewall'],
            attributes={'mgmt_auth': {
                'username': self.sshd.user,
                'private_key': self.sshd.private_key}})
        response = self.post('/v1/service_instances', {'service_instance': {
            'name': 'edge', 'service_type': 'firewall',
            'template_id': template['id'],
            'device_kwargs': {'mgmt_address': '%s:%d' % (
                self.sshd.host, self.sshd.port)},
            'kwargs': {'zone': 'dmz', 'config': {
                'script': 'echo "push $RULE" ' + log,
                'remove_script': 'echo "remove $RULE" ' + log,
                'env': {'RULE': 'allow 443'}}}}}, status=202)
        service = response.json['service_instance']
        device_id = service['devices'][0]
        self.wait_rest(response.json['operation_id'], 'COMPLETED', timeout=60)
        shown = self.get('/v1/service_instances/' + service['id']).json[
            'service_instance']
        self.assertEqual('ACTIVE', shown['status'])
        self.assertEqual([{'device_id': device_id, 'status': 'ACTIVE',
                           'owner': True}], shown['bindings'])
        self.assertEqual([service['id']], self.get(
            '%s/%s' % (op_base.D, device_id)).json['device']['services'])
        _, out, _ = self.run_script('cat %s.log' % mark)
        self.assertEqual(
            ['start', 'push allow 443', 'configure bind edge dmz'],
            out.splitlines())

        response = self.delete('/v1/service_instances/' + service['id'],
                               status=202)
        self.wait_rest(response.json['operation_id'], 'COMPLETED', timeout=60)
        self.wait_until(lambda: self.get(
            '%s/%s' % (op_base.D, device_id), status='*').status_int == 404,
            'the device the service owned to be deleted', timeout=60)
        self.assertError(self.get('/v1/service_instances/' + service['id'],
                                  status=404), 404)
        _, out, _ = self.run_script('cat %s.log' % mark)
        self.assertEqual(['start', 'push allow 443', 'configure bind edge dmz',
                          'remove allow 443', 'configure unbind edge dmz',
                          'terminate'], out.splitlines())


class SshMonitorTestCase(SshServerMixin, op_base.OperationTestCase):
    """The ssh liveness monitor on the real sshd: a device that lost its
    configuration (re-initialised) gets its service's configuration back;
    a device whose monitor command fails is DEAD."""

    autostart = False

    def setUp(self):
        super().setUp()
        self.config(enabled_mgmt_drivers=['noop', 'ssh'])
        self.config(sync_interval=0.2, group='conductor')
        loader._CACHE.clear()
        self.start_conductor_now()

    def test_reinitialised_then_dead(self):
        mark = '/tmp/svm-monitor-%s' % uuid.uuid4().hex
        self.addCleanup(lambda: self.run_script('rm -f %s*' % mark))
        template = self.create_template(
            device_driver='noop', mgmt_driver='ssh',
            service_types=['firewall'],
            attributes={
                'mgmt_auth': {'username': self.sshd.user,
                              'private_key': self.sshd.private_key},
                'monitor': {'type': 'ssh', 'interval': 1, 'timeout': 10,
                            'failures': 2,
                            'command': 'test ! -e %s.down' % mark,
                            'configured': 'test -e %s.conf' % mark}})
        response = self.post('/v1/service_instances', {'service_instance': {
            'name': 'edge', 'service_type': 'firewall',
            'template_id': template['id'],
            'device_kwargs': {'mgmt_address': '%s:%d' % (
                self.sshd.host, self.sshd.port)},
            'kwargs': {'config': {'script': 'echo on > %s.conf' % mark}}}},
            status=202)
        device_id = response.json['service_instance']['devices'][0]
        self.wait_rest(response.json['operation_id'], 'COMPLETED', timeout=60)
        self.wait_monitor(device_id)

        # Re-initialised: its configuration is gone.
        self.assertEqual(0, self.run_script('rm %s.conf' % mark)[0])
        self.wait_reconfigured(device_id)
        self.assertEqual((0, 'on\n', ''),
                         self.run_script('cat %s.conf' % mark))
        self.wait_monitor(device_id)

        # Its service fails: DEAD after two failed probes.
        self.assertEqual(0, self.run_script('touch %s.down' % mark)[0])

        def shown():
            # (self.device is the mixin's driver-side device.)
            return self.get('%s/%s' % (op_base.D, device_id)).json['device']
        device = self.wait_until(
            lambda: shown()['status'] == 'DEAD' and shown(),
            'the device to be DEAD', timeout=30, interval=0.2)
        self.assertIn('the ssh monitor failed 2 times in a row',
                      device['status_reason'])
        self.assertIn('exited 1', device['status_reason'])
        self.assertEqual(2, self.events(device_id).count(
            'device.monitor.failed'))
