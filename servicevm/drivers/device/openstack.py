"""What the Nova and Heat drivers share: keystoneauth sessions by
credentials, retried and bounded VIM calls, and batched polling.

Credentials: a device carries the id of the Keystone trust its user gave
servicevm (``trust_id``, made by the API when the request had a Keystone
token). With ``[vim] credentials = trust`` the driver authenticates as
``[trustee]`` with that trust, so it acts in the user's project; without a
trust, or with ``credentials = service``, it uses its own group's
credentials (``[nova]`` or ``[heat]``).

Batched polling: every device a conductor waits on is polled by one
background thread per driver and credentials, with one list query per
cycle, however many devices are waited on.
"""

import contextlib
import threading
import time

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_log import log as logging
import requests

from servicevm.common import exceptions
from servicevm.drivers.device import base

LOG = logging.getLogger(__name__)

# HTTP statuses worth a retry: the VIM is busy or briefly broken.
RETRY_STATUSES = (409, 429, 500, 502, 503, 504)


def http_status(error):
    """The HTTP status of a client library's error, or None."""
    for name in ('http_status', 'code', 'status_code'):
        value = getattr(error, name, None)
        if isinstance(value, int):
            return value
    response = getattr(error, 'response', None)
    return getattr(response, 'status_code', None)


def _pooled(calls):
    """A requests session that keeps a connection for each of ``calls``
    parallel calls (requests keeps 10 per host: more parallel calls than
    that each opened a connection of their own and threw it away)."""
    http = requests.Session()
    for scheme in ('http://', 'https://'):
        http.mount(scheme, ks_session.TCPKeepAliveAdapter(
            pool_maxsize=max(10, calls + 2)))
    return http


class Credentials:
    """keystoneauth sessions, by trust id (None: the service's own)."""

    def __init__(self, conf, group):
        self.conf = conf
        self.group = group
        self._sessions = {}
        self._lock = threading.Lock()

    def key(self, device):
        trust_id = device.get('trust_id')
        if trust_id and self.conf.vim.credentials == 'trust':
            return trust_id
        return None

    def session(self, key):
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if key is None:
                    auth = ks_loading.load_auth_from_conf_options(
                        self.conf, self.group)
                else:
                    auth = ks_loading.load_auth_from_conf_options(
                        self.conf, 'trustee', trust_id=key)
                if auth is None:
                    raise exceptions.DriverError(
                        driver=self.group, action='authenticate',
                        reason='no credentials: set auth_type and its '
                               'options in [%s]' % (
                                   'trustee' if key else self.group))
                session = ks_loading.load_session_from_conf_options(
                    self.conf, self.group, auth=auth,
                    session=_pooled(getattr(
                        self.conf, self.group).max_parallel_calls))
                if len(self._sessions) > 500:
                    self._sessions.clear()
                self._sessions[key] = session
            return session

    def adapter_kwargs(self):
        """region, interface and endpoint of the group, for clients."""
        group = getattr(self.conf, self.group)
        interfaces = group.valid_interfaces or ['public']
        return {'region_name': group.region_name,
                'interface': interfaces[0],
                'endpoint_override': group.endpoint_override,
                'service_type': group.service_type}


