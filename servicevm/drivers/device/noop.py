"""The noop device driver: builds nothing, and adopts existing boxes.

A device made with it is ACTIVE as soon as it is created. Its management
address comes from the device's ``kwargs.mgmt_address`` (``host`` or
``host:port``), so a device can stand for an appliance that already runs.
"""

from servicevm.common import states
from servicevm.drivers.device import base


class NoopDeviceDriver(base.DeviceDriver):

    def create(self, context, device, new=False):
        return 'noop-%s' % device['id']

    def poll(self, context, devices):
        return {d['id']: self._poll_one(d) for d in devices}

    @staticmethod
    def _poll_one(device):
        # Nothing runs, so a device is gone as soon as its delete starts,
        # or once a rollback of its create has forgotten its instance.
        if (device.get('status') == states.PENDING_DELETE or
                not device.get('instance_id')):
            return base.PollResult(state='gone')
        return base.PollResult(
            state='active', power_state=states.POWER_RUNNING,
            mgmt_address=(device.get('kwargs') or {}).get('mgmt_address'))

    def delete(self, context, device):
        return None
