#!/usr/bin/env python3
"""Benchmark of servicevm's Nova driver on the local OpenStack cloud
(tools/minicloud.sh), beside Nova used directly. Prints its figures.

    .venv/bin/python bench/nova.py [--quick] [--devices 100] [--json out]

1. The cloud: used if ``tools/minicloud.sh status`` says it runs (and left
   running), else started and stopped at the end.
2. Baseline: as demo1, N servers (m1.tiny, cirros-fake, mgmt-net) booted
   with python-novaclient by 16 client threads; one list of them every
   0.5 s tells when each is ACTIVE; then all deleted, until gone.
3. servicevm: a private PostgreSQL and RabbitMQ (tools/postgres.sh and
   tools/rabbitmq.sh, state .ci/work/bench-nova, ports of its own), the
   API under gunicorn and one servicevm-conductor, configured as the
   integration suite is (Keystone auth, [trustee], [vim] credentials =
   trust), [nova] notifications_url (the cloud's bus, unless
   --no-notifications), poll_interval 0.5, max_parallel_calls 20, [conductor]
   workers 128; as demo1, a nova template of the same flavor, image and
   network, N devices created by 16 client threads (one GET /v1/devices
   every 0.2 s tells when each is ACTIVE; one Nova list every 0.5 s when
   its server is), then all deleted; then the same with N/10 devices.
   One device made first stays until the end, as the baseline's warm-up
   servers take first-use costs out of its figures: the batches find the
   user's trust in the project, and the conductor its token.

The conductor reaches Nova through a counting HTTP proxy in this process
(``[nova] endpoint_override``) that counts each request by method and path
shape, per phase. The poll's lists (``GET /servers/detail?tags=servicevm``,
next pages included) of a create phase are related to the poll cycles of
its span (span / poll_interval). The driver finds images in Glance
itself (by the catalog), so those calls are not counted.

Overhead per device (the target): a device's request -> ACTIVE in
servicevm, less its server's own time in Nova: the proxy's POST /servers
(matched by server name) -> the end of the build by Nova's own record
(the instance action ``create``, its event
``compute__do_build_and_run_instance``; without instance actions the
bench's Nova list stands in for it). What is left is servicevm's:
request -> POST /servers (the API's answer, the conductor picking the
operation up, a free Nova call slot) and built -> ACTIVE in servicevm
(the poll: its interval, and the list's wait in nova-api behind other
requests). Those parts are printed too, from the bench's clock and the
operation steps' times in servicevm's database. The direct baseline is
not a fair yardstick for that: its clock starts when one of its client
threads sends the POST, so its requests' wait for a thread is not
counted; its p50 difference is printed too.

Nova asks Neutron for the ports of every server of a list in one GET;
tools/minicloud.sh serves its APIs with unlimited request lines for that
(gunicorn's default of 4094 bytes refused lists of more than ~85 servers
before: a cloud started before that change needs --list-page-size 80 for
runs of more than ~80 devices).

Every server of a run is named ``svmbench-<run id>-...``; those of an
interrupted earlier run are deleted first, all at the end (after the
conductor stopped), and the end checks none is left. Exit status: 0 all
targets met, 1 a target missed or a server in ERROR, 2 the run failed.
"""

import argparse
import collections
import datetime
import http.client
import http.server
import importlib.util
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))


