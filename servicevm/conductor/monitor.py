"""Liveness through the management plane.

A template's ``monitor`` attribute has the conductor that watches a
device probe it, besides the VIM poll::

    {"monitor": {"type": "ping", "interval": 10, "timeout": 2,
                 "failures": 3}}
    {"monitor": {"type": "ssh", "command": "pidof dnsmasq",
                 "configured": "test -s /etc/dnsmasq.d/svm.conf"}}
    {"monitor": {"type": "netconf",
                 "configured": "<firewall xmlns=\\"urn:example:fw\\"/>"}}

``ping`` sends one ICMP echo to the management address (the pings due
together go out in one ``fping`` run when the conductor host has fping,
else one ``ping`` each); ``ssh`` runs ``command`` (default ``true``)
on the device with the ssh management driver's credentials and
connections; ``netconf`` sends a NETCONF ``get`` (its subtree ``filter``
optional). A probe has ``timeout`` seconds; ``failures`` failed probes
in a row make the device DEAD, and its template's health policy reacts
at the health watch's next pass. ``configured`` (ssh: a command; NETCONF:
a subtree filter of the running configuration) tells a device that
answers but lost its configuration (re-initialised): its service
instances' configuration is applied again (a ``configure`` operation).

The results are events of the device: every failed probe
(``device.monitor.failed``), the first answer at start or after failures
(``device.monitor.up``), a device found without its configuration
(``device.reinitialised``). The last result is kept on the device (see
``GET /v1/devices/{id}/metrics``).
"""

import collections
import ipaddress
import math
import re
import shutil
import subprocess
import threading
import time

import futurist
from oslo_log import log as logging
from oslo_utils import timeutils

from servicevm.common import context as svm_context
from servicevm.common import exceptions
from servicevm.drivers import loader

LOG = logging.getLogger(__name__)

TYPES = ('ping', 'ssh', 'netconf')
DEFAULTS = {'interval': 10, 'timeout': 5, 'failures': 3}


def spec_of(template):
    """The template's monitor with its defaults, or None."""
    spec = ((template or {}).get('attributes') or {}).get('monitor')
    if not isinstance(spec, dict) or spec.get('type') not in TYPES:
        return None
    return dict(DEFAULTS, **spec)


def _host(address):
    """The host part of a management address (``host``, ``host:port``
    or ``[v6]:port``)."""
    address = (address or '').strip()
    try:
        return str(ipaddress.ip_address(address.strip('[]')))
    except ValueError:
        pass
    if address.startswith('['):
        return address[1:].split(']', 1)[0]
    return address.rsplit(':', 1)[0] if address.count(':') == 1 else address


def ping(address, timeout):
    """(answered, detail) of one ICMP echo to ``address``."""
    host = _host(address)
    if not host:
        return False, 'the device has no management address'
    wait = max(1, int(math.ceil(timeout)))
    try:
        result = subprocess.run(
            ['ping', '-n', '-q', '-c', '1', '-W', str(wait), host],
            capture_output=True, text=True, timeout=wait + 5)
    except FileNotFoundError:
        return False, ('ping is not installed on conductor host (Debian: '
                       'apt-get install iputils-ping)')
    except subprocess.TimeoutExpired:
        return False, 'ping of %s did not end within %d s' % (host, wait + 5)
    if result.returncode == 0:
        return True, 'ping of %s answered' % host
    detail = (result.stderr.strip() or 'no answer within %d s' % wait)
    return False, 'ping of %s failed: %s' % (host, detail[-300:])


_FPING_LINE = re.compile(r'^(\S+)\s+:\s+xmt/rcv/%loss = (\d+)/(\d+)/')
FPING_BATCH = 500


def ping_many(addresses, timeout):
    """{address: (answered, detail)} of one ICMP echo to each address,
    in one ``fping`` run (None when fping is not installed)."""
    fping = shutil.which('fping')
    if fping is None:
        return None
    hosts = {address: _host(address) for address in addresses}
    targets = sorted({h for h in hosts.values() if h})
    wait = max(1, int(math.ceil(timeout)))
    answered, seen, detail = set(), set(), ''
    if targets:
        try:
            result = subprocess.run(
                # (-i 1: a millisecond between two targets' echoes.)
                [fping, '-q', '-c', '1', '-r', '0', '-i', '1', '-t',
                 str(wait * 1000), '--'] + targets, capture_output=True,
                text=True, timeout=wait + 10)
            output = result.stdout + result.stderr
        except subprocess.TimeoutExpired:
            output, detail = '', 'fping did not end within %d s' % (wait + 10)
        for line in output.splitlines():
            match = _FPING_LINE.match(line.strip())
            if match:
                seen.add(match.group(1))
                if int(match.group(3)) > 0:
                    answered.add(match.group(1))
    results = {}
    for address, host in hosts.items():
        if not host:
            results[address] = (False, 'the device has no management '
                                       'address')
        elif host in answered:
            results[address] = (True, 'ping of %s answered' % host)
        else:
            results[address] = (False, 'ping of %s failed: %s' % (
                host, 'no answer within %d s' % wait if host in seen
                else detail or 'no reply (does the name resolve?)'))
    return results


