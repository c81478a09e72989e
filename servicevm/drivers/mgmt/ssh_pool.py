"""Kept ssh connections and session slots of the ssh management driver."""

import contextlib
import threading
import time

from oslo_log import log as logging

from servicevm.common import exceptions
from servicevm.drivers.mgmt.ssh_util import _StaleConnection
from servicevm.drivers.mgmt.ssh_util import MAX_CHANNELS_PER_CONNECTION


LOG = logging.getLogger(__name__)


class _Connection:
    """A cached client, shared by the calls of one (device, operation)."""

    def __init__(self, key, ident):
        self.key = key
        self.ident = ident
        self.client = None
        self.ready = threading.Event()
        self.users = 0
        self.last_used = time.monotonic()
        self.retired = False

    def alive(self):
        transport = self.client and self.client.get_transport()
        return bool(transport and transport.is_active())


class ConnectionPool:
    """The kept connections of the ssh driver (a mixin of SshMgmtDriver):
    one per (device, operation), shared by its calls, closed once idle
    for ``ssh_idle_timeout``, and the ``ssh_max_sessions`` slots."""

    @contextlib.contextmanager
    def _session(self, context):
        """One of the ``ssh_max_sessions`` slots, waited for
        interruptibly."""
        interrupt = getattr(context, 'interrupt', None)
        while not self._slots.acquire(timeout=0.2):
            if interrupt is not None and interrupt.is_set():
                raise exceptions.Interrupted(reason=getattr(
                    context, 'interrupt_reason', 'the operation was stopped'))
        with self._lock:
            self.active_sessions += 1
            self.peak_sessions = max(self.peak_sessions,
                                     self.active_sessions)
        try:
            yield
        finally:
            with self._lock:
                self.active_sessions -= 1
            self._slots.release()

    def _acquire(self, context, device, auth, target, action, retries):
        """(a connection entry in use by this call, whether it was
        reused)."""
        self._reap()
        key = (device.get('id'), getattr(context, 'operation_id', None))
        ident = self._ident(auth, target)
        interrupt = getattr(context, 'interrupt', None)
        while True:
            stale = None
            with self._lock:
                entry = self._cache.get(key)
                if entry is not None and entry.ready.is_set() and (
                        entry.ident != ident or not entry.alive()):
                    self._cache.pop(key)
                    entry.retired = True
                    stale = entry if entry.users == 0 else None
                    entry = None
                if entry is None:
                    entry = _Connection(key, ident)
                    entry.users = 1
                    self._cache[key] = entry
                    break
                if entry.ready.is_set():
                    if entry.users < MAX_CHANNELS_PER_CONNECTION:
                        entry.users += 1
                        entry.last_used = time.monotonic()
                        return entry, True
                    # Busy: a connection of this call's own.
                    entry = _Connection(key, ident)
                    entry.users = 1
                    entry.retired = True
                    break
            # Another call is connecting to it: wait for that.
            while not entry.ready.wait(0.2):
                if interrupt is not None and interrupt.is_set():
                    raise exceptions.Interrupted(reason=getattr(
                        context, 'interrupt_reason',
                        'the operation was stopped'))
        if stale:
            self._close_client(stale)
        try:
            entry.client = self._connect(context, device, auth, target,
                                         action, retries)
        except BaseException:
            with self._lock:
                if self._cache.get(key) is entry:
                    self._cache.pop(key)
                entry.retired = True
                entry.ready.set()
            raise
        with self._lock:
            entry.last_used = time.monotonic()
            entry.ready.set()
        self._start_reaper()
        return entry, False

    def _on_connection(self, context, device, auth, target, action,
                       retries, work):
        """``work(entry)`` on the connection kept for ``device`` in the
        operation of ``context``, within a session slot; when a kept
        connection turns out broken (_StaleConnection), once more on a
        new one."""
        for attempt in (1, 2):
            entry, reused = self._acquire(context, device, auth, target,
                                          action, retries)
            broken = False
            try:
                with self._session(context):
                    return work(entry)
            except _StaleConnection as e:
                broken = True
                if not reused or attempt == 2:
                    raise exceptions.DriverTransientError(
                        driver=self.driver_name, action=action,
                        reason='the %s connection to %s broke: %s' % (
                            self.driver_name, self._where(target), e)
                    ) from None
                LOG.info('%s: the kept connection to device %s (%s) is '
                         'gone (%s); connecting again', self.driver_name,
                         device.get('id'), self._where(target), e)
            except exceptions.DriverTransientError:
                broken = True
                raise
            finally:
                self._release(entry, broken)

    def _release(self, entry, broken=False):
        with self._lock:
            entry.users -= 1
            entry.last_used = time.monotonic()
            if broken or self.options.ssh_idle_timeout <= 0:
                if self._cache.get(entry.key) is entry:
                    self._cache.pop(entry.key)
                entry.retired = True
            close = entry.retired and entry.users == 0
        if close:
            self._close_client(entry)

    def _reap(self):
        """Close the kept connections idle for ssh_idle_timeout."""
        now = time.monotonic()
        idle = self.options.ssh_idle_timeout
        with self._lock:
            expired = [e for e in self._cache.values()
                       if e.ready.is_set() and e.users == 0
                       and (now - e.last_used >= idle or not e.alive())]
            for entry in expired:
                self._cache.pop(entry.key)
                entry.retired = True
            left = len(self._cache)
        for entry in expired:
            LOG.debug('ssh: closing the idle connection of device %s '
                      '(operation %s)', *entry.key)
            self._close_client(entry)
        return left

    def _start_reaper(self):
        with self._lock:
            if self._reaper is not None and self._reaper.is_alive():
                return
            self._reaper_stop.clear()
            self._reaper = threading.Thread(
                target=self._reap_loop, name='ssh-mgmt-reaper', daemon=True)
            self._reaper.start()

    def _reap_loop(self):
        interval = min(max(self.options.ssh_idle_timeout / 2, 0.5), 15)
        while not self._reaper_stop.wait(interval):
            if not self._reap():
                with self._lock:
                    if not self._cache:
                        self._reaper = None
                        return

    @staticmethod
    def _close_client(entry):
        if entry.client is not None:
            try:
                entry.client.close()
            except Exception:  # closing is best effort
                pass
