"""The management driver contract.

A management driver reaches into a running device to configure it and to
bind services to it (ssh, NETCONF, ...). Like device drivers, it is given
plain dicts and never touches the database.
"""

import abc

from servicevm.common import exceptions


class MgmtDriver(metaclass=abc.ABCMeta):
    """Base of every management driver (entry points
    servicevm.mgmt.drivers)."""

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def check_ready(self, context, device):
        """Return True once the device answers on its management address
        and is ready to be configured."""

    @abc.abstractmethod
    def run_script(self, context, device, script, env):
        """Run one lifecycle script on the device with ``env`` as its
        environment; return (exit code, stdout, stderr)."""

    @abc.abstractmethod
    def push_config(self, context, device, config):
        """Apply ``config`` (a service instance's configuration)."""

    @abc.abstractmethod
    def remove_config(self, context, device, config):
        """Remove what push_config applied (staged delete)."""

    def get_config(self, context, device):
        """The device's configuration as the device reports it (text),
        kept on the device record after each change; None when the
        driver cannot read it."""
        return None

    def probe(self, context, device, monitor):
        """A liveness monitor's probe (see servicevm.conductor.monitor):
        return (alive, configured, detail), configured None unless
        ``monitor`` has ``configured``; raise when the device cannot be
        reached. ``context.interrupt`` is set at the probe's timeout."""
        raise exceptions.DriverError(
            driver=type(self).__name__, action='probe',
            reason='this management driver has no liveness monitor')

    def close(self, context, device):
        """The operation of ``context`` is done with ``device``: let go
        of what was kept for it (a connection)."""
