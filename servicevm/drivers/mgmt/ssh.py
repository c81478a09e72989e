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

import base64
import binascii
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import select
import shlex
import socket
import tempfile
import threading
import time

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
from oslo_log import log as logging
import paramiko

from servicevm.common import exceptions
from servicevm.common import secrets
from servicevm.conf import mgmt as mgmt_conf
from servicevm.drivers.device import base as device_base
from servicevm.drivers.mgmt import base

LOG = logging.getLogger(__name__)

DRIVER = 'ssh'
REMOTE_COMMAND = '/bin/sh -s'
DEFAULT_PORT = 22
# Channels one cached connection carries at once; OpenSSH refuses more
# than MaxSessions (10 by default) per connection. A call beyond this
# gets a connection of its own.
MAX_CHANNELS_PER_CONNECTION = 8
# Seconds to wait for the end of a script's output once it exited: a
# process it left in the background may hold its stdout open.
EXIT_GRACE = 1.0
# Characters of partial output quoted in an error message.
ERROR_OUTPUT_CHARS = 2000

_TRANSIENT_ERRNOS = frozenset([
    errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH,
    errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
    errno.EHOSTDOWN, errno.ENETDOWN])


class _HostKeyMismatch(Exception):
    """The device showed another key than the pinned one."""

    def __init__(self, expected, got):
        super().__init__('host key mismatch')
        self.expected = expected
        self.got = got


class _StaleConnection(Exception):
    """A cached connection could not open a session (it died)."""


class _Unreachable(Exception):
    """Every connection attempt failed for a reason that may pass."""


def sanitize_env_name(name):
    """``name`` as a portable shell variable name: upper case, [A-Z0-9_]
    only (others become '_'), not starting with a digit."""
    result = re.sub(r'[^A-Z0-9_]', '_', str(name).upper())
    if not result or result[0].isdigit():
        result = '_' + result
    return result


def _env_value(value):
    if value is None:
        return ''
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, bytes):
        return value.decode('utf-8', 'replace')
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def env_preamble(env):
    """Shell lines exporting ``env`` safely: every value single-quoted
    (shlex.quote), so that nothing in it is expanded or run."""
    lines = []
    seen = {}
    for name, value in (env or {}).items():
        safe = sanitize_env_name(name)
        text = _env_value(value)
        if '\0' in text:
            raise ValueError('environment variable %s contains a NUL '
                             'character, which no shell variable can hold'
                             % safe)
        if safe in seen:
            LOG.warning('ssh: environment variables %r and %r are both '
                        'exported as %s; the last one wins',
                        seen[safe], name, safe)
        seen[safe] = name
        lines.append('export %s=%s\n' % (safe, shlex.quote(text)))
    return ''.join(lines)


def split_address(address):
    """'host', 'host:port', '[v6]', '[v6]:port' or a bare IPv6 address ->
    (host, port or None)."""
    address = str(address).strip()
    match = re.match(r'^\[([^\]]+)\](?::(\d+))?$', address)
    if match:
        host, port = match.group(1), match.group(2)
    elif address.count(':') == 1:
        host, port = address.split(':')
    else:
        host, port = address, None
    if port is not None:
        port = int(port)
    return host, port


def fingerprint(key):
    if key is None:
        return 'no key'
    return '%s (%s)' % (key.fingerprint, key.get_name())


def parse_host_keys(text):
    """Public keys from ``text``: one a line, as in a .pub file
    ("ssh-ed25519 AAAA... comment") or a known_hosts line ("host
    ssh-ed25519 AAAA...")."""
    keys = []
    for line in str(text).splitlines():
        fields = line.split()
        if not fields or fields[0].startswith('#'):
            continue
        for i, field in enumerate(fields[:-1]):
            if field.startswith(('ssh-', 'ecdsa-', 'rsa-')):
                try:
                    blob = base64.b64decode(fields[i + 1], validate=True)
                    keys.append(paramiko.PKey.from_type_string(field, blob))
                except (binascii.Error, ValueError, paramiko.SSHException,
                        paramiko.UnknownKeyType) as e:
                    raise ValueError('%s key: %s' % (
                        field, type(e).__name__)) from None
                break
        else:
            raise ValueError('not an OpenSSH public key line')
    if not keys:
        raise ValueError('no key in it')
    return keys


