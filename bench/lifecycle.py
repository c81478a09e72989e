#!/usr/bin/env python3
"""Benchmark of device lifecycle operations, through the real API on
PostgreSQL and RabbitMQ (issue #3, "Speed"). Prints its figures; it is not
a test.

    .venv/bin/python bench/lifecycle.py [--quick] [--json out.json]

What it runs:

* a private PostgreSQL and RabbitMQ from tools/postgres.sh and
  tools/rabbitmq.sh, with a state dir (.ci/work/bench-lifecycle) and ports
  of their own (neither the test suite's nor bench/api.py's), PostgreSQL
  with ``pg_stat_statements`` preloaded (set once with ALTER SYSTEM, which
  takes a restart of that private server); a fresh database migrated with
  ``servicevm-db-manage upgrade``;
* the API under gunicorn as bench/api.py runs it (``-w 2 -k gthread
  --threads 4``, its Gunicorn class), and each conductor as a separate
  ``servicevm-conductor`` process with its own ``[DEFAULT] host`` in a
  second --config-file; auth_strategy = noauth, enabled_device_drivers =
  noop,fault, [conductor] poll_interval = 0.05, everything logging to files
  at WARNING.

1. CPU-bound, noop driver, one conductor:
   - low load: N sequential creates (one at a time), then N deletes;
   - a quiet batch (creates, then deletes, no polling) in which the
     database statements and the CPU per device are counted;
   - loaded: 1,000 devices created by 16 client threads (HTTP keep-alive),
     each POST followed by a GET of its operation every 20 ms until it is
     COMPLETED (that first GET is "request->ACTIVE": the operation ends in
     the transaction that makes the device ACTIVE), then all deleted the
     same way.
2. I/O-bound, fault driver sleeping 2 s in create: 300 devices with one
   conductor, then (after deleting them all) 300 with three; the wall time
   of each, the speed-up, and the fault driver's journal and instances
   (nothing created twice, nothing left after the deletes).

Statement counting: server side, ``pg_stat_statements`` of the bench
database, reset before a measured batch and read after it. The API, the
conductors and the benchmark itself connect as three different PostgreSQL
roles (all superusers of the private server), so each statement is
attributed to the process kind that sent it and the benchmark's own
queries (waiting for operations to end) are left out. Statements are
top-level ones; BEGIN/COMMIT/ROLLBACK (psycopg2 sends BEGIN before the
first statement of a transaction) are counted apart from the SQL. The
figure held against the target (<= 25 per device create) is the SQL of
the API and the conductor in the quiet create batch, including oslo.db's
pre-ping ``SELECT 1`` (one per transaction: its engines set
pool_pre_ping), which is also printed on its own.

Also counted: the database sessions (connections) opened per device
(``pg_stat_database.sessions``; the benchmark's own connections are
pooled), i.e. connection churn of the servers' pools.

CPU: utime+stime from /proc/<pid>/stat of the gunicorn master + workers,
of the conductor processes, and of PostgreSQL (postmaster, its live
backends and, through the postmaster's cutime/cstime, those that exited),
before/after a phase. Conductor memory: VmHWM (peak RSS) of its process.

Everything it started is stopped on exit (also on SIGTERM/Ctrl-C), the
bench database dropped, the temp dir removed (unless --keep-tmp). Exit
status: 0 every target met, 1 a target missed, 2 the run failed.
"""

