"""Secrets at rest: credentials in templates, devices and service instances.

A value is secret when its key (at any depth of a template's attributes,
a device's or service instance's kwargs, or an operation's params) is one
of SECRET_NAMES, e.g. ``attributes.mgmt_auth.private_key``. Secrets are
sealed (Fernet, AES-128-CBC + HMAC) before they reach the database, as
``{"$sealed": "<token>"}``; the API shows them as ``"***"``; only the
conductor unseals them, to hand them to a driver. They never go into
events or log lines.

Keys: ``[secrets] key_file`` (one Fernet key per line) or ``[secrets]
keys``. The first key seals; every key unseals, so a key is rotated by
putting a new one first, running ``servicevm-db-manage rotate-secrets``
(which re-seals every secret with it), then removing the old one.
"""

import base64
import os
import threading

from cryptography import fernet
from oslo_config import cfg
from oslo_log import log as logging

from servicevm.common import exceptions

LOG = logging.getLogger(__name__)

SECRET_NAMES = frozenset(['password', 'private_key', 'passphrase',
                          'secret', 'token', 'api_key'])
MARK = '$sealed'
MASK = '***'

_LOCK = threading.Lock()
_CACHE = {}


class SecretsUnavailable(exceptions.ServiceVMException):
    code = 503
    error_code = 'servicevm.secrets_unavailable'
    msg_fmt = ('Secrets cannot be stored or read: %(reason)s. The operator '
               'sets [secrets] key_file or [secrets] fernet_keys.')


def _keys(conf):
    keys = list(conf.secrets.fernet_keys or [])
    path = conf.secrets.key_file
    if path:
        try:
            with open(path) as f:
                keys = [k.strip() for k in f if k.strip()
                        and not k.startswith('#')] + keys
        except OSError as e:
            raise SecretsUnavailable(reason='key file %s: %s' % (
                path, e.strerror)) from e
    return keys


def _fernet(conf=None):
    conf = conf or cfg.CONF
    keys = tuple(_keys(conf))
    with _LOCK:
        if keys not in _CACHE:
            if not keys:
                raise SecretsUnavailable(reason='no key is configured')
            try:
                _CACHE.clear()
                _CACHE[keys] = fernet.MultiFernet(
                    [fernet.Fernet(k) for k in keys])
            except ValueError as e:
                raise SecretsUnavailable(
                    reason='a key is not a Fernet key') from e
        return _CACHE[keys]


def new_key():
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def ensure_key_file(path):
    """Create ``path`` with a new key unless it exists (all-in-one)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(new_key() + '\n')
    return path


def is_sealed(value):
    return isinstance(value, dict) and set(value) == {MARK}


def _secret_leaf(key, value):
    return (key in SECRET_NAMES and value is not None
            and not isinstance(value, (dict, list)))


def _walk(value, leaf, key=None):
    """A copy of ``value`` (found under ``key``) whose secret leaves, and
    sealed values, went through ``leaf``."""
    if is_sealed(value) or _secret_leaf(key, value):
        return leaf(value)
    if isinstance(value, dict):
        return {k: _walk(v, leaf, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, leaf) for v in value]
    return value


def seal(value, key=None, conf=None):
    """Seal the secret leaves of ``value`` (a key-value pair's value, or
    the value itself when the pair's ``key`` is secret)."""
    def leaf(v):
        if is_sealed(v):
            return v
        return {MARK: _fernet(conf).encrypt(str(v).encode()).decode()}
    return _walk(value, leaf, key)


def mask(value, key=None):
    if not isinstance(value, (dict, list)):
        # A plain value (most kwargs), as _walk would treat it.
        return MASK if _secret_leaf(key, value) else value
    return _walk(value, lambda v: MASK, key)


def reveal(value, conf=None):
    """Unseal every sealed leaf of ``value`` (conductor side only)."""
    def leaf(v):
        if not is_sealed(v):
            return v
        try:
            return _fernet(conf).decrypt(v[MARK].encode()).decode()
        except fernet.InvalidToken as e:
            raise SecretsUnavailable(
                reason='a secret was sealed with a key that is no longer '
                       'configured') from e
    return _walk(value, leaf)


def reseal(value, conf=None):
    """Seal again with the first key (rotation)."""
    def leaf(v):
        if not is_sealed(v):
            return v
        return {MARK: _fernet(conf).rotate(v[MARK].encode()).decode()}
    return _walk(value, leaf)


def secret_values(values):
    """The secret leaves (revealed: plain text) found in ``values``, and
    the long lines of multi-line ones (a private key), longest first."""
    found = set()

    def leaf(v):
        if not is_sealed(v):
            text = str(v)
            found.add(text)
            found.update(line.strip() for line in text.splitlines()
                         if len(line.strip()) >= 16)
        return v
    for value in values:
        _walk(value, leaf)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def scrub(text, secrets):
    """``text`` with every one of ``secrets`` (secret_values) masked:
    what a device or script echoes back is never stored or shown."""
    if not text or not secrets:
        return text
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def reveal_map(pairs, conf=None):
    return {k: reveal(v, conf) for k, v in (pairs or {}).items()}
