"""Functional test bases: a real PostgreSQL database and a real RabbitMQ,
the API and two conductors running as separate processes.

The servers come from tools/postgres.sh and tools/rabbitmq.sh (started by
tools/run-tests.sh), which export:

  SERVICEVM_TEST_DB_URL         a PostgreSQL URL of a role that may create
                                and drop databases
  SERVICEVM_TEST_TRANSPORT_URL  an oslo.messaging rabbit:// URL

Without them every test here is skipped. Each test class gets its own
database (a unique name, dropped at the end) and its own RPC topic, so
classes never see each other's rows or messages, whichever stestr worker
runs them. A class that stops and restarts its servers
(PrivateServersTestCase) runs a PostgreSQL and a RabbitMQ of its own.

SERVICEVM_FUNCTIONAL_KEEP=1 keeps each class's temp dir (configs, process
logs, the fault driver's VIM) for a look after the run.
"""

import atexit
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from oslotest import base as oslo_base
import requests
import sqlalchemy as sa

DB_URL_ENV = 'SERVICEVM_TEST_DB_URL'
TRANSPORT_URL_ENV = 'SERVICEVM_TEST_TRANSPORT_URL'

BIN_DIR = os.path.dirname(sys.executable)
START_TIMEOUT = 60      # s for a process to become ready
STOP_TIMEOUT = 10       # s between SIGTERM and SIGKILL
LOG_TAIL_LINES = 40

ADMIN = ('admin-user', 'admin-project', 'admin')
PROJECT_A = ('user-a', 'project-a', 'member')
PROJECT_B = ('user-b', 'project-b', 'member')


def missing_servers_reason(required=(DB_URL_ENV, TRANSPORT_URL_ENV)):
    missing = [name for name in required if not os.environ.get(name)]
    if missing:
        return ('%s not set: the functional tests need PostgreSQL and '
                'RabbitMQ (run tools/run-tests.sh)' % ', '.join(missing))
    return None


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def tail(path, lines=LOG_TAIL_LINES):
    try:
        with open(path, errors='replace') as f:
            content = f.readlines()
    except OSError as e:
        return '(cannot read %s: %s)\n' % (path, e)
    return ''.join(content[-lines:]) or '(empty)\n'


# ---------------------------------------------------------------- database

