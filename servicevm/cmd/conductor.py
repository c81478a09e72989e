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


class Conductor:
    """A conductor's RPC server and its manager's background duties."""

    def __init__(self, conf):
        # The RPC server's threads run the operations: [conductor] workers
        # sizes them (read here, after the configuration files were parsed).
        conf.set_override('executor_thread_pool_size', conf.conductor.workers)
        self.manager = manager.ConductorManager(conf, conf.host)
        target = messaging.Target(topic=conf.conductor.topic,
                                  server=conf.host)
        self.server = rpc.get_server(conf, target, [self.manager])
        self.conf = conf

    def start(self):
        self.server.start()
        self.manager.start()
        LOG.info('servicevm conductor %s listening on topic %s',
                 self.conf.host, self.conf.conductor.topic)

    def stop(self):
        self.server.stop()
        self.manager.stop()
        self.server.wait()


def start_conductor(conf):
    """Start a conductor (RPC server, threading executor) and return it."""
    conductor = Conductor(conf)
    conductor.start()
    return conductor


def stop_conductor(conductor):
    conductor.stop()


def main():
    service.prepare_service(sys.argv[1:])
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
