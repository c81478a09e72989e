"""servicevm-api: the REST API on the built-in threaded HTTP server."""

import sys

from cheroot import wsgi
from oslo_config import cfg
from oslo_log import log as logging

from servicevm.api import app
from servicevm.common import service

CONF = cfg.CONF
LOG = logging.getLogger(__name__)


def serve(application, conf):
    server = wsgi.Server((conf.api.host, conf.api.port), application,
                         numthreads=conf.api.threads,
                         server_name='servicevm-api')
    LOG.info('servicevm API listening on http://%s:%d/', conf.api.host,
             conf.api.port)
    try:
        server.safe_start()
    finally:
        server.stop()


def main():
    service.prepare_service(sys.argv[1:])
    serve(app.setup_app(CONF), CONF)