import argparse
import collections
import datetime
import http.client
import importlib.util
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def _load_api_bench():
    """bench/api.py as a module (its helpers and server classes)."""
    spec = importlib.util.spec_from_file_location(
        'servicevm_bench_api', os.path.join(BENCH_DIR, 'api.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


B = _load_api_bench()
REPO = B.REPO
VENV_BIN = B.VENV_BIN
BenchError = B.BenchError
log = B.log

# The lifecycle benchmark's own PostgreSQL and RabbitMQ: neither the test
# suite's (25432/25672) nor bench/api.py's (25532/25772), so that neither
# stops or loads the servers under the other.
SERVERS_ENV = B.servers_env('lifecycle', 25632, 25872, 24569, node='lc')

API_ROLE = 'servicevm'               # the role tools/postgres.sh makes
CONDUCTOR_ROLE = 'svm_bench_conductor'
OBSERVER_ROLE = 'svm_bench_observer'
ROLE_PASSWORD = 'servicevm'

FAILED_OP_STATES = ('FAILED_TEMP', 'FAILED', 'ROLLED_BACK', 'CANCELLED')
TX_CONTROL = ('BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE')
PING_QUERIES = ('SELECT $1', 'SELECT 1')

LOG_LEVELS = ','.join([
    'servicevm=WARNING', 'amqp=WARNING', 'amqplib=WARNING', 'kombu=WARNING',
    'oslo.messaging=WARNING', 'oslo_messaging=WARNING', 'futurist=WARNING',
    'sqlalchemy=WARNING', 'oslo_db=WARNING', 'oslo_policy=WARNING',
    'keystonemiddleware=WARNING', 'stevedore=WARNING', 'urllib3=WARNING',
    'iso8601=WARNING', 'pecan=WARNING', 'routes=WARNING'])


def pct(values, p):
    """The p-th percentile (nearest rank) of ``values``."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def utc_ts(dt):
    """A naive UTC datetime (as servicevm stores them) as a Unix time."""
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def proc_cpu_with_children(pid):
    """utime+stime+cutime+cstime of a process (s): its own CPU and that
    of the children it reaped."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(')') + 2:].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf('SC_CLK_TCK')


# ---- HTTP client ----------------------------------------------------------

class Client:
    """One keep-alive HTTP connection (one per client thread)."""

    def __init__(self, port, headers, timeout=60):
        self.port = port
        self.headers = dict(headers)
        self.timeout = timeout
        self.conn = None
        self.reconnects = 0

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self.headers)
        if data is not None:
            headers['Content-Type'] = 'application/json'
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    '127.0.0.1', self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                # The server closed a kept-alive connection before reading
                # the request (idle timeout): send it again, once.
                self.close()
                self.reconnects += 1
                if attempt:
                    raise BenchError('%s %s: %s' % (method, path, e))
                continue
            if resp.getheader('Connection', '').lower() == 'close':
                self.close()
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, raw[:200]


class Stopped(Exception):
    pass


# ---- the run --------------------------------------------------------------

class Bench:

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='servicevm-bench-lifecycle-')
        os.chmod(self.tmp, 0o755)
        self.started_services = []
        self.servers = []
        self.api = None
        self.conductors = []
        self.admin_url = None
        self.db_name = args.db_name
        self.db_created = False
        self.engines = {}
        self.results = {}
        self.notes = []
        self.errors = []
        self.stop_event = threading.Event()
        self.state_dir = os.path.join(self.tmp, 'fault-vim')
        self.project = uuid.uuid4().hex
        self.user = uuid.uuid4().hex
        self.headers = {'X-Project-Id': self.project, 'X-User-Id': self.user,
                        'X-Roles': 'member'}
        self.templates = {}
        self.pg_pid = None
        self.sessions0 = 0
        self.rabbit_pid = None

    # ---- servers -----------------------------------------------------

    def service_env(self):
        env = dict(os.environ)
        env.update(SERVERS_ENV)
        return env

    def script(self, name, action, timeout=600, capture=True):
        return B.run(['bash', os.path.join(REPO, 'tools', name), action],
                     timeout=timeout, env=self.service_env(),
                     capture=capture)

    def service(self, name):
        path = os.path.join(REPO, 'tools', name)
        status = subprocess.run(['bash', path, 'status'], cwd=REPO,
                                env=self.service_env(), capture_output=True,
                                text=True, timeout=120)
        if status.returncode != 0:
            log('starting %s (state %s)'
                % (name, SERVERS_ENV['SERVICEVM_TEST_STATE']))
            self.started_services.append(name)
            self.script(name, 'start', capture=False)
        else:
            log('%s: %s' % (name, status.stdout.strip()))
        return self.script(name, 'url', timeout=30).strip()

    def url_as(self, role, database):
        import sqlalchemy as sa
        url = sa.engine.make_url(self.admin_url).set(
            username=role, password=ROLE_PASSWORD if role != API_ROLE
            else sa.engine.make_url(self.admin_url).password,
            database=database)
        return url.render_as_string(hide_password=False)

    def engine(self, name, url, **kw):
        import sqlalchemy as sa
        if name not in self.engines:
            self.engines[name] = sa.create_engine(url, **kw)
        return self.engines[name]

    def admin(self):
        import sqlalchemy as sa
        return self.engine('admin', self.admin_url,
                           isolation_level='AUTOCOMMIT',
                           poolclass=sa.pool.NullPool)

    def admin_sql(self, sql, **params):
        import sqlalchemy as sa
        with self.admin().connect() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.fetchall() if result.returns_rows else None

    def prepare_postgres(self):
        """pg_stat_statements loaded and installed, and the roles of the
        conductors and of the benchmark."""
        loaded = self.admin_sql('SHOW shared_preload_libraries')[0][0]
        if 'pg_stat_statements' not in loaded:
            log('loading pg_stat_statements into the private PostgreSQL '
                '(ALTER SYSTEM + restart of %s)'
                % SERVERS_ENV['SERVICEVM_TEST_STATE'])
            libs = ','.join([x.strip() for x in loaded.split(',')
                             if x.strip()] + ['pg_stat_statements'])
            self.admin_sql("ALTER SYSTEM SET shared_preload_libraries = "
                           "'%s'" % libs)
            self.engines.pop('admin').dispose()
            self.script('postgres.sh', 'stop', timeout=180, capture=False)
            self.script('postgres.sh', 'start', timeout=600, capture=False)
            if 'postgres.sh' not in self.started_services:
                self.started_services.append('postgres.sh')
            loaded = self.admin_sql('SHOW shared_preload_libraries')[0][0]
            if 'pg_stat_statements' not in loaded:
                raise BenchError('pg_stat_statements is still not loaded')
        self.admin_sql('CREATE EXTENSION IF NOT EXISTS pg_stat_statements')
        for role in (CONDUCTOR_ROLE, OBSERVER_ROLE):
            self.admin_sql(
                "DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE "
                "rolname = '%s') THEN CREATE ROLE %s; END IF; END$$"
                % (role, role))
            self.admin_sql("ALTER ROLE %s WITH LOGIN SUPERUSER PASSWORD '%s'"
                           % (role, ROLE_PASSWORD))
        self.pg_pid = int(self.admin_sql(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = "
            "'checkpointer'")[0][0])
        # The postmaster is the checkpointer's parent.
        with open('/proc/%d/stat' % self.pg_pid) as f:
            stat = f.read()
        self.pg_pid = int(stat[stat.rfind(')') + 2:].split()[1])

    def find_rabbit_pid(self):
        rdir = os.path.join(SERVERS_ENV['SERVICEVM_TEST_STATE'], 'rabbit')
        try:
            with open(os.path.join(rdir, 'rabbit.pid')) as f:
                self.rabbit_pid = int(f.read().strip())
        except (OSError, ValueError):
            self.rabbit_pid = None

    def write_configs(self, rabbit_url):
        os.makedirs(self.state_dir, exist_ok=True)
        main = os.path.join(self.tmp, 'servicevm.conf')
        with open(main, 'w') as f:
            f.write('[DEFAULT]\n'
                    'auth_strategy = noauth\n'
                    'transport_url = %s\n'
                    'enabled_device_drivers = noop,fault\n'
                    'debug = false\n'
                    'use_stderr = false\n'
                    'default_log_levels = %s\n'
                    'graceful_shutdown_timeout = 5\n'
                    '\n[database]\nconnection = %s\n'
                    '\n[conductor]\npoll_interval = %s\n'
                    '\n[fault_driver]\nstate_dir = %s\n'
                    % (rabbit_url, LOG_LEVELS,
                       self.url_as(API_ROLE, self.db_name),
                       self.args.poll_interval, self.state_dir))
        api_conf = os.path.join(self.tmp, 'api.conf')
        with open(api_conf, 'w') as f:
            f.write('[DEFAULT]\nlog_file = %s\n'
                    % os.path.join(self.tmp, 'api.log'))
        self.config = main
        self.api_conf = api_conf

    def conductor_conf(self, host):
        path = os.path.join(self.tmp, host + '.conf')
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nhost = %s\nlog_file = %s\n'
                    '\n[database]\nconnection = %s\n'
                    % (host, os.path.join(self.tmp, host + '.log'),
                       self.url_as(CONDUCTOR_ROLE, self.db_name)))
        return path

    def env(self, files):
        env = dict(os.environ, SERVICEVM_CONFIG_FILES=';'.join(files))
        env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p])
        return env

    def start_api(self):
        gargs = types.SimpleNamespace(workers=self.args.api_workers,
                                      worker_class='gthread',
                                      threads=self.args.api_threads)
        self.api = B.Gunicorn('api',
                              'servicevm.api.wsgi:initialize_wsgi_app()',
                              gargs, self.env([self.config, self.api_conf]),
                              self.tmp, B.free_port())
        self.servers.append(self.api)
        self.api.wait_ready('/')

    def start_conductors(self, names):
        started = []
        for host in names:
            cconf = self.conductor_conf(host)
            server = B.Server(
                host, [os.path.join(VENV_BIN, 'servicevm-conductor'),
                       '--config-file', self.config, '--config-file', cconf],
                self.env([self.config]),
                os.path.join(self.tmp, host + '-stdout.log'))
            server.host = host
            self.servers.append(server)
            started.append(server)
        self.conductors = started
        self.wait_consumers(len(names))
        return started

    def stop_conductors(self):
        for server in self.conductors:
            server.stop()
            if server in self.servers:
                self.servers.remove(server)
        self.conductors = []

    def wait_consumers(self, n, timeout=90):
        """Until the conductors' topic queue has ``n`` consumers (the
        casts are spread round-robin among those consuming)."""
        topic = 'servicevm-conductor'

        def ready():
            for server in self.conductors:
                if not server.alive():
                    raise BenchError('%s exited during start-up:\n%s' % (
                        server.name, B.tail(server.log_path) + B.tail(
                            os.path.join(self.tmp, server.name + '.log'))))
            out = subprocess.run(
                ['bash', os.path.join(REPO, 'tools', 'rabbitmq.sh'), 'ctl',
                 'list_queues', '-q', 'name', 'consumers'], cwd=REPO,
                env=self.service_env(), capture_output=True, text=True,
                timeout=120).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == topic:
                    return int(parts[1]) == n
            return False
        B.wait_for(ready, timeout, '%d consumers on queue %s' % (n, topic),
                   interval=0.5)

    # ---- measuring ---------------------------------------------------

    def observer(self):
        import sqlalchemy as sa
        # A small pool: the benchmark's own sessions do not count in the
        # sessions opened per device.
        return self.engine('observer', self.url_as(OBSERVER_ROLE,
                                                   self.db_name),
                           poolclass=sa.pool.QueuePool, pool_size=2,
                           max_overflow=0)

    def observe(self, sql, **params):
        import sqlalchemy as sa
        with self.observer().connect() as conn:
            return conn.execute(sa.text(sql), params).fetchall()

    def ops_unfinished(self, ids):
        import sqlalchemy as sa
        with self.observer().connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT state, count(*) FROM operations WHERE id IN :ids '
                'GROUP BY state').bindparams(
                sa.bindparam('ids', expanding=True)), {'ids': list(ids)})
            by_state = dict(rows.fetchall())
        return by_state

    def wait_operations(self, ids, timeout, what):
        """Until every operation of ``ids`` rests; returns the time of the
        last poll that found them all finished, and the states."""
        deadline = time.monotonic() + timeout
        while True:
            by_state = self.ops_unfinished(ids)
            running = sum(v for k, v in by_state.items()
                          if k in ('PROCESSING', 'ROLLING_BACK', 'PAUSED'))
            if not running and sum(by_state.values()) == len(ids):
                return time.monotonic(), by_state
            if time.monotonic() > deadline:
                raise BenchError('timed out after %ds waiting for %s: %s'
                                 % (timeout, what, by_state))
            for server in self.conductors:
                if not server.alive():
                    raise BenchError('%s died:\n%s' % (
                        server.name, B.tail(os.path.join(
                            self.tmp, server.name + '.log'))))
            time.sleep(0.05)

    def op_times(self, ids):
        import sqlalchemy as sa
        with self.observer().connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT id, created_at, finished_at, state FROM operations '
                'WHERE id IN :ids').bindparams(
                sa.bindparam('ids', expanding=True)), {'ids': list(ids)})
            return {r.id: r for r in rows}

    def cpu(self):
        snap = {'api': B.cpu_seconds(self.api.pids()),
                'conductor': sum(B.cpu_seconds([c.pid] + B.children(c.pid))
                                 for c in self.conductors)}
        if self.pg_pid:
            snap['postgres'] = (proc_cpu_with_children(self.pg_pid) +
                                B.cpu_seconds(B.children(self.pg_pid)))
        if self.rabbit_pid:
            snap['rabbitmq'] = B.cpu_seconds([self.rabbit_pid])
        return snap

    @staticmethod
    def cpu_delta(before, after, n):
        return {k: round(1000.0 * (after[k] - before[k]) / n, 2)
                for k in before if k in after}

    def stmt_reset(self):
        self.admin_sql('SELECT pg_stat_statements_reset()')
        self.sessions0 = self.sessions()

    def sessions(self):
        """Sessions (connections) ever opened to the bench database."""
        return self.admin_sql(
            'SELECT sessions FROM pg_stat_database WHERE datname = :db',
            db=self.db_name)[0][0]

    def stmt_read(self):
        rows = self.admin_sql(
            'SELECT r.rolname, s.query, s.calls FROM pg_stat_statements s '
            'JOIN pg_roles r ON r.oid = s.userid '
            'WHERE s.dbid = (SELECT oid FROM pg_database '
            'WHERE datname = :db)', db=self.db_name)
        per = {'api': collections.Counter(),
               'conductor': collections.Counter()}
        queries = {'api': collections.Counter(),
                   'conductor': collections.Counter()}
        for role, query, calls in rows:
            who = {API_ROLE: 'api', CONDUCTOR_ROLE: 'conductor'}.get(role)
            if who is None:
                continue
            word = query.lstrip().split(None, 1)[0].upper() if query else '?'
            if word in TX_CONTROL:
                kind = 'tx'
            elif ' '.join(query.split()).upper() in PING_QUERIES:
                # oslo.db's engines have pool_pre_ping: a SELECT 1 at the
                # checkout of a connection, i.e. once per transaction.
                kind = 'ping'
            else:
                kind = word.lower()
            per[who][kind] += calls
            queries[who][' '.join(query.split())] += calls
        return per, queries

    @staticmethod
    def stmt_summary(per, queries, n, top=12):
        out = {}
        for who in ('api', 'conductor'):
            sql = sum(v for k, v in per[who].items() if k != 'tx')
            out[who] = {
                'sql_per_device': round(sql / n, 2),
                'ping_per_device': round(per[who]['ping'] / n, 2),
                'tx_control_per_device': round(per[who]['tx'] / n, 2),
                'by_kind_per_device': {k: round(v / n, 2)
                                       for k, v in sorted(per[who].items())},
                'top': [{'calls_per_device': round(c / n, 2),
                         'query': q[:300]}
                        for q, c in queries[who].most_common(top)],
            }
        out['sql_per_device'] = round(out['api']['sql_per_device'] +
                                      out['conductor']['sql_per_device'], 2)
        out['ping_per_device'] = round(out['api']['ping_per_device'] +
                                       out['conductor']['ping_per_device'], 2)
        out['tx_control_per_device'] = round(
            out['api']['tx_control_per_device'] +
            out['conductor']['tx_control_per_device'], 2)
        return out

    # ---- driving the API ---------------------------------------------

    def make_template(self, name, driver, attributes=None):
        status, body = B.http(
            'POST', 'http://127.0.0.1:%d/v1/device_templates' % self.api.port,
            self.headers, {'device_template': {
                'name': name, 'device_driver': driver,
                'attributes': attributes or {}}})
        if status != 201:
            raise BenchError('POST /v1/device_templates: %s %s'
                             % (status, body))
        return body['device_template']['id']

    def client(self):
        return Client(self.api.port, self.headers)

    def wait_op(self, client, op_id, poll_s, timeout):
        """GET the operation every ``poll_s`` until it rests; returns
        (monotonic time of the answer that showed it COMPLETED, polls)."""
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            if self.stop_event.wait(poll_s):
                raise Stopped()
            status, body = client.request('GET', '/v1/operations/' + op_id)
            polls += 1
            now = time.monotonic()
            if status != 200:
                raise BenchError('GET operation %s: %s %s'
                                 % (op_id, status, body))
            state = body['operation']['state']
            if state == 'COMPLETED':
                return now, polls
            if state in FAILED_OP_STATES:
                raise BenchError('operation %s ended %s: %s' % (
                    op_id, state, body['operation'].get('error')))
            if now > deadline:
                raise BenchError('operation %s still %s after %ds'
                                 % (op_id, state, timeout))

    def create_one(self, client, template, name, poll_s):
        """POST a device (and poll its operation unless ``poll_s`` is
        None); returns a record."""
        t_wall = time.time()
        t0 = time.monotonic()
        status, body = client.request('POST', '/v1/devices', {
            'device': {'template_id': template, 'name': name,
                       'kwargs': {'mgmt_address': '10.1.0.1'}}})
        t_resp = time.monotonic()
        if status != 202:
            raise BenchError('POST /v1/devices: %s %s' % (status, body))
        return self._record(client, body['device']['id'], body, t_wall,
                            t0, t_resp, poll_s)

    def delete_one(self, client, device_id, poll_s):
        t_wall = time.time()
        t0 = time.monotonic()
        status, body = client.request('DELETE', '/v1/devices/' + device_id)
        t_resp = time.monotonic()
        if status != 202:
            raise BenchError('DELETE /v1/devices/%s: %s %s'
                             % (device_id, status, body))
        return self._record(client, device_id, body, t_wall, t0, t_resp,
                            poll_s)

    def _record(self, client, device_id, body, t_wall, t0, t_resp, poll_s):
        """One request's record; with ``poll_s``, wait for its operation
        to end and record the latency too."""
        rec = {'device_id': device_id, 'operation_id': body['operation_id'],
               'sent_wall': t_wall, 'post_ms': 1000 * (t_resp - t0)}
        if poll_s is not None:
            done, polls = self.wait_op(client, rec['operation_id'], poll_s,
                                       self.args.op_timeout)
            rec['latency_ms'] = 1000 * (done - t0)
            rec['polls'] = polls
        return rec

    def parallel(self, items, threads, fn):
        """fn(client, item) for every item, by ``threads`` threads each
        with its own keep-alive connection; returns (records in item
        order, wall seconds)."""
        work = queue.Queue()
        for i, item in enumerate(items):
            work.put((i, item))
        results = [None] * len(items)
        errors = []

        def worker():
            client = self.client()
            try:
                while not self.stop_event.is_set():
                    try:
                        i, item = work.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        results[i] = fn(client, item)
                    except Stopped:
                        return
                    except Exception as e:
                        errors.append('%s: %s' % (type(e).__name__, e))
                        if len(errors) > 20:
                            self.stop_event.set()
            finally:
                client.close()
        pool = [threading.Thread(target=worker, daemon=True)
                for _ in range(min(threads, len(items)))]
        t0 = time.monotonic()
        for t in pool:
            t.start()
        deadline = t0 + self.args.op_timeout + 30 + 2 * len(items)
        for t in pool:
            t.join(max(0.1, deadline - time.monotonic()))
            if t.is_alive():
                self.stop_event.set()
                raise BenchError('client threads still running after %ds'
                                 % (deadline - t0))
        wall = time.monotonic() - t0
        if errors:
            self.errors.extend(errors[:5])
            raise BenchError('%d request(s) failed, e.g. %s'
                             % (len(errors), errors[0]))
        return results, wall

    def server_latencies(self, records):
        """request (POST sent, client clock) -> operation.finished_at (the
        commit that ended it, server clock; same machine), in ms."""
        times = self.op_times([r['operation_id'] for r in records])
        out = []
        for r in records:
            row = times.get(r['operation_id'])
            if row is not None and row.finished_at is not None:
                out.append(1000 * (utc_ts(row.finished_at) - r['sent_wall']))
        return out

    def breakdown(self, records):
        """Where the time of a create goes (p50 of each span, ms), from
        the timestamps the API and the conductor record: request sent ->
        operation row made (API) -> lease claimed (RPC delivery + claim) ->
        each step's start and end -> operation finished (commit) -> the
        client's GET that saw it."""
        import sqlalchemy as sa
        ids = [r['operation_id'] for r in records]
        with self.observer().connect() as conn:
            ops = {r.id: r for r in conn.execute(sa.text(
                'SELECT id, created_at, started_at, finished_at FROM '
                'operations WHERE id IN :ids').bindparams(
                sa.bindparam('ids', expanding=True)), {'ids': ids})}
            steps = collections.defaultdict(list)
            for r in conn.execute(sa.text(
                    'SELECT operation_id, seq, name, started_at, finished_at '
                    'FROM operation_steps WHERE operation_id IN :ids ORDER BY '
                    'seq').bindparams(sa.bindparam('ids', expanding=True)),
                    {'ids': ids}):
                steps[r.operation_id].append(r)
        spans = collections.defaultdict(list)
        for rec in records:
            op = ops.get(rec['operation_id'])
            if op is None or op.finished_at is None:
                continue
            marks = [('request sent', rec['sent_wall']),
                     ('operation row made (API)', utc_ts(op.created_at)),
                     ('lease claimed', utc_ts(op.started_at))]
            for st in steps[op.id]:
                marks.append(('step %s started' % st.name,
                              utc_ts(st.started_at)))
                marks.append(('step %s finished' % st.name,
                              utc_ts(st.finished_at)))
            marks.append(('operation finished', utc_ts(op.finished_at)))
            if rec.get('latency_ms') is not None:
                marks.append(('client GET saw it', rec['sent_wall'] +
                              rec['latency_ms'] / 1000.0))
            for (a, ta), (b, tb) in zip(marks, marks[1:]):
                spans['%s -> %s' % (a, b)].append(1000 * (tb - ta))
        return {k: round(pct(v, 50), 1) for k, v in spans.items()}

    @staticmethod
    def lat_summary(records, key='latency_ms'):
        values = [r[key] for r in records if r.get(key) is not None]
        return {'n': len(values),
                'p50_ms': round(pct(values, 50), 1) if values else None,
                'p95_ms': round(pct(values, 95), 1) if values else None,
                'max_ms': round(max(values), 1) if values else None}

    # ---- phases ------------------------------------------------------

    def warmup(self, template):
        n = 4 * self.args.api_workers * self.args.api_threads
        recs, _ = self.parallel(list(range(n)), 8,
                                lambda c, i: self.create_one(
                                    c, template, 'warm-%d' % i, 0.02))
        self.parallel([r['device_id'] for r in recs], 8,
                      lambda c, d: self.delete_one(c, d, 0.02))
        log('warm-up: %d devices created and deleted' % n)

    def low_load(self, template):
        n = self.args.low_load
        poll_s = self.args.low_poll_ms / 1000.0
        client = self.client()
        creates, deletes = [], []
        try:
            for i in range(n):
                creates.append(self.create_one(client, template,
                                               'low-%d' % i, poll_s))
            for r in creates:
                deletes.append(self.delete_one(client, r['device_id'],
                                               poll_s))
        finally:
            client.close()
        out = {'devices': n, 'poll_ms': self.args.low_poll_ms,
               'create': self.lat_summary(creates),
               'create_post': self.lat_summary(creates, 'post_ms'),
               'delete': self.lat_summary(deletes),
               'create_to_commit': self.lat_summary(
                   [{'x': v} for v in self.server_latencies(creates)], 'x'),
               'create_breakdown_p50_ms': self.breakdown(creates)}
        log('low load (%d sequential): create request->ACTIVE p50 %.1f ms, '
            'p95 %.1f ms (POST alone p50 %.1f ms; POST->commit p50 %.1f '
            'ms); delete p50 %.1f ms' % (
                n, out['create']['p50_ms'], out['create']['p95_ms'],
                out['create_post']['p50_ms'],
                out['create_to_commit']['p50_ms'], out['delete']['p50_ms']))
        return out

    def quiet_batch(self, template):
        """Creates then deletes without polling: statements and CPU per
        device, counted server side."""
        n = self.args.stmt_batch
        out = {'devices': n}
        creates = []
        for kind in ('create', 'delete'):
            if kind == 'create':
                items = list(range(n))

                def fn(c, i):
                    return self.create_one(c, template, 'quiet-%d' % i, None)
            else:
                items = [r['device_id'] for r in creates]

                def fn(c, d):
                    return self.delete_one(c, d, None)
            time.sleep(0.5)
            self.stmt_reset()
            cpu0 = self.cpu()
            t0 = time.monotonic()
            recs, _ = self.parallel(items, self.args.stmt_clients, fn)
            end, states = self.wait_operations(
                [r['operation_id'] for r in recs], self.args.op_timeout * 2,
                'the quiet %s batch' % kind)
            cpu1 = self.cpu()
            per, queries = self.stmt_read()
            if kind == 'create':
                creates = recs
            bad = {k: v for k, v in states.items() if k != 'COMPLETED'}
            if bad:
                raise BenchError('quiet %s batch: operations %s'
                                 % (kind, bad))
            opened = self.sessions() - self.sessions0
            out[kind] = {
                'wall_s': round(end - t0, 2),
                'db_sessions_opened_per_device': round(opened / n, 3),
                'statements': self.stmt_summary(per, queries, n, top=40),
                'cpu_ms_per_device': self.cpu_delta(cpu0, cpu1, n),
            }
            s = out[kind]['statements']
            log('quiet %s batch (%d, no polling): %.2f SQL statements per '
                'device (API %.2f + conductor %.2f; of which %.2f pre-ping '
                'SELECT 1) and %.2f BEGIN/COMMIT/ROLLBACK; %.2f database '
                'sessions opened per device; CPU ms/device %s'
                % (kind, n, s['sql_per_device'], s['api']['sql_per_device'],
                   s['conductor']['sql_per_device'], s['ping_per_device'],
                   s['tx_control_per_device'],
                   out[kind]['db_sessions_opened_per_device'],
                   out[kind]['cpu_ms_per_device']))
        return out

    def loaded(self, template):
        n = self.args.devices
        poll_s = self.args.poll_ms / 1000.0
        out = {'devices': n, 'clients': self.args.clients,
               'poll_ms': self.args.poll_ms}
        created = None
        for kind in ('create', 'delete'):
            if kind == 'create':
                items = list(range(n))

                def fn(c, i):
                    return self.create_one(c, template, 'load-%d' % i,
                                           poll_s)
            else:
                items = [r['device_id'] for r in created]

                def fn(c, d):
                    return self.delete_one(c, d, poll_s)
            time.sleep(0.5)
            self.stmt_reset()
            cpu0 = self.cpu()
            recs, wall = self.parallel(items, self.args.clients, fn)
            cpu1 = self.cpu()
            per, queries = self.stmt_read()
            opened = self.sessions() - self.sessions0
            if kind == 'create':
                created = recs
            polls = sum(r['polls'] for r in recs)
            out[kind] = {
                'wall_s': round(wall, 2),
                'devices_per_s': round(n / wall, 1),
                'latency': self.lat_summary(recs),
                'post': self.lat_summary(recs, 'post_ms'),
                'to_commit': self.lat_summary(
                    [{'x': v} for v in self.server_latencies(recs)], 'x'),
                'polls_per_device': round(polls / n, 2),
                'db_sessions_opened_per_device': round(opened / n, 3),
                'cpu_ms_per_device': self.cpu_delta(cpu0, cpu1, n),
                'statements': self.stmt_summary(per, queries, n, top=8),
            }
            o = out[kind]
            log('loaded %s: %d devices in %.1f s = %.1f devices/s; request->'
                'done p50 %.0f ms, p95 %.0f ms (POST->commit p50 %.0f, p95 '
                '%.0f); %.1f polls/device; %.2f database sessions opened/'
                'device; CPU ms/device %s; conductor SQL %.2f/device' % (
                    kind, n, wall, o['devices_per_s'], o['latency']['p50_ms'],
                    o['latency']['p95_ms'], o['to_commit']['p50_ms'],
                    o['to_commit']['p95_ms'], o['polls_per_device'],
                    o['db_sessions_opened_per_device'],
                    o['cpu_ms_per_device'],
                    o['statements']['conductor']['sql_per_device']))
        return out

    def io_run(self, template, conductors):
        n = self.args.io_devices
        hosts = ['bench-io%d-c%d' % (conductors, i + 1)
                 for i in range(conductors)]
        self.start_conductors(hosts)
        log('I/O run: %d conductor(s) %s consuming; %d creates with a %g s '
            'sleep each' % (conductors, ', '.join(hosts), n,
                            self.args.io_sleep))
        t0 = time.monotonic()
        recs, post_wall = self.parallel(
            list(range(n)), self.args.clients,
            lambda c, i: self.create_one(c, template, 'io%d-%d'
                                         % (conductors, i), None))
        end, states = self.wait_operations(
            [r['operation_id'] for r in recs],
            self.args.op_timeout + n * self.args.io_sleep * 2,
            '%d fault creates' % n)
        wall = end - t0
        bad = {k: v for k, v in states.items() if k != 'COMPLETED'}
        # When, relative to the first POST: the operations' rows made,
        # claimed by a conductor, and finished.
        import sqlalchemy as sa
        with self.observer().connect() as conn:
            rows = conn.execute(sa.text(
                'SELECT created_at, started_at, finished_at FROM operations '
                'WHERE id IN :ids').bindparams(
                sa.bindparam('ids', expanding=True)),
                {'ids': [r['operation_id'] for r in recs]}).fetchall()
        base = recs and min(r['sent_wall'] for r in recs)
        timeline = {}
        for i, name in enumerate(('created', 'claimed', 'finished')):
            values = [utc_ts(r[i]) - base for r in rows if r[i] is not None]
            if values:
                timeline[name] = [round(min(values), 2), round(max(values),
                                                               2)]
        # Who ran them: the conductor named in each create's end event.
        rows = self.observe(
            "SELECT details FROM events WHERE event_type = "
            "'device.create.end' AND operation_id = ANY(:ids)",
            ids=[r['operation_id'] for r in recs])
        spread = collections.Counter(
            (json.loads(r.details) or {}).get('conductor', '?')
            for r in rows)
        log('I/O run with %d conductor(s): %d devices ACTIVE in %.1f s (POSTs '
            'took %.1f s); per conductor %s; first/last claim %s s, '
            'first/last finish %s s after the first POST%s' % (
                conductors, n, wall, post_wall, dict(sorted(spread.items())),
                timeline.get('claimed'), timeline.get('finished'),
                '; NOT COMPLETED: %s' % bad if bad else ''))
        # Delete them all (no fault on delete) before the next run.
        t1 = time.monotonic()
        drecs, _ = self.parallel(
            [r['device_id'] for r in recs], self.args.clients,
            lambda c, d: self.delete_one(c, d, None))
        dend, dstates = self.wait_operations(
            [r['operation_id'] for r in drecs], self.args.op_timeout * 2,
            '%d fault deletes' % n)
        dbad = {k: v for k, v in dstates.items() if k != 'COMPLETED'}
        rss = {c.host: round(B.proc_status(c.pid).get('VmHWM', 0) / 1024, 1)
               for c in self.conductors}
        self.stop_conductors()
        ideal = -(-n // (8 * conductors)) * self.args.io_sleep
        return {'conductors': conductors, 'devices': n,
                'wall_s': round(wall, 2), 'post_wall_s': round(post_wall, 2),
                'ideal_wall_s': ideal,
                'per_conductor': dict(spread), 'not_completed': bad,
                'timeline_s': timeline,
                'delete_wall_s': round(dend - t1, 2),
                'delete_not_completed': dbad,
                'conductor_vmhwm_mib': rss,
                'device_ids': [r['device_id'] for r in recs]}

    def vim_check(self, device_ids):
        """The fault driver's journal and instances: creates per device
        and leftovers."""
        creates = collections.Counter()
        deletes = collections.Counter()
        path = os.path.join(self.state_dir, 'journal.jsonl')
        try:
            with open(path) as f:
                for line in f:
                    rec = json.loads(line)
                    if rec['event'] == 'create':
                        creates[rec['device_id']] += 1
                    elif rec['event'] == 'delete':
                        deletes[rec['device_id']] += 1
        except FileNotFoundError:
            pass
        ids = set(device_ids)
        twice = sorted(d for d, c in creates.items() if c > 1)
        never = sorted(ids - set(creates))
        inst_dir = os.path.join(self.state_dir, 'instances')
        left = sorted(n for n in (os.listdir(inst_dir)
                                  if os.path.isdir(inst_dir) else ())
                      if n.endswith('.json'))
        return {'journal_creates': sum(creates.values()),
                'journal_deletes': sum(deletes.values()),
                'devices_created_twice': twice,
                'devices_never_created': never,
                'instances_left': left}

    # ---- main --------------------------------------------------------

    def execute(self):
        args = self.args
        log('temp dir %s' % self.tmp)
        pg_url = self.service('postgres.sh')
        rabbit_url = self.service('rabbitmq.sh')
        self.admin_url = pg_url
        self.prepare_postgres()
        self.find_rabbit_pid()
        B.recreate_database(self.admin_url, self.db_name)
        self.db_created = True
        self.write_configs(rabbit_url)
        t0 = time.monotonic()
        B.run([os.path.join(VENV_BIN, 'servicevm-db-manage'),
               '--config-file', self.config, 'upgrade'], timeout=180,
              env=self.env([self.config]))
        log('database %s migrated in %.1f s' % (self.db_name,
                                                time.monotonic() - t0))
        self.start_api()
        noop = self.make_template('bench-noop', 'noop', {'image': 'cirros'})
        fault = self.make_template('bench-fault', 'fault', {
            'image': 'cirros',
            'fault': {'create': {'sleep': args.io_sleep}}})

        # 1. CPU-bound, noop driver, one conductor.
        if not args.skip_cpu:
            conductor, = self.start_conductors(['bench-cpu-c1'])
            self.warmup(noop)
            cpu = self.results['cpu_bound'] = {}
            cpu['low_load'] = self.low_load(noop)
            cpu['quiet'] = self.quiet_batch(noop)
            cpu['loaded'] = self.loaded(noop)
            status = B.proc_status(conductor.pid)
            cpu['conductor_vmhwm_mib'] = round(status.get('VmHWM', 0) / 1024,
                                               1)
            cpu['conductor_rss_mib'] = round(status.get('VmRSS', 0) / 1024, 1)
            cpu['api_memory_mib'] = round(
                self.api.memory()['vmhwm_sum_kb'] / 1024, 1)
            log('conductor peak RSS (VmHWM) %.1f MiB' %
                cpu['conductor_vmhwm_mib'])
            self.stop_conductors()

        # 2. I/O-bound, fault driver, 1 then 3 conductors.
        if not args.skip_io:
            io = self.results['io_bound'] = {'sleep_s': args.io_sleep}
            ids = []
            for n in (1, 3):
                run = self.io_run(fault, n)
                ids += run.pop('device_ids')
                io['c%d' % n] = run
            io['speedup'] = round(io['c1']['wall_s'] / io['c3']['wall_s'], 2)
            io['vim'] = self.vim_check(ids)
            log('I/O speed-up 1 -> 3 conductors: %.2fx; journal: %d creates, '
                '%d devices created twice, %d instances left' % (
                    io['speedup'], io['vim']['journal_creates'],
                    len(io['vim']['devices_created_twice']),
                    len(io['vim']['instances_left'])))
        return self.report()

    # ---- report ------------------------------------------------------

    def targets(self):
        checks = []

        def check(name, value, cmp, limit, fmt='%.2f'):
            ok = value <= limit if cmp == '<=' else (
                value < limit if cmp == '<' else value >= limit)
            checks.append({'target': name, 'value': value, 'limit': limit,
                           'cmp': cmp, 'pass': ok, 'fmt': fmt})
        cpu = self.results.get('cpu_bound')
        if cpu:
            check('p50 request->ACTIVE at low load < 100 ms',
                  cpu['low_load']['create']['p50_ms'], '<', 100.0, '%.1f ms')
            check('database statements per device create <= 25',
                  cpu['quiet']['create']['statements']['sql_per_device'],
                  '<=', 25, '%.2f')
            check('conductor RSS (VmHWM) < 150 MB',
                  cpu['conductor_vmhwm_mib'], '<', 150.0 / 1.048576,
                  '%.1f MiB')
        io = self.results.get('io_bound')
        if io:
            check('3 conductors >= 2.5x faster than 1', io['speedup'], '>=',
                  2.5, '%.2fx')
            check('devices created twice == 0',
                  len(io['vim']['devices_created_twice']), '<=', 0, '%d')
            check('instances left after deleting all == 0',
                  len(io['vim']['instances_left']), '<=', 0, '%d')
            check('I/O devices not ACTIVE / not deleted == 0',
                  sum(sum(io[c][k].values()) for c in ('c1', 'c3')
                      for k in ('not_completed', 'delete_not_completed')),
                  '<=', 0, '%d')
        return checks

    def report(self):
        args = self.args
        L = []
        L.append('')
        L.append('servicevm lifecycle benchmark: API gunicorn -w %d -k '
                 'gthread --threads %d, servicevm-conductor processes '
                 '(workers 8), PostgreSQL + RabbitMQ on loopback, noauth%s'
                 % (args.api_workers, args.api_threads,
                    ' [--quick]' if args.quick else ''))
        L.append('servicevm %s; machine: %d CPUs, load average at start %s, '
                 'at end %s' % (self.source, os.cpu_count(),
                                self.load_at_start, B.loadavg()))
        cpu = self.results.get('cpu_bound')
        if cpu:
            low, q, ld = cpu['low_load'], cpu['quiet'], cpu['loaded']
            L.append('')
            L.append('1. CPU-bound (noop driver, 1 conductor, conductor '
                     'poll_interval %gs)' % args.poll_interval)
            fmt = '  %-50s %s'
            L.append(fmt % ('low load: request->ACTIVE p50 / p95 (%d seq., '
                            'poll %d ms)' % (low['devices'], low['poll_ms']),
                            '%.1f / %.1f ms' % (low['create']['p50_ms'],
                                                low['create']['p95_ms'])))
            L.append(fmt % ('low load: POST alone p50; POST->commit p50',
                            '%.1f ms; %.1f ms' % (
                                low['create_post']['p50_ms'],
                                low['create_to_commit']['p50_ms'])))
            if args.verbose:
                for span, ms in low['create_breakdown_p50_ms'].items():
                    L.append('    %-62s %6.1f ms' % (span, ms))
            L.append(fmt % ('low load: delete request->gone p50 / p95',
                            '%.1f / %.1f ms' % (low['delete']['p50_ms'],
                                                low['delete']['p95_ms'])))
            for kind in ('create', 'delete'):
                o = ld[kind]
                L.append(fmt % ('loaded %s (%d devices, %d clients): '
                                'devices/s' % (kind, ld['devices'],
                                               ld['clients']),
                                '%.1f (%.1f s)' % (o['devices_per_s'],
                                                   o['wall_s'])))
                L.append(fmt % ('loaded %s: request->done p50 / p95 (poll '
                                '%d ms)' % (kind, ld['poll_ms']),
                                '%.0f / %.0f ms (%.1f polls/device)' % (
                                    o['latency']['p50_ms'],
                                    o['latency']['p95_ms'],
                                    o['polls_per_device'])))
                L.append(fmt % ('loaded %s: POST->commit p50 / p95' % kind,
                                '%.0f / %.0f ms' % (o['to_commit']['p50_ms'],
                                                    o['to_commit']['p95_ms'])))
                c = o['cpu_ms_per_device']
                L.append(fmt % ('loaded %s: CPU ms/device API (incl. polls) '
                                '/ conductor / PostgreSQL' % kind,
                                '%.1f / %.1f / %.1f' % (
                                    c['api'], c['conductor'],
                                    c.get('postgres', float('nan')))))
            for kind in ('create', 'delete'):
                o = q[kind]
                s = o['statements']
                c = o['cpu_ms_per_device']
                L.append(fmt % ('quiet %s (%d, no polling): SQL statements/'
                                'device' % (kind, q['devices']),
                                '%.2f (API %.2f + conductor %.2f)' % (
                                    s['sql_per_device'],
                                    s['api']['sql_per_device'],
                                    s['conductor']['sql_per_device'])))
                L.append(fmt % ('quiet %s: of which pre-ping SELECT 1; and '
                                'BEGIN/COMMIT/ROLLBACK' % kind,
                                '%.2f; +%.2f' % (
                                    s['ping_per_device'],
                                    s['tx_control_per_device'])))
                L.append(fmt % ('quiet %s: CPU ms/device API / conductor / '
                                'PostgreSQL' % kind,
                                '%.1f / %.1f / %.1f' % (
                                    c['api'], c['conductor'],
                                    c.get('postgres', float('nan')))))
            L.append(fmt % ('database sessions opened per device: quiet '
                            'create / loaded create',
                            '%.2f / %.2f' % tuple(
                                x['create']['db_sessions_opened_per_device']
                                for x in (q, ld))))
            L.append(fmt % ('conductor memory: VmHWM (peak RSS) / RSS at end',
                            '%.1f / %.1f MiB' % (cpu['conductor_vmhwm_mib'],
                                                 cpu['conductor_rss_mib'])))
            L.append(fmt % ('API memory (master + workers, sum of VmHWM)',
                            '%.1f MiB' % cpu['api_memory_mib']))
            if args.verbose:
                for kind in ('create', 'delete'):
                    for who in ('api', 'conductor'):
                        st = q[kind]['statements'][who]
                        L.append('  statements per device, quiet %s, %s: %s'
                                 % (kind, who, st['by_kind_per_device']))
                        for t in st['top']:
                            L.append('    %6.2f  %s' % (
                                t['calls_per_device'], t['query'][:150]))
        io = self.results.get('io_bound')
        if io:
            L.append('')
            L.append('2. I/O-bound (fault driver, create sleeps %g s, %d '
                     'devices, conductor workers 8)' % (
                         io['sleep_s'], io['c1']['devices']))
            fmt = '  %-50s %s'
            for c in ('c1', 'c3'):
                r = io[c]
                L.append(fmt % ('%d conductor(s): wall time to all ACTIVE'
                                % r['conductors'],
                                '%.1f s (ideal %.0f s; per conductor: %s)'
                                % (r['wall_s'], r['ideal_wall_s'], ', '.join(
                                        '%s %d' % kv for kv in
                                        sorted(r['per_conductor'].items())))))
            L.append(fmt % ('speed-up 1 -> 3 conductors',
                            '%.2fx' % io['speedup']))
            L.append(fmt % ('fault journal: creates / deletes',
                            '%d / %d' % (io['vim']['journal_creates'],
                                         io['vim']['journal_deletes'])))
        checks = self.targets()
        L.append('')
        L.append('targets (issue #3, "Speed"):')
        for c in checks:
            L.append('  %-50s %12s  %s' % (c['target'], c['fmt'] % c['value'],
                                           'PASS' if c['pass'] else 'MISS'))
        for note in self.notes:
            L.append('note: ' + note)
        print('\n'.join(L), flush=True)
        result = {
            'config': {
                'quick': args.quick, 'devices': args.devices,
                'clients': args.clients, 'poll_ms': args.poll_ms,
                'low_load': args.low_load, 'low_poll_ms': args.low_poll_ms,
                'stmt_batch': args.stmt_batch,
                'io_devices': args.io_devices, 'io_sleep_s': args.io_sleep,
                'api': 'gunicorn -w %d -k gthread --threads %d'
                       % (args.api_workers, args.api_threads),
                'conductor_poll_interval_s': args.poll_interval,
                'conductor_workers': 8,
                'statement_counting': 'pg_stat_statements (top-level), '
                                      'per role: API / conductor / bench',
                'database': 'postgresql', 'auth_strategy': 'noauth'},
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
        self.stop_event.set()
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as e:  # keep cleaning up
                log('stopping %s: %s' % (server.name, e))
        self.servers = []
        for engine in self.engines.values():
            engine.dispose()
        self.engines = {}
        if self.db_created:
            try:
                B.recreate_database(self.admin_url, self.db_name,
                                    drop_only=True)
                log('dropped database %s' % self.db_name)
            except Exception as e:
                log('could not drop database %s: %s' % (self.db_name, e))
        B.stop_started_services(self.started_services, self.args,
                                self.service_env())
        B.remove_tmp(self.tmp, self.args)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true',
                   help='smaller counts, for a smoke run')
    p.add_argument('--devices', type=int,
                   help='devices of the loaded CPU-bound phase (1000; '
                        'quick 100)')
    p.add_argument('--clients', type=int, default=16,
                   help='client threads (default 16)')
    p.add_argument('--poll-ms', type=int, default=20,
                   help='GET of the operation every N ms under load '
                        '(default 20)')
    p.add_argument('--low-load', type=int,
                   help='sequential creates at low load (50; quick 10)')
    p.add_argument('--low-poll-ms', type=int, default=10,
                   help='poll period at low load (default 10)')
    p.add_argument('--stmt-batch', type=int,
                   help='devices of the quiet batch in which statements '
                        'and CPU are counted (200; quick 30)')
    p.add_argument('--stmt-clients', type=int, default=8)
    p.add_argument('--io-devices', type=int,
                   help='devices of each I/O-bound run (300; quick 48)')
    p.add_argument('--io-sleep', type=float, default=2.0,
                   help='seconds the fault driver sleeps in create')
    p.add_argument('--poll-interval', type=float, default=0.05,
                   help='[conductor] poll_interval (default 0.05)')
    p.add_argument('--op-timeout', type=int, default=120,
                   help='seconds one operation may take (default 120)')
    p.add_argument('--api-workers', type=int, default=2)
    p.add_argument('--api-threads', type=int, default=4)
    p.add_argument('--skip-cpu', action='store_true')
    p.add_argument('--skip-io', action='store_true')
    p.add_argument('--db-name', default='servicevm_bench_lifecycle')
    p.add_argument('--keep-servers', action='store_true',
                   help='leave the private PostgreSQL and RabbitMQ running '
                        '(saves their start-up next time)')
    p.add_argument('--keep-tmp', action='store_true',
                   help='keep the temp dir (configs, logs, fault VIM)')
    p.add_argument('--json', help='write the figures to this file')
    p.add_argument('-v', '--verbose', action='store_true',
                   help='also print the statements per device, by kind and '
                        'the most frequent')
    args = p.parse_args(argv)
    defaults = {'devices': (1000, 100), 'low_load': (50, 10),
                'stmt_batch': (200, 30), 'io_devices': (300, 72)}
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    B.stop_on_signals()
    sys.path.insert(0, REPO)
    bench = Bench(args)
    bench.load_at_start = B.loadavg()
    bench.source = B.source_version()
    try:
        result = bench.execute()
    except BenchError as e:
        log('ERROR: %s' % e)
        names = ['api-gunicorn.log', 'api.log'] + sorted(
            n for n in os.listdir(bench.tmp) if n.startswith('bench-')
            and n.endswith('.log'))
        B.show_logs(bench.tmp, names)
        return 2
    finally:
        bench.cleanup()
    return 0 if result['all_pass'] else 1


if __name__ == '__main__':
    sys.exit(main())
