"""The health watch: every ``[conductor] sync_interval``, each conductor
polls the ACTIVE devices it watches and records what the VIM shows.

The devices are shared among the live conductors (each renews its row in
``conductors`` at every pass; a conductor not seen for ``takeover_time``
is dead, and its devices go to the others at their next pass). The
devices of one driver are polled together: the driver batches them (the
Nova driver asks one ``servers/detail`` per cloud and project, however
many devices). A device whose VM is gone or in error becomes DEAD with
the reason, an event (result ``error``) and a ``servicevm.device.dead``
notification; the others get their power state, usage counters and
``last_seen``. Devices an operation holds are left to it. A dead device
is then healed or only reported, as its template's ``health_policy``
says, unless too many died at once (the brake). Devices whose template
has a ``monitor`` are also probed through the management plane (see
``monitor``); those the probes find dead are reacted to at the next pass.
"""

import collections
import datetime
import threading
import time

from oslo_log import log as logging
from oslo_utils import timeutils

from servicevm.common import context as svm_context
from servicevm.common import notify
from servicevm.conductor import monitor as svm_monitor
from servicevm.drivers import loader
from servicevm.drivers.device import base as driver_base

LOG = logging.getLogger(__name__)


class HealthWatch:

    def __init__(self, conf, runner):
        self.conf = conf
        self.runner = runner
        self.dbapi = runner.dbapi
        self._stop = threading.Event()
        self._thread = None
        #: Passes made, and polls sent per driver (tests, metrics).
        self.passes = 0
        self.polls = collections.Counter()
        self.monitor = svm_monitor.Monitor(conf, self)

    def start(self):
        if not self.conf.conductor.sync_interval:
            return
        self._thread = threading.Thread(target=self._loop,
                                        name='servicevm-health',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self.monitor.stop()
            try:
                self.dbapi.conductor_gone(svm_context.get_admin_context(),
                                          self.runner.host)
            except Exception as e:  # the others see it dead in time
                LOG.warning('Could not deregister conductor %s: %s',
                            self.runner.host, e)

    def _loop(self):
        ctx = svm_context.get_admin_context()
        next_pass = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_pass:
                try:
                    self.sync(ctx)
                except Exception:
                    # The database or a VIM may be down for a while.
                    LOG.exception('Health watch pass failed')
                next_pass = (time.monotonic() +
                             self.conf.conductor.sync_interval)
            try:
                self.monitor.tick()
            except Exception:
                LOG.exception('Liveness monitor tick failed')
            self._stop.wait(max(0.0, min(
                0.5, next_pass - time.monotonic())))

    def sync(self, ctx):
        """One pass: poll the devices this conductor watches, then react
        to those found dead."""
        hosts = self.dbapi.conductor_alive(
            ctx, self.runner.host, self.conf.conductor.takeover_time,
            vim_calls=driver_base.vim_calls())
        by_driver = collections.defaultdict(list)
        dead, watched = self.monitor.take_dead(), 0
        self._seen, self._changes, self._stopped = [], {}, []
        self._active = []
        for device in self.dbapi.devices_to_watch(ctx, self.runner.host,
                                                  hosts):
            template = self.runner._template(
                None, (device['template_id'], None))
            device['template'] = template
            by_driver[template['device_driver']].append(device)
        for name, devices in by_driver.items():
            if self._stop.is_set():
                return
            try:
                driver = loader.get_device_driver(self.conf, name)
                self.polls[name] += 1
                results = driver.sync(ctx, devices)
            except Exception as e:
                LOG.warning('Health watch: polling %d %s device(s) failed: '
                            '%s', len(devices), name, e)
                continue
            watched += len(devices)
            for device in devices:
                result = results.get(device['id'])
                if result is not None and self._record(ctx, device, result):
                    dead.append(device)
        if self._seen:
            self.dbapi.devices_seen(ctx, self._seen, self._changes)
        self.monitor.update(self._active)
        if dead:
            self._react(ctx, dead, watched)
        for device in self._stopped:
            self._restart(ctx, device)
        self.passes += 1

    def _react(self, ctx, dead, watched):
        """Each dead device's template says what to do
        (``attributes.health_policy``): ``respawn`` (a heal operation
        makes it a new VM, runs its scripts and applies its services
        again), ``heal`` (the same, unless a reboot tried first brings it
        back) or ``alarm-only`` (the default). Too many at once trip the
        brake: an alarm, and nothing healed."""
        options = self.conf.conductor
        if (len(dead) >= options.health_brake_min and
                len(dead) > options.health_brake_ratio * watched):
            self.runner.raise_alarm(ctx, _Brake(self.runner.host, dead[0]),
                                    'health.brake', (
                '%d of the %d devices conductor %s watches died at once '
                '(%s): more likely a partition than dead VMs, so none is '
                'healed; heal them by hand once the cause is known' % (
                    len(dead), watched, self.runner.host, ', '.join(
                        d['id'] for d in dead))))
            return
        for device in dead:
            policy = self._policy(device)
            if policy not in ('respawn', 'heal'):
                self.runner.raise_alarm(
                    ctx, _Brake(device['id'], device), 'device.dead',
                    'device %s is DEAD (%s); its template\'s health_policy '
                    'is %s: delete it, or heal it by hand (the device '
                    'action heal or respawn)' % (
                        device['id'], device.get('status_reason'), policy))
                continue
            if self._exhausted(ctx, device):
                continue
            try:
                _, operation, _ = self.dbapi.device_start_operation(
                    ctx, device['id'], 'heal', params=dict(
                        {'policy': policy},
                        **({'services': device['services'],
                            'change': 'reapply'}
                           if device.get('services') else {})))
            except Exception as e:
                # Taken by another request meanwhile.
                LOG.info('Device %s not respawned: %s', device['id'], e)
                continue
            LOG.warning('Healing dead device %s by %s (operation %s)',
                        device['id'], 'a reboot, else a respawn'
                        if policy == 'heal' else 'a respawn', operation.id)
            self.runner.rpcapi.run_operation(ctx, operation.id)

    def _exhausted(self, ctx, device):
        """Healed heal_max times within heal_window already (by the
        watch; heals asked by hand do not count): an alarm,
        and the device left DEAD (it keeps dying; a person must look)."""
        options = self.conf.conductor
        since = timeutils.utcnow() - datetime.timedelta(
            seconds=options.heal_window)
        heals = self.dbapi.heals_since(ctx, device['id'], since)
        if heals < options.heal_max:
            return False
        self.runner.raise_alarm(
            ctx, _Brake(device['id'], device), 'device.heal.exhausted',
            'device %s is DEAD again (%s) after %d heals within %d s: not '
            'healed again; find the cause, then heal it by hand (the device '
            'action heal or respawn) or delete it' % (
                device['id'], device.get('status_reason'), heals,
                options.heal_window))
        return True

    def _policy(self, device):
        attrs = device['template'].get('attributes') or {}
        return attrs.get('health_policy') or 'alarm-only'

    def _restart(self, ctx, device):
        """A VM stopped behind servicevm's back: with a ``respawn`` or
        ``heal`` policy, a ``start`` action (its START scripts run, its
        services' configuration is applied again); otherwise an alarm."""
        driver = loader.get_device_driver(
            self.conf, device['template']['device_driver'])
        if (self._policy(device) not in ('respawn', 'heal') or
                'start' not in driver.supported_actions):
            self.runner.raise_alarm(
                ctx, _Brake(device['id'], device), 'device.stopped',
                'the VM of device %s was stopped behind servicevm\'s back; '
                'start it with the start action' % device['id'])
            return
        params = {'action': 'start', 'params': {}}
        if device.get('services'):
            params.update(services=device['services'], change='reapply')
        try:
            _, operation, _ = self.dbapi.device_start_operation(
                ctx, device['id'], 'action', params=params)
        except Exception as e:
            LOG.info('Device %s not restarted: %s', device['id'], e)
            return
        LOG.warning('Starting device %s, stopped behind servicevm\'s back '
                    '(operation %s)', device['id'], operation.id)
        self.runner.rpcapi.run_operation(ctx, operation.id)

    def _event(self, device, event_type, result, message):
        return {'resource_type': 'device', 'resource_id': device['id'],
                'project_id': device['project_id'],
                'event_type': event_type, 'result': result,
                'message': message,
                'details': {'conductor': self.runner.host}}

    def event(self, ctx, device, event_type, result, message):
        """Record an event of ``device`` (a monitor's result)."""
        self.dbapi.event_create(ctx, **self._event(device, event_type,
                                                   result, message))

    def mark_dead(self, ctx, device, reason):
        """An idle ACTIVE device is DEAD for ``reason``: its status, an
        event and a notification; False when an operation took it
        meanwhile."""
        event = self._event(device, 'device.dead', 'error', reason)
        if not self.dbapi.device_dead(ctx, device['id'], reason, event):
            return False
        LOG.warning('Device %s is DEAD: %s', device['id'], reason)
        device.update(status='DEAD', status_reason=reason)
        notify.notify(self.conf, ctx, self.runner.publisher,
                      'device.dead', 'device', device, error=True)
        return True

    def reinitialised(self, ctx, device, message):
        """A device answers but lost its configuration: the
        configuration of its service instances is applied again (a
        configure operation, as the reconfigure action makes)."""
        services = device.get('services') or []
        LOG.warning('Device %s was re-initialised: %s', device['id'],
                    message)
        self.event(ctx, device, 'device.reinitialised', 'error', message + (
            '; applying the configuration of its %d service instance(s) '
            'again' % len(services) if services else
            '; it hosts no service instance, so there is nothing to apply '
            'again'))
        if not services:
            return None
        try:
            _, operation, _ = self.dbapi.device_start_operation(
                ctx, device['id'], 'configure',
                params={'services': services, 'change': 'reapply'})
        except Exception as e:
            LOG.info('Device %s not reconfigured: %s', device['id'], e)
            return None
        self.runner.rpcapi.run_operation(ctx, operation.id)
        return operation.id

    def _record(self, ctx, device, result):
        if result.state in ('gone', 'error'):
            reason = ('the VM is gone from the VIM' if result.state == 'gone'
                      else 'the VIM reports the VM in error: %s'
                      % (result.error or 'no reason'))
            return self.mark_dead(ctx, device, reason)
        if result.deleting:
            return False
        if result.state == 'active':
            if result.mgmt_address and not device.get('mgmt_address'):
                device['mgmt_address'] = result.mgmt_address
            self._active.append(device)
        if (result.state == 'stopped' and
                device.get('power_state') == 'running'):
            # Stopped behind servicevm's back (a shutdown action records
            # the power state it leaves).
            self._stopped.append(device)
        # Recorded together at the end of the pass: last_seen of all in
        # one statement, and what changed.
        self._seen.append(device['id'])
        values = {}
        if result.power_state != device.get('power_state'):
            values['power_state'] = result.power_state
        if result.usage and result.usage != device.get('usage'):
            values['usage'] = result.usage
        if values:
            self._changes[device['id']] = values
        return False


class _Brake:
    """What an alarm of the watch is about, in the shape of an
    operation (no operation is involved)."""

    def __init__(self, resource_id, device):
        self.resource_type = 'device' if resource_id == device['id'] \
            else 'conductor'
        self.resource_id = resource_id[:36]
        self.project_id = device['project_id']
        self.id = None
