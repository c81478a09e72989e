"""A conductor's background duties for the operations it runs.

One thread, three duties, each on its own period:

- watch (every ``watch_interval``): one query reads the state of every
  operation this conductor runs; a run whose operation was cancelled or
  rolled back by its user, or whose lease another conductor took, is
  interrupted (a step waiting on the VIM stops at once);
- heartbeat (every third of the lease): renew the leases;
- recovery (every sixth of ``takeover_time``, and at start): find
  runnable operations nobody works on (their holder died, or the cast
  that announced them was lost) and run them.
"""

import threading
import time

import futurist
from oslo_log import log as logging

from servicevm.common import context as svm_context
from servicevm.common import states

LOG = logging.getLogger(__name__)


class Supervisor:

    def __init__(self, conf, runner):
        self.conf = conf
        self.runner = runner
        self.dbapi = runner.dbapi
        self._stop = threading.Event()
        self._thread = None
        self._executor = futurist.ThreadPoolExecutor(
            max_workers=conf.conductor.workers)

    @property
    def recovery_interval(self):
        return self.conf.conductor.takeover_time / 6

    def start(self):
        self._thread = threading.Thread(target=self._loop,
                                        name='servicevm-supervisor',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._executor.shutdown(wait=False)

    def wait(self):
        """Wait for the runs the recovery started to end."""
        self._executor.shutdown(wait=True)

    def _loop(self):
        ctx = svm_context.get_admin_context()
        next_beat = next_recovery = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self.watch(ctx)
                if now >= next_beat:
                    self.heartbeat(ctx)
                    next_beat = now + self.runner.lease_seconds / 3
                if now >= next_recovery:
                    self.recover(ctx)
                    next_recovery = now + self.recovery_interval
            except Exception:
                # The database may be down for a while: keep trying.
                LOG.exception('Conductor supervisor pass failed')
            self._stop.wait(self.conf.conductor.watch_interval)

    def _handles(self):
        with self.runner._lock:
            return dict(self.runner.active)

    def watch(self, ctx):
        handles = {i: h for i, h in self._handles().items() if h.mode}
        if not handles:
            return
        found = self.dbapi.operation_states(ctx, handles)
        for operation_id, handle in handles.items():
            state, owner = found.get(operation_id, (None, None))
            if owner != self.runner.host:
                handle.stop('conductor %s lost the lease of operation %s'
                            % (self.runner.host, operation_id))
            elif state != handle.mode and not (
                    handle.mode == states.OP_PROCESSING and
                    state == states.OP_PAUSED):
                # Pause waits for the running step to end; the rest stop
                # it now.
                handle.stop('operation %s is now %s' % (operation_id,
                                                        state))

    def heartbeat(self, ctx):
        handles = {i: h for i, h in self._handles().items() if h.mode}
        if not handles:
            return
        held = self.dbapi.operation_renew_leases(
            ctx, self.runner.host, handles, self.runner.lease_seconds)
        for operation_id in set(handles) - held:
            handles[operation_id].stop('lease lost')

    def recover(self, ctx):
        active = self._handles()
        orphans = self.dbapi.operation_find_orphans(
            ctx, self.runner.host, unclaimed_for=self.recovery_interval,
            limit=self.conf.conductor.workers * 4)
        for operation_id in orphans:
            if operation_id in active:
                continue
            LOG.info('Conductor %s takes up operation %s', self.runner.host,
                     operation_id)
            try:
                self._executor.submit(self.runner.run, ctx, operation_id,
                                      reclaim_own=True)
            except futurist.RejectedSubmission:
                break