def load_private_key(text, passphrase=None):
    """A paramiko key from private key text (OpenSSH or PEM format).
    Raises ValueError with a message that quotes nothing of the key."""
    if isinstance(text, bytes):
        text = text.decode('utf-8', 'replace')
    data = text.strip().encode() + b'\n'
    password = passphrase.encode() if passphrase else None

    def parse(password):
        try:
            return serialization.load_ssh_private_key(data, password)
        except ValueError:
            return serialization.load_pem_private_key(data, password)

    try:
        try:
            loaded = parse(password)
        except TypeError:
            if password is None:
                raise ValueError('it is encrypted: give mgmt_auth.passphrase')
            # A passphrase for a key that is not encrypted.
            password = None
            loaded = parse(None)
    except (ValueError, TypeError) as e:
        if 'passphrase' in str(e):
            raise
        raise ValueError('not an OpenSSH or PEM private key, or a wrong '
                         'passphrase') from None
    except Exception:
        raise ValueError('not a supported private key') from None
    if isinstance(loaded, rsa.RSAPrivateKey):
        cls = paramiko.RSAKey
    elif isinstance(loaded, ed25519.Ed25519PrivateKey):
        cls = paramiko.Ed25519Key
    elif isinstance(loaded, ec.EllipticCurvePrivateKey):
        cls = paramiko.ECDSAKey
    else:
        raise ValueError('unsupported key type %s' % type(loaded).__name__)
    try:
        return cls.from_private_key(
            io.StringIO(data.decode()),
            password=password.decode() if password else None)
    except (paramiko.SSHException, ValueError, TypeError):
        raise ValueError('paramiko cannot use this %s key' % (
            cls.__name__)) from None


def _tcp_connect(host, port, timeout):
    """A TCP connection to the first address of ``host`` that answers,
    with Nagle's algorithm off: ssh's small request/reply messages
    otherwise wait for delayed ACKs (some 40 ms each)."""
    error = None
    for family, kind, proto, _name, address in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(address)
            return sock
        except OSError as e:
            sock.close()
            error = e
    raise error or OSError(errno.EHOSTUNREACH, 'no address')


def _is_transient(error):
    """Whether a connection attempt that failed with ``error`` may
    succeed later (the device is still booting)."""
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        return True
    if isinstance(error, (socket.timeout, TimeoutError, EOFError)):
        return True
    if isinstance(error, paramiko.AuthenticationException):
        # Only a timeout of the exchange, not a refusal, may pass.
        return 'timeout' in str(error).lower()
    if isinstance(error, paramiko.BadHostKeyException):
        return False
    if isinstance(error, paramiko.SSHException):
        message = str(error)
        return ('banner' in message or 'Negotiation failed' in message
                or 'Connection reset' in message
                or 'No existing session' in message)
    if isinstance(error, socket.gaierror):
        return False
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    return False


def _describe(error):
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        reasons = sorted(set(e.strerror or str(e)
                             for e in error.errors.values()))
        return ', '.join(reasons) or 'connection failed'
    if isinstance(error, (socket.timeout, TimeoutError)):
        return 'timed out'
    if isinstance(error, EOFError):
        return 'the connection was closed by the device'
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class _Tail:
    """The last ``limit`` bytes of a stream, and how many were dropped."""

    def __init__(self, limit):
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def feed(self, chunk):
        self.data += chunk
        extra = len(self.data) - self.limit
        if extra > 0:
            del self.data[:extra]
            self.dropped += extra

    def text(self):
        data = bytes(self.data)
        if self.dropped:
            # Do not start in the middle of a UTF-8 character.
            skip = 0
            while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
                skip += 1
            data = data[skip:]
            return '[... %d bytes of output dropped ...]\n%s' % (
                self.dropped + skip, data.decode('utf-8', 'replace'))
        return data.decode('utf-8', 'replace')


class _Connection:
    """A cached client, shared by the calls of one (device, operation)."""

    def __init__(self, key, ident):
        self.key = key
        self.ident = ident
        self.client = None
        self.ready = threading.Event()
        self.users = 0
        self.last_used = time.monotonic()
        self.retired = False

    def alive(self):
        transport = self.client and self.client.get_transport()
        return bool(transport and transport.is_active())


