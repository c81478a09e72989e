"""The fault-injecting device driver, for tests of failure handling.

Loadable only when listed in ``enabled_device_drivers``. Its pretend VIM
is a directory (``[fault_driver] state_dir``): one JSON file per instance,
and a journal (``journal.jsonl``) of every create and delete, so a test
can check that nothing was created twice and nothing was left behind.

What to do on each call comes from the template attribute ``fault`` (a
device's ``kwargs.fault`` overrides it per action)::

    {"fault": {"create": {"sleep": 5},
               "delete": {"fail": "disk busy", "times": 2},
               "poll": {"hang": true}}}

``sleep`` waits that many seconds, ``fail`` raises with that message,
``hang`` waits until the operation is interrupted; ``sleep_after``
(create only) waits that many seconds after making the instance, before
answering (a crash then leaves a VM its caller never heard of); ``times``
limits the fault to the first N calls of that action for the device;
``{"delete": {"keep": true}}`` answers a delete but keeps the instance (a
VM stuck deleting: polls show it deleting). ``poll``
faults apply while waiting for a device to become active or gone;
``{"poll": {"state": "error", "error": "..."}}`` reports the instance in
error, as does an ``error`` message written in its file (a VM broken
behind servicevm's back, until a reboot or start). A device's
``kwargs.addresses`` ({network: [address]}) are the addresses its polls
report. ``scale`` ({"count": N}) makes the instance a
group of N members (``instance_ids`` in the polls' details).
"""

import contextlib
import fcntl
import json
import os
import threading

from oslo_utils import timeutils
from oslo_utils import uuidutils

from servicevm.common import exceptions
from servicevm.common import states
from servicevm.drivers.device import base

ACTIONS = ('create', 'delete', 'update', 'poll', 'reboot', 'shutdown',
           'start', 'scale')


