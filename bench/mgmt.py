#!/usr/bin/env python3
"""Benchmark of the ssh management driver: lifecycle scripts run over ssh
on many devices at once, through the real API on PostgreSQL and RabbitMQ.
Prints its figures; it is not a test.

    .venv/bin/python bench/mgmt.py [--devices 50] [--scripts 3] [--json out]

The issue asks for "50 devices each running a 3-script CONFIGURE over ssh
to the local sshd, with the default parallelism". CONFIGURE runs when a
service instance is bound to a device (and again when it is taken off):
the ``configure`` operation of the device runs ``configure_services``
(the mgmt driver's push_config; the services here have no
``kwargs.config``, so nothing is pushed) and then the template's
CONFIGURE scripts, --scripts of them over one ssh login.

What it runs (the plumbing is bench/lifecycle.py's, whose Bench this
subclasses):

* a private PostgreSQL, RabbitMQ and OpenSSH sshd (tools/postgres.sh,
  rabbitmq.sh, sshd.sh; the sshd logs at VERBOSE) with a state dir
  (.ci/work/bench-mgmt) and ports (27xxx) of their own; a fresh database
  migrated with ``servicevm-db-manage upgrade``; a Fernet key file from
  ``servicevm-db-manage new-secret-key`` ([secrets] key_file of the API
  and the conductor: the template's private key is stored sealed);
* the API under gunicorn (``-w 2 -k gthread --threads 4``) and one
  ``servicevm-conductor``; noauth, enabled_mgmt_drivers = noop,ssh,
  [mgmt] known_hosts_dir in the temp dir; every other [mgmt] option and
  [conductor] workers at their defaults (printed); [conductor]
  poll_interval = 0.05 as in bench/lifecycle.py;
* a template (noop device driver, ssh mgmt driver, mgmt_auth = the sshd's
  user and private key, service_types ["firewall"]) whose CONFIGURE
  scripts do small real work on the box: the first writes
  /tmp/svm-bench-mgmt-$SVM_DEVICE_ID-$SVM_SERVICE_CHANGE (one file for
  the bind, another for the unbind), each checks the service variables
  (SVM_SERVICE_ID set; in SVM_SERVICES after a bind, no longer after an
  unbind) and that the file holds one line per script so far and appends
  its own, the last removes it; each prints $SSH_CLIENT (client address
  and port, set by sshd);
* a warm-up (one device created, one service instance bound to it and
  deleted, the device deleted; not counted); then --devices creates
  posted by 16 client threads (HTTP keep-alive), each polling its
  operation every 20 ms until it is COMPLETED (a create runs no scripts;
  every mgmt_address is the local sshd: the noop driver adopts the box
  at kwargs.mgmt_address); then the measured phase: one "firewall"
  service instance per device, bound to it (``devices: [id]``), posted by
  the 16 client threads the same way, each waiting for its configure
  operation to be COMPLETED; then the service instances deleted (their
  unbind operations run CONFIGURE again) and the devices deleted, the
  same way (timed, printed as extra information).

Figures:

* scripts/s: devices x scripts over the wall time from the first bind
  POST to the last configure operation seen COMPLETED;
* per-script latency p50/p95: finished_at - started_at of every
  ``script.CONFIGURE.*`` step of the binds (server clock);
* bind request->COMPLETED p50/p95: POST sent -> the client's GET that
  saw the configure operation COMPLETED (client clock, 20 ms polls);
* connections per device operation: server side, the "Accepted publickey
  for" lines the sshd log gained during the binds, over the number of
  binds (target 1.0: one connection per device per operation, reused by
  its scripts); cross-checked with the distinct client ports the scripts
  of each device printed (1 everywhere when every script of an operation
  shares its connection).

An operation that fails (FAILED_TEMP...) ends the run with its error.
Everything it started is stopped on exit (also on SIGTERM/Ctrl-C), the
bench database dropped, the temp dir removed (unless --keep-tmp). Exit
status: 0 every target met, 1 a target missed, 2 the run failed.
"""

