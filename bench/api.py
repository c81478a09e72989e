#!/usr/bin/env python3
"""Benchmark of the servicevm API, and of the floor this machine allows.

    .venv/bin/python bench/api.py [--duration 10] [--json out.json]

In one run it:

1. starts a private PostgreSQL and RabbitMQ with tools/postgres.sh and
   tools/rabbitmq.sh, by default with a state dir (.ci/work/bench) and
   ports of its own so that a test run beside it neither stops nor shares
   them (``--shared-servers``: those of the test suite; either way it stops
   only what it started, and ``--keep-servers`` leaves them up), creates a
   fresh database ``servicevm_bench`` and migrates it with
   ``servicevm-db-manage upgrade``;
2. loads 10,000 ACTIVE devices (with kwargs) across 10 projects straight
   through the database layer, and checks through the API that a project
   lists 1,000 devices;
3. measures the floor: a bare Pecan app (bench/bare_app.py) under the same
   gunicorn settings and the same wrk settings, before and after the API;
4. serves the API under gunicorn (2 workers) with one servicevm-conductor,
   and drives list (page of 100), show, create (noop driver) and delete
   (distinct ACTIVE devices made beforehand) with wrk at 1 and 8
   connections, as a member of one project;
5. prints requests/s, p50/p95 latency, errors (non-2xx and socket
   errors) and the ratio to the floor of each, the CPU time the API's
   processes spent per request (steadier than req/s on a shared machine),
   the API's peak memory, and the targets of the issue with PASS/MISS;
   with ``--json`` writes the same figures to a file.

Besides the floor, a second reference (``--no-ref`` skips it): after the
API, bench/ref_app.py, the floor plus one SQL statement per request (Core
SQLAlchemy in autocommit, no auth, policy, validation or operations),
serves show, list and create under the same gunicorn, database and wrk
scenarios; its rows (ref-show, ref-list, ref-create) show the most an API
that reads or writes its database per request reaches on this machine, and
the "x ref" column the API's req/s as a fraction of it.

Both apps run under ``gunicorn -w 2 -k gthread --threads 4`` (HTTP
keep-alive); ``--worker-class sync`` serves them with sync workers
instead (a new connection per request). ``--profile DIR`` runs cProfile in
the API's workers (use with ``--worker-class sync``; the figures are then
not representative).

Everything it started is stopped on exit (also on Ctrl-C / SIGTERM) and
the bench database is dropped. Needs wrk (installed with apt-get when
missing) and root or a running PostgreSQL/RabbitMQ for the tools/ scripts.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(REPO, 'bench')
# The venv this script runs in, else the repo's.
VENV_BIN = (os.path.dirname(sys.executable)
            if os.path.exists(os.path.join(os.path.dirname(sys.executable),
                                           'gunicorn'))
            else os.path.join(REPO, '.venv', 'bin'))
LUA = os.path.join(BENCH_DIR, 'wrk_driver.lua')

OPS = ('list', 'show', 'create', 'delete')
# The ops bench/ref_app.py serves (it deletes nothing).
REF_OPS = ('list', 'show', 'create')

# The targets of the issue ("Speed").
TARGETS = [
    # (name, op, connections, metric, comparison, threshold)
    ('list throughput >= 0.6 x floor', 'list', 8, 'ratio', '>=', 0.6),
    ('show throughput >= 0.6 x floor', 'show', 8, 'ratio', '>=', 0.6),
    ('create throughput >= 0.4 x floor', 'create', 8, 'ratio', '>=', 0.4),
    ('list p50 < 15 ms', 'list', 1, 'p50_ms', '<', 15.0),
    ('show p50 < 6 ms', 'show', 1, 'p50_ms', '<', 6.0),
    ('create p50 < 10 ms', 'create', 1, 'p50_ms', '<', 10.0),
]

# The benchmark's own PostgreSQL and RabbitMQ (see --shared-servers).
BENCH_SERVERS_ENV = {
    'SERVICEVM_TEST_STATE': os.environ.get(
        'SERVICEVM_BENCH_STATE', os.path.join(REPO, '.ci', 'work', 'bench')),
    'SERVICEVM_PG_PORT': '25532',
    'SERVICEVM_RABBIT_PORT': '25772',
    'SERVICEVM_RABBIT_DIST_PORT': '25773',
    'SERVICEVM_EPMD_PORT': '24469',
    'SERVICEVM_RABBIT_NODENAME': 'servicevm-bench@localhost',
}


def servers_env(name, pg_port, rabbit_port, epmd_port, node=None, **more):
    """tools/postgres.sh and rabbitmq.sh settings (and ``more``) for the
    servers of another benchmark: state in .ci/work/bench-<name>
    ($SERVICEVM_<NAME>_BENCH_STATE overrides it), ports of its own
    (RabbitMQ's distribution port is the next one), a RabbitMQ node of
    its own."""
    env = {
        'SERVICEVM_TEST_STATE': os.environ.get(
            'SERVICEVM_%s_BENCH_STATE' % name.upper(),
            os.path.join(REPO, '.ci', 'work', 'bench-' + name)),
        'SERVICEVM_PG_PORT': str(pg_port),
        'SERVICEVM_RABBIT_PORT': str(rabbit_port),
        'SERVICEVM_RABBIT_DIST_PORT': str(rabbit_port + 1),
        'SERVICEVM_EPMD_PORT': str(epmd_port),
        'SERVICEVM_RABBIT_NODENAME': 'servicevm-bench-%s@localhost' % (
            node or name),
    }
    env.update({k: str(v) for k, v in more.items()})
    return env


def stop_on_signals():
    """SIGTERM and SIGHUP end a benchmark as Ctrl-C does: through its
    clean-up."""
    def _signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGHUP, _signal)


def show_logs(directory, names, skip_empty=True):
    """Print the end of each of the ``names`` logs in ``directory``."""
    for name in names:
        path = os.path.join(directory, name)
        if os.path.exists(path) and not (
                skip_empty and not os.path.getsize(path)):
            print('---- %s ----\n%s' % (name, tail(path)), flush=True)


def log(msg):
    print('[bench %s] %s' % (time.strftime('%H:%M:%S'), msg), flush=True)


class BenchError(Exception):
    pass


# ---- small helpers ---------------------------------------------------------

def run(cmd, timeout, env=None, check=True, capture=True):
    """Run a command with a bounded wait; returns its stdout."""
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, timeout=timeout, text=True,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired:
        raise BenchError('%s did not finish within %ds' % (cmd[0], timeout))
    if check and proc.returncode != 0:
        raise BenchError('%s failed (exit %d):\n%s%s' % (
            ' '.join(cmd), proc.returncode, proc.stdout or '',
            proc.stderr or ''))
    return proc.stdout or ''


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def source_version():
    """The commit of the tree benchmarked, with +dirty when it has
    uncommitted changes to servicevm/."""
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                              cwd=REPO, capture_output=True, text=True,
                              timeout=30)
        if head.returncode != 0:
            return 'unknown (not a git work tree)'
        dirty = subprocess.run(['git', 'status', '--porcelain', '--',
                                'servicevm'], cwd=REPO, capture_output=True,
                               text=True, timeout=30).stdout.strip()
        return head.stdout.strip() + ('+dirty' if dirty else '')
    except (OSError, subprocess.TimeoutExpired):
        return 'unknown'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tail(path, lines=30):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError:
        return '(no %s)' % path


def http(method, url, headers=None, body=None, timeout=10):
    """(status, parsed JSON or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers=dict(headers or {}))
    if data is not None:
        req.add_header('Content-Type', 'application/json')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def wait_for(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError('timed out after %ds waiting for %s'
                             % (timeout, what))
        time.sleep(interval)


def ensure_wrk():
    if shutil.which('wrk'):
        return
    if os.geteuid() != 0:
        raise BenchError('wrk is missing: apt-get install wrk')
    log('wrk not found: apt-get update && apt-get install -y wrk')
    env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    run(['apt-get', 'update', '-qq'], timeout=300, env=env)
    run(['apt-get', 'install', '-y', '-qq', 'wrk'], timeout=300, env=env)
    if not shutil.which('wrk'):
        raise BenchError('apt-get install wrk did not provide wrk')


# ---- processes -------------------------------------------------------------

def proc_status(pid):
    """VmRSS and VmHWM of a process, in kB."""
    values = {}
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(('VmRSS:', 'VmHWM:')):
                    key, value = line.split(':', 1)
                    values[key] = int(value.split()[0])
    except OSError:
        pass
    return values


def cpu_seconds(pids):
    """User + system CPU time of processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/stat' % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(')') + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf('SC_CLK_TCK')


def children(pid):
    result = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # The command may contain spaces: the ppid follows the last ')'.
        fields = stat[stat.rfind(')') + 2:].split()
        if int(fields[1]) == pid:
            result.append(int(entry))
    return result


class Server:
    """A process we start (in its own session) and stop, by its pid."""

    def __init__(self, name, cmd, env, log_path):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, 'ab')
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log('%s did not stop within %ds: SIGKILL' % (self.name,
                                                             timeout))
        # Whatever is left of its process group (gunicorn workers...).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


class Gunicorn(Server):
    """gunicorn with its workers, whose memory is sampled while it runs."""

    def __init__(self, name, app, args, env, tmp, port, extra=()):
        self.port = port
        cmd = [os.path.join(VENV_BIN, 'gunicorn'),
               '-w', str(args.workers), '-k', args.worker_class,
               '-b', '127.0.0.1:%d' % port,
               '--backlog', '2048', '--timeout', '120',
               '--keep-alive', '5',
               '--error-logfile', os.path.join(tmp, name + '-gunicorn.log'),
               '--log-level', 'warning',
               '--control-socket', os.path.join(tmp, name + '.ctl')]
        if args.worker_class == 'gthread':
            cmd += ['--threads', str(args.threads)]
        cmd += list(extra) + [app]
        super().__init__(name, cmd, env,
                         os.path.join(tmp, name + '-stdout.log'))
        self.peak_rss_kb = 0
        self.workers_seen = set()
        self._stop_sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def pids(self):
        return [self.pid] + children(self.pid)

    def _sample(self):
        while not self._stop_sampling.wait(0.25):
            pids = self.pids()
            self.workers_seen.update(pids[1:])
            rss = sum(proc_status(p).get('VmRSS', 0) for p in pids)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)

    def memory(self):
        """Peak memory of master + workers: the sum of their VmHWM and the
        largest sum of their VmRSS seen while sampling (kB)."""
        per = {p: proc_status(p) for p in self.pids()}
        return {'vmhwm_sum_kb': sum(v.get('VmHWM', 0) for v in per.values()),
                'peak_rss_sum_kb': self.peak_rss_kb,
                'processes': {str(p): v for p, v in per.items()},
                'workers_seen': len(self.workers_seen)}

    def wait_ready(self, path, timeout=60):
        url = 'http://127.0.0.1:%d%s' % (self.port, path)

        def ready():
            if not self.alive():
                raise BenchError('%s exited during start-up:\n%s' % (
                    self.name, tail(self.log_path) + tail(os.path.join(
                        os.path.dirname(self.log_path),
                        self.name + '-gunicorn.log'))))
            try:
                return http('GET', url, timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout, '%s to answer on %s' % (self.name, url))

    def stop(self, timeout=20):
        self._stop_sampling.set()
        super().stop(timeout)


# ---- database ------------------------------------------------------------

def db_url_for(url, name):
    base, _, _ = url.rpartition('/')
    return '%s/%s' % (base, name)


def recreate_database(admin_url, name, drop_only=False):
    import sqlalchemy as sa
    engine = sa.create_engine(admin_url, isolation_level='AUTOCOMMIT',
                              poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS "%s" WITH (FORCE)'
                                 % name))
            if not drop_only:
                conn.execute(sa.text('CREATE DATABASE "%s"' % name))
    finally:
        engine.dispose()


class Data:
    """The rows the benchmark made: projects, templates, device ids."""

    def __init__(self, url):
        import sqlalchemy as sa
        from servicevm.db.sqlalchemy import models
        self.sa = sa
        self.models = models
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.projects = []
        self.templates = {}
        self.device_ids = {}
        self.user_id = uuid.uuid4().hex
        self._clock = datetime.datetime(2024, 1, 1)

    def _now(self):
        self._clock += datetime.timedelta(microseconds=1000)
        return self._clock

    def load(self, projects, per_project):
        m = self.models
        self.projects = [uuid.uuid4().hex for _ in range(projects)]
        templates, attributes, service_types = [], [], []
        for project in self.projects:
            tid = str(uuid.uuid4())
            self.templates[project] = tid
            templates.append(dict(
                id=tid, project_id=project, name='bench-noop',
                description='noop template of the benchmark',
                device_driver='noop', mgmt_driver='noop',
                created_at=self._now()))
            attributes += [
                dict(project_id=project, template_id=tid, key='image',
                     value='cirros', created_at=self._now()),
                dict(project_id=project, template_id=tid, key='flavor',
                     value='m1.tiny', created_at=self._now())]
            service_types.append(dict(project_id=project, template_id=tid,
                                      service_type='router',
                                      created_at=self._now()))
        with self.engine.begin() as conn:
            conn.execute(m.DeviceTemplate.__table__.insert(), templates)
            conn.execute(m.DeviceTemplateAttribute.__table__.insert(),
                         attributes)
            conn.execute(m.ServiceType.__table__.insert(), service_types)
        for project in self.projects:
            self.device_ids[project] = self.add_devices(project, per_project)

    def add_devices(self, project, count, name='bench'):
        m = self.models
        devices, kwargs, ids = [], [], []
        for i in range(count):
            did = str(uuid.uuid4())
            ids.append(did)
            now = self._now()
            devices.append(dict(
                id=did, project_id=project, user_id=self.user_id,
                name='%s-%05d' % (name, i), description='',
                template_id=self.templates[project],
                instance_id='noop-%s' % did,
                mgmt_address='10.0.%d.%d' % (i // 250 % 250, i % 250 + 1),
                status='ACTIVE', status_reason=None, power_state='running',
                ready=True, created_at=now, updated_at=None))
            kwargs += [
                dict(project_id=project, device_id=did, key='mgmt_address',
                     value='10.0.%d.%d' % (i // 250 % 250, i % 250 + 1),
                     created_at=now),
                dict(project_id=project, device_id=did, key='flavor',
                     value={'vcpus': 1, 'ram': 512}, created_at=now)]
        with self.engine.begin() as conn:
            for start in range(0, len(devices), 5000):
                conn.execute(m.Device.__table__.insert(),
                             devices[start:start + 5000])
            for start in range(0, len(kwargs), 10000):
                conn.execute(m.DeviceArg.__table__.insert(),
                             kwargs[start:start + 10000])
            # Fresh statistics, as autovacuum would have after a while.
            conn.execute(self.sa.text(
                'ANALYZE devices; ANALYZE device_kwargs; '
                'ANALYZE device_templates'))
        return ids

    def count(self, sql, **params):
        with self.engine.connect() as conn:
            return conn.execute(self.sa.text(sql), params).scalar()

    def pending_operations(self):
        return self.count("SELECT count(*) FROM operations "
                          "WHERE state = 'PROCESSING'")

    def dispose(self):
        self.engine.dispose()


# ---- wrk -------------------------------------------------------------------

def wrk(url, connections, duration, headers, tmp, label, mode='static',
        method='GET', body=None, ids=None, prefix='/', timeout_s=10,
        server=None):
    threads = max(1, min(connections, 2))
    while connections % threads:
        threads -= 1
    env = dict(os.environ, BENCH_MODE=mode, BENCH_METHOD=method,
               BENCH_PREFIX=prefix, BENCH_THREADS=str(threads))
    if body is not None:
        path = os.path.join(tmp, label + '-body.json')
        with open(path, 'w') as f:
            json.dump(body, f)
        env['BENCH_BODY_FILE'] = path
    if ids is not None:
        path = os.path.join(tmp, label + '-ids.txt')
        with open(path, 'w') as f:
            f.write('\n'.join(ids) + '\n')
        env['BENCH_IDS_FILE'] = path
    cmd = ['wrk', '-t', str(threads), '-c', str(connections),
           '-d', '%ds' % duration, '--latency', '--timeout',
           '%ds' % timeout_s, '-s', LUA]
    for key, value in headers.items():
        cmd += ['-H', '%s: %s' % (key, value)]
    cmd.append(url)
    pids = server.pids() if server else []
    cpu0 = cpu_seconds(pids)
    out = run(cmd, timeout=duration + timeout_s + 30, env=env)
    cpu = cpu_seconds(pids) - cpu0
    with open(os.path.join(tmp, label + '-wrk.txt'), 'w') as f:
        f.write(' '.join(cmd) + '\n' + out)
    for line in out.splitlines():
        if line.startswith('BENCH_RESULT '):
            raw = json.loads(line[len('BENCH_RESULT '):])
            break
    else:
        raise BenchError('wrk printed no result:\n' + out)
    seconds = raw['duration_us'] / 1e6
    socket_errors = sum(raw['socket_errors'].values())
    return {
        'connections': connections, 'wrk_threads': threads,
        'requests': raw['requests'],
        'rps': raw['requests'] / seconds if seconds else 0.0,
        'p50_ms': raw['latency_us']['p50'] / 1000.0,
        'p95_ms': raw['latency_us']['p95'] / 1000.0,
        'p99_ms': raw['latency_us']['p99'] / 1000.0,
        'max_ms': raw['latency_us']['max'] / 1000.0,
        'errors': raw['non2xx'] + socket_errors,
        'non2xx': raw['non2xx'], 'statuses': raw['statuses'],
        'socket_errors': raw['socket_errors'],
        'ids_exhausted': raw['exhausted'],
        # CPU the server's processes used per request: unlike req/s, this
        # hardly moves when other work shares the machine.
        'server_cpu_ms_per_req': (1000.0 * cpu / raw['requests']
                                  if server and raw['requests'] else None),
        # Other work on the machine during the run, if any.
        'loadavg_1m_after': float(loadavg().split()[0]),
    }


# ---- the run ---------------------------------------------------------------

class Bench:

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='servicevm-bench-')
        self.started_services = []
        self.servers = []
        self.data = None
        self.admin_url = None
        self.db_name = args.db_name
        self.db_created = False
        self.results = {'floor': {}, 'api': {}, 'ref': {}, 'drain_s': {}}
        self.memory = None
        self.ref_memory_kb = None
        self.notes = []

    # services
    def service_env(self):
        """The tools/ scripts' environment: by default a state dir and
        ports of the benchmark's own, so that a test run that stops its
        servers (or loads them) does not meet the benchmark's."""
        env = dict(os.environ)
        if not self.args.shared_servers:
            env.update(BENCH_SERVERS_ENV)
        return env

    def service(self, script):
        path = os.path.join(REPO, 'tools', script)
        env = self.service_env()
        status = subprocess.run(['bash', path, 'status'], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        if status.returncode != 0:
            log('starting %s' % script)
            self.started_services.append(script)
            run(['bash', path, 'start'], timeout=600, env=env, capture=False)
        else:
            log('%s: %s' % (script, status.stdout.strip()))
        return run(['bash', path, 'url'], timeout=30, env=env).strip()

    def write_config(self, pg_url, rabbit_url):
        path = os.path.join(self.tmp, 'servicevm.conf')
        levels = ','.join([
            'servicevm=WARNING', 'amqp=WARNING', 'amqplib=WARNING',
            'oslo.messaging=WARNING', 'oslo_messaging=WARNING',
            'sqlalchemy=WARNING', 'oslo_db=WARNING', 'oslo_policy=WARNING',
            'keystonemiddleware=WARNING', 'stevedore=WARNING',
            'urllib3=WARNING', 'iso8601=WARNING', 'pecan=WARNING',
            'routes=WARNING'])
        with open(path, 'w') as f:
            f.write('[DEFAULT]\n'
                    'auth_strategy = noauth\n'
                    'transport_url = %s\n'
                    'host = bench-conductor\n'
                    'debug = false\n'
                    'use_stderr = false\n'
                    'log_file = %s\n'
                    'default_log_levels = %s\n'
                    '\n[database]\nconnection = %s\n'
                    % (rabbit_url, os.path.join(self.tmp, 'api.log'), levels,
                       db_url_for(pg_url, self.db_name)))
        cpath = os.path.join(self.tmp, 'conductor.conf')
        with open(cpath, 'w') as f:
            f.write('[DEFAULT]\nlog_file = %s\n'
                    'graceful_shutdown_timeout = 5\n'
                    % os.path.join(self.tmp, 'conductor.log'))
        return path, cpath

    def env(self, config):
        env = dict(os.environ, SERVICEVM_CONFIG_FILES=config)
        env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
        # The servicevm of this tree, also when the venv has another
        # installed (e.g. bench/ run from a copy of the repo).
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p])
        return env

    def headers(self, project):
        return {'X-Project-Id': project, 'X-User-Id': self.data.user_id,
                'X-Roles': 'member'}

    def start_api(self, config, cconfig):
        env = self.env(config)
        extra = []
        if self.args.profile:
            os.makedirs(self.args.profile, exist_ok=True)
            env['BENCH_PROFILE_DIR'] = os.path.abspath(self.args.profile)
            extra = ['-c', os.path.join(BENCH_DIR, 'gunicorn_profile.py')]
        api = Gunicorn('api', 'servicevm.api.wsgi:initialize_wsgi_app()',
                       self.args, env, self.tmp, free_port(), extra)
        self.servers.append(api)
        conductor = Server(
            'conductor',
            [os.path.join(VENV_BIN, 'servicevm-conductor'),
             '--config-file', config, '--config-file', cconfig],
            env, os.path.join(self.tmp, 'conductor-stdout.log'))
        self.servers.append(conductor)
        api.wait_ready('/')
        return api, conductor

    def floor(self, tag):
        env = self.env(os.path.join(self.tmp, 'servicevm.conf'))
        bare = Gunicorn('floor-' + tag, 'bare_app:app', self.args, env,
                        self.tmp, free_port(),
                        ['--pythonpath', BENCH_DIR])
        self.servers.append(bare)
        try:
            bare.wait_ready('/')
            url = 'http://127.0.0.1:%d/' % bare.port
            headers = self.headers(self.data.projects[0])
            wrk(url, 8, 2, headers, self.tmp, 'floor-%s-warmup' % tag)
            out = {}
            for conns in self.args.connections:
                r = wrk(url, conns, self.args.duration, headers, self.tmp,
                        'floor-%s-c%d' % (tag, conns), server=bare)
                out[conns] = r
                log('floor (%s) c=%d: %.0f req/s, p50 %.2f ms, p95 %.2f ms, '
                    'errors %d' % (tag, conns, r['rps'], r['p50_ms'],
                                   r['p95_ms'], r['errors']))
            mem = bare.memory()
            out['memory_kb'] = mem['vmhwm_sum_kb']
            return out
        finally:
            bare.stop()
            self.servers.remove(bare)

    def drain(self, label, timeout):
        t0 = time.monotonic()
        try:
            wait_for(lambda: self.data.pending_operations() == 0, timeout,
                     'the conductor to finish the operations of ' + label,
                     interval=0.5)
        except BenchError as e:
            self.notes.append(str(e))
            log('WARNING: %s' % e)
        took = time.monotonic() - t0
        self.results['drain_s'][label] = round(took, 2)
        return took

    def sanity(self, base, project):
        headers = self.headers(project)
        template = self.data.templates[project]
        # Listing: a project sees exactly its 1,000 devices.
        status, body = http('GET', base + '/v1/devices?limit=1000',
                            headers)
        if status != 200:
            raise BenchError('GET /v1/devices: %s %s' % (status, body))
        n = len(body['devices'])
        nxt = body.get('devices_links') or []
        rest = 0
        if nxt:
            status, body2 = http('GET', nxt[0]['href'], headers)
            rest = len(body2.get('devices', []))
        total = n + rest
        log('project %s lists %d devices through the API' % (project, total))
        if total != self.args.per_project:
            raise BenchError('the project lists %d devices, not %d'
                             % (total, self.args.per_project))
        # Create reaches ACTIVE through the conductor; delete removes it.
        status, body = http('POST', base + '/v1/devices', headers,
                            {'device': {'template_id': template,
                                        'name': 'sanity'}})
        if status != 202:
            raise BenchError('POST /v1/devices: %s %s' % (status, body))
        did = body['device']['id']
        url = base + '/v1/devices/' + did

        def active():
            status, body = http('GET', url, headers)
            device = (body or {}).get('device') or {}
            if status != 200 or device.get('status') == 'ERROR':
                raise BenchError('device %s: %s %s (see conductor.log)'
                                 % (did, status, body))
            return device.get('status') == 'ACTIVE'
        wait_for(active, 60, 'device %s to become ACTIVE' % did)
        status, body = http('DELETE', url, headers)
        if status != 202:
            raise BenchError('DELETE %s: %s %s' % (url, status, body))
        wait_for(lambda: http('GET', url, headers)[0] == 404, 60,
                 'device %s to be deleted' % did)
        log('sanity: create -> ACTIVE and delete -> gone work')

    def scenarios(self, base, project):
        """wrk's settings of list, show and create (url and the other
        arguments of wrk()) for a server at ``base``, as ``project``."""
        create_body = {'device': {'template_id': self.data.templates[project],
                                  'name': 'bench-created',
                                  'kwargs': {'mgmt_address': '10.1.0.1'}}}
        return {
            'list': dict(url=base + '/v1/devices?limit=100'),
            'show': dict(url=base + '/v1/devices/', mode='cycle',
                         ids=self.data.device_ids[project],
                         prefix='/v1/devices/'),
            'create': dict(url=base + '/v1/devices', method='POST',
                           body=create_body),
        }

    def drive_api(self, api):
        base = 'http://127.0.0.1:%d' % api.port
        project = self.data.projects[0]
        headers = self.headers(project)
        d = self.args.duration
        scenarios = self.scenarios(base, project)
        # Warm-up: every worker imports, connects and caches its queries.
        warm_ids = self.data.add_devices(project, 3000, name='warm')
        for op, kw in scenarios.items():
            wrk(kw['url'], 8, 2, headers, self.tmp, 'warmup-' + op,
                **{k: v for k, v in kw.items() if k != 'url'})
        wrk(base + '/v1/devices/', 2, 1, headers, self.tmp,
            'warmup-delete', mode='once', method='DELETE', ids=warm_ids,
            prefix='/v1/devices/')
        self.drain('warmup', 120)
        if self.args.profile:
            open(os.path.join(self.args.profile, 'enabled'), 'w').close()
        out = self.results['api']
        for op in self.args.ops:
            for conns in self.args.connections:
                label = '%s-c%d' % (op, conns)
                if op == 'delete':
                    need = self._delete_pool_size(conns)
                    ids = self.data.add_devices(project, need,
                                                name='del-c%d' % conns)
                    r = wrk(base + '/v1/devices/', conns, d, headers,
                            self.tmp, label, mode='once', method='DELETE',
                            ids=ids, prefix='/v1/devices/', server=api)
                    r['ids_prepared'] = need
                else:
                    kw = scenarios[op]
                    r = wrk(kw['url'], conns, d, headers, self.tmp, label,
                            server=api,
                            **{k: v for k, v in kw.items() if k != 'url'})
                out.setdefault(op, {})[conns] = r
                log('%s c=%d: %.0f req/s, p50 %.2f ms, p95 %.2f ms, '
                    'errors %d%s' % (op, conns, r['rps'], r['p50_ms'],
                                     r['p95_ms'], r['errors'],
                                     ' (ids exhausted: %d)'
                                     % r['ids_exhausted']
                                     if r['ids_exhausted'] else ''))
                if op in ('create', 'delete'):
                    took = self.drain(label, max(120, 6 * d))
                    log('  conductor backlog drained in %.1f s' % took)

    def reference(self):
        """Drive bench/ref_app.py (the floor plus one SQL statement per
        request, on the bench database) with the API's scenarios of show,
        list and create; its figures go to results['ref']. The devices it
        creates go with the bench database."""
        ops = [op for op in self.args.ops if op in REF_OPS]
        if not ops:
            return
        env = self.env(os.path.join(self.tmp, 'servicevm.conf'))
        env['BENCH_REF_DB_URL'] = db_url_for(self.admin_url, self.db_name)
        ref = Gunicorn('ref', 'ref_app:app', self.args, env, self.tmp,
                       free_port(), ['--pythonpath', BENCH_DIR])
        self.servers.append(ref)
        try:
            ref.wait_ready('/')
            base = 'http://127.0.0.1:%d' % ref.port
            project = self.data.projects[0]
            headers = self.headers(project)
            self.ref_sanity(base, project)
            scenarios = self.scenarios(base, project)
            for op in ops:
                kw = scenarios[op]
                wrk(kw['url'], 8, 2, headers, self.tmp, 'ref-warmup-' + op,
                    **{k: v for k, v in kw.items() if k != 'url'})
            out = self.results['ref']
            for op in ops:
                kw = scenarios[op]
                for conns in self.args.connections:
                    r = wrk(kw['url'], conns, self.args.duration, headers,
                            self.tmp, 'ref-%s-c%d' % (op, conns), server=ref,
                            **{k: v for k, v in kw.items() if k != 'url'})
                    out.setdefault(op, {})[conns] = r
                    log('ref %s c=%d: %.0f req/s, p50 %.2f ms, p95 %.2f ms, '
                        'errors %d' % (op, conns, r['rps'], r['p50_ms'],
                                       r['p95_ms'], r['errors']))
            self.ref_memory_kb = ref.memory()['vmhwm_sum_kb']
        finally:
            ref.stop()
            self.servers.remove(ref)

    def ref_sanity(self, base, project):
        """The reference answers as the API does, for the same project."""
        headers = self.headers(project)
        did = self.data.device_ids[project][0]
        status, body = http('GET', base + '/v1/devices/' + did, headers)
        if status != 200 or (body or {}).get('device', {}).get('id') != did:
            raise BenchError('reference: GET /v1/devices/%s: %s %s'
                             % (did, status, body))
        status, body = http('GET', base + '/v1/devices/' + did,
                            self.headers(uuid.uuid4().hex))
        if status != 404:
            raise BenchError('reference: GET /v1/devices/%s of another '
                             'project: %s %s' % (did, status, body))
        status, body = http('GET', base + '/v1/devices?limit=100', headers)
        want = min(100, self.data.count(
            'SELECT count(*) FROM devices WHERE project_id = :project',
            project=project))
        if status != 200 or len((body or {}).get('devices', [])) != want:
            raise BenchError('reference: GET /v1/devices?limit=100: %s, '
                             '%s devices, not %d' % (
                                 status, len((body or {}).get('devices', [])),
                                 want))
        status, body = http('POST', base + '/v1/devices', headers,
                            {'device': {'template_id':
                                        self.data.templates[project],
                                        'name': 'ref-sanity'}})
        if status != 202 or (body or {}).get('device', {}).get(
                'status') != 'PENDING_CREATE':
            raise BenchError('reference: POST /v1/devices: %s %s'
                             % (status, body))
        log('reference sanity: show, list and create answer')

    def _delete_pool_size(self, conns):
        """Enough ACTIVE devices for a whole delete run: three times the
        create rate (a delete costs about what a create does), never
        more than the floor's rate allows."""
        d = self.args.duration
        create = self.results['api'].get('create', {}).get(conns)
        floor = self.results['floor']['start'].get(conns)
        ceiling = floor['rps'] * 1.2 if floor else 5000
        rate = 3 * create['rps'] if create else ceiling
        return int(min(max(rate, 50), ceiling) * d) + 200

    def execute(self):
        args = self.args
        log('temp dir %s' % self.tmp)
        ensure_wrk()
        pg_url = self.service('postgres.sh')
        rabbit_url = self.service('rabbitmq.sh')
        self.admin_url = pg_url
        recreate_database(pg_url, self.db_name)
        self.db_created = True
        config, cconfig = self.write_config(pg_url, rabbit_url)
        t0 = time.monotonic()
        run([os.path.join(VENV_BIN, 'servicevm-db-manage'), '--config-file',
             config, 'upgrade'], timeout=180, env=self.env(config))
        log('schema migrated in %.1f s' % (time.monotonic() - t0))
        t0 = time.monotonic()
        self.data = Data(db_url_for(pg_url, self.db_name))
        self.data.load(args.projects, args.per_project)
        log('loaded %d devices across %d projects in %.1f s' % (
            args.projects * args.per_project, args.projects,
            time.monotonic() - t0))

        self.results['floor']['start'] = self.floor('start')
        api, conductor = self.start_api(config, cconfig)
        base = 'http://127.0.0.1:%d' % api.port
        self.sanity(base, self.data.projects[0])
        self.drive_api(api)
        if not conductor.alive():
            self.notes.append('the conductor died during the run')
        self.memory = api.memory()
        log('API peak memory: %.1f MiB (sum of VmHWM), %.1f MiB (max '
            'sampled sum of RSS)' % (self.memory['vmhwm_sum_kb'] / 1024,
                                     self.memory['peak_rss_sum_kb'] / 1024))
        for server in (api, conductor):
            server.stop()
            self.servers.remove(server)
        if self.args.profile:
            self.print_profile()
        if not args.no_ref:
            try:
                self.reference()
            except BenchError as e:
                # The API's figures stand without it.
                log('WARNING: the reference failed: %s' % e)
                show_logs(self.tmp, ('ref-gunicorn.log', 'ref-stdout.log'))
                self.notes.append('the reference (bench/ref_app.py) failed: '
                                  '%s' % str(e).splitlines()[0])
        self.results['floor']['end'] = self.floor('end')
        return self.report()

    # reporting
    def floor_rps(self, conns):
        values = [self.results['floor'][t][conns]['rps']
                  for t in ('start', 'end')
                  if conns in self.results['floor'].get(t, {})]
        return sum(values) / len(values)

    def report(self):
        args = self.args
        rows = []
        for op in args.ops:
            for conns in args.connections:
                r = self.results['api'][op][conns]
                r['floor_rps'] = self.floor_rps(conns)
                r['ratio'] = r['rps'] / r['floor_rps']
                ref = self.results['ref'].get(op, {}).get(conns)
                if ref is not None:
                    r['ref_rps'] = ref['rps']
                    r['x_ref'] = (r['rps'] / ref['rps'] if ref['rps']
                                  else None)
                rows.append((op, conns, r))
        ref_rows = []
        for op in args.ops:
            for conns in args.connections:
                r = self.results['ref'].get(op, {}).get(conns)
                if r is None:
                    continue
                r['floor_rps'] = self.floor_rps(conns)
                r['ratio'] = r['rps'] / r['floor_rps']
                ref_rows.append(('ref-' + op, conns, r))
        lines = []
        lines.append('')
        lines.append('servicevm API benchmark: gunicorn -w %d -k %s%s, '
                     'wrk %ds per figure, PostgreSQL, one conductor, noauth'
                     % (args.workers, args.worker_class,
                        ' --threads %d' % args.threads
                        if args.worker_class == 'gthread' else '',
                        args.duration))
        lines.append('servicevm %s; ' % self.source + 'machine: %d CPUs, '
                     'load average at start %s, at end '
                     '%s' % (os.cpu_count(), self.load_at_start,
                             loadavg()))
        lines.append('')
        fmt = '%-10s %5s %10s %9s %9s %7s %8s %11s %6s'
        lines.append(fmt % ('op', 'conns', 'req/s', 'p50 ms', 'p95 ms',
                            'errors', 'x floor', 'cpu ms/req', 'x ref'))
        for conns in args.connections:
            f = [self.results['floor'][t][conns]
                 for t in ('start', 'end') if t in self.results['floor']]
            lines.append(fmt % (
                'floor', conns, '%.0f' % self.floor_rps(conns),
                '%.2f' % (sum(x['p50_ms'] for x in f) / len(f)),
                '%.2f' % (sum(x['p95_ms'] for x in f) / len(f)),
                sum(x['errors'] for x in f), '1.00',
                '%.2f' % (sum(x['server_cpu_ms_per_req'] for x in f)
                          / len(f)), ''))
        for op, conns, r in rows + ref_rows:
            if op.startswith('ref-'):
                x_ref = '1.00'
            elif r.get('x_ref') is not None:
                x_ref = '%.2f' % r['x_ref']
            else:
                x_ref = ''
            lines.append(fmt % (op, conns, '%.0f' % r['rps'],
                                '%.2f' % r['p50_ms'], '%.2f' % r['p95_ms'],
                                r['errors'], '%.2f' % r['ratio'],
                                '%.2f' % r['server_cpu_ms_per_req'], x_ref))
        lines.append('(cpu ms/req: CPU time of the gunicorn master + workers '
                     'per request; PostgreSQL, RabbitMQ and the conductor '
                     'not included)')
        if ref_rows:
            lines.append('(ref-*: bench/ref_app.py, the floor plus one SQL '
                         'statement per request, same gunicorn, database '
                         'and wrk scenarios; x ref: the API\'s req/s over '
                         'the reference\'s at the same connections)')
        lines.append('')
        floor_note = ', '.join(
            'c=%d: %s' % (c, ' -> '.join(
                '%.0f' % self.results['floor'][t][c]['rps']
                for t in ('start', 'end') if t in self.results['floor']))
            for c in args.connections)
        lines.append('floor req/s before -> after the API runs (ratios use '
                     'the mean): ' + floor_note)
        lines.append('API peak memory (master + %d workers): %.1f MiB sum '
                     'of VmHWM, %.1f MiB max sampled sum of RSS' % (
                         self.memory['workers_seen'],
                         self.memory['vmhwm_sum_kb'] / 1024,
                         self.memory['peak_rss_sum_kb'] / 1024))
        lines.append('conductor backlog drain after each write run (s): '
                     + ', '.join('%s %.1f' % kv for kv in
                                 self.results['drain_s'].items()))
        lines.append('')
        lines.append('targets (issue #2, "Speed"):')
        checks = []
        for name, op, conns, metric, cmp, limit in TARGETS:
            r = self.results['api'].get(op, {}).get(conns)
            if r is None:
                continue
            value = r[metric]
            ok = value >= limit if cmp == '>=' else value < limit
            checks.append({'target': name, 'op': op, 'connections': conns,
                           'metric': metric, 'value': round(value, 3),
                           'limit': limit, 'pass': ok})
            lines.append('  %-34s %8.2f  %s' % (name, value,
                                                'PASS' if ok else 'MISS'))
        errors = sum(r['errors'] for _, _, r in rows)
        checks.append({'target': 'no errors', 'value': errors, 'limit': 0,
                       'pass': errors == 0})
        lines.append('  %-34s %8d  %s' % ('no errors (all runs)', errors,
                                          'PASS' if errors == 0
                                          else 'MISS'))
        # What the throughput targets would need of any API that touches
        # its database per request: the reference's ratio to the floor.
        for name, op, conns, metric, cmp, limit in TARGETS:
            r = self.results['ref'].get(op, {}).get(conns)
            if metric != 'ratio' or r is None:
                continue
            lines.append('ref %s c=%d: %.2f of the floor (the most a '
                         'DB-reading API reaches here; target %s %.1f)'
                         % (op, conns, r['ratio'], cmp, limit))
        ref_errors = sum(r['errors'] for _, _, r in ref_rows)
        if ref_errors:
            self.notes.append('the reference answered %d errors (see '
                              'ref-*-wrk.txt with --keep-tmp)' % ref_errors)
        for note in self.notes:
            lines.append('note: ' + note)
        print('\n'.join(lines), flush=True)
        result = {
            'config': {
                'duration_s': args.duration, 'connections':
                args.connections, 'workers': args.workers,
                'worker_class': args.worker_class,
                'threads': args.threads
                if args.worker_class == 'gthread' else 1,
                'projects': args.projects, 'per_project': args.per_project,
                'reference': not args.no_ref,
                'server': 'gunicorn', 'client': 'wrk',
                'database': 'postgresql', 'auth_strategy': 'noauth'},
            'source': self.source,
            'machine': {'cpus': os.cpu_count(),
                        'loadavg_at_start': self.load_at_start,
                        'loadavg_at_end': loadavg()},
            'floor': {t: {str(c): v for c, v in f.items()}
                      for t, f in self.results['floor'].items()},
            'floor_rps_mean': {str(c): self.floor_rps(c)
                               for c in args.connections},
            'api': {op: {str(c): v for c, v in per.items()}
                    for op, per in self.results['api'].items()},
            # bench/ref_app.py: the floor plus one SQL statement per
            # request (empty with --no-ref).
            'ref': {op: {str(c): v for c, v in per.items()}
                    for op, per in self.results['ref'].items()},
            'ref_memory_kb': self.ref_memory_kb,
            'memory': self.memory,
            'drain_s': self.results['drain_s'],
            'targets': checks,
            'all_pass': all(c['pass'] for c in checks),
            'notes': self.notes,
        }
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(result, f, indent=2, sort_keys=True)
            log('figures written to %s' % args.json)
        return result

    def print_profile(self):
        import glob
        import pstats
        files = glob.glob(os.path.join(self.args.profile, 'worker-*.prof'))
        if not files:
            log('no profile written')
            return
        stats = pstats.Stats(*files, stream=sys.stdout)
        stats.strip_dirs().sort_stats('cumulative').print_stats(45)
        stats.sort_stats('tottime').print_stats(30)

    def cleanup(self):
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as e:  # keep cleaning up
                log('stopping %s: %s' % (server.name, e))
        self.servers = []
        if self.data is not None:
            self.data.dispose()
        if self.db_created:
            try:
                recreate_database(self.admin_url, self.db_name,
                                  drop_only=True)
                log('dropped database %s' % self.db_name)
            except Exception as e:
                log('could not drop database %s: %s' % (self.db_name, e))
        stop_started_services(self.started_services, self.args,
                              self.service_env())
        remove_tmp(self.tmp, self.args)


def stop_started_services(scripts, args, env):
    """Stop the tools/ servers a benchmark started (newest first), unless
    --keep-servers."""
    for script in reversed(scripts):
        if args.keep_servers:
            log('leaving %s running (--keep-servers)' % script)
            continue
        log('stopping %s (started by the benchmark)' % script)
        try:
            run(['bash', os.path.join(REPO, 'tools', script), 'stop'],
                timeout=180, env=env, check=False, capture=False)
        except BenchError as e:
            log(str(e))


def remove_tmp(tmp, args):
    if args.keep_tmp:
        log('kept %s' % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--duration', type=int, default=10,
                   help='seconds of wrk per figure (default 10)')
    p.add_argument('--connections', type=lambda s: [int(x) for x in
                                                    s.split(',')],
                   default=[1, 8], help='comma-separated (default 1,8)')
    p.add_argument('--ops', type=lambda s: s.split(','), default=list(OPS),
                   help='comma-separated subset of %s' % ','.join(OPS))
    p.add_argument('--workers', type=int, default=2)
    # gthread: HTTP keep-alive, as real clients use; with it both the
    # floor and the API serve more (sync workers close every connection).
    p.add_argument('--worker-class', default='gthread',
                   choices=['sync', 'gthread'])
    p.add_argument('--threads', type=int, default=4,
                   help='threads per worker with --worker-class gthread')
    p.add_argument('--projects', type=int, default=10)
    p.add_argument('--per-project', type=int, default=1000)
    p.add_argument('--db-name', default='servicevm_bench')
    p.add_argument('--shared-servers', action='store_true',
                   help='use the PostgreSQL and RabbitMQ of the test suite '
                        '(tools/*.sh with their default state dir and '
                        'ports) instead of the benchmark\'s own (state '
                        'in .ci/work/bench, ports 25532/25772, outside '
                        'the ephemeral range)')
    p.add_argument('--keep-servers', action='store_true',
                   help='leave PostgreSQL and RabbitMQ running at the end '
                        '(saves their start-up on the next run)')
    p.add_argument('--no-ref', action='store_true',
                   help='skip the reference (bench/ref_app.py: the floor '
                        'plus one SQL statement per request) run after '
                        'the API')
    p.add_argument('--json', help='write the figures to this file')
    p.add_argument('--keep-tmp', action='store_true',
                   help='keep the temp dir (configs, logs, wrk output)')
    p.add_argument('--profile', metavar='DIR',
                   help='cProfile the API workers after the warm-up '
                        'and print the top functions (needs sync '
                        'workers); the figures are then not '
                        'representative')
    args = p.parse_args(argv)
    if args.profile and args.worker_class != 'sync':
        p.error('--profile needs --worker-class sync (cProfile sees one '
                'thread)')
    unknown = set(args.ops) - set(OPS)
    if unknown:
        p.error('unknown ops: %s' % ', '.join(sorted(unknown)))
    if 'delete' in args.ops and 'create' in args.ops:
        # create first: its rate sizes the pool of devices to delete.
        args.ops = [o for o in OPS if o in args.ops]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    stop_on_signals()
    sys.path.insert(0, REPO)
    bench = Bench(args)
    bench.load_at_start = loadavg()
    bench.source = source_version()
    try:
        result = bench.execute()
    except BenchError as e:
        log('ERROR: %s' % e)
        show_logs(bench.tmp, ('api-gunicorn.log', 'api.log', 'conductor.log',
                              'conductor-stdout.log', 'ref-gunicorn.log'),
                  skip_empty=False)
        return 2
    finally:
        bench.cleanup()
    return 0 if result['all_pass'] else 1


if __name__ == '__main__':
    sys.exit(main())