def _load(name):
    spec = importlib.util.spec_from_file_location(
        'servicevm_bench_' + name, os.path.join(BENCH_DIR, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


L = _load('lifecycle')      # pct, Client; its B is bench/api.py
B = L.B
REPO = B.REPO
VENV_BIN = B.VENV_BIN
BenchError = B.BenchError
log = B.log
pct = L.pct

# This benchmark's own PostgreSQL and RabbitMQ (neither the test suite's
# nor bench/api.py's nor bench/lifecycle.py's).
SERVERS_ENV = B.servers_env('nova', 25732, 25972, 24669)
CLOUD_ENV_JSON = os.path.join(
    os.environ.get('SERVICEVM_TEST_STATE', os.path.join(REPO, '.ci', 'work')),
    'minicloud', 'env.json')
PREFIX = 'svmbench-'
MICROVERSION = '2.79'
PAGE = 50
POLL_LIST = 'GET /servers/detail?tags=servicevm'
LOG_LEVELS = L.LOG_LEVELS.replace('servicevm=WARNING', 'servicevm=INFO') + (
    ',keystoneauth=WARNING,novaclient=WARNING')
ID_RE = re.compile(r'^([0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?'
                   r'[0-9a-f]{12}|\d+)$')
HOP_HEADERS = ('connection', 'keep-alive', 'transfer-encoding', 'te',
               'proxy-connection', 'upgrade', 'host', 'content-length')


def call_kind(method, path):
    """``GET /servers/detail?tags=servicevm``, ``DELETE /servers/{id}``..."""
    path, _, query = path.partition('?')
    if path.startswith('/v2.1'):
        path = path[len('/v2.1'):]
    path = '/'.join('{id}' if ID_RE.match(p) else p for p in path.split('/'))
    params = urllib.parse.parse_qs(query)
    extra = []
    if 'tags' in params:
        extra.append('tags=' + re.sub(r'svm-dev-.*', 'svm-dev-{id}',
                                      params['tags'][0]))
    if 'changes-since' in params:
        extra.append('changes-since={time}')
    if 'marker' in params:
        extra.append('marker={id}')
    return '%s %s%s' % (method, path or '/',
                        ('?' + '&'.join(extra)) if extra else '')


# ---- the counting proxy ------------------------------------------------

class CountingProxy:
    """A threaded HTTP server that forwards every request to nova-api
    (``/v2.1/v2/images...``: to Glance) and records (time, phase, kind,
    status, response bytes)."""

    def __init__(self, nova_url, glance_url):
        self.nova = urllib.parse.urlsplit(nova_url)
        self.glance = urllib.parse.urlsplit(glance_url)
        self.phase = 'setup'
        self.calls = []
        self.posts = {}          # server name -> POST /servers sent
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def forward(self):
                proxy.forward(self)
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward
            do_HEAD = forward

            def finish(self):
                super().finish()
                for conn in getattr(self, 'upstream', {}).values():
                    conn.close()

        class Server(http.server.ThreadingHTTPServer):
            # servicevm sends up to [nova] max_parallel_calls at once (the
            # default backlog of 5 reset the connections beyond it).
            request_queue_size = 512
        self.server = Server(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    @property
    def url(self):
        return 'http://127.0.0.1:%d%s' % (self.port, self.nova.path)

    def forward(self, req):
        length = int(req.headers.get('Content-Length') or 0)
        body = req.rfile.read(length) if length else None
        path, kind = req.path, call_kind(req.command, req.path)
        target = self.nova
        if path.startswith(self.nova.path + '/v2/images'):
            target, path = self.glance, path[len(self.nova.path):]
            kind = 'glance: ' + kind
        headers = {k: v for k, v in req.headers.items()
                   if k.lower() not in HOP_HEADERS}
        # One upstream connection per client connection and target.
        if not hasattr(req, 'upstream'):
            req.upstream = {}
        conns = req.upstream
        t0 = time.monotonic()
        for attempt in (0, 1):
            conn = conns.get(target.netloc)
            if conn is None:
                conn = conns[target.netloc] = http.client.HTTPConnection(
                    target.hostname, target.port, timeout=300)
            try:
                conn.request(req.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                conn.close()
                conns.pop(target.netloc)
                if attempt:
                    req.send_error(502)
                    return
        with self.lock:
            self.calls.append((t0, self.phase, kind, resp.status,
                               len(data), time.monotonic() - t0))
            if kind == 'POST /servers' and body:
                # When each device's server was asked of Nova, by name.
                try:
                    self.posts[json.loads(body)['server']['name']] = t0
                except (ValueError, KeyError, TypeError):
                    pass
        req.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_HEADERS:
                req.send_header(k, v)
        req.send_header('Content-Length', str(len(data)))
        req.end_headers()
        if req.command != 'HEAD':
            req.wfile.write(data)

    def of_phase(self, phase):
        with self.lock:
            return [c for c in self.calls if c[1] == phase]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- helpers -------------------------------------------------------------

class Pool:
    """fn(item) for each item, by ``threads`` daemon threads."""

    def __init__(self, items, threads, fn, stop):
        self.work = queue.Queue()
        for item in items:
            self.work.put(item)
        self.fn, self.stop, self.errors = fn, stop, []
        self.threads = [threading.Thread(target=self._run, daemon=True)
                        for _ in range(max(1, min(threads, len(items))))]
        for t in self.threads:
            t.start()

    def _run(self):
        while not self.stop.is_set():
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                return
            try:
                self.fn(item)
            except Exception as e:
                self.errors.append('%s: %s' % (type(e).__name__, e))

    def check(self):
        if self.errors:
            raise BenchError('%d request(s) failed, e.g. %s'
                             % (len(self.errors), self.errors[0]))

    def join(self, timeout=120):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
            if t.is_alive():
                raise BenchError('client threads still busy after %ds'
                                 % timeout)
        self.check()


def monotonic(utc):
    """A naive UTC datetime (Nova's and servicevm's records) on this
    process's time.monotonic() clock."""
    epoch = datetime.datetime(1970, 1, 1)
    return ((utc - epoch).total_seconds() -
            (time.time() - time.monotonic()))


def lat(values):
    return {'n': len(values),
            'p50_s': round(pct(values, 50), 2) if values else None,
            'p95_s': round(pct(values, 95), 2) if values else None,
            'max_s': round(max(values), 2) if values else None}


def diff(a, b):
    return None if None in (a, b) else round(a - b, 2)


def sec(value, sign=''):
    return '-' if value is None else ('%' + sign + '.2f s') % value


def max_in_window(times, width):
    """The most of ``times`` within any window ``width`` long."""
    times, best, j = sorted(times), 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        best = max(best, i - j + 1)
    return best


def max_in_flight(calls):
    """The most calls under way at once (one poller: 1)."""
    edges = sorted([(c[0], 1) for c in calls] +
                   [(c[0] + c[5], -1) for c in calls])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


# ---- the run ---------------------------------------------------------------

class Bench:

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix='servicevm-bench-nova-')
        os.chmod(self.tmp, 0o755)
        self.run_id = uuid.uuid4().hex[:6]
        self.stop_event = threading.Event()
        self.local = threading.local()
        self.clients = []
        self.cloud_started = False
        self.started_services = []
        self.servers = []
        self.conductor = None
        self.api = None
        self.proxy = None
        self.db_name = 'servicevm_bench_nova'
        self.source = None
        self.admin_url = None
        self.db_created = False
        self.results = {}
        self.notes = []
        self.raw = {}        # batch -> device name -> its times

    # ---- the cloud -------------------------------------------------------

    def ensure_cloud(self):
        script = os.path.join(REPO, 'tools', 'minicloud.sh')
        status = subprocess.run(['bash', script, 'status'], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        if status.returncode != 0:
            log('the cloud is not running: tools/minicloud.sh start (it '
                'will be stopped at the end)')
            self.cloud_started = True
            B.run(['bash', script, 'start'], timeout=1800, capture=False)
        else:
            log('the cloud is running (it is left running)')
        with open(CLOUD_ENV_JSON) as f:
            self.cloud = json.load(f)

    def nova_client(self):
        """novaclient as demo1, on a keystoneauth session whose pool
        serves the client threads."""
        import requests
        from keystoneauth1.identity import v3
        from keystoneauth1 import session as ks_session
        from novaclient import client as nova_client
        env = self.cloud
        http_session = requests.Session()
        http_session.mount('http://', requests.adapters.HTTPAdapter(
            pool_maxsize=max(32, 2 * self.args.clients)))
        auth = v3.Password(
            auth_url=env['MINICLOUD_AUTH_URL'],
            username=env['MINICLOUD_DEMO1_USER'],
            password=env['MINICLOUD_DEMO1_PASSWORD'],
            project_name=env['MINICLOUD_DEMO1_PROJECT'],
            user_domain_name=env['MINICLOUD_DOMAIN'],
            project_domain_name=env['MINICLOUD_DOMAIN'])
        self.session = ks_session.Session(auth=auth, session=http_session)
        self.nova = nova_client.Client(
            MICROVERSION, session=self.session,
            region_name=env['MINICLOUD_REGION'])

    def nova_servers(self, **search):
        """demo1's servers, by pages of PAGE: Nova asks Neutron for the
        ports of a whole page in one GET, which the cloud's Neutron
        (gunicorn's 4094-byte request line) refuses beyond ~85 servers."""
        found, marker = [], None
        while True:
            page = self.nova.servers.list(search_opts=search, marker=marker,
                                          limit=PAGE)
            found += page
            if len(page) < PAGE:
                return found
            marker = page[-1].id

    def nova_states(self, **search):
        return {s.name: s.status for s in self.nova_servers(**search)}

    def purge_servers(self, what, timeout=300):
        """Delete every server of this benchmark (named svmbench-*) in
        demo1's project and wait until they are gone; returns how many."""
        from novaclient import exceptions as nova_exc
        found = self.nova_servers(name='^' + PREFIX)
        for server in found:
            try:
                self.nova.servers.delete(server.id)
            except nova_exc.NotFound:
                pass
        if found:
            log('deleting %d server(s) %s' % (len(found), what))
            B.wait_for(lambda: not self.nova_states(name='^' + PREFIX),
                       timeout, 'the servers %s to be gone' % what,
                       interval=1.0)
        return len(found)

    def built_at(self, prefix):
        """{server name: when Nova finished building it (its own record:
        the end of the compute__do_build_and_run_instance event of the
        create action, which sets it ACTIVE), on this process's
        time.monotonic() clock}. Sharper than the bench's list of the
        servers every 0.5 s, whose answers take up to seconds under load."""
        found = {}
        for server in self.nova_servers(name='^' + prefix):
            actions = [a for a in self.nova.instance_action.list(server)
                       if a.action == 'create']
            if not actions:
                continue
            action = self.nova.instance_action.get(server,
                                                   actions[0].request_id)
            for event in action.events:
                if (event['event'] == 'compute__do_build_and_run_instance'
                        and event.get('finish_time')
                        and event.get('result') == 'Success'):
                    found[server.name] = monotonic(
                        datetime.datetime.fromisoformat(
                            event['finish_time'].rstrip('Z').split('+')[0]))
        return found

    # ---- servicevm -------------------------------------------------------

    def service_env(self):
        return dict(os.environ, **SERVERS_ENV)

    def service(self, name):
        path = os.path.join(REPO, 'tools', name)
        status = subprocess.run(['bash', path, 'status'], cwd=REPO,
                                env=self.service_env(), capture_output=True,
                                text=True, timeout=120)
        if status.returncode != 0:
            log('starting %s (state %s)'
                % (name, SERVERS_ENV['SERVICEVM_TEST_STATE']))
            self.started_services.append(name)
            B.run(['bash', path, 'start'], timeout=600,
                  env=self.service_env(), capture=False)
        return B.run(['bash', path, 'url'], timeout=30,
                     env=self.service_env()).strip()

    def env(self, files):
        env = dict(os.environ, SERVICEVM_CONFIG_FILES=';'.join(files))
        env['PATH'] = VENV_BIN + os.pathsep + env.get('PATH', '')
        env['PYTHONPATH'] = os.pathsep.join(
            [REPO] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
                      if p])
        return env

    def write_config(self, rabbit_url):
        env, args = self.cloud, self.args
        auth_url = env['MINICLOUD_AUTH_URL']
        identity = auth_url[:-3] if auth_url.endswith('/v3') else auth_url
        service_user = {
            'auth_type': 'password', 'auth_url': identity,
            'username': env['MINICLOUD_SERVICEVM_USER'],
            'password': env['MINICLOUD_SERVICEVM_PASSWORD'],
            'user_domain_name': env['MINICLOUD_DOMAIN']}
        scoped = dict(service_user,
                      project_name=env['MINICLOUD_SERVICEVM_PROJECT'],
                      project_domain_name=env['MINICLOUD_DOMAIN'])
        conductor = {'workers': args.workers, 'poll_interval': 0.2}
        if args.driver_calls:
            conductor['max_parallel_driver_calls'] = args.driver_calls
        default = {'auth_strategy': 'keystone', 'transport_url': rabbit_url,
                   'enabled_device_drivers': 'noop,nova', 'debug': 'false',
                   'use_stderr': 'false', 'default_log_levels': LOG_LEVELS,
                   'graceful_shutdown_timeout': 5}
        nova = {}
        if args.list_page_size:
            nova['list_page_size'] = args.list_page_size
        if args.full_list_interval is not None:
            nova['full_list_interval'] = args.full_list_interval
        if env.get('MINICLOUD_NOTIFICATIONS_URL') and \
                not args.no_notifications:
            nova['notifications_url'] = env['MINICLOUD_NOTIFICATIONS_URL']
        sections = {
            'DEFAULT': default,
            'database': dict({'connection': B.db_url_for(self.admin_url,
                                                         self.db_name)},
                             **({'max_pool_size': args.db_pool_size}
                                if args.db_pool_size else {})),
            'keystone_authtoken': dict(scoped, www_authenticate_uri=identity,
                                       service_token_roles_required='true'),
            'trustee': service_user,
            'nova': dict(scoped, **nova, region_name=env['MINICLOUD_REGION'],
                         poll_interval=args.poll_interval, retry_backoff=0.5,
                         max_parallel_calls=args.max_parallel_calls,
                         endpoint_override=self.proxy.url),
            'vim': {'credentials': 'trust'},
            'conductor': conductor,
        }
        self.config = os.path.join(self.tmp, 'servicevm.conf')
        with open(self.config, 'w') as f:
            for section, options in sections.items():
                f.write('[%s]\n' % section)
                f.writelines('%s = %s\n' % kv for kv in options.items())
                f.write('\n')
        self.configs = {}
        for name in ('api', 'conductor'):
            path = os.path.join(self.tmp, name + '.conf')
            with open(path, 'w') as f:
                f.write('[DEFAULT]\nhost = bench-nova-%s\nlog_file = %s\n'
                        % (name, os.path.join(self.tmp, name + '.log')))
            self.configs[name] = path

    def start_servicevm(self):
        self.admin_url = self.service('postgres.sh')
        rabbit_url = self.service('rabbitmq.sh')
        B.recreate_database(self.admin_url, self.db_name)
        self.db_created = True
        self.proxy = CountingProxy(self.cloud['MINICLOUD_COMPUTE_URL'],
                                   self.cloud['MINICLOUD_IMAGE_URL'])
        self.write_config(rabbit_url)
        B.run([os.path.join(VENV_BIN, 'servicevm-db-manage'),
               '--config-file', self.config, 'upgrade'], timeout=180,
              env=self.env([self.config]))
        self.source = B.source_version()    # what the processes run
        self.conductor = B.Server(
            'conductor', [os.path.join(VENV_BIN, 'servicevm-conductor'),
                          '--config-file', self.config, '--config-file',
                          self.configs['conductor']],
            self.env([self.config]),
            os.path.join(self.tmp, 'conductor-stdout.log'))
        self.servers.append(self.conductor)
        gargs = argparse.Namespace(workers=2, worker_class='gthread',
                                   threads=4)
        self.api = B.Gunicorn(
            'api', 'servicevm.api.wsgi:initialize_wsgi_app()', gargs,
            self.env([self.config, self.configs['api']]), self.tmp,
            B.free_port())
        self.servers.append(self.api)
        self.api.wait_ready('/')
        conductor_log = os.path.join(self.tmp, 'conductor.log')

        def listening():
            self.check_alive()
            try:
                with open(conductor_log) as f:
                    return 'listening on topic' in f.read()
            except OSError:
                return False
        B.wait_for(listening, 90, 'the conductor to listen')
        self.headers = {'X-Auth-Token': self.session.get_token()}
        status, body = B.http(
            'POST', 'http://127.0.0.1:%d/v1/device_templates' % self.api.port,
            self.headers, {'device_template': {
                'name': 'bench-nova', 'device_driver': 'nova',
                'attributes': {
                    'image': self.cloud['MINICLOUD_IMAGE_NAME'],
                    'flavor': self.cloud['MINICLOUD_FLAVOR_TINY_NAME'],
                    'networks': [self.cloud['MINICLOUD_MGMT_NET']],
                    'mgmt_network': self.cloud['MINICLOUD_MGMT_NET_NAME']}}})
        if status != 201:
            raise BenchError('POST /v1/device_templates: %s %s'
                             % (status, body))
        self.template = body['device_template']['id']

    def check_alive(self):
        for server in self.servers:
            if not server.alive():
                raise BenchError('%s exited:\n%s' % (server.name, B.tail(
                    os.path.join(self.tmp, server.name + '.log'))))

    def client(self):
        """This thread's keep-alive connection to the API."""
        if getattr(self.local, 'client', None) is None:
            self.local.client = L.Client(self.api.port, self.headers)
            self.clients.append(self.local.client)
        return self.local.client

    def svm_states(self):
        status, body = self.client().request(
            'GET', '/v1/devices?template_id=%s&limit=1000&fields=name,status'
            % self.template)
        if status != 200:
            raise BenchError('GET /v1/devices: %s %s' % (status, body))
        return {d['name']: d['status'] for d in body['devices']}

    # ---- measuring ---------------------------------------------------

    def watch(self, fetch, sent, names, interval, what, gone=False,
              pool=None, failed=(), halt=None):
        """fetch() ({name: state}) every ``interval`` s until each of
        ``names`` is ACTIVE or ERROR (``gone``: no longer listed, or
        ERROR: a failed delete, unless in ``failed`` before); returns
        {name: (monotonic time of the answer that showed it, state)}.
        Only names whose request was sent (in ``sent``) count; once
        ``halt`` is set, returns what it saw."""
        seen = {}
        deadline = time.monotonic() + self.args.timeout
        while True:
            t0 = time.monotonic()
            states = fetch()
            now = time.monotonic()
            for name in names:
                if name in seen or name not in sent:
                    continue
                state = states.get(name)
                if gone and (state is None or state == 'ERROR' and
                             name not in failed):
                    seen[name] = (now, state or 'gone')
                elif not gone and state in ('ACTIVE', 'ERROR'):
                    seen[name] = (now, state)
            if len(seen) == len(names) or halt is not None and halt.is_set():
                return seen
            if pool is not None:
                pool.check()
            self.check_alive()
            if now > deadline:
                raise BenchError('%d of %d not %s after %ds' % (
                    len(names) - len(seen), len(names), what,
                    self.args.timeout))
            if self.stop_event.wait(max(0.0, t0 + interval -
                                        time.monotonic())):
                raise BenchError('stopped')

    @staticmethod
    def figures(sent, seen):
        ok = [seen[n][0] - sent[n] for n in seen if seen[n][1] != 'ERROR']
        out = lat(ok)
        out['all_s'] = round(max(t for t, _ in seen.values()) -
                             min(sent.values()), 2) if seen else None
        out['errors'] = sum(1 for _, s in seen.values() if s == 'ERROR')
        return out

    def run_phase(self, fn, names, fetch, interval, what, gone=False,
                  side=None, failed=()):
        """fn(name) for each name by the client threads while fetch()
        is watched (and ``side``, a Nova list, in a thread of its own);
        returns ({name: request time}, what watch() saw, what the side
        watch saw)."""
        sent, side_seen, halt = {}, {}, threading.Event()
        self.answered = {}

        def request(name):
            sent[name] = time.monotonic()
            fn(name)
            self.answered[name] = time.monotonic() - sent[name]

        def watch_side():
            try:
                side_seen.update(self.watch(side, sent, names,
                                            self.args.base_poll,
                                            what + ' in Nova', gone,
                                            failed=failed, halt=halt))
            except Exception as e:
                log('watching Nova: %s' % e)
        thread = threading.Thread(target=watch_side, daemon=True)
        if side is not None:
            thread.start()
        pool = Pool(names, self.args.clients, request, self.stop_event)
        seen = self.watch(fetch, sent, names, interval, what, gone, pool,
                          failed)
        pool.join()
        if side is not None:
            # Servers whose device failed may never get there.
            thread.join(120)
            halt.set()
            thread.join(60)
        return sent, seen, side_seen

    def baseline(self, n, label='base'):
        tag = '%s%s-%s' % (PREFIX, self.run_id, label)
        names = ['%s-%03d' % (tag, i) for i in range(n)]
        env, ids = self.cloud, {}

        def boot(name):
            ids[name] = self.nova.servers.create(
                name=name, image=env['MINICLOUD_IMAGE'],
                flavor=env['MINICLOUD_FLAVOR_TINY'],
                nics=[{'net-id': env['MINICLOUD_MGMT_NET']}], tags=[tag]).id

        def fetch():
            return self.nova_states(tags=tag)
        sent, active, _ = self.run_phase(boot, names, fetch,
                                         self.args.base_poll, 'ACTIVE')
        dsent, gone, _ = self.run_phase(
            lambda name: self.nova.servers.delete(ids[name]), names, fetch,
            self.args.base_poll, 'gone', gone=True)
        out = {'devices': n, 'create': self.figures(sent, active),
               'delete': self.figures(dsent, gone)}
        log('Nova direct, %d servers: %s' % (n, out))
        return out

    def svm_batch(self, n, label, keep=False):
        """``n`` devices created, then deleted (``keep``: left, and
        deleted by svm_delete_kept())."""
        prefix = '%s%s-svm%s-' % (PREFIX, self.run_id, label)
        names = ['%s%03d' % (prefix, i) for i in range(n)]
        ids = {}

        def create(name):
            status, body = self.client().request('POST', '/v1/devices', {
                'device': {'template_id': self.template, 'name': name}})
            if status != 202:
                raise BenchError('POST /v1/devices: %s %s' % (status, body))
            ids[name] = body['device']['id']

        def delete(name):
            # A device in ERROR may still be held by its failed create.
            status, body = self.client().request(
                'DELETE', '/v1/devices/%s%s' % (
                    ids[name], '?force=true' if name in failed else ''))
            if status != 202:
                raise BenchError('DELETE /v1/devices: %s %s'
                                 % (status, body))

        def in_nova():
            return self.nova_states(name='^' + prefix)
        self.proxy.phase = 'create:' + label
        sent, active, nova_active = self.run_phase(
            create, names, self.svm_states, self.args.svm_poll, 'ACTIVE',
            side=in_nova)
        answered = dict(self.answered)
        steps = self.steps_of(prefix)
        built = self.built_at(prefix)
        self.raw[label] = {
            name: {'sent': sent.get(name), 'answered': answered.get(name),
                   'active': active.get(name, (None,))[0],
                   'list_active': nova_active.get(name, (None,))[0],
                   'built': built.get(name),
                   'posted': self.proxy.posts.get(name),
                   'db': steps.get(name, {})}
            for name in names}
        failed = [k for k, (_, state) in active.items() if state == 'ERROR']
        if failed:
            _, body = self.client().request('GET', '/v1/devices/' +
                                            ids[failed[0]])
            self.notes.append('%d of %d devices in ERROR after their create, '
                              'e.g. %s' % (len(failed), n, str(
                                  body['device'].get('status_reason'))[:300]))
            log('note: ' + self.notes[-1])
        self.proxy.phase = 'delete:' + label
        if keep:
            self.kept = (delete, names, failed)
            return None
        dsent, gone, nova_gone = self.run_phase(
            delete, names, self.svm_states, self.args.svm_poll, 'gone',
            gone=True, side=in_nova, failed=failed)
        stuck = [k for k, (_, state) in gone.items() if state == 'ERROR']
        if stuck:
            _, body = self.client().request('GET', '/v1/devices/' +
                                            ids[stuck[0]])
            self.notes.append('%d of %d devices in ERROR after their delete, '
                              'e.g. %s' % (len(stuck), n, str(
                                  body['device'].get('status_reason'))[:300]))
            log('note: ' + self.notes[-1])
        self.proxy.phase = 'after:' + label
        # Per device: its server's own time in Nova (POST /servers sent ->
        # built, by Nova's own record), and what servicevm added: request
        # -> POST sent (API, conductor, a free Nova call slot) and Nova's
        # ACTIVE -> servicevm's. Without Nova's record (no instance
        # actions), the bench's list of the servers stands in for it.
        with self.proxy.lock:
            posted = dict(self.proxy.posts)
        done = built or {k: v[0] for k, v in nova_active.items()}
        timed = [k for k in done if k in posted and k in active
                 and active[k][1] != 'ERROR']
        out = {'own_nova': lat([done[k] - posted[k] for k in timed]),
               'before_nova': lat([posted[k] - sent[k] for k in timed]),
               'api_answer': lat(list(answered.values())),
               'to_create_vm': lat([
                   v['create_vm'] - v['created'] for v in steps.values()
                   if 'create_vm' in v]),
               'wait_active_to_seen': lat([
                   active[k][0] - steps[k]['wait_active']
                   for k in timed if 'wait_active' in steps.get(k, {})]),
               'seen_after_built': lat([active[k][0] - done[k]
                                        for k in timed]),
               'active_from': 'instance actions' if built else 'list',
               'told_by_notification': sum(
                   1 for v in steps.values() if v.get('heard')),
               'device_overhead': lat([
                   (active[k][0] - sent[k]) - (done[k] - posted[k])
                   for k in timed])}
        out.update({
            'devices': n, 'create': self.figures(sent, active),
            'create_nova_active': self.figures(sent, nova_active),
            'seen_after_nova_active': lat([
                active[k][0] - nova_active[k][0] for k in nova_active]),
            'delete': self.figures(dsent, gone),
            'delete_nova_gone': self.figures(dsent, nova_gone),
            'nova_calls': {k: self.calls(k + ':' + label, n)
                           for k in ('create', 'delete')},
            'poll': self.poll_cycles('create:' + label)})
        log('servicevm, %d devices: create %s; delete %s; Nova calls per '
            'device %s; poll lists per cycle %s' % (
                n, out['create'], out['delete'],
                [c['per_device'] for c in out['nova_calls'].values()],
                out['poll']['per_cycle']))
        return out

    def svm_delete_kept(self):
        delete, names, failed = self.kept
        self.proxy.phase = 'delete:kept'
        self.run_phase(delete, names, self.svm_states, self.args.svm_poll,
                       'gone', gone=True, failed=failed)

    def steps_of(self, prefix):
        """{device name: {'created': its create operation's row (the
        API's commit), 'create_vm': the start of its create_vm step,
        'wait_active': the end of its wait_active step}} on this
        process's time.monotonic() clock, from the database."""
        import sqlalchemy as sa
        engine = sa.create_engine(B.db_url_for(self.admin_url,
                                               self.db_name))
        found = collections.defaultdict(dict)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text(
                    "SELECT d.name, o.created_at, s.name, s.started_at, "
                    "s.finished_at, s.output FROM devices d JOIN "
                    "operations o ON "
                    "o.resource_id = d.id AND o.kind = 'create' JOIN "
                    "operation_steps s ON s.operation_id = o.id "
                    "WHERE d.name LIKE :prefix"), {'prefix': prefix + '%'})
                for name, created, step, started, finished, output in rows:
                    found[name]['created'] = monotonic(created)
                    if step == 'create_vm' and started:
                        found[name]['create_vm'] = monotonic(started)
                    if step == 'wait_active' and finished:
                        found[name]['wait_active'] = monotonic(finished)
                        found[name]['heard'] = 'notification' in (output
                                                                  or '')
        finally:
            engine.dispose()
        return dict(found)

    def calls(self, phase, n):
        calls = self.proxy.of_phase(phase)
        kinds = collections.Counter(c[2] for c in calls)
        ms = collections.defaultdict(list)
        for c in calls:
            ms[c[2]].append(1000 * c[5])
        return {'total': len(calls), 'per_device': round(len(calls) / n, 2),
                'by_kind': dict(kinds.most_common()),
                'ms_p50_by_kind': {k: round(pct(v, 50)) for k, v in
                                   ms.items()},
                'not_2xx': sum(1 for c in calls if not 200 <= c[3] < 300),
                'poll_kib': round(sum(c[4] for c in calls
                                      if c[2].startswith(POLL_LIST)) / 1024)}

    def poll_cycles(self, phase):
        """The poll's list calls of a phase against its poll cycles: one
        cycle per poll_interval from the first list call to the last."""
        interval = self.args.poll_interval
        calls = [c for c in self.proxy.of_phase(phase)
                 if c[2].startswith(POLL_LIST)]
        times = [c[0] for c in calls]
        firsts = sum(1 for c in calls if c[2].startswith(POLL_LIST)
                     and 'marker=' not in c[2])
        ms = [1000 * c[5] for c in calls]
        span = (max(times) - min(times)) if times else 0.0
        cycles = span / interval + 1 if times else 0
        return {'list_calls': len(times), 'first_pages': firsts,
                'span_s': round(span, 2), 'cycles': round(cycles, 1),
                'per_cycle': round(len(times) / cycles, 2) if cycles else 0,
                'max_in_interval': max_in_window(times, interval),
                'max_in_flight': max_in_flight(calls),
                'call_ms_p50': round(pct(ms, 50)) if ms else None,
                'call_ms_p95': round(pct(ms, 95)) if ms else None}

    # ---- main --------------------------------------------------------

    def execute(self):
        args = self.args
        t_start = time.monotonic()
        log('temp dir %s; run id %s' % (self.tmp, self.run_id))
        self.ensure_cloud()
        self.nova_client()
        left = self.purge_servers('left by an earlier run')
        if left:
            self.notes.append('%d server(s) of an earlier run deleted first'
                              % left)
        self.baseline(2, 'warm')     # first-use costs out of the figures
        self.results['nova'] = self.baseline(args.devices)
        self.start_servicevm()
        # First-use costs out of the figures, as the baseline's warm-up
        # takes them out of its own: the device stays until the end, so
        # that the batches find the user's Keystone trust in the project
        # (and the conductor its token), as the baseline's client finds
        # its session's token. A user's first devices in a project pay
        # for one trust (the API) and one token (the conductor).
        self.svm_batch(1, 'warm', keep=True)
        big = self.results['servicevm'] = self.svm_batch(args.devices, 'N')
        self.results['servicevm_small'] = self.svm_batch(args.small,
                                                         'small')
        self.svm_delete_kept()
        nova = self.results['nova']
        self.results['overhead'] = {
            k: diff(big['create'][k], nova['create'][k])
            for k in ('p50_s', 'p95_s', 'all_s')}
        self.results['overhead']['delete_all_s'] = diff(
            big['delete']['all_s'], nova['delete']['all_s'])
        self.results['wall_s'] = round(time.monotonic() - t_start, 1)
        return self.report()

    def targets(self):
        r = self.results
        # Overhead per device: request -> ACTIVE in servicevm less its
        # server's own time in Nova (POST /servers sent -> ACTIVE).
        p50 = r['servicevm']['device_overhead']['p50_s']
        checks = [('servicevm overhead per device p50 < 1 s', p50,
                   p50 is not None and p50 < 1.0, '%+.2f s')]
        # Nova's list calls are independent of the device count when at
        # most ~1 per cycle, at N and at N/10.
        for key in ('servicevm', 'servicevm_small'):
            p = r[key]['poll']
            checks.append(('Nova list calls per poll cycle <= 1.2 (%d '
                           'devices)' % r[key]['devices'], p['per_cycle'],
                           p['per_cycle'] <= 1.2, '%.2f'))
        return checks

    def report(self):
        args, r = self.args, self.results
        nova, svm, small = r['nova'], r['servicevm'], r['servicevm_small']
        n = args.devices
        out = [
            '', 'servicevm Nova driver benchmark: %d devices vs %d servers '
            'booted directly, %d client threads%s' % (
                n, n, args.clients, ' [--quick]' if args.quick else ''),
            'servicevm %s; cloud %s' % (
                self.source, 'started by the bench' if self.cloud_started
                else 'already running'),
            '[nova] poll_interval %gs, max_parallel_calls %d, '
            'list_page_size %s, full_list_interval %s, notifications %s; '
            '[conductor] workers %d, poll_interval 0.2s, '
            'max_parallel_driver_calls %s' % (
                args.poll_interval, args.max_parallel_calls,
                args.list_page_size or 'default',
                'default' if args.full_list_interval is None
                else args.full_list_interval,
                'on' if self.cloud.get('MINICLOUD_NOTIFICATIONS_URL') and
                not args.no_notifications else 'off', args.workers,
                args.driver_calls or 'default'),
            'watched: Nova by one list every %gs, servicevm by one GET '
            '/v1/devices every %gs; load average %s -> %s' % (
                args.base_poll, args.svm_poll, self.load_at_start,
                B.loadavg()), '']
        row = '  %-44s %12s %12s %12s'
        out.append(row % ('', 'Nova direct', 'servicevm', 'difference'))
        for phase, key, label in (
                ('create', 'p50_s', 'request->ACTIVE p50'),
                ('create', 'p95_s', 'request->ACTIVE p95'),
                ('create', 'max_s', 'request->ACTIVE max'),
                ('create', 'all_s', 'time to all ACTIVE'),
                ('create_nova_active', 'p50_s', '  servicevm\'s servers '
                                                'ACTIVE in Nova p50'),
                ('create_nova_active', 'all_s', '  servicevm\'s servers '
                                                'all ACTIVE in Nova'),
                ('delete', 'p50_s', 'delete request->gone p50'),
                ('delete', 'all_s', 'time to all gone'),
                ('delete_nova_gone', 'all_s', '  servicevm\'s servers gone '
                                              'from Nova')):
            a = nova['create' if phase.startswith('create') else
                     'delete'][key]
            b = svm[phase][key]
            out.append(row % (label, sec(a), sec(b), sec(diff(b, a), '+')))
        lag = svm['seen_after_nova_active']
        out.append(row % ('ACTIVE in the list -> in servicevm p50, p95', '',
                          sec(lag['p50_s']), sec(lag['p95_s'])))
        out.append('  per device, its server built by Nova\'s record (%s):'
                   % svm.get('active_from'))
        for key, label in (
                ('seen_after_built', 'built -> ACTIVE in servicevm p50, p95'),
                ('own_nova', 'its server\'s own Nova time p50, p95'),
                ('before_nova', 'request -> its POST /servers p50, p95'),
                ('api_answer', '  of which the API\'s answer p50, p95'),
                ('to_create_vm', '  and operation row -> create_vm step'),
                ('wait_active_to_seen', 'wait_active step ended -> seen '
                                        'ACTIVE'),
                ('device_overhead', 'overhead per device p50, p95')):
            out.append(row % (label, '', sec(svm[key]['p50_s']),
                              sec(svm[key]['p95_s'])))
        out.append(row % ('ACTIVE told by Nova\'s notification', '', '%d '
                          'of %d' % (svm.get('told_by_notification', 0), n),
                          ''))
        out.append(row % ('in ERROR after create / delete', '%d / %d' % (
            nova['create']['errors'], nova['delete']['errors']), '%d / %d' % (
            svm['create']['errors'], svm['delete']['errors']), ''))
        out += ['', 'Nova API calls servicevm made (counting proxy), and '
                'their latency p50 (ms) in the batch of %d:' % n]
        cols = [(k, b) for b in (svm, small) for k in ('create', 'delete')]
        row = '  %-48s' + ' %10s' * 6
        out.append(row % tuple([''] + ['%s %d' % (k, b['devices'])
                                       for k, b in cols] + ['ms create',
                                                            'ms delete']))
        kinds = sorted({k for phase, b in cols
                        for k in b['nova_calls'][phase]['by_kind']})
        for kind in kinds:
            out.append(row % tuple([kind[:48]] + [
                b['nova_calls'][k]['by_kind'].get(kind, 0)
                for k, b in cols] + [
                svm['nova_calls'][k]['ms_p50_by_kind'].get(kind, '')
                for k in ('create', 'delete')]))
        for key, label in (('total', 'total'), ('per_device', 'per device'),
                           ('not_2xx', 'answers not 2xx'),
                           ('poll_kib', 'KiB of poll list answers')):
            out.append(row % tuple([label] + [
                b['nova_calls'][k][key] for k, b in cols] + ['', '']))
        out += ['', 'poll list calls (%s, next pages included) of the create '
                'phase; one cycle per %gs:' % (POLL_LIST, args.poll_interval)]
        row = '  %-44s %12s %12s'
        out.append(row % ('', '%d devices' % n,
                          '%d devices' % small['devices']))
        for key, label in (('list_calls', 'list calls'),
                           ('first_pages', 'of which first pages'),
                           ('span_s', 'first to last list call (s)'),
                           ('cycles', 'poll cycles in that span'),
                           ('per_cycle', 'list calls per cycle'),
                           ('max_in_interval', 'most list calls in any %gs'
                            % args.poll_interval),
                           ('max_in_flight', 'most list calls under way at '
                                             'once'),
                           ('call_ms_p50', 'list call latency p50 (ms)'),
                           ('call_ms_p95', 'list call latency p95 (ms)')):
            out.append(row % (label, svm['poll'][key], small['poll'][key]))
        out += ['', 'whole run until the clean-up: %.0f s' % r['wall_s'],
                '', 'targets:']
        checks = self.targets()
        for name, value, ok, fmt in checks:
            out.append('  %-52s %10s  %s' % (
                name, '-' if value is None else fmt % value,
                'PASS' if ok else 'MISS'))
        out += ['note: ' + note for note in self.notes]
        print('\n'.join(out), flush=True)
        errors = sum(x[k]['errors'] for x in (nova, svm, small)
                     for k in ('create', 'delete'))
        return {
            'config': {k: getattr(args, k) for k in (
                'devices', 'small', 'clients', 'quick', 'poll_interval',
                'max_parallel_calls', 'workers', 'driver_calls',
                'full_list_interval',
                'list_page_size', 'base_poll', 'svm_poll')},
            'source': self.source, 'results': r,
            'targets': [{'target': c[0], 'value': c[1], 'pass': c[2]}
                        for c in checks],
            'all_pass': all(c[2] for c in checks) and not errors,
            'notes': self.notes}

    def write_json(self, result):
        with open(self.args.json, 'w') as f:
            json.dump(dict(result, per_device=self.raw), f, indent=2,
                      sort_keys=True)
        log('figures written to %s' % self.args.json)

    def cleanup(self):
        self.stop_event.set()
        if self.conductor is not None:
            # First: no new server after the purge below.
            self.conductor.stop()
        for attempt in range(3 if getattr(self, 'nova', None) else 0):
            try:
                self.purge_servers('of this run')
                time.sleep(1.0)
                self.purge_servers('of this run (late ones)')
                self.results['servers_left'] = len(
                    self.nova_states(name='^' + PREFIX))
                # servicevm's servers of others (e.g. a test run) may be
                # there: ours are all named svmbench-*.
                self.results['tagged_servicevm_left'] = len(
                    self.nova_states(tags='servicevm'))
                break
            except Exception as e:
                log('deleting the servers of the run: %s' % e)
                time.sleep(5)
        for client in self.clients:
            client.close()
        for server in reversed(self.servers):
            try:
                server.stop()
            except Exception as e:  # keep cleaning up
                log('stopping %s: %s' % (server.name, e))
        if self.proxy is not None:
            self.proxy.stop()
        if self.db_created:
            try:
                B.recreate_database(self.admin_url, self.db_name,
                                    drop_only=True)
            except Exception as e:
                log('could not drop database %s: %s' % (self.db_name, e))
        B.stop_started_services(self.started_services, self.args,
                                self.service_env())
        if self.cloud_started:
            log('stopping the cloud (started by the benchmark)')
            B.run(['bash', os.path.join(REPO, 'tools', 'minicloud.sh'),
                   'stop'], timeout=300, check=False, capture=False)
        B.remove_tmp(self.tmp, self.args)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add = p.add_argument
    add('--devices', type=int, help='devices and baseline servers (100; '
                                    'quick 20)')
    add('--small', type=int, help='devices of the second batch (N/10)')
    add('--quick', action='store_true', help='20 devices')
    add('--clients', type=int, default=16, help='client threads (16)')
    add('--poll-interval', type=float, default=0.5,
        help='[nova] poll_interval (0.5)')
    add('--max-parallel-calls', type=int, default=20,
        help='[nova] max_parallel_calls (20)')
    add('--list-page-size', type=int,
        help='[nova] list_page_size (servicevm\'s default)')
    add('--full-list-interval', type=float,
        help='[nova] full_list_interval (servicevm\'s default)')
    add('--workers', type=int, default=128, help='[conductor] workers (128)')
    add('--db-pool-size', type=int,
        help='[database] max_pool_size (oslo.db\'s default, 5)')
    add('--no-notifications', action='store_true',
        help='leave [nova] notifications_url unset (polls only)')
    add('--driver-calls', type=int,
        help='[conductor] max_parallel_driver_calls (servicevm\'s default)')
    add('--base-poll', type=float, default=0.5,
        help='seconds between two lists of Nova\'s servers (0.5)')
    add('--svm-poll', type=float, default=0.2,
        help='seconds between two GET /v1/devices (0.2)')
    add('--timeout', type=int, default=1800,
        help='seconds a batch may take (1800)')
    add('--keep-servers', action='store_true',
        help='leave the private PostgreSQL and RabbitMQ running')
    add('--keep-tmp', action='store_true', help='keep configs and logs')
    add('--json', help='write the figures to this file')
    args = p.parse_args(argv)
    if args.devices is None:
        args.devices = 20 if args.quick else 100
    args.small = args.small or max(1, args.devices // 10)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)

    B.stop_on_signals()
    sys.path.insert(0, REPO)
    bench = Bench(args)
    bench.load_at_start = B.loadavg()
    result = None
    try:
        result = bench.execute()
    except Exception as e:
        log('ERROR: %s: %s' % (type(e).__name__, e))
        B.show_logs(bench.tmp, ('api-gunicorn.log', 'api.log',
                                'conductor.log', 'conductor-stdout.log'))
        return 2
    finally:
        bench.cleanup()
        left = bench.results.get('servers_left')
        print('servers of the run (svmbench-*) left in demo1\'s project '
              'after the clean-up: %s (servers tagged servicevm there, '
              'anyone\'s: %s)' % ('unknown' if left is None else left,
                                  bench.results.get('tagged_servicevm_left')),
              flush=True)
        if result is not None and args.json:
            bench.write_json(result)
    if left or left is None:
        return 2
    return 0 if result['all_pass'] else 1


if __name__ == '__main__':
    sys.exit(main())
