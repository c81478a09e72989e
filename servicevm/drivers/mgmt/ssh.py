"""The ssh management driver: runs the lifecycle scripts of a device over
ssh (paramiko).

Credentials come from the template's ``attributes.mgmt_auth``, overridden
key by key by the device's ``kwargs.mgmt_auth``:

  username     the login (required)
  private_key  an OpenSSH or PEM private key (text); ``passphrase`` if it
               is encrypted
  password     tried after the key, or alone
  port         the ssh port when ``mgmt_address`` has none (default 22)
  host_key     the device's host public key(s) ("ssh-ed25519 AAAA...", one
               a line): pinned from the start

The conductor hands them over unsealed; they never go into a log line or
an error message.

Host keys: unless ``host_key`` is given, the key a device shows on the
first contact is learned and pinned, in ``[mgmt] known_hosts_dir``/<device
id>.known_hosts (an OpenSSH known_hosts file); every later contact must
show that key. A changed key is refused (a DriverError that is not
retried) until the operator deletes the pin file.

A script goes to ``/bin/sh -s`` through stdin, after a preamble that
exports ``env`` (``export NAME='value'``, names reduced to [A-Z0-9_]): no
part of it is ever put on a command line. Scripts therefore cannot read
their own stdin.

The scripts of one operation on one device share one connection (kept
for ``[mgmt] ssh_idle_timeout`` seconds after its last use, or until
``close``). Connection attempts and running scripts count against
``[mgmt] ssh_max_sessions``. A device that is not reachable yet
(connection refused, timeout, no route, reset: a VM still booting) is
tried again ``[mgmt] ssh_connect_retries`` times with a doubling backoff,
through the operation's interruptible sleep.
"""

import hashlib
import json
import select
import socket
import threading
import time

from oslo_log import log as logging
import paramiko

from servicevm.common import exceptions
from servicevm.common import secrets
from servicevm.conf import mgmt as mgmt_conf
from servicevm.drivers.device import base as device_base
from servicevm.drivers.mgmt import base
from servicevm.drivers.mgmt import ssh_pins
from servicevm.drivers.mgmt import ssh_pool
from servicevm.drivers.mgmt.ssh_util import DEFAULT_PORT
from servicevm.drivers.mgmt.ssh_util import DRIVER
from servicevm.drivers.mgmt.ssh_util import ERROR_OUTPUT_CHARS
from servicevm.drivers.mgmt.ssh_util import EXIT_GRACE
from servicevm.drivers.mgmt.ssh_util import REMOTE_COMMAND
from servicevm.drivers.mgmt.ssh_util import _HostKeyMismatch
from servicevm.drivers.mgmt.ssh_util import _StaleConnection
from servicevm.drivers.mgmt.ssh_util import _Tail
from servicevm.drivers.mgmt.ssh_util import _Unreachable
from servicevm.drivers.mgmt.ssh_util import _describe
from servicevm.drivers.mgmt.ssh_util import _is_transient
from servicevm.drivers.mgmt.ssh_util import _tcp_connect
from servicevm.drivers.mgmt.ssh_util import env_preamble
from servicevm.drivers.mgmt.ssh_util import load_private_key
from servicevm.drivers.mgmt.ssh_util import parse_host_keys
from servicevm.drivers.mgmt.ssh_util import split_address


LOG = logging.getLogger(__name__)


