"""The device driver contract.

A device driver builds and tears down the VM (or other container) of a
device in its VIM. Drivers never touch the database: they are given plain
dicts (the device and its template) and return plain values; the conductor
records them. Every call must be idempotent: the VIM resources a driver
creates carry the device id, so a call repeated after a crash finds what
an earlier call made instead of making it twice.
"""

import abc
import collections
import dataclasses
import functools
import threading
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
    # The VIM is tearing the device down (its delete was taken).
    deleting: bool = False
    # Driver-specific facts (e.g. the VM ids of a scaled group).
    details: dict = dataclasses.field(default_factory=dict)
    # The VM's IP addresses by network name ({name: [address, ...]}).
    addresses: dict = dataclasses.field(default_factory=dict)


# The VIM calls this process made: {(driver, call, 'ok' | 'error'): n}.
# A conductor publishes them with its heartbeat row; /metrics shows them.
_VIM_CALLS = collections.Counter()
_VIM_CALLS_LOCK = threading.Lock()


def count_vim_call(driver, call, ok):
    with _VIM_CALLS_LOCK:
        _VIM_CALLS[(driver, call, 'ok' if ok else 'error')] += 1


def vim_calls():
    """[[driver, call, result, count], ...] of this process, sorted."""
    with _VIM_CALLS_LOCK:
        return sorted([*key, count] for key, count in _VIM_CALLS.items())


def counted(call):
    """Count each call of the decorated driver method as a VIM call
    (a driver whose VIM is not behind OpenStackDriver.vim_call)."""
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                result = method(self, *args, **kwargs)
            except exceptions.Interrupted:
                raise
            except Exception:
                count_vim_call(self.vim_name, call, False)
                raise
            count_vim_call(self.vim_name, call, True)
            return result
        return wrapper
    return decorate


# The optional actions a driver may support, and the state the device's
# VM rests in once each is done (None: the VM's state does not change).
ACTIONS = {
    'reboot': 'active', 'reset': 'active', 'shutdown': 'stopped',
    'start': 'active', 'snapshot_create': 'active',
    'snapshot_delete': None, 'snapshot_revert': 'active',
    'attach_nic': 'active', 'detach_nic': 'active',
    'attach_volume': 'active', 'detach_volume': 'active',
    'migrate': 'active', 'resize': 'active', 'scale': 'active',
}


class DeviceDriver(metaclass=abc.ABCMeta):
    """Base of every device driver (entry points servicevm.device.drivers).

    ``device`` arguments are dicts with the keys of the device's API view
    (id, project_id, name, instance_id, mgmt_address, kwargs,
    service_contexts) and ``template``, the template's view (attributes,
    service_types...).
    """

    #: The name its VIM calls are counted under.
    vim_name = None
    #: Optional actions (keys of ACTIONS) this driver supports.
    supported_actions = frozenset()
    #: Required and optional parameters of each supported action:
    #: {action: ({required name: type}, {optional name: type})}.
    action_params = {}
    #: Whether poll() answers only from a query it starts after the call
    #: (a batched poll's next cycle): a caller that polls in a loop then
    #: needs no pause of its own between two polls.
    poll_waits = False

    def __init__(self, conf):
        self.conf = conf

    def start(self, host):
        """A conductor (``host``) starts: start what the driver runs in
        the background there (e.g. a listener of its VIM's events)."""

    def stop(self):
        """The conductor stops: stop what start() started."""

    @abc.abstractmethod
    def create(self, context, device, new=False):
        """Start building the device; return its VIM instance id. Unless
        ``new`` (nothing was asked of the VIM for this device before: no
        earlier try, no dead run), first look for what an earlier try
        made, so that nothing is made twice."""

    @abc.abstractmethod
    def poll(self, context, devices):
        """Return {device id: PollResult} for ``devices``, with as few VIM
        queries as the VIM allows (one per call is the goal)."""

    def sync(self, context, devices):
        """The health watch's poll: as ``poll``, but what the VIM shows
        now, where a driver answers polls from what it saw lately."""
        return self.poll(context, devices)

    @abc.abstractmethod
    def delete(self, context, device):
        """Start tearing the device down; a device already gone is not an
        error."""

    def update(self, context, device):
        """Apply a change of the device's kwargs; default: nothing to do."""

    def action(self, context, device, action, params):
        """Start (or do) one of ``supported_actions``; return a line of
        output. The conductor then waits until the device's poll shows
        the state ACTIONS[action]. Must be safe to repeat."""
        raise exceptions.DriverError(
            driver=type(self).__name__, action=action,
            reason='not supported')

    @classmethod
    def check_action(cls, action, params, template=None):
        """Raise InvalidParameter (naming the field) unless ``action`` is
        supported and ``params`` has what it needs (and, given the
        device's ``template`` dict, fits it)."""
        if action not in cls.supported_actions:
            raise exceptions.InvalidParameter(
                field='action',
                reason='action %r is not supported by this device\'s '
                       'driver; supported: %s' % (
                           action, ', '.join(sorted(cls.supported_actions))
                           or 'none'))
        required, optional = cls.action_params.get(action, ({}, {}))
        params = params or {}
        for name, kind in required.items():
            if name not in params:
                raise exceptions.InvalidParameter(
                    field='params.' + name,
                    reason='action %s needs params.%s' % (action, name))
        for name, value in params.items():
            kind = required.get(name) or optional.get(name)
            if kind is None:
                raise exceptions.InvalidParameter(
                    field='params.' + name,
                    reason='action %s takes no parameter %s; it takes: %s'
                           % (action, name, ', '.join(
                               sorted(set(required) | set(optional)))
                              or 'none'))
            if not isinstance(value, kind) or isinstance(value, bool) and \
                    kind is not bool:
                raise exceptions.InvalidParameter(
                    field='params.' + name,
                    reason='params.%s of action %s must be a %s' % (
                        name, action, getattr(kind, '__name__', kind)))

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
