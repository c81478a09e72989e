"""The devstack plugin, run phase by phase against stub devstack
functions that record their calls (iniset writes the real file): what it
installs, configures, creates in Keystone and starts; and bashate and
shellcheck pass on it."""

import configparser
import os
import shutil
import subprocess
import sys

import fixtures

from servicevm.tests import base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
FILES = [os.path.join(ROOT, 'devstack', f)
         for f in ('plugin.sh', 'settings', os.path.join('lib', 'servicevm'))]

# Stubs of the devstack functions the plugin calls: each records its name
# and arguments, one line each.
STUBS = r'''
record() { printf '%s\n' "$*" >>"$CALLS"; }
for name in define_plugin enable_service echo_summary setup_develop \
        recreate_database create_service_user get_or_create_service \
        get_or_create_endpoint run_process stop_process write_uwsgi_config \
        remove_uwsgi_config die; do
    eval "$name() { record $name \"\$@\"; }"
done
is_service_enabled() { return 0; }
wait_for_service() { record wait_for_service "$@"; return 0; }
sudo() { "$@"; }
get_python_exec_prefix() { echo "$FAKE_BIN"; }
database_connection_url() { echo "mysql+pymysql://root:secret@127.0.0.1/$1"; }
iniset() {
    "$PYTHON" - "$@" <<'EOF'
import configparser, sys
path, section, option, value = sys.argv[1:5]
parser = configparser.RawConfigParser()
parser.read(path)
if section != 'DEFAULT' and not parser.has_section(section):
    parser.add_section(section)
parser.set(section, option, value)
with open(path, 'w') as f:
    parser.write(f)
EOF
}
iniset_rpc_backend() {
    iniset "$2" DEFAULT transport_url rabbit://stack:secret@127.0.0.1:5672/
}
configure_keystone_authtoken_middleware() {
    iniset "$1" keystone_authtoken auth_type password
    iniset "$1" keystone_authtoken username "$2"
}
'''


class TestDevstackPlugin(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.calls = os.path.join(self.tmp, 'calls')
        self.bin = os.path.join(self.tmp, 'bin')
        os.mkdir(self.bin)
        # servicevm-db-manage as the plugin runs it: recorded.
        tool = os.path.join(self.bin, 'servicevm-db-manage')
        with open(tool, 'w') as f:
            f.write('#!/bin/sh\necho servicevm-db-manage "$@" >>"$CALLS"\n')
        os.chmod(tool, 0o755)
        with open(os.path.join(self.tmp, 'stubs.sh'), 'w') as f:
            f.write(STUBS)
        self.conf = os.path.join(self.tmp, 'etc', 'servicevm.conf')

    def phase(self, *args):
        env = dict(os.environ, CALLS=self.calls, FAKE_BIN=self.bin,
                   PYTHON=sys.executable, DEST=self.tmp,
                   SERVICEVM_DIR=ROOT, STACK_USER=str(os.getuid()),
                   SERVICEVM_CONF_DIR=os.path.join(self.tmp, 'etc'),
                   ENABLE_DEBUG_LOG_LEVEL='True',
                   SERVICE_LISTEN_ADDRESS='0.0.0.0',
                   SERVICE_PASSWORD='servicepass',
                   SERVICE_PROJECT_NAME='service',
                   SERVICE_DOMAIN_NAME='Default', REGION_NAME='RegionOne',
                   KEYSTONE_SERVICE_URI='http://10.0.0.1/identity',
                   SERVICE_PROTOCOL='http', SERVICE_HOST='10.0.0.1',
                   SERVICE_TIMEOUT='60')
        script = ('set -e; source "%s/stubs.sh"; source "%s/devstack/'
                  'settings"; source "%s/devstack/plugin.sh" %s'
                  % (self.tmp, ROOT, ROOT, ' '.join(args)))
        result = subprocess.run(['bash', '-c', script], env=env,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(0, result.returncode, result.stderr)

    def recorded(self):
        with open(self.calls) as f:
            return [line.split() for line in f.read().splitlines()]

    def test_phases(self):
        for args in (('stack', 'install'), ('stack', 'post-config'),
                     ('stack', 'extra'), ('unstack',), ('clean',)):
            self.phase(*args)
        calls = self.recorded()
        names = [c[0] for c in calls]
        self.assertIn(['setup_develop', ROOT], calls)
        self.assertIn(['recreate_database', 'servicevm'], calls)
        self.assertIn(['servicevm-db-manage', '--config-file', self.conf,
                       'upgrade'], calls)
        self.assertIn(['create_service_user', 'servicevm', 'admin'], calls)
        self.assertIn('get_or_create_service', names)
        self.assertIn(['get_or_create_endpoint', 'servicevm', 'RegionOne',
                       'http://10.0.0.1/servicevm'], calls)
        started = [c[1] for c in calls if c[0] == 'run_process']
        self.assertEqual(['servicevm-api', 'servicevm-conductor'], started)
        self.assertIn('wait_for_service', names)
        stopped = [c[1] for c in calls if c[0] == 'stop_process']
        self.assertEqual(['servicevm-api', 'servicevm-conductor'], stopped)
        # In devstack's order: schema before the processes, stops last.
        self.assertLess(names.index('servicevm-db-manage'),
                        names.index('run_process'))
        self.assertLess(names.index('run_process'),
                        names.index('stop_process'))

    def test_written_config(self):
        self.phase('stack', 'post-config')
        parser = configparser.RawConfigParser()
        parser.read(self.conf)
        self.assertEqual('keystone', parser.get('DEFAULT', 'auth_strategy'))
        self.assertEqual('mysql+pymysql://root:secret@127.0.0.1/servicevm',
                         parser.get('database', 'connection'))
        self.assertTrue(parser.get('DEFAULT', 'transport_url').startswith(
            'rabbit://'))
        self.assertEqual('servicevm',
                         parser.get('keystone_authtoken', 'username'))
        for group in ('nova', 'heat'):
            self.assertEqual('http://10.0.0.1/identity',
                             parser.get(group, 'auth_url'))
            self.assertEqual('servicepass', parser.get(group, 'password'))
        self.assertEqual('9890', parser.get('api', 'port'))

    def test_shellcheck_and_bashate(self):
        shellcheck = shutil.which('shellcheck')
        if shellcheck is None and os.geteuid() == 0 and shutil.which(
                'apt-get'):
            subprocess.run(['apt-get', 'install', '-y', '-qq', 'shellcheck'],
                           capture_output=True, timeout=900,
                           env=dict(os.environ,
                                    DEBIAN_FRONTEND='noninteractive'))
            shellcheck = shutil.which('shellcheck')
        self.assertIsNotNone(shellcheck, 'shellcheck is missing (Debian '
                             'package shellcheck) and cannot be installed')
        result = subprocess.run([shellcheck, '-s', 'bash', '-x'] + FILES,
                                capture_output=True, text=True, cwd=ROOT,
                                timeout=120)
        self.assertEqual(0, result.returncode, result.stdout)
        bashate = os.path.join(os.path.dirname(sys.executable), 'bashate')
        self.assertTrue(os.path.exists(bashate),
                        'bashate is missing: it is in test-requirements.txt')
        result = subprocess.run([bashate, '-i', 'E006'] + FILES,
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(0, result.returncode, result.stdout)