class SshMgmtDriver(base.MgmtDriver):
    """Runs scripts on devices over ssh (entry point ``ssh``)."""

    #: Interruptible waits, as device drivers have them.
    sleep = staticmethod(device_base.DeviceDriver.sleep)

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
        for attempt in (1, 2):
            entry, reused = self._acquire(context, device, auth, target,
                                          action, retries)
            broken = False
            try:
                with self._session(context):
                    result = self._exec(context, device, entry.client,
                                        payload, action, target)
                LOG.debug('ssh: %s: exit %s in %.2fs (%s@%s, %d bytes in)',
                          action, result[0], time.monotonic() - started,
                          auth['username'], self._where(target),
                          len(payload))
                return result
            except _StaleConnection as e:
                broken = True
                if not reused or attempt == 2:
                    raise exceptions.DriverTransientError(
                        driver=DRIVER, action=action,
                        reason='the ssh connection to %s broke: %s' % (
                            self._where(target), e)) from None
                LOG.info('ssh: the kept connection to device %s (%s) is '
                         'gone (%s); connecting again', device.get('id'),
                         self._where(target), e)
            except exceptions.DriverTransientError:
                broken = True
                raise
            finally:
                self._release(entry, broken)

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
                port = int(auth.get('port') or DEFAULT_PORT)
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

    # ---- sessions and connections ----

    @contextlib.contextmanager
    def _session(self, context):
        """One of the ``ssh_max_sessions`` slots, waited for
        interruptibly."""
        interrupt = getattr(context, 'interrupt', None)
        while not self._slots.acquire(timeout=0.2):
            if interrupt is not None and interrupt.is_set():
                raise exceptions.Interrupted(reason=getattr(
                    context, 'interrupt_reason', 'the operation was stopped'))
        with self._lock:
            self.active_sessions += 1
            self.peak_sessions = max(self.peak_sessions,
                                     self.active_sessions)
        try:
            yield
        finally:
            with self._lock:
                self.active_sessions -= 1
            self._slots.release()

    def _acquire(self, context, device, auth, target, action, retries):
        """(a connection entry in use by this call, whether it was
        reused)."""
        self._reap()
        key = (device.get('id'), getattr(context, 'operation_id', None))
        ident = self._ident(auth, target)
        interrupt = getattr(context, 'interrupt', None)
        while True:
            stale = None
            with self._lock:
                entry = self._cache.get(key)
                if entry is not None and entry.ready.is_set() and (
                        entry.ident != ident or not entry.alive()):
                    self._cache.pop(key)
                    entry.retired = True
                    stale = entry if entry.users == 0 else None
                    entry = None
                if entry is None:
                    entry = _Connection(key, ident)
                    entry.users = 1
                    self._cache[key] = entry
                    break
                if entry.ready.is_set():
                    if entry.users < MAX_CHANNELS_PER_CONNECTION:
                        entry.users += 1
                        entry.last_used = time.monotonic()
                        return entry, True
                    # Busy: a connection of this call's own.
                    entry = _Connection(key, ident)
                    entry.users = 1
                    entry.retired = True
                    break
            # Another call is connecting to it: wait for that.
            while not entry.ready.wait(0.2):
                if interrupt is not None and interrupt.is_set():
                    raise exceptions.Interrupted(reason=getattr(
                        context, 'interrupt_reason',
                        'the operation was stopped'))
        if stale:
            self._close_client(stale)
        try:
            entry.client = self._connect(context, device, auth, target,
                                         action, retries)
        except BaseException:
            with self._lock:
                if self._cache.get(key) is entry:
                    self._cache.pop(key)
                entry.retired = True
                entry.ready.set()
            raise
        with self._lock:
            entry.last_used = time.monotonic()
            entry.ready.set()
        self._start_reaper()
        return entry, False

    def _release(self, entry, broken=False):
        with self._lock:
            entry.users -= 1
            entry.last_used = time.monotonic()
            if broken or self.options.ssh_idle_timeout <= 0:
                if self._cache.get(entry.key) is entry:
                    self._cache.pop(entry.key)
                entry.retired = True
            close = entry.retired and entry.users == 0
        if close:
            self._close_client(entry)

    def _reap(self):
        """Close the kept connections idle for ssh_idle_timeout."""
        now = time.monotonic()
        idle = self.options.ssh_idle_timeout
        with self._lock:
            expired = [e for e in self._cache.values()
                       if e.ready.is_set() and e.users == 0
                       and (now - e.last_used >= idle or not e.alive())]
            for entry in expired:
                self._cache.pop(entry.key)
                entry.retired = True
            left = len(self._cache)
        for entry in expired:
            LOG.debug('ssh: closing the idle connection of device %s '
                      '(operation %s)', *entry.key)
            self._close_client(entry)
        return left

    def _start_reaper(self):
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper_stop.clear()
            self._reaper = threading.Thread(
                target=self._reap_loop, name='ssh-mgmt-reaper', daemon=True)
            self._reaper.start()

    def _reap_loop(self):
        interval = min(max(self.options.ssh_idle_timeout / 2, 0.5), 15)
        while not self._reaper_stop.wait(interval):
            if not self._reap():
                with self._lock:
                    if not self._cache:
                        self._reaper = None
                        return

    @staticmethod
    def _close_client(entry):
        if entry.client is not None:
            try:
                entry.client.close()
            except Exception:  # closing is best effort
                pass

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
        name = host if port == DEFAULT_PORT else '[%s]:%d' % (host, port)
        for key in pinned:
            client.get_host_keys().add(name, key.get_name(), key)
        client.set_missing_host_key_policy(_LearnPolicy(
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

    # ---- host key pins ----

    def known_hosts_dir(self):
        return self.options.known_hosts_dir or os.path.join(
            tempfile.gettempdir(), 'servicevm', 'ssh_known_hosts')

    def pin_path(self, device_id):
        """The file that pins the host key of ``device_id``."""
        name = re.sub(r'[^A-Za-z0-9._-]', '_', str(device_id))
        if name.startswith('.') or not name:
            name = '_' + name
        return os.path.join(self.known_hosts_dir(), name + '.known_hosts')

    def _pin_path(self, device_id, action):
        directory = self.known_hosts_dir()
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            st = os.stat(directory)
        except OSError as e:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='[mgmt] known_hosts_dir %s: %s' % (
                    directory, e.strerror)) from None
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='[mgmt] known_hosts_dir %s must belong to this user '
                       'and not be writable by others' % directory)
        return self.pin_path(device_id)

    @staticmethod
    def _read_pins(path, action):
        keys = paramiko.HostKeys()
        try:
            keys.load(path)
        except FileNotFoundError:
            return []
        except (OSError, paramiko.SSHException) as e:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='cannot read the host key pin %s: %s' % (
                    path, getattr(e, 'strerror', None) or e)) from None
        return [key for host in keys.keys() for key in keys[host].values()]

    def learn(self, path, device_id, where, hostname, key):
        """Pin ``key`` unless a pin appeared meanwhile (then it must be
        that key)."""
        with self._pin_lock:
            pinned = self._read_pins(path, 'pin a host key')
            if pinned:
                if any(k == key for k in pinned):
                    return
                raise _HostKeyMismatch(pinned[0], key)
            directory = os.path.dirname(path)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix='.pin-')
            try:
                with os.fdopen(fd, 'w') as f:
                    f.write('# servicevm: host key of device %s, learned '
                            '%s from %s.\n# Delete this file to have it '
                            'learned again on the next contact.\n' % (
                                device_id,
                                time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                              time.gmtime()), where))
                    f.write('%s %s %s\n' % (hostname, key.get_name(),
                                            key.get_base64()))
                # Atomic, and never over a pin another process wrote
                # meanwhile.
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pinned = self._read_pins(path, 'pin a host key')
                    if pinned:
                        if any(k == key for k in pinned):
                            return
                        raise _HostKeyMismatch(pinned[0], key)
                    # An empty or unreadable pin: replace it.
                    os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        LOG.info('ssh: learned the host key %s of device %s (%s); pinned '
                 'in %s', fingerprint(key), device_id, where, path)

    def _host_key_error(self, device_id, target, action, expected, got,
                        pin_path):
        where = self._where(target)
        if pin_path is None:
            how = ('it does not match mgmt_auth.host_key (expected %s, got '
                   '%s); correct mgmt_auth.host_key if the device\'s key '
                   'changed on purpose' % (
                       fingerprint(expected), fingerprint(got)))
        else:
            how = ('expected %s, got %s. Refused: this may be another '
                   'machine or an attack. If the device was rebuilt or '
                   'its key regenerated on purpose, reset the pin by '
                   'deleting %s; the key is learned again on the next '
                   'contact' % (fingerprint(expected), fingerprint(got),
                                pin_path))
        LOG.error('ssh: the host key of device %s (%s) changed: %s',
                  device_id, where, how)
        return exceptions.DriverError(
            driver=DRIVER, action=action,
            reason='the host key of device %s (%s) changed: %s' % (
                device_id, where, how))


class _LearnPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko when no key is pinned: learn the device's."""

    def __init__(self, driver, path, device_id, where):
        self.driver = driver
        self.path = path
        self.device_id = device_id
        self.where = where

    def missing_host_key(self, client, hostname, key):
        if self.path is None:
            raise _HostKeyMismatch(None, key)
        self.driver.learn(self.path, self.device_id, self.where, hostname,
                          key)