class TestDatabase:
    """A fresh PostgreSQL database, created from the admin URL."""

    def __init__(self, admin_url, prefix='svm_func'):
        self.admin_url = sa.engine.make_url(admin_url)
        self.name = '%s_%s' % (prefix, uuid.uuid4().hex[:12])
        self.url = self.admin_url.set(database=self.name)
        self._admin = sa.create_engine(self.admin_url,
                                       isolation_level='AUTOCOMMIT',
                                       poolclass=sa.pool.NullPool)
        with self._admin.connect() as connection:
            connection.execute(sa.text('CREATE DATABASE "%s"' % self.name))
        self.created = True

    @property
    def url_string(self):
        return self.url.render_as_string(hide_password=False)

    def drop(self):
        if not self.created:
            return
        self.created = False
        with self._admin.connect() as connection:
            # FORCE (PostgreSQL 13+) ends the connections of processes
            # that did not close theirs.
            connection.execute(sa.text(
                'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name))
        self._admin.dispose()


class PostgresTestCase(oslo_base.BaseTestCase):
    """A fresh PostgreSQL database per test class (``cls.database``)."""

    REQUIRED_ENV = (DB_URL_ENV,)

    _setup_error = None
    _skip_reason = None
    database = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._skip_reason = missing_servers_reason(cls.REQUIRED_ENV)
        cls._setup_error = None
        cls._cleanups_cls = []
        if cls._skip_reason:
            return
        try:
            cls.setUpServers()
            cls.database = TestDatabase(cls.db_admin_url())
            cls._cleanups_cls.append(cls.database.drop)
            atexit.register(cls.database.drop)
            cls.setUpResources()
        except Exception as e:
            cls._setup_error = '%s: %s' % (type(e).__name__, e)
            cls._run_class_cleanups()

    @classmethod
    def setUpServers(cls):
        """Class-level set-up before the database is created (a class
        with servers of its own starts them here)."""

    @classmethod
    def db_admin_url(cls):
        return os.environ[DB_URL_ENV]

    @classmethod
    def setUpResources(cls):
        """Class-level set-up after the database exists."""

    @classmethod
    def _run_class_cleanups(cls):
        while cls._cleanups_cls:
            func = cls._cleanups_cls.pop()
            try:
                func()
            except Exception as e:  # keep cleaning up
                print('cleanup %r failed: %s' % (func, e), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        cls._run_class_cleanups()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self._skip_reason:
            self.skipTest(self._skip_reason)
        if self._setup_error:
            self.fail('class set-up failed: %s' % self._setup_error)


# ---------------------------------------------------------- private servers

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
TOOLS_DIR = os.path.join(REPO_ROOT, 'tools')


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


class PrivateServers:
    """A PostgreSQL and a RabbitMQ of one test class's own, from
    tools/postgres.sh and tools/rabbitmq.sh with another state dir, other
    ports and another node name: a test may stop and restart them without
    disturbing the classes other workers run on the shared servers."""

    def __init__(self):
        self.state_dir = tempfile.mkdtemp(prefix='servicevm-servers-')
        # The postgres user runs the server from <state_dir>/pg.
        os.chmod(self.state_dir, 0o755)
        ports = self._pick_ports(4)
        self.env = dict(
            os.environ, SERVICEVM_TEST_STATE=self.state_dir,
            SERVICEVM_PG_PORT=str(ports[0]),
            SERVICEVM_RABBIT_PORT=str(ports[1]),
            SERVICEVM_RABBIT_DIST_PORT=str(ports[2]),
            SERVICEVM_EPMD_PORT=str(ports[3]),
            SERVICEVM_RABBIT_NODENAME='servicevm-private-%s@localhost'
                                      % uuid.uuid4().hex[:8])
        self.running = set()

    @staticmethod
    def _pick_ports(count):
        # Below the ephemeral range (busy clients may hold ports there)
        # and apart from the ports tools/run-tests.sh picks.
        ports = []
        while len(ports) < count:
            port = random.randrange(30000, 32700)
            if port not in ports and _port_free(port):
                ports.append(port)
        return ports

    def _tool(self, script, *args, timeout=300):
        result = subprocess.run(
            ['bash', os.path.join(TOOLS_DIR, script)] + list(args),
            env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError('%s %s failed (%s):\n%s%s' % (
                script, ' '.join(args), result.returncode,
                result.stdout[-3000:], result.stderr[-3000:]))
        return result.stdout.strip()

    def start(self, which=('postgres', 'rabbitmq')):
        for name in (which,) if isinstance(which, str) else which:
            self.running.add(name)
            self._tool('%s.sh' % name, 'start')

    def stop(self, which=('rabbitmq', 'postgres')):
        for name in (which,) if isinstance(which, str) else which:
            self._tool('%s.sh' % name, 'stop')
            self.running.discard(name)

    def url(self, which):
        return self._tool('%s.sh' % which, 'url')

    def rabbitmqctl(self, *args):
        return self._tool('rabbitmq.sh', 'ctl', *args)

    def cleanup(self):
        for name in ('rabbitmq', 'postgres'):
            if name in self.running:
                try:
                    self.stop(name)
                except Exception as e:
                    print('could not stop the private %s: %s' % (name, e),
                          file=sys.stderr)
        shutil.rmtree(self.state_dir, ignore_errors=True)


# ---------------------------------------------------------------- processes

class ServiceProcess:
    """One servicevm command run as a child process, its output and log in
    files of the class's temp dir."""

    def __init__(self, name, argv, log_file, output_file):
        self.name = name
        self.argv = argv
        self.log_file = log_file
        self.output_file = output_file
        self.popen = None

    def start(self):
        output = open(self.output_file, 'ab')
        try:
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            output.close()
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after ``timeout`` s; returns the exit
        code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print('%s did not stop within %ss, killing it'
                      % (self.name, timeout), file=sys.stderr)
                self.popen.kill()
                self.popen.wait(30)
        return self.popen.returncode

    def log_tail(self):
        text = '---- %s (pid %s, %s) ----\n' % (
            self.name, self.popen.pid if self.popen else '-',
            'running' if self.alive() else
            'exit code %s' % (self.popen.returncode if self.popen else '-'))
        for path in (self.output_file, self.log_file):
            if os.path.exists(path):
                text += '-- %s:\n%s' % (os.path.basename(path), tail(path))
        return text

    def kill(self):
        """SIGKILL (kill -9): the process gets no chance to clean up."""
        if self.alive():
            self.popen.kill()
        if self.popen is not None:
            self.popen.wait(30)

    def log_contains(self, needle):
        return self.log_count(needle) > 0

    def log_count(self, needle):
        """How many times ``needle`` is in the log (kept across
        restarts of the process)."""
        try:
            with open(self.log_file, errors='replace') as f:
                return f.read().count(needle)
        except OSError:
            return 0


class ServiceTestCase(PostgresTestCase):
    """servicevm-api and two servicevm-conductor processes (hosts
    ``CONDUCTOR_HOSTS``) on a fresh database and a private RPC topic."""

    REQUIRED_ENV = (DB_URL_ENV, TRANSPORT_URL_ENV)
    CONDUCTOR_HOSTS = ('functional-conductor-1', 'functional-conductor-2')
    #: Extra configuration of every process: {section: {option: value}}.
    CONFIG = {}

    @classmethod
    def setUpResources(cls):
        cls.temp_dir = tempfile.mkdtemp(prefix='servicevm-functional-')
        if not os.environ.get('SERVICEVM_FUNCTIONAL_KEEP'):
            # Set it to keep the configs, logs and fault VIM of a run.
            cls._cleanups_cls.append(
                lambda: shutil.rmtree(cls.temp_dir, ignore_errors=True))
        cls.topic = 'servicevm-functional-%s' % uuid.uuid4().hex[:12]
        # The fault driver's pretend VIM (when CONFIG enables the driver).
        cls.fault_dir = os.path.join(cls.temp_dir, 'fault-vim')
        cls.api_port = free_port()
        cls.api_url = 'http://127.0.0.1:%d' % cls.api_port
        cls.config_file = cls._write_config()
        cls.processes = {}
        cls._cleanups_cls.append(cls._delete_rpc_queues)
        cls._cleanups_cls.append(cls._stop_all)
        atexit.register(cls._stop_all)
        cls._run_once('db-manage', 'servicevm-db-manage', 'upgrade')
        for host in cls.CONDUCTOR_HOSTS:
            cls._start('conductor', host)
        cls.start_api()
        for host in cls.CONDUCTOR_HOSTS:
            cls._wait_conductor(host)

    # ---- configuration ------------------------------------------------

    @classmethod
    def transport_url(cls):
        return os.environ[TRANSPORT_URL_ENV]

    @classmethod
    def _write_config(cls):
        sections = {
            'DEFAULT': {'auth_strategy': 'noauth',
                        'transport_url': cls.transport_url(),
                        'debug': 'true'},
            'api': {'host': '127.0.0.1', 'port': cls.api_port},
            'database': {'connection': cls.database.url_string},
            # (No health watch: its polls would take injected faults.)
            'conductor': {'topic': cls.topic, 'poll_interval': 0.05,
                          'sync_interval': 0},
            'fault_driver': {'state_dir': cls.fault_dir},
        }
        for section, options in cls.CONFIG.items():
            sections.setdefault(section, {}).update(options)
        path = os.path.join(cls.temp_dir, 'servicevm.conf')
        with open(path, 'w') as f:
            for section, options in sections.items():
                f.write('[%s]\n' % section)
                for name, value in options.items():
                    f.write('%s = %s\n' % (name, value))
        return path

    @classmethod
    def _process_config(cls, name, host=None):
        """The per-process config file: its log file and host name."""
        path = os.path.join(cls.temp_dir, '%s.conf' % name)
        with open(path, 'w') as f:
            f.write('[DEFAULT]\nlog_file = %s\n'
                    % os.path.join(cls.temp_dir, '%s.log' % name))
            if host:
                f.write('host = %s\n' % host)
        return path

    @classmethod
    def _process(cls, name, command, *args, host=None):
        argv = [os.path.join(BIN_DIR, command),
                '--config-file', cls.config_file,
                '--config-file', cls._process_config(name, host)]
        argv.extend(args)
        return ServiceProcess(
            name, argv, os.path.join(cls.temp_dir, '%s.log' % name),
            os.path.join(cls.temp_dir, '%s.out' % name))

    # ---- processes ----------------------------------------------------

    @classmethod
    def _run_once(cls, name, command, *args):
        process = cls._process(name, command, *args).start()
        try:
            process.popen.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.stop()
        if process.popen.returncode != 0:
            raise RuntimeError('%s %s failed:\n%s'
                               % (command, ' '.join(args),
                                  process.log_tail()))

    @classmethod
    def _start(cls, kind, host=None):
        name = host or kind
        process = cls._process(name, 'servicevm-%s' % kind, host=host)
        cls.processes[name] = process.start()
        return process

    @classmethod
    def _wait(cls, process, ready, what):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if ready():
                return
            if not process.alive():
                break
            time.sleep(0.1)
        raise RuntimeError('%s %s:\n%s' % (
            process.name,
            'exited' if not process.alive() else
            'not %s after %ss' % (what, START_TIMEOUT),
            cls.all_log_tails()))

    @staticmethod
    def _listening(host):
        return 'conductor %s listening on topic' % host

    @classmethod
    def _wait_conductor(cls, host, seen=0):
        # start() of the RPC server returns once its queues are declared,
        # then the conductor logs this line: casts from now on reach it.
        # ``seen``: how many times earlier lives of it logged it.
        cls._wait(cls.processes[host],
                  lambda: cls.processes[host].log_count(
                      cls._listening(host)) > seen,
                  'listening')

    @classmethod
    def start_conductor(cls, host, wait=True):
        """Start (or start again, under the same host name) the
        conductor ``host``."""
        old = cls.processes.get(host)
        if old is not None and old.alive():
            raise RuntimeError('conductor %s is running' % host)
        seen = old.log_count(cls._listening(host)) if old else 0
        process = cls._start('conductor', host)
        if wait:
            cls._wait_conductor(host, seen)
        return process

    @classmethod
    def kill_conductor(cls, host):
        """kill -9 the conductor ``host``."""
        cls.processes[host].kill()

    @classmethod
    def stop_conductor(cls, host):
        return cls.processes[host].stop()

    @classmethod
    def start_api(cls):
        process = cls._start('api')

        def answers():
            try:
                return requests.get(cls.api_url + '/', timeout=2).ok
            except requests.RequestException:
                return False

        cls._wait(process, answers, 'answering')
        return process

    @classmethod
    def stop_api(cls):
        return cls.processes['api'].stop()

    @classmethod
    def _stop_all(cls):
        for process in list(getattr(cls, 'processes', {}).values()):
            process.stop()

    @classmethod
    def _delete_rpc_queues(cls):
        """Best effort: remove the class's durable topic queues."""
        try:
            import kombu
        except ImportError:
            return
        url = cls.transport_url().replace('rabbit://', 'amqp://', 1)
        names = [cls.topic] + ['%s.%s' % (cls.topic, h)
                               for h in cls.CONDUCTOR_HOSTS]
        try:
            with kombu.Connection(url, connect_timeout=5) as connection:
                channel = connection.channel()
                for name in names:
                    try:
                        channel.queue_delete(name)
                    except Exception:
                        channel = connection.channel()
        except Exception as e:
            print('could not delete the RPC queues of %s: %s'
                  % (cls.topic, e), file=sys.stderr)

    @classmethod
    def all_log_tails(cls):
        return '\n'.join(p.log_tail()
                         for p in getattr(cls, 'processes', {}).values())

    # ---- HTTP ---------------------------------------------------------

    def setUp(self):
        super().setUp()
        # One requests.Session per thread (tests send from thread pools).
        self._local = threading.local()
        self._sessions = []
        self.addCleanup(lambda: [s.close() for s in self._sessions])
        self.addOnException(self._attach_logs)

    @property
    def http(self):
        session = getattr(self._local, 'session', None)
        if session is None:
            session = self._local.session = requests.Session()
            self._sessions.append(session)
        return session

    def _attach_logs(self, exc_info):
        import testtools.content
        self.addDetail('process-logs',
                       testtools.content.text_content(self.all_log_tails()))

    @staticmethod
    def headers(persona=PROJECT_A):
        user, project, roles = persona
        return {'X-User-Id': user, 'X-Project-Id': project,
                'X-Roles': roles}

    def request(self, method, path, persona=PROJECT_A, body=None,
                data=None, headers=None, timeout=30):
        all_headers = self.headers(persona)
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            all_headers['Content-Type'] = 'application/json'
        all_headers.update(headers or {})
        return self.http.request(method, self.api_url + path, data=data,
                                 headers=all_headers, timeout=timeout)

    def expect(self, status, method, path, **kwargs):
        response = self.request(method, path, **kwargs)
        self.assertEqual(status, response.status_code,
                         '%s %s: %s' % (method, path, response.text[:2000]))
        return response

    def create_template(self, persona=PROJECT_A, **values):
        body = {'name': 'functional', 'device_driver': 'noop',
                'mgmt_driver': 'noop', 'service_types': ['firewall'],
                'attributes': {'image': 'cirros'}}
        body.update(values)
        return self.expect(201, 'POST', '/v1/device_templates',
                           persona=persona,
                           body={'device_template': body}
                           ).json()['device_template']

    def create_device(self, template_id, persona=PROJECT_A, **values):
        body = {'name': 'functional', 'template_id': template_id}
        body.update(values)
        return self.expect(202, 'POST', '/v1/devices', persona=persona,
                           body={'device': body}).json()['device']

    def wait_until(self, predicate, what, timeout=30, interval=0.05):
        """Poll ``predicate`` until it returns something true; returns
        that."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail('not %s after %ss' % (what, timeout))
            time.sleep(interval)

    def wait_for_device(self, device_id, status, persona=ADMIN,
                        timeout=30):
        """Poll until the device has ``status``, or is gone when
        ``status`` is None; returns the device (None when gone)."""
        deadline = time.monotonic() + timeout
        device = None
        while time.monotonic() < deadline:
            response = self.request('GET', '/v1/devices/%s' % device_id,
                                    persona=persona)
            if status is None and response.status_code == 404:
                return None
            self.assertEqual(200, response.status_code, response.text)
            device = response.json()['device']
            if status is not None and device['status'] == status:
                return device
            if device['status'] == 'ERROR':
                self.fail('device %s is ERROR: %s'
                          % (device_id, device.get('status_reason')))
            time.sleep(0.1)
        self.fail('device %s not %s after %ss (last: %s)'
                  % (device_id, status or 'gone', timeout, device))

    def wait_for_event(self, device_id, event_type, timeout=30):
        """Poll the device's history until it has ``event_type``; returns
        the history. (The engine commits the device's final status before
        the operation's final event, so a device can be ACTIVE, or gone,
        a moment before its history says so.)"""
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(device_id)
            if any(e['event_type'] == event_type for e in events):
                return events
            if time.monotonic() > deadline:
                self.fail('no %s event for device %s after %ss: %s'
                          % (event_type, device_id, timeout, events))
            time.sleep(0.1)

    def events(self, device_id, persona=ADMIN):
        return self.expect(200, 'GET', '/v1/devices/%s/events?limit=1000'
                           % device_id, persona=persona).json()['events']

    # ---- operations -----------------------------------------------------

    def operation(self, operation_id, persona=ADMIN):
        return self.expect(200, 'GET', '/v1/operations/%s' % operation_id,
                           persona=persona).json()['operation']

    def operations(self, **filters):
        """Every operation (admin view, all projects)."""
        query = dict(filters, all_projects=1, limit=1000)
        path = '/v1/operations?' + '&'.join(
            '%s=%s' % item for item in sorted(query.items()))
        return self.expect(200, 'GET', path,
                           persona=ADMIN).json()['operations']

    def operation_action(self, operation_id, action, status=None,
                         persona=PROJECT_A):
        response = self.request(
            'POST', '/v1/operations/%s/action' % operation_id,
            persona=persona, body={'action': action})
        if status is not None:
            self.assertEqual(status, response.status_code,
                             '%s of operation %s: %s' % (
                                 action, operation_id, response.text[:2000]))
        return response

    def wait_for_operation(self, operation_id, states, timeout=30,
                           interval=0.05):
        """Poll until the operation is in one of ``states``; returns it."""
        if isinstance(states, str):
            states = (states,)
        deadline = time.monotonic() + timeout
        while True:
            operation = self.operation(operation_id)
            if operation['state'] in states:
                return operation
            if time.monotonic() > deadline:
                self.fail('operation %s not %s after %ss: %s' % (
                    operation_id, '/'.join(states), timeout,
                    json.dumps(operation, indent=1)))
            time.sleep(interval)

    def wait_for_step(self, operation_id, step, state='RUNNING', timeout=30,
                      interval=0.05):
        """Poll until step ``step`` of the operation is in ``state`` (and
        the operation has a lease owner when it runs); returns the
        operation."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.operation(operation_id)
            found = {s['name']: s for s in operation.get('steps', [])}
            if (step in found and found[step]['state'] == state
                    and (state != 'RUNNING' or operation['lease_owner'])):
                return operation
            if time.monotonic() > deadline:
                self.fail('step %s of operation %s not %s after %ss: %s'
                          % (step, operation_id, state, timeout,
                             json.dumps(operation, indent=1)))
            time.sleep(interval)

    # ---- the fault driver's pretend VIM ----------------------------------

    def vim_instances(self):
        """{device id: instance} of what the fault driver's VIM holds."""
        path = os.path.join(self.fault_dir, 'instances')
        result = {}
        for name in sorted(os.listdir(path)) if os.path.isdir(path) else ():
            if not name.endswith('.json'):
                continue  # a file being written (replaced at once when done)
            try:
                with open(os.path.join(path, name)) as f:
                    instance = json.load(f)
            except FileNotFoundError:
                continue  # removed since the listing
            result[instance['device_id']] = instance
        return result

    def vim_journal(self):
        try:
            with open(os.path.join(self.fault_dir, 'journal.jsonl')) as f:
                # a line still being written has no newline yet
                return [json.loads(line) for line in f
                        if line.endswith('\n') and line.strip()]
        except FileNotFoundError:
            return []

    def assert_vim_consistent(self, device_ids=None):
        """No device got two VIM instances, and the VIM holds exactly the
        instances of the devices that exist and record one (nothing
        orphaned, nothing lost). ``device_ids``: only look at these."""
        journal = self.vim_journal()
        if device_ids is not None:
            device_ids = set(device_ids)
            journal = [r for r in journal if r['device_id'] in device_ids]
        creates = collections.Counter(
            r['device_id'] for r in journal if r['event'] == 'create')
        twice = {d: n for d, n in creates.items() if n > 1}
        self.assertEqual({}, twice, 'devices created twice in the VIM')
        instances = self.vim_instances()
        if device_ids is not None:
            instances = {d: i for d, i in instances.items()
                         if d in device_ids}
        devices = {d['id']: d for d in self.expect(
            200, 'GET', '/v1/devices?all_projects=1&limit=1000',
            persona=ADMIN).json()['devices']}
        expected = {d: dev['instance_id'] for d, dev in devices.items()
                    if dev['instance_id'] and
                    (device_ids is None or d in device_ids)}
        held = {d: i['instance_id'] for d, i in instances.items()}
        self.assertEqual(expected, held,
                         'VIM instances (right) differ from the devices\' '
                         'instance ids (left)')


class PrivateServersTestCase(ServiceTestCase):
    """A ServiceTestCase on a PostgreSQL and a RabbitMQ of its own
    (``cls.servers``), which its tests may stop and restart."""

    @classmethod
    def setUpServers(cls):
        cls.servers = PrivateServers()
        cls._cleanups_cls.append(cls.servers.cleanup)
        atexit.register(cls.servers.cleanup)
        cls.servers.start()

    @classmethod
    def db_admin_url(cls):
        return cls.servers.url('postgres')

    @classmethod
    def transport_url(cls):
        return cls.servers.url('rabbitmq')
