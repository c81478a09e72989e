"""Client side of the conductor RPC API (used by servicevm-api).

API version history:
    1.0 - run_operation
"""

import oslo_messaging as messaging

from servicevm.common import rpc

RPC_API_VERSION = '1.0'


class ConductorAPI:

    def __init__(self, conf):
        self.conf = conf
        target = messaging.Target(topic=conf.conductor.topic,
                                  version=RPC_API_VERSION)
        self.client = rpc.get_client(conf, target)

    def run_operation(self, context, operation_id):
        """Ask any conductor to run an operation that is already committed
        to the database (a cast: the API does not wait)."""
        cctxt = self.client.prepare(version='1.0')
        cctxt.cast(context, 'run_operation', operation_id=operation_id)
