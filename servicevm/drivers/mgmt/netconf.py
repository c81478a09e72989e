"""The NETCONF management driver (RFC 6241 over SSH, RFC 6242): applies
configuration snippets to devices with ncclient.

It rides on the ssh driver's connections: the same ``mgmt_auth``
credentials (``port`` defaults to 830 here), the same host key pinning,
retries while the VM boots, one connection per device and operation, and
``[mgmt] ssh_max_sessions``. On that connection it opens the ``netconf``
subsystem and speaks NETCONF through ncclient.

A lifecycle script of a template with this driver is a configuration
snippet (XML): the contents of a ``<config>`` element, or a whole
``<config>``. ``$NAME`` and ``${NAME}`` in it are replaced by the
script's environment values (``SVM_CONF_*``, ``SVM_SERVICE_CONF_*``...),
XML-escaped; nothing else is interpreted. A service instance's
``kwargs.config`` is ``{"config": "<snippet>", "remove_config":
"<snippet>", "env": {...}}``: the first applied when it is bound, the
second when it is taken off.

Each snippet is one change: ``lock`` the target, ``edit-config``, then on
a device with a candidate datastore ``commit`` (a confirmed commit, then
the confirming one, when it has ``:confirmed-commit``; ``discard-changes``
after an error), else straight to ``running``; ``unlock``. An
``rpc-error`` becomes a clear error (tag, path, message). After a change
the driver reads the running configuration back (``get-config``), which
the conductor keeps on the device record (``mgmt_config``).
"""

import re
import string
import time
from xml.sax import saxutils

from ncclient import manager as nc_manager
from ncclient import operations as nc_operations
from ncclient import transport as nc_transport
from oslo_log import log as logging

from servicevm.common import exceptions
from servicevm.drivers.mgmt import ssh

LOG = logging.getLogger(__name__)

DRIVER = 'netconf'
BASE_NS = 'urn:ietf:params:xml:ns:netconf:base:1.0'
CANDIDATE = 'urn:ietf:params:netconf:capability:candidate:1.0'
CONFIRMED = 'urn:ietf:params:netconf:capability:confirmed-commit:1.'
#: Seconds a confirmed commit waits for its confirmation.
CONFIRM_TIMEOUT = 60
#: Seconds to wait for a datastore another session has locked.
LOCK_WAIT = 30
#: Characters of the running configuration kept on the device record.
MAX_CONFIG = 65536


def render(snippet, env):
    """The snippet with ``$NAME``/``${NAME}`` replaced by ``env``'s
    values, XML-escaped (unknown names are left as they are)."""
    values = {k: saxutils.escape(str(v), {'"': '&quot;', "'": '&apos;'})
              for k, v in (env or {}).items()}
    text = string.Template(snippet).safe_substitute(values)
    if not re.match(r'\s*<(\w+:)?config[\s>]', text):
        text = '<config xmlns="%s">%s</config>' % (BASE_NS, text)
    return text


def describe_rpc_error(error):
    """One line of an ncclient RPCError: tag, type, path, message."""
    parts = []
    tag = getattr(error, 'tag', None)
    if tag:
        parts.append(tag)
    kind = getattr(error, 'type', None)
    if kind:
        parts.append('(%s)' % kind)
    path = (getattr(error, 'path', None) or '').strip()
    if path:
        parts.append('at %s' % path)
    message = (getattr(error, 'message', None) or '').strip() or str(error)
    return 'rpc-error %s: %s' % (' '.join(parts) or '?', message)


