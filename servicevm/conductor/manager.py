"""Server side of the conductor RPC API: thin endpoints over the engine."""

import oslo_messaging as messaging

from servicevm.conductor import engine
from servicevm.conductor import health
from servicevm.conductor import rpcapi
from servicevm.conductor import supervisor


class ConductorManager:
    target = messaging.Target(version=rpcapi.RPC_API_VERSION)

    def __init__(self, conf, host):
        self.conf = conf
        self.host = host
        self.runner = engine.OperationRunner(conf, host)
        self.supervisor = supervisor.Supervisor(conf, self.runner)
        self.health = health.HealthWatch(conf, self.runner)

    def start(self):
        self.supervisor.start()
        self.health.start()

    def stop(self):
        """Stop the background duties, then every run (each gives its
        operation up to another conductor)."""
        self.health.stop()
        self.supervisor.stop()
        self.runner.shutdown()
        self.supervisor.wait()

    def run_operation(self, context, operation_id):
        self.runner.run(context, operation_id)
