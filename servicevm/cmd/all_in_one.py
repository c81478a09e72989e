"""servicevm-all-in-one: the API and a conductor in one process.

The embedded default for trying servicevm: an in-process RPC transport
(``fake://``), SQLite, noauth and the noop drivers, listening on
127.0.0.1:9890. The schema is created (or upgraded) at start. Any option
can still be set in a config file or on the command line.
"""

import os
import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging

from servicevm.api import app
from servicevm.cmd import api as api_cmd
from servicevm.cmd import conductor as conductor_cmd
from servicevm.common import rpc
from servicevm.common import secrets
from servicevm.common import service
from servicevm.conf import database as db_conf
from servicevm.db import migration

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def default_state_dir():
    base = os.environ.get('XDG_DATA_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'share')
    return os.path.join(base, 'servicevm')


def prepare(argv):
    state_dir = default_state_dir()
    service.prepare_service(argv, defaults={
        'auth_strategy': 'noauth',
        'transport_url': 'fake://',
        'database.connection': 'sqlite:///%s' % os.path.join(
            state_dir, 'servicevm.sqlite'),
    })
    if CONF.database.connection.startswith('sqlite:///'):
        path = CONF.database.connection[len('sqlite:///'):]
        if path and path != db_conf.DEFAULT_CONNECTION:
            os.makedirs(os.path.dirname(os.path.abspath(path)),
                        exist_ok=True)
    if not CONF.secrets.key_file and not CONF.secrets.fernet_keys:
        # Credentials given to the all-in-one are sealed with a key of
        # its own, made once, beside its database.
        CONF.set_override('key_file', secrets.ensure_key_file(
            os.path.join(state_dir, 'secrets.key')), group='secrets')
    migration.upgrade('head')
    LOG.info('Database %s is at revision %s', CONF.database.connection,
             migration.version())


def main():
    prepare(sys.argv[1:])
    conductor = conductor_cmd.start_conductor(CONF)
    done = threading.Event()

    def _stop(signum, frame):
        raise KeyboardInterrupt()

    signal.signal(signal.SIGTERM, _stop)
    try:
        api_cmd.serve(app.setup_app(CONF), CONF)
    except KeyboardInterrupt:
        pass
    finally:
        done.set()
        conductor_cmd.stop_conductor(conductor)
        rpc.cleanup()