class SshMgmtDriver(ssh_pool.ConnectionPool, ssh_pins.HostKeyPins,
                    base.MgmtDriver):
    """Runs scripts on devices over ssh (entry point ``ssh``)."""

    #: Interruptible waits, as device drivers have them.
    sleep = staticmethod(device_base.DeviceDriver.sleep)
    #: The port when neither mgmt_address nor mgmt_auth.port has one.
    default_port = DEFAULT_PORT
    driver_name = DRIVER

    def __init__(self, conf):
        super().__init__(conf)
        # Registering the same options again is a no-op.
        mgmt_conf.register_opts(conf)
        self.options = conf.mgmt
        self._slots = threading.BoundedSemaphore(self.options.ssh_max_sessions)
        self._lock = threading.Lock()
        self._pin_lock = threading.Lock()
        self._cache = {}
        self._reaper = None
        self._reaper_stop = threading.Event()
        #: Connections opened (benchmarks, tests).
        self.connections_opened = 0
        #: Sessions running now, and the most that ever ran at once.
        self.active_sessions = 0
        self.peak_sessions = 0

    # ---- the contract ----

    def check_ready(self, context, device):
        """True once an ssh session on the device can run ``true``. A
        device not reachable yet is not ready (False); a refused login
        or a changed host key is an error."""
        if not device.get('mgmt_address'):
            return False
        try:
            code, _out, _err = self._run(context, device, 'true\n', {},
                                         'check that device %s is ready'
                                         % device.get('id'), retries=0)
        except exceptions.DriverTransientError as e:
            LOG.debug('ssh: device %s is not ready: %s', device.get('id'),
                      e)
            return False
        return code == 0

    def run_script(self, context, device, script, env):
        """Run ``script`` with ``/bin/sh -s`` on the device, ``env``
        exported first; return (exit code, stdout, stderr), each output
        keeping its last ``[mgmt] ssh_max_output`` bytes."""
        return self._run(context, device, script, env,
                         'run a script on device %s' % device.get('id'))

    def push_config(self, context, device, config):
        return self._config(context, device, config, 'script', 'push_config')

    def remove_config(self, context, device, config):
        return self._config(context, device, config, 'remove_script',
                            'remove_config')

    def probe(self, context, device, monitor):
        """``monitor['command']`` (default ``true``) must exit 0; then
        ``monitor['configured']``, if given, exits 0 while the device
        keeps its configuration."""
        action = 'monitor device %s' % device.get('id')
        code, _out, err = self._run(context, device,
                                    monitor.get('command') or 'true', {},
                                    action, retries=0)
        if code != 0:
            return False, None, 'the monitor command exited %s; stderr: %s' \
                % (code, self._quote(err))
        configured = None
        if monitor.get('configured'):
            code, _out, err = self._run(context, device,
                                        monitor['configured'], {}, action,
                                        retries=0)
            configured = code == 0
            if not configured:
                return True, False, 'the configured check exited %s; ' \
                    'stderr: %s' % (code, self._quote(err))
        return True, configured, 'the monitor command exited 0'

    def close(self, context, device):
        """Close the connection kept for ``device`` in the operation of
        ``context`` (once its running calls end)."""
        key = (device.get('id'), getattr(context, 'operation_id', None))
        with self._lock:
            entry = self._cache.pop(key, None)
            if entry is None:
                return
            entry.retired = True
            close = entry.users == 0
        if close:
            self._close_client(entry)

    def close_all(self):
        """Close every kept connection (driver shutdown, tests)."""
        with self._lock:
            entries = list(self._cache.values())
            self._cache.clear()
            for entry in entries:
                entry.retired = True
            idle = [e for e in entries if e.users == 0]
        self._reaper_stop.set()
        for entry in idle:
            self._close_client(entry)

    # ---- scripts ----

    def _config(self, context, device, config, name, what):
        config = config or {}
        script = config.get(name)
        if not script:
            return None
        action = '%s on device %s' % (what, device.get('id'))
        code, out, err = self._run(context, device, script,
                                   config.get('env') or {}, action)
        if code != 0:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='the %s exited with %s; stderr: %s' % (
                    name, code, self._quote(err)))
        lines = [line for line in out.splitlines() if line.strip()]
        return '%s exited 0 on device %s%s' % (
            name, device.get('id'), ': ' + lines[-1] if lines else '')

    def _run(self, context, device, script, env, action, retries=None):
        if isinstance(script, bytes):
            script = script.decode('utf-8')
        if not isinstance(script, str):
            raise exceptions.DriverError(driver=DRIVER, action=action,
                                         reason='the script is not text')
        try:
            payload = env_preamble(env) + script
        except ValueError as e:
            raise exceptions.DriverError(driver=DRIVER, action=action,
                                         reason=str(e)) from None
        if not payload.endswith('\n'):
            payload += '\n'
        payload = payload.encode('utf-8')
        auth = self._auth(device, action)
        target = self._target(device, auth, action)
        started = time.monotonic()
        result = self._on_connection(
            context, device, auth, target, action, retries,
            lambda entry: self._exec(context, device, entry.client, payload,
                                     action, target))
        LOG.debug('ssh: %s: exit %s in %.2fs (%s@%s, %d bytes in)',
                  action, result[0], time.monotonic() - started,
                  auth['username'], self._where(target), len(payload))
        return result

    def _exec(self, context, device, client, payload, action, target):
        """One session: send ``payload`` to /bin/sh -s, collect output."""
        timeout = self.options.ssh_command_timeout
        transport = client.get_transport()
        try:
            channel = transport.open_session(
                timeout=self.options.ssh_connect_timeout)
        except (paramiko.SSHException, EOFError, OSError,
                AttributeError) as e:
            raise _StaleConnection(_describe(e)) from None
        out = _Tail(self.options.ssh_max_output)
        err = _Tail(self.options.ssh_max_output)
        interrupt = getattr(context, 'interrupt', None)
        try:
            try:
                channel.exec_command(REMOTE_COMMAND)
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise _StaleConnection(_describe(e)) from None
            channel.settimeout(0.0)
            pending = memoryview(payload)
            deadline = time.monotonic() + timeout
            exited_at = None
            while True:
                if pending:
                    try:
                        sent = channel.send(pending[:32768])
                    except socket.timeout:
                        sent = 0
                    except (OSError, EOFError, paramiko.SSHException):
                        # The shell went away without reading it all; its
                        # exit status tells what happened.
                        sent, pending = 0, pending[:0]
                    pending = pending[sent:]
                    if not pending:
                        channel.shutdown_write()
                self._drain(channel, out, err)
                now = time.monotonic()
                if channel.exit_status_ready():
                    if channel.eof_received or channel.closed:
                        break
                    exited_at = exited_at or now
                    if now - exited_at >= EXIT_GRACE:
                        LOG.warning('ssh: %s: the script exited but a '
                                    'process it started still holds its '
                                    'output open; not waiting for it',
                                    action)
                        break
                elif not transport.is_active():
                    raise exceptions.DriverTransientError(
                        driver=DRIVER, action=action,
                        reason='the ssh connection to %s was lost while '
                               'the script ran; stdout: %s; stderr: %s' % (
                                   self._where(target),
                                   self._quote(out.text()),
                                   self._quote(err.text())))
                if now >= deadline:
                    self._signal(channel, 'TERM')
                    error = exceptions.DriverError(
                        driver=DRIVER, action=action,
                        reason='the script did not end within %gs '
                               '([mgmt] ssh_command_timeout); stdout so '
                               'far: %s; stderr so far: %s' % (
                                   timeout, self._quote(out.text()),
                                   self._quote(err.text())))
                    error.stdout, error.stderr = out.text(), err.text()
                    raise error
                if interrupt is not None and interrupt.is_set():
                    self._signal(channel, 'TERM')
                    raise exceptions.Interrupted(reason=getattr(
                        context, 'interrupt_reason',
                        'the operation was stopped'))
                wait = min(deadline - now, 0.05 if pending else 0.5)
                if channel.eof_received:
                    # Its pipe stays readable: wait for the exit status.
                    channel.status_event.wait(min(wait, 0.1))
                else:
                    select.select([channel], [], [], max(wait, 0))
            self._drain(channel, out, err)
            code = channel.recv_exit_status()
            if code == -1 and not transport.is_active():
                raise exceptions.DriverTransientError(
                    driver=DRIVER, action=action,
                    reason='the ssh connection to %s was lost while the '
                           'script ran; stdout: %s; stderr: %s' % (
                               self._where(target), self._quote(out.text()),
                               self._quote(err.text())))
            # -1: the script was killed by a signal.
            return code, out.text(), err.text()
        finally:
            channel.close()

    @staticmethod
    def _signal(channel, name):
        """Ask sshd to send signal ``name`` to the script's processes
        (RFC 4254 6.9; OpenSSH signals the session's process group).
        Without it, closing the channel leaves them running. Best effort:
        paramiko has no public call for this request."""
        try:
            message = paramiko.Message()
            message.add_byte(paramiko.common.cMSG_CHANNEL_REQUEST)
            message.add_int(channel.remote_chanid)
            message.add_string('signal')
            message.add_boolean(False)
            message.add_string(name)
            channel.transport._send_user_message(message)
        except Exception as e:  # the channel or connection is gone
            LOG.debug('ssh: could not send SIG%s to the script: %s', name, e)

    @staticmethod
    def _drain(channel, out, err):
        while channel.recv_ready():
            chunk = channel.recv(65536)
            if not chunk:
                break
            out.feed(chunk)
        while channel.recv_stderr_ready():
            chunk = channel.recv_stderr(65536)
            if not chunk:
                break
            err.feed(chunk)

    @staticmethod
    def _quote(text):
        text = text.strip()
        if not text:
            return '(none)'
        if len(text) > ERROR_OUTPUT_CHARS:
            text = '...' + text[-ERROR_OUTPUT_CHARS:]
        return repr(text)

    # ---- credentials and target ----

    def _auth(self, device, action):
        template = device.get('template') or {}
        sources = [('template attributes.mgmt_auth',
                    (template.get('attributes') or {}).get('mgmt_auth')),
                   ('device kwargs.mgmt_auth',
                    (device.get('kwargs') or {}).get('mgmt_auth'))]
        auth = {}
        for where, source in sources:
            if source is None:
                continue
            if not isinstance(source, dict):
                raise exceptions.DriverError(
                    driver=DRIVER, action=action,
                    reason='%s must be an object' % where)
            auth.update((k, v) for k, v in source.items() if v is not None)
        for name, value in auth.items():
            if secrets.is_sealed(value):
                raise exceptions.DriverError(
                    driver=DRIVER, action=action,
                    reason='mgmt_auth.%s is still sealed: the conductor '
                           'must unseal credentials for drivers' % name)
        if not auth.get('username'):
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='mgmt_auth.username is missing (template '
                       'attributes.mgmt_auth or device kwargs.mgmt_auth)')
        if not auth.get('private_key') and not auth.get('password'):
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='mgmt_auth has neither private_key nor password')
        auth['username'] = str(auth['username'])
        return auth

    def _target(self, device, auth, action):
        address = device.get('mgmt_address')
        if not address:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='device %s has no mgmt_address yet' % device.get('id'))
        try:
            host, port = split_address(address)
            if port is None:
                port = int(auth.get('port') or self.default_port)
        except (TypeError, ValueError):
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='cannot make a host and port of mgmt_address %r '
                       'and mgmt_auth.port' % address) from None
        if not 0 < port < 65536:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='port %d is not a TCP port' % port)
        return host, port

    @staticmethod
    def _where(target):
        host, port = target
        return '[%s]:%d' % target if ':' in host else '%s:%d' % (host, port)

    @staticmethod
    def _ident(auth, target):
        """What a kept connection was made with (a digest: no secret is
        kept in the clear beside the client)."""
        digest = hashlib.sha256(json.dumps(
            auth, sort_keys=True, default=str).encode()).hexdigest()
        return target, digest

    def _connect(self, context, device, auth, target, action, retries):
        """An authenticated client, after up to ``retries`` retries
        (default ``ssh_connect_retries``) while the device is not
        reachable."""
        if retries is None:
            retries = self.options.ssh_connect_retries
        delay = self.options.ssh_retry_backoff
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._session(context):
                    return self._open(device, auth, target, action)
            except _Unreachable as e:
                if attempt > retries:
                    raise exceptions.DriverTransientError(
                        driver=DRIVER, action=action,
                        reason='cannot reach %s (device %s) over ssh: %s; '
                               'gave up after %d attempt(s) in %.1fs '
                               '([mgmt] ssh_connect_retries)' % (
                                   self._where(target), device.get('id'),
                                   e, attempt,
                                   time.monotonic() - started)) from None
                LOG.info('ssh: %s (device %s) not reachable yet (%s); '
                         'attempt %d of %d, next in %.1fs',
                         self._where(target), device.get('id'), e, attempt,
                         retries + 1, delay)
            self.sleep(context, delay)
            delay = min(delay * 2, self.options.ssh_retry_max_backoff)

    def _open(self, device, auth, target, action):
        host, port = target
        device_id = device.get('id')
        try:
            pkey = None
            if auth.get('private_key'):
                pkey = load_private_key(auth['private_key'],
                                        auth.get('passphrase'))
        except ValueError as e:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='mgmt_auth.private_key cannot be used: %s' % e
            ) from None
        given = None
        if auth.get('host_key'):
            try:
                given = parse_host_keys(auth['host_key'])
            except ValueError as e:
                raise exceptions.DriverError(
                    driver=DRIVER, action=action,
                    reason='mgmt_auth.host_key is not an OpenSSH public '
                           'key ("ssh-ed25519 AAAA..."): %s' % e) from None
        pin_path = None if given else self._pin_path(device_id, action)
        pinned = given or self._read_pins(pin_path, action)
        client = paramiko.SSHClient()
        name = host if port == 22 else '[%s]:%d' % (host, port)
        for key in pinned:
            client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(ssh_pins.LearnPolicy(
            self, pin_path, device_id, self._where(target)))
        timeout = self.options.ssh_connect_timeout
        sock = None
        try:
            sock = _tcp_connect(host, port, timeout)
            client.connect(
                host, port=port, username=auth['username'],
                password=auth.get('password') or None, pkey=pkey,
                timeout=timeout, banner_timeout=timeout,
                auth_timeout=timeout, channel_timeout=timeout,
                allow_agent=False, look_for_keys=False, sock=sock)
        except BaseException as e:
            client.close()
            if sock is not None:
                sock.close()
            if isinstance(e, (paramiko.BadHostKeyException,
                              _HostKeyMismatch)):
                expected = getattr(e, 'expected_key', None) or getattr(
                    e, 'expected', None)
                got = getattr(e, 'key', None) or getattr(e, 'got', None)
                raise self._host_key_error(device_id, target, action,
                                           expected, got,
                                           pin_path) from None
            if isinstance(e, paramiko.AuthenticationException) and \
                    not _is_transient(e):
                methods = ' and '.join(
                    m for m, on in (('key', pkey is not None),
                                    ('password', auth.get('password')))
                    if on)
                raise exceptions.DriverError(
                    driver=DRIVER, action=action,
                    reason='ssh authentication as %s to %s failed (%s '
                           'tried): check mgmt_auth' % (
                               auth['username'], self._where(target),
                               methods)) from None
            if isinstance(e, Exception) and _is_transient(e):
                raise _Unreachable(_describe(e)) from None
            if isinstance(e, exceptions.ServiceVMException):
                raise
            if isinstance(e, Exception):
                raise exceptions.DriverError(
                    driver=DRIVER, action=action,
                    reason='ssh to %s failed: %s' % (
                        self._where(target), _describe(e))) from None
            raise
        with self._lock:
            self.connections_opened += 1
        LOG.debug('ssh: connected to %s as %s (device %s)',
                  self._where(target), auth['username'], device_id)
        return client