class NetconfMgmtDriver(ssh.SshMgmtDriver):
    """Configures devices over NETCONF (entry point ``netconf``)."""

    default_port = 830
    driver_name = DRIVER

    # ---- the contract ----

    def check_ready(self, context, device):
        """True once the device answers a NETCONF hello."""
        if not device.get('mgmt_address'):
            return False
        try:
            return self._netconf(context, device, 'check that device %s is '
                                 'ready' % device.get('id'),
                                 lambda manager: True, retries=0)
        except exceptions.DriverTransientError as e:
            LOG.debug('netconf: device %s is not ready: %s',
                      device.get('id'), e)
            return False

    def run_script(self, context, device, script, env):
        """Apply a lifecycle event's snippet: (0, what was done, '') or
        (1, '', the device's rpc-error)."""
        action = 'apply a configuration snippet to device %s' % device.get(
            'id')
        try:
            return 0, self._edit(context, device, render(script, env),
                                 action), ''
        except _Refused as e:
            return 1, '', str(e)

    def push_config(self, context, device, config):
        return self._config(context, device, config, 'config')

    def remove_config(self, context, device, config):
        return self._config(context, device, config, 'remove_config')

    def get_config(self, context, device):
        """The device's running configuration (XML text), bounded."""
        action = 'read the configuration of device %s' % device.get('id')
        reply = self._netconf(context, device, action, lambda m: self._rpc(
            action, m.get_config, source='running'))
        return reply.data_xml[:MAX_CONFIG]

    def probe(self, context, device, monitor):
        """A NETCONF ``get`` (``monitor['filter']``, a subtree filter, if
        given) must be answered; ``monitor['configured']``, a subtree
        filter of the running configuration, must then select
        something while the device keeps its configuration."""
        action = 'monitor device %s' % device.get('id')

        def check(m):
            kwargs = {}
            if monitor.get('filter'):
                kwargs['filter'] = ('subtree', monitor['filter'])
            self._rpc(action, m.get, **kwargs)
            if not monitor.get('configured'):
                return True, None, 'NETCONF get answered'
            reply = self._rpc(action, m.get_config, source='running',
                              filter=('subtree', monitor['configured']))
            if len(reply.data_ele):
                return True, True, 'NETCONF get answered; the ' \
                    'configuration is there'
            return True, False, 'the running configuration has nothing ' \
                'the configured filter selects'
        try:
            return self._netconf(context, device, action, check, retries=0)
        except _Refused as e:
            return False, None, 'NETCONF get refused: %s' % e

    def _config(self, context, device, config, name):
        snippet = (config or {}).get(name)
        if not snippet:
            return None
        action = '%s on device %s' % (name, device.get('id'))
        try:
            return self._edit(context, device,
                              render(snippet, (config or {}).get('env')),
                              action)
        except _Refused as e:
            raise exceptions.DriverError(driver=DRIVER, action=action,
                                         reason=str(e)) from None

    # ---- one change ----

    def _edit(self, context, device, config, action):
        def change(m):
            capabilities = set(m.server_capabilities)
            candidate = CANDIDATE in capabilities
            target = 'candidate' if candidate else 'running'
            self._lock_target(context, action, m, target)
            try:
                try:
                    self._rpc(action, m.edit_config, target=target,
                              config=config)
                    return self._commit(action, m, capabilities) \
                        if candidate else 'edit-config to running'
                except _Refused:
                    if candidate:
                        self._quietly(m.discard_changes)
                    raise
            finally:
                self._quietly(m.unlock, target=target)
        how = self._netconf(context, device, action, change)
        return '%s on device %s' % (how, device.get('id'))

    def _lock_target(self, context, action, m, target):
        """Lock ``target``; while another session holds it (lock-denied),
        try again for up to LOCK_WAIT seconds."""
        deadline = time.monotonic() + LOCK_WAIT
        delay = 0.1
        while True:
            try:
                return self._rpc(action, m.lock, target=target)
            except _Refused as e:
                if e.tag != 'lock-denied' or time.monotonic() > deadline:
                    raise
            self.sleep(context, delay)
            delay = min(delay * 2, 2.0)

    def _commit(self, action, m, capabilities):
        if any(c.startswith(CONFIRMED) for c in capabilities):
            self._rpc(action, m.commit, confirmed=True,
                      timeout=str(CONFIRM_TIMEOUT))
            # Still reachable after the change: confirm it.
            self._rpc(action, m.commit)
            return 'confirmed commit'
        self._rpc(action, m.commit)
        return 'commit'

    @staticmethod
    def _rpc(action, method, **kwargs):
        try:
            return method(**kwargs)
        except nc_operations.RPCError as e:
            raise _Refused(describe_rpc_error(e),
                           getattr(e, 'tag', None)) from None
        except (nc_operations.TimeoutExpiredError,
                nc_transport.TransportError) as e:
            raise exceptions.DriverTransientError(
                driver=DRIVER, action=action,
                reason='NETCONF session failed: %s' % (
                    str(e) or type(e).__name__)) from None

    @staticmethod
    def _quietly(method, **kwargs):
        try:
            method(**kwargs)
        except Exception as e:  # the error that matters is raised already
            LOG.debug('netconf: %s failed: %s', method.__name__, e)

    # ---- sessions on the ssh driver's connections ----

    def _netconf(self, context, device, action, work, retries=None):
        """``work(manager)`` with a NETCONF manager on the connection kept
        for ``device`` in the operation of ``context`` (the subsystem
        opened on first use)."""
        auth = self._auth(device, action)
        target = self._target(device, auth, action)

        def on(entry):
            if getattr(entry, 'netconf', None) is None:
                entry.netconf = self._open_netconf(entry.client, action,
                                                   target)
            elif not entry.netconf.connected:
                raise ssh._StaleConnection('the NETCONF session ended')
            return work(entry.netconf)
        return self._on_connection(context, device, auth, target, action,
                                   retries, on)

    def _open_netconf(self, client, action, target):
        timeout = self.options.ssh_connect_timeout
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise ssh._StaleConnection('the ssh connection is closed')
        handler = nc_manager.make_device_handler({'name': 'default'})
        session = nc_transport.SSHSession(handler)
        try:
            channel = transport.open_session(timeout=timeout)
            channel.invoke_subsystem('netconf')
        except Exception as e:
            raise exceptions.DriverError(
                driver=DRIVER, action=action,
                reason='%s has no NETCONF subsystem: %s' % (
                    self._where(target), ssh._describe(e))) from None
        # ncclient's own connect would make its own ssh connection: hand
        # it ours, with the subsystem's channel, and let it say hello.
        session._transport = transport
        session._channel = channel
        session._channel_id = channel.get_id()
        session._channel_name = channel.get_name()
        session._connected = True
        try:
            session._post_connect(timeout)
        except Exception as e:
            channel.close()
            raise exceptions.DriverTransientError(
                driver=DRIVER, action=action,
                reason='no NETCONF hello from %s: %s' % (
                    self._where(target), str(e) or type(e).__name__)
            ) from None
        session.parser = handler.get_xml_parser(session)
        return nc_manager.Manager(session, handler,
                                  timeout=self.options.ssh_command_timeout)

    @staticmethod
    def _close_client(entry):
        manager = getattr(entry, 'netconf', None)
        if manager is not None:
            try:
                manager.close_session()
            except Exception:  # closing is best effort
                pass
        ssh.SshMgmtDriver._close_client(entry)


class _Refused(Exception):
    """The device answered an rpc-error."""

    def __init__(self, message, tag=None):
        super().__init__(message)
        self.tag = tag
