"""Host key pinning of the ssh management driver."""

import os
import re
import tempfile
import time

from oslo_log import log as logging
import paramiko

from servicevm.common import exceptions
from servicevm.drivers.mgmt.ssh_util import DRIVER
from servicevm.drivers.mgmt.ssh_util import _HostKeyMismatch
from servicevm.drivers.mgmt.ssh_util import fingerprint


LOG = logging.getLogger(__name__)


class HostKeyPins:
    """Host key pins of the ssh driver (a mixin of SshMgmtDriver): the key
    a device shows first is learned and kept, in ``[mgmt]
    known_hosts_dir``/<device id>.known_hosts; a changed key is refused."""

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


class LearnPolicy(paramiko.MissingHostKeyPolicy):
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
