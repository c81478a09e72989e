"""What one run of an operation holds: its handle (how the conductor
stops it) and its ``Work`` (what its steps share: the device, the
template, the drivers, and what the steps found)."""

import contextlib
import threading

from oslo_log import log as logging

from servicevm.common import exceptions
from servicevm.common import secrets
from servicevm.drivers import loader

LOG = logging.getLogger(__name__)


class Handle:
    """One operation this conductor is running."""

    def __init__(self, operation_id):
        self.operation_id = operation_id
        self.mode = None
        self.interrupt = threading.Event()
        self.reason = None
        # Set when asked to run the operation while this run ends.
        self.again = False

    def stop(self, reason):
        self.reason = reason
        self.interrupt.set()


class Work:
    """What the steps of one run of an operation share."""

    def __init__(self, runner, ctx, operation, device, template, driver):
        self.runner = runner
        self.conf = runner.conf
        self.ctx = ctx
        self.operation = operation
        self.device = device
        self.template = template
        self.driver = driver
        self.final_values = None
        # What forward steps found, recorded with their end.
        self.notes = {}
        # Steps on their first try (no earlier try, no dead run).
        self.first_tries = set()
        # Lifecycle scripts this run ran (their check: a script's effect
        # cannot be seen from here, so a resumed one runs again).
        self.scripts_ran = set()
        self._mgmt = None
        self._services = None
        self._addresses = None

    def addresses(self, ctx):
        """The VM's addresses by network, from one poll per run."""
        if self._addresses is None:
            self._addresses = {}
            if self.device.get('instance_id'):
                self._addresses = self.poll(ctx).addresses or {}
        return self._addresses

    def service_change(self):
        """bind or unbind (a configure operation), else None."""
        params = self.operation.params or {}
        return params.get('change') if params.get('services') else None

    def _bound(self):
        if self._services is None:
            self._services = self.runner.dbapi.device_services(
                self.ctx, self.device['id'])
        return self._services

    def changing_services(self):
        """The service instances (dicts, secrets revealed) this operation
        binds to the device or takes off it."""
        ids = (self.operation.params or {}).get('services') or ()
        bound = {s['id']: s for s, _ in self._bound()}
        return [bound[i] for i in ids if i in bound]

    def hosted_services(self):
        """The service instances the device hosts once this operation is
        done: every one bound to it, less those being taken off."""
        leaving = set((self.operation.params or {}).get('services') or ())
        if self.service_change() != 'unbind':
            leaving = set()
        return [s for s, status in self._bound()
                if status != 'REMOVING' and s['id'] not in leaving]

    def scrub(self, text):
        """``text`` (a step's output or error, a device's configuration)
        with the secrets this run knows masked: those of the template's
        attributes, the device's kwargs and the service instances loaded
        (no query of its own)."""
        if not text:
            return text
        values = [self.template.get('attributes'), self.device.get('kwargs')]
        values += [s.get('kwargs') for s, _ in self._services or ()]
        return secrets.scrub(text, secrets.secret_values(values))

    def mgmt(self):
        """The template's management driver."""
        if self._mgmt is None:
            self._mgmt = loader.get_mgmt_driver(
                self.conf, self.template['mgmt_driver'])
        return self._mgmt

    def close(self):
        """The run ends: the management driver lets go of what it kept
        for this operation (an ssh connection)."""
        if self._mgmt is not None:
            try:
                self._mgmt.close(self.ctx, self.device)
            except Exception as e:
                LOG.warning('Closing the management session of device %s '
                            'failed: %s', self.device['id'], e)

    def call(self, method, ctx, *args, bounded=True, **kwargs):
        """A driver call, retried with backoff on transient errors, within
        the driver's limit of parallel calls (unless not ``bounded``). A
        retry is never ``new`` (the failed try may have made something)."""
        conf = self.conf.conductor
        delay = conf.driver_retry_backoff
        slots = (self.runner.driver_slots(self.template['device_driver'])
                 if bounded else contextlib.nullcontext())
        for attempt in range(conf.driver_call_retries + 1):
            try:
                with slots:
                    return getattr(self.driver, method)(ctx, *args, **kwargs)
            except exceptions.Interrupted:
                raise
            except Exception as e:
                retryable = getattr(e, 'retryable',
                                    not isinstance(
                                        e, exceptions.ServiceVMException))
                if not retryable or attempt >= conf.driver_call_retries:
                    raise
                if 'new' in kwargs:
                    kwargs['new'] = False
                LOG.warning('%s of device %s failed (%s); retrying in %.1fs',
                            method, self.device['id'], e, delay)
                self.driver.sleep(ctx, delay)
                delay *= 2

    def poll(self, ctx):
        # Not bounded: a batched poll waits for its driver's next cycle,
        # and must not keep the creates and deletes from their slots.
        return self.call('poll', ctx, [self.device],
                         bounded=False)[self.device['id']]

    def note(self, **values):
        """Record on the device what a step did, with the step's end
        (a step that dies before its end is re-run, and the driver finds
        what the dead run made)."""
        self.device.update(values)
        self.notes.update(values)

    def take_notes(self):
        notes, self.notes = self.notes, {}
        return notes

    def record(self, **values):
        """Record on the device what a step did, now."""
        self.device.update(values)
        if not self.runner.dbapi.device_update_held(
                self.ctx, self.device['id'], self.operation.id, values,
                self.runner.host):
            raise exceptions.Interrupted(reason='the operation is no longer '
                                                'this conductor\'s')

    def alarm(self, event_type, message):
        """An event that needs a person (result ``alarm``)."""
        self.runner.raise_alarm(self.ctx, self.operation, event_type,
                                message)

    def restore_kwargs(self, kwargs):
        self.runner.dbapi.device_set_kwargs(self.ctx, self.device['id'],
                                            kwargs)