import argparse
import collections
import datetime
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def _load_lifecycle_bench():
    """bench/lifecycle.py as a module (which loads bench/api.py)."""
    spec = importlib.util.spec_from_file_location(
        'servicevm_bench_lifecycle', os.path.join(BENCH_DIR, 'lifecycle.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LC = _load_lifecycle_bench()
B = LC.B                      # bench/api.py: processes, HTTP, database
REPO = B.REPO
VENV_BIN = B.VENV_BIN
BenchError = B.BenchError
log = B.log

# Servers of this benchmark's own: neither the test suite's (25xxx) nor
# the other benchmarks' (25xxx, and bench/nova.py's 14xxx-19xxx).
SERVERS_ENV = B.servers_env('mgmt', 27632, 27872, 27369,
                            SERVICEVM_SSHD_PORT=27222)
CLIENTS = 16
POLL_S = 0.02
EVENT = 'CONFIGURE'
SERVICE_TYPE = 'firewall'
ACCEPTED = re.compile(r'Accepted (publickey|password) for ')
CONNECTION = re.compile(r'Connection from \S+ port \d+ on ')
CLIENT_PORT = re.compile(r'svm-bench-client=\S+ (\d+) ')


def script_text(k, n):
    """The k-th (1-based) of n CONFIGURE scripts: small real work on the
    box, for the bind and the unbind alike (a file of each)."""
    lines = ['set -e',
             'f=/tmp/svm-bench-mgmt-"$SVM_DEVICE_ID"-"$SVM_SERVICE_CHANGE"',
             'echo "svm-bench-client=$SSH_CLIENT "',
             'test -n "$SVM_SERVICE_ID"',
             # The service is among those the device hosts after a bind,
             # no longer after an unbind.
             'case "$SVM_SERVICE_CHANGE:$SVM_SERVICES" in',
             '  unbind:*"$SVM_SERVICE_ID"*) exit 3 ;;',
             '  bind:*"$SVM_SERVICE_ID"* | unbind:*) ;;',
             '  *) exit 4 ;;',
             'esac']
    if k == 1:
        lines.append(': > "$f"')
    lines += ['test "$(wc -l < "$f")" -eq %d' % (k - 1),
              'echo "s%d $SVM_OPERATION_ID" >> "$f"' % k,
              'echo "$SVM_SERVICE_CHANGE $SVM_SERVICE_NAME $(grep -c '
              '"$SVM_OPERATION_ID" "$f")"']
    if k == n:
        lines.append('rm -f "$f"')
    return '\n'.join(lines) + '\n'


def iso_ts(value):
    return datetime.datetime.fromisoformat(value).replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Bench(LC.Bench):
    """bench/lifecycle.py's run (API, conductor, client threads and
    clean-up come from there) with an sshd and the ssh mgmt driver."""

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='servicevm-bench-mgmt-')
        os.chmod(self.tmp, 0o755)
        self.started_services, self.servers, self.conductors = [], [], []
        self.api = self.admin_url = None
        self.db_name = 'servicevm_bench_mgmt'
        self.db_created = False
        self.engines, self.results = {}, {}
        self.notes, self.errors = [], []
        self.stop_event = threading.Event()
        self.headers = {'X-Project-Id': uuid.uuid4().hex,
                        'X-User-Id': uuid.uuid4().hex, 'X-Roles': 'member'}

    # ---- servers -----------------------------------------------------

    def service_env(self):
        return dict(os.environ, **SERVERS_ENV)

    def service(self, name):
        """Start a tools/ server unless it runs (then leave it be)."""
        status = subprocess.run(
            ['bash', os.path.join(REPO, 'tools', name), 'status'], cwd=REPO,
            env=self.service_env(), capture_output=True, text=True,
            timeout=120)
        if status.returncode != 0:
            log('starting %s (state %s)'
                % (name, SERVERS_ENV['SERVICEVM_TEST_STATE']))
            self.started_services.append(name)
            self.script(name, 'start', capture=False)
        else:
            log('%s: %s' % (name, status.stdout.strip()))

    def write_configs(self, rabbit_url):
        self.key_file = os.path.join(self.tmp, 'secret.key')
        key = B.run([os.path.join(VENV_BIN, 'servicevm-db-manage'),
                     'new-secret-key'], timeout=60,
                    env=self.env([])).strip()
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(key + '\n')
        self.known_hosts = os.path.join(self.tmp, 'known_hosts')
        os.makedirs(self.known_hosts)
        self.config = os.path.join(self.tmp, 'servicevm.conf')
        with open(self.config, 'w') as f:
            f.write('[DEFAULT]\nauth_strategy = noauth\ntransport_url = %s\n'
                    'enabled_device_drivers = noop\n'
                    'enabled_mgmt_drivers = noop,ssh\n'
                    'debug = false\nuse_stderr = false\n'
                    'default_log_levels = %s\n'
                    'graceful_shutdown_timeout = 5\n'
                    '\n[database]\nconnection = %s\n'
                    '\n[conductor]\npoll_interval = 0.05\n'
                    '\n[mgmt]\nknown_hosts_dir = %s\n'
                    '\n[secrets]\nkey_file = %s\n'
                    % (rabbit_url, LC.LOG_LEVELS + ',paramiko=WARNING',
                       B.db_url_for(self.admin_url, self.db_name),
                       self.known_hosts, self.key_file))
        self.api_conf = os.path.join(self.tmp, 'api.conf')
        with open(self.api_conf, 'w') as f:
            f.write('[DEFAULT]\nlog_file = %s\n'
                    % os.path.join(self.tmp, 'api.log'))

    def conductor_conf(self, host):
        path = os.path.join(self.tmp, host + '.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nhost = %s\nlog_file = %s\n'
                    % (host, os.path.join(self.tmp, host + '.log')))
        return path

    # ---- sshd log ----------------------------------------------------

    def sshd_log_size(self):
        return os.path.getsize(self.sshd['SERVICEVM_SSHD_LOG'])

    def sshd_log_since(self, offset):
        """(logins accepted, TCP connections) logged after ``offset``."""
        with open(self.sshd['SERVICEVM_SSHD_LOG'], errors='replace') as f:
            f.seek(offset)
            text = f.read()
        return (len(ACCEPTED.findall(text)), len(CONNECTION.findall(text)))

    # ---- driving the API ---------------------------------------------

    def make_template(self):
        with open(self.sshd['SERVICEVM_SSHD_KEY']) as f:
            key = f.read()
        n = self.args.scripts
        status, body = B.http(
            'POST', 'http://127.0.0.1:%d/v1/device_templates' % self.api.port,
            self.headers, {'device_template': {
                'name': 'bench-mgmt', 'device_driver': 'noop',
                'mgmt_driver': 'ssh', 'service_types': [SERVICE_TYPE],
                'attributes': {'mgmt_auth': {
                    'username': self.sshd['SERVICEVM_SSHD_USER'],
                    'private_key': key}},
                'lifecycle_events': {EVENT: [
                    {'name': 's%d' % k, 'script': script_text(k, n)}
                    for k in range(1, n + 1)]}}})
        if status != 201:
            raise BenchError('POST /v1/device_templates: %s %s'
                             % (status, body))
        return body['device_template']['id']

    def wait_op(self, client, op_id):
        """GET the operation every POLL_S until it rests; (monotonic time
        of the answer that showed it COMPLETED, the operation)."""
        deadline = time.monotonic() + self.args.op_timeout
        while True:
            if self.stop_event.wait(POLL_S):
                raise LC.Stopped()
            status, body = client.request('GET', '/v1/operations/' + op_id)
            now = time.monotonic()
            if status != 200:
                raise BenchError('GET operation %s: %s %s'
                                 % (op_id, status, body))
            op = body['operation']
            if op['state'] == 'COMPLETED':
                return now, op
            if op['state'] in LC.FAILED_OP_STATES:
                raise BenchError('operation %s ended %s: %s' % (
                    op_id, op['state'], op.get('error') or '; '.join(
                        '%s: %s' % (s['name'], s['error'])
                        for s in op.get('steps') or () if s.get('error'))))
            if now > deadline:
                raise BenchError('operation %s still %s after %ds'
                                 % (op_id, op['state'],
                                    self.args.op_timeout))

    def one(self, client, method, path, body=None):
        """One request and the wait for its (first) operation: a record
        with the answer's body."""
        t0 = time.monotonic()
        status, answer = client.request(method, path, body)
        if status != 202:
            raise BenchError('%s %s: %s %s' % (method, path, status, answer))
        done, op = self.wait_op(client, answer['operation_id'])
        return {'answer': answer, 'sent': t0, 'done': done,
                'latency_ms': 1000 * (done - t0), 'operation': op}

    def create(self, client, name):
        rec = self.one(client, 'POST', '/v1/devices', {'device': {
            'name': name, 'template_id': self.template,
            'kwargs': {'mgmt_address': '127.0.0.1:%s'
                       % self.sshd['SERVICEVM_SSHD_PORT']}}})
        rec['device_id'] = rec['answer']['device']['id']
        return rec

    def delete(self, client, device_id):
        rec = self.one(client, 'DELETE', '/v1/devices/' + device_id)
        rec['device_id'] = device_id
        return rec

    def bind(self, client, device_id):
        """A service instance bound to ``device_id``: its configure
        operation (configure_services, then the CONFIGURE scripts)."""
        rec = self.one(client, 'POST', '/v1/service_instances', {
            'service_instance': {
                'name': 'fw-' + device_id[:8], 'service_type': SERVICE_TYPE,
                'devices': [device_id], 'kwargs': {'zone': 'bench'}}})
        service = rec['answer']['service_instance']
        op = rec['operation']
        if op['kind'] != 'configure' or op['resource_id'] != device_id:
            raise BenchError('service %s: operation %s is a %s of %s, not '
                             'a configure of device %s' % (
                                 service['id'], op['id'], op['kind'],
                                 op['resource_id'], device_id))
        rec.update(device_id=device_id, service_id=service['id'])
        return rec

    def unbind(self, client, service_id):
        """The service instance's status (ACTIVE after its bind), then
        its delete: a configure (unbind) operation, CONFIGURE again."""
        status, body = client.request(
            'GET', '/v1/service_instances/' + service_id)
        if status != 200:
            raise BenchError('GET service instance %s: %s %s'
                             % (service_id, status, body))
        rec = self.one(client, 'DELETE',
                       '/v1/service_instances/' + service_id)
        rec.update(service_id=service_id,
                   status_before=body['service_instance']['status'],
                   device_id=rec['operation']['resource_id'])
        return rec

    @staticmethod
    def script_steps(rec, k):
        """The CONFIGURE script steps of a record's operation (``k`` of
        them, or the run fails)."""
        steps = [s for s in rec['operation'].get('steps') or ()
                 if s['name'].startswith('script.%s.' % EVENT)]
        if len(steps) != k:
            raise BenchError('device %s, operation %s: %d %s script steps, '
                             'not %d' % (rec['device_id'],
                                         rec['operation']['id'], len(steps),
                                         EVENT, k))
        return steps

    # ---- the run -----------------------------------------------------

    def defaults(self):
        sys.path.insert(0, REPO)
        from servicevm.conf import conductor as conductor_conf
        from servicevm.conf import mgmt as mgmt_conf
        opts = {('mgmt', o.name): o.default for o in mgmt_conf.opts
                if o.name != 'known_hosts_dir'}
        opts.update({('conductor', o.name): o.default
                     for o in conductor_conf.opts if o.name in (
                         'workers', 'max_parallel_driver_calls')})
        return {'%s.%s' % k: v for k, v in opts.items()}

    def execute(self):
        args = self.args
        log('temp dir %s' % self.tmp)
        for name in ('postgres.sh', 'rabbitmq.sh', 'sshd.sh'):
            self.service(name)
        self.admin_url = self.script('postgres.sh', 'url', 60).strip()
        rabbit_url = self.script('rabbitmq.sh', 'url', 60).strip()
        self.sshd = dict(line.split('=', 1) for line in self.script(
            'sshd.sh', 'env', 60).splitlines() if '=' in line
            and not line.startswith('SERVICEVM_SSHD_PASSWORD='))
        B.recreate_database(self.admin_url, self.db_name)
        self.db_created = True
        self.write_configs(rabbit_url)
        B.run([os.path.join(VENV_BIN, 'servicevm-db-manage'),
               '--config-file', self.config, 'upgrade'], timeout=180,
              env=self.env([self.config]))
        self.start_api()
        self.start_conductors(['bench-mgmt-c1'])
        self.template = self.make_template()
        self.parameters = self.defaults()

        # Warm-up (imports, first connections of the conductor, the
        # host key pin): one device, one service bound to it and deleted,
        # not counted.
        warm, _ = self.parallel(['warm-0'], 1, self.create)
        warm_ids = [r['device_id'] for r in warm]
        warm_binds, _ = self.parallel(warm_ids, 1, self.bind)
        self.parallel([r['service_id'] for r in warm_binds], 1, self.unbind)
        self.parallel(warm_ids, 1, self.delete)
        time.sleep(0.5)

        n, k = args.devices, args.scripts
        offset = self.sshd_log_size()
        creates, c_wall = self.parallel(['mgmt-%d' % i for i in range(n)],
                                        CLIENTS, self.create)
        time.sleep(0.3)      # sshd writes its log lines asynchronously
        c_logins, _ = self.sshd_log_since(offset)
        device_ids = [r['device_id'] for r in creates]

        # The measured phase: one service instance bound to each device.
        offset = self.sshd_log_size()
        binds, _ = self.parallel(device_ids, CLIENTS, self.bind)
        first = min(r['sent'] for r in binds)
        wall = max(r['done'] for r in binds) - first
        time.sleep(0.3)
        logins, tcp = self.sshd_log_since(offset)
        script_ms, ports = [], {}
        for r in binds:
            steps = self.script_steps(r, k)
            for s in steps:
                script_ms.append(1000 * (iso_ts(s['finished_at']) -
                                         iso_ts(s['started_at'])))
            ports[r['device_id']] = {
                m for s in steps
                for m in CLIENT_PORT.findall(s.get('output') or '')}
        per_device = collections.Counter(len(p) for p in ports.values())

        # Not measured for the targets: the unbinds (CONFIGURE again),
        # then the device deletes (no scripts).
        offset = self.sshd_log_size()
        unbinds, u_wall = self.parallel([r['service_id'] for r in binds],
                                        CLIENTS, self.unbind)
        time.sleep(0.3)
        u_logins, _ = self.sshd_log_since(offset)
        for r in unbinds:
            self.script_steps(r, k)
        not_active = collections.Counter(
            r['status_before'] for r in unbinds
            if r['status_before'] != 'ACTIVE')
        client = self.client()
        try:
            status, body = client.request('GET', '/v1/service_instances')
        finally:
            client.close()
        if status != 200:
            raise BenchError('GET /v1/service_instances: %s %s'
                             % (status, body))
        services_left = len(body['service_instances'])
        offset = self.sshd_log_size()
        deletes, d_wall = self.parallel(device_ids, CLIENTS, self.delete)
        time.sleep(0.3)
        d_logins, _ = self.sshd_log_since(offset)
        leftovers = glob.glob('/tmp/svm-bench-mgmt-*')
        self.results = {
            'devices': n, 'scripts_per_device': k, 'clients': CLIENTS,
            'scripts': n * k, 'wall_s': round(wall, 3),
            'scripts_per_s': round(n * k / wall, 1),
            'script_latency': self.lat_summary(
                [{'latency_ms': v} for v in script_ms]),
            'bind_latency': self.lat_summary(binds),
            'sshd_logins': logins, 'sshd_tcp_connections': tcp,
            'connections_per_device_operation': round(logins / n, 3),
            'client_ports_per_device': dict(sorted(per_device.items())),
            'create_wall_s': round(c_wall, 2),
            'create_latency': self.lat_summary(creates),
            'sshd_logins_during_creates': c_logins,
            'unbind_wall_s': round(u_wall, 2),
            'unbind_latency': self.lat_summary(unbinds),
            'sshd_logins_during_unbinds': u_logins,
            'services_not_active_after_bind': dict(not_active),
            'services_left_after_unbinds': services_left,
            'delete_wall_s': round(d_wall, 2),
            'delete_latency': self.lat_summary(deletes),
            'sshd_logins_during_deletes': d_logins,
            'host_key_pins': len(os.listdir(self.known_hosts)),
            'files_left_in_tmp': len(leftovers),
        }
        if not_active:
            self.notes.append('service instances not ACTIVE after their '
                              'bind completed: %s' % dict(not_active))
        if services_left:
            self.notes.append('%d service instance(s) still listed after '
                              'their unbinds completed' % services_left)
        if tcp != logins:
            self.notes.append('%d TCP connections to the sshd but %d logins '
                              '(refused or retried attempts)' % (tcp, logins))
        if leftovers:
            self.notes.append('files left in /tmp: %s' % leftovers[:5])
        return self.report()

    def targets(self):
        r = self.results
        return [
            {'target': 'ssh connections per device per operation == 1.0',
             'value': r['connections_per_device_operation'],
             'pass': r['connections_per_device_operation'] == 1.0,
             'fmt': '%.2f'},
            {'target': "devices whose scripts shared one connection",
             'value': r['client_ports_per_device'].get(1, 0),
             'pass': r['client_ports_per_device'].get(1, 0) == r['devices'],
             'fmt': '%d of ' + str(r['devices'])},
        ]

    def report(self):
        r, args, sshd = self.results, self.args, self.sshd
        L = ['', 'servicevm ssh mgmt benchmark: %d devices x %d %s scripts '
             'over ssh to the local sshd (%s:%s), %d client threads; API '
             'gunicorn -w 2 -k gthread --threads 4, one conductor, '
             'PostgreSQL + RabbitMQ on loopback, noauth' % (
                 r['devices'], r['scripts_per_device'], EVENT,
                 sshd['SERVICEVM_SSHD_HOST'], sshd['SERVICEVM_SSHD_PORT'],
                 CLIENTS),
             'CONFIGURE runs when a service instance is bound: one "%s" '
             'service instance per device, bound by a configure operation '
             '(configure_services, then the scripts).' % SERVICE_TYPE,
             'servicevm %s; machine: %d CPUs, load average at start %s, at '
             'end %s' % (self.source, os.cpu_count(), self.load_at_start,
                         B.loadavg()),
             'parallelism (defaults): ' + ', '.join(
                 '%s = %s' % kv for kv in sorted(self.parameters.items())),
             '']
        sl, bl = r['script_latency'], r['bind_latency']
        for label, value in [
                ('scripts/s (%d scripts, 1st bind -> last COMPLETED)'
                 % r['scripts'], '%.1f (%.2f s)' % (r['scripts_per_s'],
                                                    r['wall_s'])),
                ('per script p50 / p95 (step start -> end)',
                 '%.1f / %.1f ms (max %.1f)' % (sl['p50_ms'], sl['p95_ms'],
                                                sl['max_ms'])),
                ('bind request->COMPLETED p50 / p95 (poll 20 ms)',
                 '%.0f / %.0f ms' % (bl['p50_ms'], bl['p95_ms'])),
                ('ssh connections per device operation (sshd log)',
                 '%.2f (%d logins, %d TCP connections, %d binds)' % (
                     r['connections_per_device_operation'],
                     r['sshd_logins'], r['sshd_tcp_connections'],
                     r['devices'])),
                ('client ports seen by the scripts of a device',
                 ', '.join('%d port(s): %d devices' % kv for kv in
                           r['client_ports_per_device'].items())),
                ('creates (no scripts): wall; p50; ssh logins',
                 '%.2f s; %.0f ms; %d' % (
                     r['create_wall_s'], r['create_latency']['p50_ms'],
                     r['sshd_logins_during_creates'])),
                ('unbinds (CONFIGURE again): wall; p50; ssh logins',
                 '%.2f s; %.0f ms; %d' % (
                     r['unbind_wall_s'], r['unbind_latency']['p50_ms'],
                     r['sshd_logins_during_unbinds'])),
                ('device deletes: wall; p50; ssh logins',
                 '%.2f s; %.0f ms; %d' % (
                     r['delete_wall_s'], r['delete_latency']['p50_ms'],
                     r['sshd_logins_during_deletes'])),
                ('host key pins (incl. warm-up); files left in /tmp',
                 '%d; %d' % (r['host_key_pins'], r['files_left_in_tmp']))]:
            L.append('  %-52s %s' % (label, value))
        checks = self.targets()
        L += ['', 'targets:']
        for c in checks:
            L.append('  %-52s %12s  %s' % (c['target'], c['fmt'] % c['value'],
                                           'PASS' if c['pass'] else 'MISS'))
        L += ['note: ' + x for x in self.notes]
        print('\n'.join(L), flush=True)
        result = {
            'config': {'devices': args.devices, 'scripts': args.scripts,
                       'event': EVENT, 'service_type': SERVICE_TYPE,
                       'clients': CLIENTS, 'poll_ms': POLL_S * 1000,
                       'parallelism_defaults': self.parameters,
                       'sshd': '%s:%s' % (sshd['SERVICEVM_SSHD_HOST'],
                                          sshd['SERVICEVM_SSHD_PORT'])},
            'source': self.source,
            'machine': {'cpus': os.cpu_count(),
                        'loadavg_at_start': self.load_at_start,
                        'loadavg_at_end': B.loadavg()},
            'results': self.results,
            'targets': [{k: v for k, v in c.items() if k != 'fmt'}
                        for c in checks],
            'all_pass': all(c['pass'] for c in checks),
            'notes': self.notes,
        }
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(result, f, indent=2, sort_keys=True, default=str)
            log('figures written to %s' % args.json)
        return result

    def cleanup(self):
        super().cleanup()
        for path in glob.glob('/tmp/svm-bench-mgmt-*'):  # a failed script's
            try:
                os.remove(path)
            except OSError:
                pass


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--devices', type=int, default=50,
                   help='devices, each bound to a service instance '
                        '(default 50)')
    p.add_argument('--scripts', type=int, default=3,
                   help='CONFIGURE scripts per device (default 3)')
    p.add_argument('--json', help='write the figures to this file')
    p.add_argument('--keep-tmp', action='store_true',
                   help='keep the temp dir (configs, logs, pins)')
    p.add_argument('--keep-servers', action='store_true',
                   help='leave the private PostgreSQL, RabbitMQ and sshd '
                        'running (saves their start-up next time)')
    p.add_argument('--op-timeout', type=int, default=180,
                   help='seconds one operation may take (default 180)')
    # What bench/lifecycle.py's API start-up reads.
    p.set_defaults(api_workers=2, api_threads=4)
    args = p.parse_args(argv)
    if args.devices < 1 or not 1 <= args.scripts <= 32:
        p.error('--devices >= 1 and 1 <= --scripts <= 32')
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    B.stop_on_signals()
    bench = Bench(args)
    bench.load_at_start = B.loadavg()
    bench.source = B.source_version()
    try:
        result = bench.execute()
    except BenchError as e:
        log('ERROR: %s' % e)
        B.show_logs(bench.tmp, ('api-gunicorn.log', 'api.log',
                                'bench-mgmt-c1.log',
                                'bench-mgmt-c1-stdout.log'))
        return 2
    finally:
        bench.cleanup()
    return 0 if result['all_pass'] else 1


if __name__ == '__main__':
    sys.exit(main())