class FaultDeviceDriver(base.DeviceDriver):

    vim_name = 'fault'
    supported_actions = frozenset(['reboot', 'shutdown', 'start', 'scale'])
    action_params = {'reboot': ({}, {'hard': bool}),
                     'scale': ({'count': int}, {})}

    def __init__(self, conf):
        super().__init__(conf)
        self.state_dir = conf.fault_driver.state_dir
        self.instances_dir = os.path.join(self.state_dir, 'instances')
        self.counters_dir = os.path.join(self.state_dir, 'counters')
        for path in (self.instances_dir, self.counters_dir):
            os.makedirs(path, exist_ok=True)
        self._thread_lock = threading.Lock()

    # ---- the pretend VIM ---------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        """A lock across threads and processes sharing the directory."""
        with self._thread_lock:
            fd = os.open(os.path.join(self.state_dir, '.lock'),
                         os.O_CREAT | os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _journal(self, record):
        record['at'] = timeutils.utcnow().isoformat()
        with open(os.path.join(self.state_dir, 'journal.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')

    def _instance_path(self, device_id):
        return os.path.join(self.instances_dir, device_id + '.json')

    def _write(self, device_id, instance):
        """Replace the instance file at once: a reader in another thread
        or process sees the old content or the new, never half of it."""
        path = self._instance_path(device_id)
        tmp = '%s.%d.%d.tmp' % (path, os.getpid(), threading.get_ident())
        with open(tmp, 'w') as f:
            json.dump(instance, f)
        os.replace(tmp, path)

    def _find(self, device_id):
        try:
            with open(self._instance_path(device_id)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def instances(self):
        """Every instance the pretend VIM holds (for tests)."""
        result = []
        for name in sorted(os.listdir(self.instances_dir)):
            if not name.endswith('.json'):
                continue
            try:
                with open(os.path.join(self.instances_dir, name)) as f:
                    result.append(json.load(f))
            except FileNotFoundError:
                continue  # deleted since the listing
        return result

    # ---- fault injection -----------------------------------------------

    @staticmethod
    def _spec(device, action):
        template = (device.get('template') or {}).get('attributes') or {}
        spec = dict((template.get('fault') or {}).get(action) or {})
        spec.update(((device.get('kwargs') or {}).get('fault') or {})
                    .get(action) or {})
        return spec

    def _count(self, device_id, action):
        path = os.path.join(self.counters_dir,
                            '%s.%s' % (device_id, action))
        with self._locked():
            try:
                with open(path) as f:
                    count = int(f.read() or 0)
            except FileNotFoundError:
                count = 0
            count += 1
            with open(path, 'w') as f:
                f.write(str(count))
        return count

    def _inject(self, context, device, action):
        spec = self._spec(device, action)
        if not spec:
            return spec
        times = spec.get('times')
        if times is not None and self._count(device['id'], action) > times:
            return {}
        if spec.get('sleep'):
            self.sleep(context, float(spec['sleep']))
        if spec.get('hang'):
            while True:
                self.sleep(context, 3600)
        if spec.get('fail'):
            raise exceptions.DriverError(driver='fault', action=action,
                                         reason=str(spec['fail']))
        return spec

    # ---- the contract --------------------------------------------------

    @base.counted('create')
    def create(self, context, device, new=False):
        spec = self._inject(context, device, 'create')
        with self._locked():
            existing = None if new else self._find(device['id'])
            if existing is not None:
                return existing['instance_id']
            instance = {'instance_id': 'fault-' + uuidutils.generate_uuid(),
                        'device_id': device['id'],
                        'operation_id': getattr(context, 'operation_id',
                                                None)}
            self._write(device['id'], instance)
            self._journal(dict(instance, event='create', new=new))
        if spec.get('sleep_after'):
            self.sleep(context, float(spec['sleep_after']))
        return instance['instance_id']

    @base.counted('poll')
    def poll(self, context, devices):
        result = {}
        for device in devices:
            spec = self._inject(context, device, 'poll')
            instance = self._find(device['id'])
            if instance is None:
                result[device['id']] = base.PollResult(state='gone')
            elif instance.get('deleting'):
                result[device['id']] = base.PollResult(
                    state='building', deleting=True)
            elif spec.get('state') == 'error' or instance.get('error'):
                result[device['id']] = base.PollResult(
                    state='error', error=instance.get('error') or spec.get(
                        'error', 'fault'))
            else:
                address = (device.get('kwargs') or {}).get('mgmt_address')
                off = instance.get('power') == 'off'
                result[device['id']] = base.PollResult(
                    state='stopped' if off else 'active',
                    power_state=(states.POWER_SHUTOFF if off
                                 else states.POWER_RUNNING),
                    mgmt_address=address,
                    addresses=(device.get('kwargs') or {}).get(
                        'addresses') or {},
                    details={'instance_ids': [
                        '%s-%d' % (instance['instance_id'], n)
                        for n in range(instance.get('members', 1))]})
        return result

    @base.counted('action')
    def action(self, context, device, action, params):
        self._inject(context, device, action)
        with self._locked():
            instance = self._find(device['id'])
            if instance is None:
                raise exceptions.DriverError(
                    driver='fault', action=action,
                    reason='no instance for device %s' % device['id'])
            if action == 'scale':
                # A group of members, as a Heat scaling group has.
                instance['members'] = int(params['count'])
            else:
                instance['power'] = 'off' if action == 'shutdown' else 'on'
                # A VM in error (``error`` in its file) is fixed by a
                # restart.
                instance.pop('error', None)
            self._write(device['id'], instance)
            self._journal(dict(instance, event=action))
        return '%s of %s done' % (action, instance['instance_id'])

    @base.counted('delete')
    def delete(self, context, device):
        spec = self._inject(context, device, 'delete')
        with self._locked():
            instance = self._find(device['id'])
            if instance is None:
                return
            if spec.get('keep'):
                instance['deleting'] = True
                self._write(device['id'], instance)
                return
            os.unlink(self._instance_path(device['id']))
            self._journal(dict(instance, event='delete'))

    @base.counted('update')
    def update(self, context, device):
        self._inject(context, device, 'update')
