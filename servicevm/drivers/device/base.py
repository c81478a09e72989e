"""The device driver contract.

A device driver builds and tears down the VM (or other container) of a
device in its VIM. Drivers never touch the database: they are given plain
dicts (the device and its template) and return plain values; the conductor
records them. Every call must be idempotent: the VIM resources a driver
creates carry the device id, so a call repeated after a crash finds what
an earlier call made instead of making it twice.
"""

import abc
import dataclasses
import time

from servicevm.common import exceptions
from servicevm.common import states


@dataclasses.dataclass
class PollResult:
    """What a driver saw of one device in its VIM."""
    # 'building', 'active', 'paused', 'stopped', 'error' or 'gone'.
    state: str
    power_state: str = states.POWER_UNKNOWN
    mgmt_address: str | None = None
    error: str | None = None
    usage: dict = dataclasses.field(default_factory=dict)


class DeviceDriver(metaclass=abc.ABCMeta):
    """Base of every device driver (entry points servicevm.device.drivers).

    ``device`` arguments are dicts with the keys of the device's API view
    (id, project_id, name, instance_id, mgmt_address, kwargs,
    service_contexts) and ``template``, the template's view (attributes,
    service_types...).
    """

    #: Optional actions (reboot, shutdown, ...) this driver supports.
    supported_actions = frozenset()

    def __init__(self, conf):
        self.conf = conf

    @abc.abstractmethod
    def create(self, context, device):
        """Start building the device; return its VIM instance id."""

    @abc.abstractmethod
    def poll(self, context, devices):
        """Return {device id: PollResult} for ``devices``, with as few VIM
        queries as the VIM allows (one per call is the goal)."""

    @abc.abstractmethod
    def delete(self, context, device):
        """Start tearing the device down; a device already gone is not an
        error."""

    def update(self, context, device):
        """Apply a change of the device's kwargs; default: nothing to do."""

    @staticmethod
    def sleep(context, seconds):
        """Wait ``seconds``, or raise Interrupted as soon as the operation
        the call belongs to is interrupted (cancel, rollback, lost
        lease). Drivers wait on their VIM through this."""
        interrupt = getattr(context, 'interrupt', None)
        if interrupt is None:
            time.sleep(seconds)
        elif interrupt.wait(seconds):
            raise exceptions.Interrupted(reason=getattr(
                context, 'interrupt_reason', 'the operation was stopped'))