class OpenStackDriver(base.DeviceDriver):
    """Base of the drivers that talk to an OpenStack cloud."""

    group = None
    poll_waits = True

    def __init__(self, conf):
        super().__init__(conf)
        self.credentials = Credentials(conf, self.group)
        self.options = getattr(conf, self.group)
        self._slots = threading.BoundedSemaphore(
            self.options.max_parallel_calls)
        self._pollers = {}
        self._lock = threading.Lock()
        # device id -> when a call that changes it last returned: a poll
        # query started before then may show the device as it was.
        self._changed = {}
        #: VIM calls made, by name (for logs and benchmarks).
        self.calls = {}

    # ---- calls -----------------------------------------------------------

    def vim_call(self, context, what, fn, *args, **kwargs):
        """``fn(*args, **kwargs)``, within the limit of parallel calls,
        retried with backoff when the failure may pass. Errors come out
        as DriverError with the VIM's message (not retried again by the
        conductor). The batched poll's query (``context`` None) is not
        held back by the limit: it is one per cycle, and every waiting
        operation depends on it."""
        delay = self.options.retry_backoff
        for attempt in range(self.options.call_retries + 1):
            try:
                with (self._slots if context is not None
                      else contextlib.nullcontext()):
                    with self._lock:
                        self.calls[what] = self.calls.get(what, 0) + 1
                    result = fn(*args, **kwargs)
                base.count_vim_call(self.group, what, True)
                return result
            except exceptions.ServiceVMException:
                raise
            except Exception as e:
                base.count_vim_call(self.group, what, False)
                status = http_status(e)
                transient = (status in RETRY_STATUSES or isinstance(
                    e, (ks_exc.ConnectFailure, ks_exc.ConnectTimeout,
                        ks_exc.RetriableConnectionFailure)))
                if not transient or attempt >= self.options.call_retries:
                    raise exceptions.DriverError(
                        driver=self.group, action=what,
                        reason=self.vim_message(e)) from e
                LOG.warning('%s: %s failed (%s); retrying in %.1fs',
                            self.group, what, self.vim_message(e), delay)
                self.sleep(context, delay)
                delay *= 2

    @staticmethod
    def vim_message(error):
        message = getattr(error, 'message', None) or str(error)
        status = http_status(error)
        return '%s (HTTP %s)' % (message, status) if status else message

    def changed(self, device_id):
        """Note that a call changing ``device_id`` just returned."""
        now = time.monotonic()
        with self._lock:
            self._changed[device_id] = now
            if len(self._changed) > 10000:
                for key, when in list(self._changed.items()):
                    if now - when > 600:
                        del self._changed[key]

    def changed_at(self, device_id):
        with self._lock:
            return self._changed.get(device_id, 0.0)

    # ---- batched polling -------------------------------------------------

    def poll_scope(self, device):
        """What one batched query covers: a project (any of its users'
        trusts sees all its servers), or the service's own credentials."""
        if self.credentials.key(device) is None:
            return None
        return 'project:%s' % device.get('project_id')

    def poll(self, context, devices):
        by_key = {}
        for device in devices:
            by_key.setdefault(self.poll_scope(device), []).append(device)
        result = {}
        for key, group in by_key.items():
            result.update(self._poller(key).wait(context, group, self))
        return result

    def sync(self, context, devices):
        """One query per poll scope, now, and a full one: a server
        deleted behind servicevm's back loses its tags, so only a full
        list shows it gone."""
        by_key = {}
        for device in devices:
            by_key.setdefault(self.poll_scope(device), []).append(device)
        result = {}
        for group in by_key.values():
            result.update(self.poll_batch(self.credentials.key(group[0]),
                                          group, fresh=True))
        return result

    def push(self, device_id, answer):
        """What a notification told of ``device_id``, to the polls
        waiting on it (see BatchPoller.push); whether one did."""
        with self._lock:
            pollers = list(self._pollers.values())
        return any([p.push(device_id, answer) for p in pollers])

    def _poller(self, key):
        with self._lock:
            poller = self._pollers.get(key)
            if poller is None:
                poller = self._pollers[key] = BatchPoller(
                    self, key, self.options.poll_interval)
            return poller

    def poll_batch(self, key, devices, fresh=False):
        """{device id: PollResult} for ``devices`` (all of one poll scope;
        ``key``: the credentials to use) with one VIM query (``fresh``:
        a full one, never from what was seen lately)."""
        raise NotImplementedError()


