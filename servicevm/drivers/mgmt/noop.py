"""The noop management driver, for devices that need no configuring."""

from servicevm.drivers.mgmt import base


class NoopMgmtDriver(base.MgmtDriver):

    def check_ready(self, context, device):
        return True

    def run_script(self, context, device, script, env):
        return 0, '', ''

    def push_config(self, context, device, config):
        return None

    def remove_config(self, context, device, config):
        return None