def probe(conf, device, spec):
    """Probe ``device`` once as ``spec`` says: (alive, configured, detail),
    where configured is None unless ``spec`` asks. Never raises: an
    error is a failed probe."""
    if not device.get('mgmt_address'):
        return False, None, 'the device has no management address'
    if spec['type'] == 'ping':
        alive, detail = ping(device['mgmt_address'], spec['timeout'])
        return alive, None, detail
    ctx = svm_context.get_admin_context()
    ctx.interrupt = threading.Event()
    ctx.interrupt_reason = 'no answer within %gs' % spec['timeout']
    timer = threading.Timer(spec['timeout'], ctx.interrupt.set)
    timer.daemon = True
    timer.start()
    driver = None
    try:
        driver = loader.get_mgmt_driver(conf, spec['type'])
        return driver.probe(ctx, device, spec)
    except exceptions.Interrupted as e:
        failure = '%s monitor: %s' % (spec['type'], e)
    except Exception as e:
        failure = '%s monitor: %s' % (spec['type'], e)
    finally:
        timer.cancel()
    if driver is not None:
        # A connection that failed a probe is not kept for the next.
        driver.close(ctx, device)
    return False, None, failure[:1000]


class Monitor:
    """The probes of the devices one health watch watches: a device is
    probed every ``interval`` seconds (its next probe counted from the end
    of the last), in a pool of ``[conductor] monitor_workers`` threads."""

    def __init__(self, conf, watch):
        self.conf = conf
        self.watch = watch
        self._lock = threading.Lock()
        self._devices = {}
        self._states = {}
        self._dead = []
        self._pool = None
        #: Probes made (tests, benchmarks).
        self.probes = 0
        # False once fping was found missing: one ping per device.
        self._fping = None

    def update(self, devices):
        """The devices to probe now: those the last pass saw active whose
        template has a monitor; the others are forgotten."""
        fresh = {}
        for device in devices:
            spec = spec_of(device.get('template'))
            if spec is not None:
                fresh[device['id']] = (device, spec)
        with self._lock:
            self._devices = fresh
            for device_id in set(self._states) - set(fresh):
                if not self._states[device_id].get('probing'):
                    del self._states[device_id]

    def take_dead(self):
        """The devices the probes made DEAD since the last call."""
        with self._lock:
            dead, self._dead = self._dead, []
        return dead

    def tick(self):
        """Start the probes that are due."""
        now = time.monotonic()
        due = []
        with self._lock:
            for device_id, (device, spec) in self._devices.items():
                state = self._states.get(device_id)
                if state is None:
                    # Its last recorded state (no event if it is still
                    # so); failures are counted afresh.
                    last = device.get('monitor') or {}
                    state = self._states[device_id] = {
                        'due': now, 'failures': 0,
                        'state': last.get('state')}
                if not state.get('probing') and state['due'] <= now:
                    state['probing'] = True
                    due.append((device, spec))
        if not due:
            return
        if self._pool is None:
            self._pool = futurist.ThreadPoolExecutor(
                max_workers=self.conf.conductor.monitor_workers)
        pings = collections.defaultdict(list)
        for device, spec in due:
            if spec['type'] == 'ping' and self._fping is not False:
                pings[spec['timeout']].append((device, spec))
            else:
                self._pool.submit(self._probe, device, spec)
        for batch in pings.values():
            for i in range(0, len(batch), FPING_BATCH):
                self._pool.submit(self._ping_batch, batch[i:i + FPING_BATCH])

    def _ping_batch(self, batch):
        """The due pings of one timeout in one fping run (one ping each
        when the host has no fping)."""
        try:
            answers = ping_many(
                {d.get('mgmt_address') or '' for d, _ in batch},
                batch[0][1]['timeout'])
        except Exception as e:
            LOG.warning('fping failed (%s): one ping per device', e)
            answers = None
        if answers is None:
            self._fping = False
            for device, spec in batch:
                self._probe(device, spec)
            return
        for device, spec in batch:
            alive, detail = answers[device.get('mgmt_address') or '']
            self._probe(device, spec, (alive, None, detail))

    def stop(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    def _probe(self, device, spec, outcome=None):
        try:
            alive, configured, detail = outcome or probe(self.conf, device,
                                                         spec)
            self.probes += 1
            self._result(device, spec, alive, configured, detail)
        except Exception:
            LOG.exception('Monitor of device %s failed', device['id'])
        finally:
            with self._lock:
                state = self._states.get(device['id'])
                if state is not None:
                    state['probing'] = False
                    state['due'] = time.monotonic() + spec['interval']
                    if device['id'] not in self._devices:
                        del self._states[device['id']]

    def _result(self, device, spec, alive, configured, detail):
        with self._lock:
            state = self._states[device['id']]
            previous = state['state']
            if alive:
                state['failures'] = 0
                state['state'] = 'unconfigured' if configured is False \
                    else 'up'
            else:
                state['failures'] += 1
                state['state'] = 'down'
            failures = state['failures']
        if alive and state['state'] == previous:
            return  # (nothing new: the common case, kept cheap)
        ctx = svm_context.get_admin_context()
        kind = spec['type']
        values = {'type': kind, 'state': state['state'],
                  'failures': failures, 'detail': detail,
                  'checked_at': timeutils.utcnow().isoformat()}
        if not alive:
            self.watch.event(ctx, device, 'device.monitor.failed', 'error',
                             '%s (%d of %d failures before the device is '
                             'DEAD)' % (detail, failures, spec['failures']))
            self.watch.dbapi.device_monitor(ctx, device['id'], values)
            if failures >= spec['failures'] and self.watch.mark_dead(
                    ctx, device, 'the %s monitor failed %d times in a row: '
                    '%s' % (kind, failures, detail)):
                with self._lock:
                    self._dead.append(device)
            return
        self.watch.dbapi.device_monitor(ctx, device['id'], values)
        if state['state'] == 'up':
            self.watch.event(ctx, device, 'device.monitor.up', 'ok',
                             '%s monitor: %s' % (kind, detail))
        else:
            self.watch.reinitialised(ctx, device, '%s monitor: the device '
                                     'answers but its configuration is '
                                     'gone (%s)' % (kind, detail))