class BatchPoller:
    """One thread that polls, each cycle with one query, every device
    some operation is waiting on; waiters get the next cycle's answer."""

    def __init__(self, driver, key, interval):
        self.driver = driver
        self.key = key
        self.interval = interval
        self._cond = threading.Condition()
        self._waiting = {}       # device id -> (device, count of waiters)
        self._results = {}       # device id -> PollResult of last cycle
        self._errors = {}        # device id -> error of last cycle
        self._cycle = 0
        self._polling = False    # a cycle's query is under way
        self._in_flight = set()  # device ids that query covers
        self._started = 0.0      # when that query started
        # Devices whose waiter just left (to poll again a moment later):
        # kept in the next query. device id -> (device, until).
        self._recent = {}
        self._thread = None
        # What notifications said of the devices polled lately: device id
        # -> (PollResult, its number among the pushes, when it came). A
        # query that starts later drops it (it knows as much, or more).
        self._pushed = {}
        self._pushes = 0
        # device id -> the number of the last push a waiter took: each
        # push answers one wait (the next one waits for news).
        self._taken = {}

    def push(self, device_id, answer):
        """A notification told how a device is: ``answer(device)`` is
        its PollResult (None: not about the device's VM). Kept for the
        device if this poller polled it lately: its waiters take it
        without waiting for the next cycle, as does the next waiter if
        none waits now (the news may come between two polls of an
        operation). Returns whether it was kept."""
        with self._cond:
            entry = (self._waiting.get(device_id) or
                     self._recent.get(device_id))
        if entry is None:
            return False
        heard_at = time.monotonic()
        result = answer(entry[0])
        if result is None:
            return False
        with self._cond:
            self._pushes += 1
            self._pushed[device_id] = (result, self._pushes, heard_at)
            self._cond.notify_all()
        return True

    def _take_pushed(self, devices):
        """The pushed answers for all ``devices`` that no waiter took
        yet and that came after the last change asked of the device
        (marked taken), else None."""
        found = {}
        for device in devices:
            result, n, heard_at = self._pushed.get(device['id'],
                                                   (None, 0, 0))
            if n <= self._taken.get(device['id'], 0) or (
                    heard_at < self.driver.changed_at(device['id'])):
                return None
            found[device['id']] = (result, n)
        for device_id, (_, n) in found.items():
            self._taken[device_id] = n
        return {k: result for k, (result, _) in found.items()}

    def wait(self, context, devices, driver):
        with self._cond:
            for device in devices:
                _, n = self._waiting.get(device['id'], (device, 0))
                self._waiting[device['id']] = (device, n + 1)
            # A query under way that does not cover these devices, or
            # started before a change to one of them: the next answers.
            covered = all(d['id'] in self._in_flight and
                          driver.changed_at(d['id']) < self._started
                          for d in devices)
            target = self._cycle + (
                2 if self._polling and not covered else 1)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, daemon=True,
                    name='poll-%s' % driver.group)
                self._thread.start()
            self._cond.notify_all()
        try:
            interrupt = getattr(context, 'interrupt', None)
            with self._cond:
                while self._cycle < target:
                    pushed = self._take_pushed(devices)
                    if pushed is not None:
                        return pushed
                    if interrupt is not None and interrupt.is_set():
                        driver.sleep(context, 0)  # raises Interrupted
                    self._cond.wait(0.1)
                result = {}
                for device in devices:
                    error = self._errors.get(device['id'])
                    if error is not None:
                        raise error
                    result[device['id']] = self._results[device['id']]
                return result
        finally:
            with self._cond:
                until = time.monotonic() + max(2 * self.interval, 2.0)
                for device in devices:
                    d, n = self._waiting.get(device['id'], (None, 1))
                    if n <= 1:
                        self._waiting.pop(device['id'], None)
                        self._recent[device['id']] = (device, until)
                    else:
                        self._waiting[device['id']] = (d, n - 1)

    def _run(self):
        last = 0.0
        idle_since = time.monotonic()
        while True:
            with self._cond:
                while not self._waiting:
                    if time.monotonic() - idle_since > 60:
                        self._thread = None
                        return
                    self._cond.wait(1.0)
                idle_since = time.monotonic()
            # Keep the cycle rate: at most one query per interval.
            pause = last + self.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with self._cond:
                devices = [d for d, _ in self._waiting.values()]
                if not devices:
                    # They left during the pause: no query for nobody.
                    continue
                now = time.monotonic()
                for device_id, (device, until) in list(
                        self._recent.items()):
                    if until < now:
                        self._recent.pop(device_id)
                        if device_id not in self._waiting:
                            self._pushed.pop(device_id, None)
                            self._taken.pop(device_id, None)
                    elif device_id not in self._waiting:
                        devices.append(device)
                self._in_flight = {d['id'] for d in devices}
                self._polling = True
                last = self._started = time.monotonic()
            results, errors = {}, {}
            try:
                # Any waiting device's credentials see the whole scope.
                results = self.driver.poll_batch(
                    self.driver.credentials.key(devices[0]), devices)
            except Exception as e:
                LOG.warning('%s: poll of %d devices failed: %s',
                            self.driver.group, len(devices), e)
                errors = {d['id']: e for d in devices}
            with self._cond:
                self._results.update(results)
                for device in devices:
                    if device['id'] not in results and \
                            device['id'] not in errors:
                        errors[device['id']] = exceptions.DriverError(
                            driver=self.driver.group, action='poll',
                            reason='no answer for device %s' % device['id'])
                self._errors = errors
                for device in devices:
                    # News heard before this query started is in it.
                    pushed = self._pushed.get(device['id'])
                    if pushed is not None and pushed[2] < self._started:
                        del self._pushed[device['id']]
                for device_id in list(self._results):
                    if device_id not in self._waiting:
                        self._results.pop(device_id)
                self._cycle += 1
                self._polling = False
                self._in_flight = set()
                self._cond.notify_all()
