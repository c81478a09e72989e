"""Server side of the conductor RPC API: thin endpoints over the engine."""

from oslo_log import log as logging
import oslo_messaging as messaging

from servicevm.conductor import engine
from servicevm.conductor import health
from servicevm.conductor import rpcapi
from servicevm.conductor import supervisor
from servicevm.drivers import loader

LOG = logging.getLogger(__name__)


class ConductorManager:
    target = messaging.Target(version=rpcapi.RPC_API_VERSION)

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host
        self.runner = engine.OperationRunner(conf, host)
        self.supervisor = supervisor.Supervisor(conf, self.runner)
        self.health = health.HealthWatch(conf, self.runner)

    def start(self):
        for driver in self._device_drivers():
            try:
                driver.start(self.host)
            except Exception as e:
                # Its operations still run; what start() adds is missing.
                LOG.error('Device driver %s did not start: %s',
                          type(driver).__name__, e)
        self.supervisor.start()
        self.health.start()

    def stop(self):
        """Stop the background duties, then every run (each gives its
        operation up to another conductor)."""
        self.health.stop()
        self.supervisor.stop()
        self.runner.shutdown()
        self.supervisor.wait()
        for driver in self._device_drivers():
            try:
                driver.stop()
            except Exception as e:
                LOG.warning('Device driver %s did not stop cleanly: %s',
                            type(driver).__name__, e)

    def _device_drivers(self):
        drivers = []
        for name in self.conf.enabled_device_drivers:
            try:
                drivers.append(loader.get_device_driver(self.conf, name))
            except Exception as e:
                LOG.error('Device driver %s cannot be loaded: %s', name, e)
        return drivers

    def run_operation(self, context, operation_id):
        self.runner.run(context, operation_id)
