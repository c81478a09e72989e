"""Helpers of the ssh management driver: environment preambles,
addresses, keys, output tails, and what counts as a passing failure."""

import base64
import binascii
import errno
import io
import json
import re
import shlex
import socket

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization
from oslo_log import log as logging
import paramiko


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
