"""servicevm-conductor: runs operations received over RPC."""

import signal
import sys
import threading

from oslo_config import cfg
from oslo_log import log as logging
import oslo_messaging as messaging

from servicevm.common import rpc
from servicevm.common import service
from servicevm.conductor import manager

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def start_conductor(conf):
    """Start the conductor's RPC server (threading executor) and return
    it."""
    endpoint = manager.ConductorManager(conf, conf.host)
    target = messaging.Target(topic=conf.conductor.topic, server=conf.host)
    server = rpc.get_server(conf, target, [endpoint])
    server.start()
    LOG.info('servicevm conductor %s listening on topic %s', conf.host,
             conf.conductor.topic)
    return server


def stop_conductor(server):
    server.stop()
    server.wait()


def main():
    service.prepare_service(
        sys.argv[1:],
        defaults={'executor_thread_pool_size': CONF.conductor.workers})
    server = start_conductor(CONF)
    stopped = threading.Event()

    def _stop(signum, frame):
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stopped.wait()
    LOG.info('servicevm conductor stopping')
    stop_conductor(server)
    rpc.cleanup()
